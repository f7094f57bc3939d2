//! Schema compatibility as Pulsar's registry decides it (read in `SchemaRegistryServiceImpl`,
//! `AvroSchemaBasedCompatibilityCheck`, `SchemaCompatibilityCheck.DEFAULT`):
//!
//! - `ALWAYS_COMPATIBLE` accepts anything;
//! - a schema of another type than an existing one is incompatible;
//! - a schema with the same bytes as the one it is checked against is compatible;
//! - AVRO, JSON and PROTOBUF schemas (Avro schema definitions in Pulsar) follow Avro's schema
//!   resolution (apache-avro): BACKWARD — the new schema can read data written with the
//!   existing ones; FORWARD — the existing ones can read data written with the new; FULL —
//!   both; `ALWAYS_INCOMPATIBLE` refuses any change;
//! - every other type is compatible unless the strategy is `ALWAYS_INCOMPATIBLE`.
//!
//! The `_TRANSITIVE` strategies check against every schema since the last deletion, the others
//! against the latest; the caller picks which schemas to pass.

use apache_avro::Schema as AvroSchema;
use apache_avro::schema_compatibility::SchemaCompatibility;

use super::{CompatibilityStrategy, SchemaEntry, SchemaType};

/// Why a schema was refused; the text goes to the client (`IncompatibleSchema`) or the REST
/// caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Incompatible(pub String);

/// Whether `new` may follow `existing` (oldest first) under `strategy` (never `Undefined`: the
/// caller resolves it first).
pub fn check(
    existing: &[&SchemaEntry],
    new: &SchemaEntry,
    strategy: CompatibilityStrategy,
) -> Result<(), Incompatible> {
    use CompatibilityStrategy as S;
    if strategy == S::AlwaysCompatible {
        return Ok(());
    }
    if let Some(other) = existing.iter().find(|e| e.schema_type != new.schema_type) {
        return Err(Incompatible(format!(
            "Incompatible schema: exists schema type {}, new schema type {}",
            other.schema_type.name(),
            new.schema_type.name()
        )));
    }
    if existing.iter().all(|e| e.data == new.data) {
        return Ok(());
    }
    match new.schema_type {
        SchemaType::Avro | SchemaType::Json | SchemaType::Protobuf => {
            avro_check(existing, new, strategy)
        }
        _ if strategy == S::AlwaysIncompatible => Err(Incompatible(
            "Schema compatibility strategy is ALWAYS_INCOMPATIBLE".into(),
        )),
        _ => Ok(()),
    }
}

fn parse(entry: &SchemaEntry) -> Result<AvroSchema, Incompatible> {
    let text = std::str::from_utf8(&entry.data)
        .map_err(|_| Incompatible("the schema definition is not UTF-8".into()))?;
    AvroSchema::parse_str(text).map_err(|e| {
        Incompatible(format!(
            "the {} schema definition is not a valid Avro schema: {e}",
            entry.schema_type.name()
        ))
    })
}

fn avro_check(
    existing: &[&SchemaEntry],
    new: &SchemaEntry,
    strategy: CompatibilityStrategy,
) -> Result<(), Incompatible> {
    use CompatibilityStrategy as S;
    let new_schema = parse(new)?;
    for old in existing {
        let old_schema = parse(old)?;
        let result = match strategy {
            // The new schema reads what the old ones wrote.
            S::Backward | S::BackwardTransitive => {
                SchemaCompatibility::can_read(&old_schema, &new_schema)
            }
            // The old schemas read what the new one writes.
            S::Forward | S::ForwardTransitive => {
                SchemaCompatibility::can_read(&new_schema, &old_schema)
            }
            S::Full | S::FullTransitive => {
                SchemaCompatibility::mutual_read(&old_schema, &new_schema)
            }
            S::AlwaysCompatible => Ok(()),
            S::AlwaysIncompatible | S::Undefined => {
                return Err(Incompatible(
                    "Schema compatibility strategy is ALWAYS_INCOMPATIBLE".into(),
                ));
            }
        };
        result.map_err(|e| {
            Incompatible(format!(
                "the schema is not {} compatible with an existing schema: {e}",
                strategy.name()
            ))
        })?;
    }
    Ok(())
}

/// Whether two schemas are the same for the registry: the same type, and the same Avro schema
/// (for the Avro-defined types, parsed) or the same bytes.
pub fn same_schema(a: &SchemaEntry, b: &SchemaEntry) -> bool {
    if a.schema_type != b.schema_type {
        return false;
    }
    if a.data == b.data {
        return true;
    }
    match a.schema_type {
        SchemaType::Avro | SchemaType::Json | SchemaType::Protobuf => match (parse(a), parse(b)) {
            (Ok(x), Ok(y)) => x.canonical_form() == y.canonical_form(),
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CompatibilityStrategy as S;

    fn avro(fields: &str) -> SchemaEntry {
        SchemaEntry::new(
            SchemaType::Avro,
            format!(r#"{{"type":"record","name":"User","fields":[{fields}]}}"#).into_bytes(),
        )
    }

    fn name() -> SchemaEntry {
        avro(r#"{"name":"name","type":"string"}"#)
    }
    /// `name` plus a field with a default: readable both ways.
    fn name_age_default() -> SchemaEntry {
        avro(r#"{"name":"name","type":"string"},{"name":"age","type":"int","default":0}"#)
    }
    /// `name` plus a field without a default: the new schema cannot read old data.
    fn name_age() -> SchemaEntry {
        avro(r#"{"name":"name","type":"string"},{"name":"age","type":"int"}"#)
    }

    #[test]
    fn a_field_with_a_default_is_fully_compatible() {
        for s in [S::Backward, S::Forward, S::Full, S::FullTransitive] {
            assert_eq!(check(&[&name()], &name_age_default(), s), Ok(()), "{s:?}");
        }
    }

    #[test]
    fn a_field_without_a_default_breaks_backward_but_not_forward() {
        // The new reader finds no value for `age` in old data.
        assert!(check(&[&name()], &name_age(), S::Backward).is_err());
        assert!(check(&[&name()], &name_age(), S::Full).is_err());
        // Old readers ignore the extra field.
        assert_eq!(check(&[&name()], &name_age(), S::Forward), Ok(()));
        assert_eq!(check(&[&name()], &name_age(), S::AlwaysCompatible), Ok(()));
    }

    #[test]
    fn transitive_strategies_check_every_schema_given() {
        // v0 {name}; v1 {name, age} (no default: it got in under FORWARD); v2 {age} reads v1's
        // data (age present, name ignored) but not v0's (no age, no default).
        let v0 = name();
        let v1 = name_age();
        let v2 = avro(r#"{"name":"age","type":"int"}"#);
        assert_eq!(check(&[&v1], &v2, S::Backward), Ok(()));
        assert!(check(&[&v0, &v1], &v2, S::BackwardTransitive).is_err());
    }

    #[test]
    fn types_must_match_and_always_incompatible_refuses_any_change() {
        let string = SchemaEntry::new(SchemaType::String, Vec::new());
        let e = check(&[&name()], &string, S::Full).unwrap_err();
        assert!(
            e.0.contains("exists schema type AVRO, new schema type STRING"),
            "{e}"
        );
        assert!(check(&[&name()], &name_age_default(), S::AlwaysIncompatible).is_err());
        // The same bytes are always accepted (the registry hands back the existing version
        // before it gets here, but a check by REST may ask).
        assert_eq!(check(&[&name()], &name(), S::AlwaysIncompatible), Ok(()));
        let int = SchemaEntry::new(SchemaType::Int32, Vec::new());
        let int_props = SchemaEntry {
            properties: [("k".to_string(), "v".to_string())].into(),
            ..int.clone()
        };
        assert_eq!(check(&[&int], &int_props, S::Full), Ok(()));
    }

    #[test]
    fn an_unparsable_definition_is_refused_with_the_reason() {
        let bad = SchemaEntry::new(SchemaType::Json, b"{not json".to_vec());
        let e = check(&[&name()], &bad, S::Full).unwrap_err();
        assert!(e.0.contains("type AVRO, new schema type JSON"), "{e}");
        let bad_avro = SchemaEntry::new(SchemaType::Avro, b"{\"type\":\"nope\"}".to_vec());
        let e = check(&[&name()], &bad_avro, S::Full).unwrap_err();
        assert!(e.0.contains("not a valid Avro schema"), "{e}");
    }

    #[test]
    fn sameness_ignores_whitespace_of_avro_definitions() {
        let spaced = SchemaEntry::new(
            SchemaType::Avro,
            br#"{ "type": "record", "name": "User", "fields": [ {"name": "name", "type": "string"} ] }"#
                .to_vec(),
        );
        assert!(same_schema(&name(), &spaced));
        assert!(!same_schema(&name(), &name_age_default()));
        let json_same_text = SchemaEntry {
            schema_type: SchemaType::Json,
            ..name()
        };
        assert!(!same_schema(&name(), &json_same_text));
    }
}

//! The schema registry: each topic's schemas as a versioned history (a partitioned topic's
//! partitions share their topic's), and the rules that decide whether a producer's or
//! consumer's schema is an existing version, a new version, or refused — as Pulsar's
//! `SchemaRegistryServiceImpl` and `AbstractTopic`/`PersistentTopic` decide them.
//!
//! A version is a schema's position in the history (Pulsar's `LongSchemaVersion`); a deletion
//! is an entry too, and only the entries after the last deletion count for compatibility and
//! for finding an existing version. Versions never change meaning: messages carry them.

pub mod compat;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use compat::Incompatible;

/// Pulsar's schema types, by their admin-API names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SchemaType {
    None,
    String,
    Json,
    Protobuf,
    Avro,
    Boolean,
    Int8,
    Int16,
    Int32,
    Int64,
    Float,
    Double,
    Date,
    Time,
    Timestamp,
    KeyValue,
    Instant,
    LocalDate,
    LocalTime,
    LocalDateTime,
    ProtobufNative,
    Bytes,
}

impl SchemaType {
    const WIRE: [(i32, SchemaType); 21] = [
        (0, SchemaType::None),
        (1, SchemaType::String),
        (2, SchemaType::Json),
        (3, SchemaType::Protobuf),
        (4, SchemaType::Avro),
        (5, SchemaType::Boolean),
        (6, SchemaType::Int8),
        (7, SchemaType::Int16),
        (8, SchemaType::Int32),
        (9, SchemaType::Int64),
        (10, SchemaType::Float),
        (11, SchemaType::Double),
        (12, SchemaType::Date),
        (13, SchemaType::Time),
        (14, SchemaType::Timestamp),
        (15, SchemaType::KeyValue),
        (16, SchemaType::Instant),
        (17, SchemaType::LocalDate),
        (18, SchemaType::LocalTime),
        (19, SchemaType::LocalDateTime),
        (20, SchemaType::ProtobufNative),
    ];

    /// From the binary protocol's `Schema.Type`.
    pub fn from_wire(t: i32) -> Option<SchemaType> {
        Self::WIRE.iter().find(|(n, _)| *n == t).map(|(_, s)| *s)
    }

    /// To the binary protocol's `Schema.Type` (BYTES travels as no schema, NONE).
    pub fn to_wire(self) -> i32 {
        Self::WIRE
            .iter()
            .find(|(_, s)| *s == self)
            .map_or(0, |(n, _)| *n)
    }

    /// The admin API's name (`AVRO`, `KEY_VALUE`, …).
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// Parses the admin API's name.
    pub fn from_name(name: &str) -> Option<SchemaType> {
        serde_json::from_value(serde_json::Value::String(name.to_ascii_uppercase())).ok()
    }
}

/// `schemaCompatibilityStrategy`: Pulsar's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CompatibilityStrategy {
    /// Not set at this level: the next level decides.
    #[default]
    Undefined,
    AlwaysIncompatible,
    AlwaysCompatible,
    Backward,
    Forward,
    Full,
    BackwardTransitive,
    ForwardTransitive,
    FullTransitive,
}

impl CompatibilityStrategy {
    pub fn is_transitive(self) -> bool {
        matches!(
            self,
            Self::BackwardTransitive | Self::ForwardTransitive | Self::FullTransitive
        )
    }

    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    pub fn from_name(name: &str) -> Option<CompatibilityStrategy> {
        serde_json::from_value(serde_json::Value::String(name.to_ascii_uppercase())).ok()
    }
}

/// One entry of a topic's schema history: a schema, or a deletion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaEntry {
    #[serde(rename = "type")]
    pub schema_type: SchemaType,
    /// The definition (an Avro schema in JSON for AVRO, JSON and PROTOBUF), base64 in storage.
    #[serde(with = "base64_bytes")]
    pub data: Vec<u8>,
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// The name the client gave (the binary protocol's `Schema.name`).
    #[serde(default)]
    pub name: String,
    /// Milliseconds since the epoch when it was stored.
    #[serde(default)]
    pub timestamp: u64,
    #[serde(default)]
    pub deleted: bool,
}

impl SchemaEntry {
    pub fn new(schema_type: SchemaType, data: Vec<u8>) -> SchemaEntry {
        SchemaEntry {
            schema_type,
            data,
            properties: BTreeMap::new(),
            name: String::new(),
            timestamp: 0,
            deleted: false,
        }
    }

    /// From the binary protocol's `Schema`; `None` for a type this broker does not know.
    pub fn from_wire(s: &protocol::pb::Schema) -> Option<SchemaEntry> {
        Some(SchemaEntry {
            schema_type: SchemaType::from_wire(s.r#type)?,
            data: s.schema_data.to_vec(),
            properties: s
                .properties
                .iter()
                .map(|kv| (kv.key.clone(), kv.value.clone()))
                .collect(),
            name: s.name.clone(),
            timestamp: 0,
            deleted: false,
        })
    }

    /// To the binary protocol's `Schema`.
    pub fn to_wire(&self) -> protocol::pb::Schema {
        protocol::pb::Schema {
            name: self.name.clone(),
            schema_data: self.data.clone().into(),
            r#type: self.schema_type.to_wire(),
            properties: self
                .properties
                .iter()
                .map(|(k, v)| protocol::pb::KeyValue {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect(),
        }
    }
}

mod base64_bytes {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

/// A topic's schema history; an entry's version is its index.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaHistory {
    pub entries: Vec<SchemaEntry>,
}

/// How the registry answers a schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The same schema is this version already.
    Existing(u64),
    /// A new version: append it (its version is the history's length).
    New,
}

/// The settings that govern a topic's schemas, resolved topic > namespace > broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaRules {
    pub strategy: CompatibilityStrategy,
    /// `isAllowAutoUpdateSchema`: may producers add versions?
    pub allow_auto_update: bool,
    /// `schemaValidationEnforced`: must producers and consumers bring a schema once the
    /// topic has one?
    pub validation_enforced: bool,
}

impl SchemaHistory {
    /// The entries that count, with their versions: those after the last deletion.
    pub fn live(&self) -> Vec<(u64, &SchemaEntry)> {
        let start = self
            .entries
            .iter()
            .rposition(|e| e.deleted)
            .map_or(0, |i| i + 1);
        self.entries
            .iter()
            .enumerate()
            .skip(start)
            .map(|(i, e)| (i as u64, e))
            .collect()
    }

    /// The latest schema, unless there is none or the latest entry is a deletion.
    pub fn latest(&self) -> Option<(u64, &SchemaEntry)> {
        self.live().last().copied()
    }

    /// The schema of `version`, unless it is a deletion or there is no such version.
    pub fn version(&self, version: u64) -> Option<&SchemaEntry> {
        usize::try_from(version)
            .ok()
            .and_then(|i| self.entries.get(i))
            .filter(|e| !e.deleted)
    }

    /// The version a schema already has, if any (among the live entries).
    pub fn find(&self, schema: &SchemaEntry) -> Option<u64> {
        self.live()
            .into_iter()
            .find(|(_, e)| compat::same_schema(e, schema))
            .map(|(v, _)| v)
    }

    /// Whether `schema` may follow the live schemas under `strategy` (the latest, or all for a
    /// transitive strategy); with none, anything may.
    pub fn check(
        &self,
        schema: &SchemaEntry,
        strategy: CompatibilityStrategy,
    ) -> Result<(), Incompatible> {
        let live = self.live();
        let against: Vec<&SchemaEntry> = if strategy.is_transitive() {
            live.iter().map(|(_, e)| *e).collect()
        } else {
            live.last().map(|(_, e)| *e).into_iter().collect()
        };
        if against.is_empty() {
            return Ok(());
        }
        compat::check(&against, schema, strategy)
    }

    /// A producer's schema: its existing version, or a new one if auto-update is allowed and
    /// it is compatible.
    pub fn admit(
        &self,
        schema: &SchemaEntry,
        rules: SchemaRules,
    ) -> Result<Admission, Incompatible> {
        if let Some(v) = self.find(schema) {
            return Ok(Admission::Existing(v));
        }
        if !rules.allow_auto_update {
            return Err(Incompatible(
                "Schema not found and schema auto updating is disabled.".into(),
            ));
        }
        self.check(schema, rules.strategy)?;
        Ok(Admission::New)
    }

    /// A consumer's schema on a topic that has one (Pulsar's `checkConsumerCompatibility`):
    /// under BACKWARD, FORWARD, FORWARD_TRANSITIVE and FULL it must be able to read the latest
    /// schema's data; under the others it is checked against all with the strategy itself.
    pub fn check_consumer(
        &self,
        schema: &SchemaEntry,
        strategy: CompatibilityStrategy,
    ) -> Result<(), Incompatible> {
        use CompatibilityStrategy as S;
        if strategy == S::AlwaysCompatible {
            return Ok(());
        }
        let live = self.live();
        if live.is_empty() {
            return Err(Incompatible("Topic does not have schema to check".into()));
        }
        match strategy {
            S::Backward | S::Forward | S::ForwardTransitive | S::Full => {
                let latest = live.last().map(|(_, e)| *e).into_iter().collect::<Vec<_>>();
                compat::check(&latest, schema, S::Backward)
            }
            _ => {
                let all: Vec<&SchemaEntry> = live.iter().map(|(_, e)| *e).collect();
                compat::check(&all, schema, strategy)
            }
        }
    }

    /// Decodes a stored history. Before versioning tierlog stored one prost-encoded `Schema`:
    /// that reads as a history of one version.
    pub fn decode(raw: &[u8]) -> Option<SchemaHistory> {
        if let Ok(h) = serde_json::from_slice::<SchemaHistory>(raw) {
            return Some(h);
        }
        use prost::Message;
        let legacy = protocol::pb::Schema::decode(raw).ok()?;
        Some(SchemaHistory {
            entries: vec![SchemaEntry::from_wire(&legacy)?],
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn avro(fields: &str) -> SchemaEntry {
        SchemaEntry::new(
            SchemaType::Avro,
            format!(r#"{{"type":"record","name":"User","fields":[{fields}]}}"#).into_bytes(),
        )
    }

    const RULES: SchemaRules = SchemaRules {
        strategy: CompatibilityStrategy::Full,
        allow_auto_update: true,
        validation_enforced: false,
    };

    #[test]
    fn an_evolved_schema_is_a_new_version_and_a_known_one_keeps_its_version() {
        let v0 = avro(r#"{"name":"name","type":"string"}"#);
        let v1 = avro(r#"{"name":"name","type":"string"},{"name":"age","type":"int","default":0}"#);
        let mut h = SchemaHistory::default();
        assert_eq!(h.admit(&v0, RULES), Ok(Admission::New));
        h.entries.push(v0.clone());
        assert_eq!(h.admit(&v0, RULES), Ok(Admission::Existing(0)));
        assert_eq!(h.admit(&v1, RULES), Ok(Admission::New));
        h.entries.push(v1.clone());
        // A producer of the first schema still gets version 0, not the latest.
        assert_eq!(h.admit(&v0, RULES), Ok(Admission::Existing(0)));
        assert_eq!(h.admit(&v1, RULES), Ok(Admission::Existing(1)));
        assert_eq!(h.latest().map(|(v, _)| v), Some(1));
    }

    #[test]
    fn without_auto_update_only_known_schemas_are_admitted() {
        let v0 = avro(r#"{"name":"name","type":"string"}"#);
        let h = SchemaHistory {
            entries: vec![v0.clone()],
        };
        let rules = SchemaRules {
            allow_auto_update: false,
            ..RULES
        };
        assert_eq!(h.admit(&v0, rules), Ok(Admission::Existing(0)));
        let v1 = avro(r#"{"name":"name","type":"string"},{"name":"x","type":"int","default":1}"#);
        assert!(
            h.admit(&v1, rules)
                .unwrap_err()
                .0
                .contains("auto updating is disabled")
        );
    }

    #[test]
    fn a_deletion_starts_over_and_versions_keep_counting() {
        let v0 = avro(r#"{"name":"name","type":"string"}"#);
        let string = SchemaEntry::new(SchemaType::String, Vec::new());
        let mut h = SchemaHistory {
            entries: vec![v0.clone()],
        };
        assert!(h.admit(&string, RULES).is_err());
        h.entries.push(SchemaEntry {
            deleted: true,
            ..SchemaEntry::new(SchemaType::None, Vec::new())
        });
        assert_eq!(h.latest(), None);
        assert_eq!(h.admit(&string, RULES), Ok(Admission::New));
        h.entries.push(string);
        assert_eq!(h.latest().map(|(v, _)| v), Some(2));
        // The old version still reads (messages carry it), the deletion does not.
        assert!(h.version(0).is_some());
        assert!(h.version(1).is_none());
        // v0 is no longer "existing": it would be a new version (and incompatible here).
        assert!(h.admit(&v0, RULES).is_err());
    }

    #[test]
    fn consumers_read_the_latest_under_backward_family_strategies() {
        let v0 = avro(r#"{"name":"name","type":"string"}"#);
        let h = SchemaHistory { entries: vec![v0] };
        // A reader expecting a field without default cannot read v0's data.
        let reader = avro(r#"{"name":"name","type":"string"},{"name":"age","type":"int"}"#);
        for s in [
            CompatibilityStrategy::Full,
            CompatibilityStrategy::Forward,
            CompatibilityStrategy::Backward,
        ] {
            assert!(h.check_consumer(&reader, s).is_err(), "{s:?}");
        }
        assert_eq!(
            h.check_consumer(&reader, CompatibilityStrategy::AlwaysCompatible),
            Ok(())
        );
    }

    #[test]
    fn stored_histories_round_trip_and_the_legacy_single_schema_reads_as_version_0() {
        let mut v0 = avro(r#"{"name":"name","type":"string"}"#);
        v0.properties.insert("k".into(), "v".into());
        let h = SchemaHistory {
            entries: vec![v0.clone()],
        };
        assert_eq!(SchemaHistory::decode(&h.encode()), Some(h));
        use prost::Message;
        let legacy = v0.to_wire().encode_to_vec();
        let decoded = SchemaHistory::decode(&legacy).unwrap();
        assert_eq!(decoded.entries.len(), 1);
        assert_eq!(decoded.entries[0].data, v0.data);
        assert_eq!(decoded.entries[0].properties, v0.properties);
    }

    #[test]
    fn names_are_pulsars() {
        assert_eq!(SchemaType::KeyValue.name(), "KEY_VALUE");
        assert_eq!(SchemaType::from_name("avro"), Some(SchemaType::Avro));
        assert_eq!(SchemaType::from_wire(20), Some(SchemaType::ProtobufNative));
        assert_eq!(SchemaType::Avro.to_wire(), 4);
        assert_eq!(
            CompatibilityStrategy::from_name("BACKWARD_TRANSITIVE"),
            Some(CompatibilityStrategy::BackwardTransitive)
        );
        assert_eq!(
            CompatibilityStrategy::FullTransitive.name(),
            "FULL_TRANSITIVE"
        );
    }
}

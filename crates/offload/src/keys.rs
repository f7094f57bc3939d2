//! Object names and object user metadata, as Pulsar writes them.

use std::collections::BTreeMap;

use object_store::{Attribute, AttributeValue, Attributes};
use uuid::Uuid;

pub const FORMAT_VERSION_KEY: &str = "s3managedledgeroffloaderformatversion";
pub const FORMAT_VERSION: &str = "1";
/// Key of the extra metadata entry holding the managed ledger's name.
pub const MANAGED_LEDGER_NAME: &str = "ManagedLedgerName";

/// `<uuid>-ledger-<ledgerId>`.
pub fn data_key(uuid: &Uuid, ledger_id: i64) -> String {
    format!("{}-ledger-{ledger_id}", uuid.hyphenated())
}

/// `<uuid>-ledger-<ledgerId>-index`.
pub fn index_key(uuid: &Uuid, ledger_id: i64) -> String {
    format!("{}-index", data_key(uuid, ledger_id))
}

/// Splits a data or index key into its UUID and ledger id.
pub fn parse_key(key: &str) -> Option<(Uuid, i64)> {
    let key = key.strip_suffix("-index").unwrap_or(key);
    let (uuid, ledger) = key.rsplit_once("-ledger-")?;
    Some((Uuid::parse_str(uuid).ok()?, ledger.parse().ok()?))
}

/// The user metadata Pulsar sets on both objects (lower-case keys), plus the content type.
pub fn object_attributes(
    role: &str,
    cluster: &str,
    extra: &BTreeMap<String, String>,
) -> Attributes {
    let mut a = Attributes::new();
    let mut meta = |k: &'static str, v: String| {
        if v.is_ascii() && !v.is_empty() {
            a.insert(Attribute::Metadata(k.into()), AttributeValue::from(v));
        }
    };
    meta(FORMAT_VERSION_KEY, FORMAT_VERSION.into());
    meta(
        "s3managedledgeroffloadersoftwareversion",
        format!("tierlog-{}", env!("CARGO_PKG_VERSION")),
    );
    meta("s3managedledgeroffloadersoftwaregitsha", "unknown".into());
    meta("pulsarclustername", cluster.into());
    meta("role", role.into());
    if let Some(name) = extra.get(MANAGED_LEDGER_NAME) {
        meta("managedledgername", name.clone());
    }
    a.insert(
        Attribute::ContentType,
        AttributeValue::from("application/octet-stream"),
    );
    a
}

/// The format version found in an object's user metadata (key compared case-insensitively).
pub fn format_version(attributes: &Attributes) -> Option<String> {
    attributes.iter().find_map(|(k, v)| match k {
        Attribute::Metadata(name) if name.eq_ignore_ascii_case(FORMAT_VERSION_KEY) => {
            Some(v.as_ref().to_string())
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let u = Uuid::parse_str("3f2504e0-4f89-11d3-9a0c-0305e82c3301").unwrap();
        assert_eq!(
            data_key(&u, 12),
            "3f2504e0-4f89-11d3-9a0c-0305e82c3301-ledger-12"
        );
        assert_eq!(
            index_key(&u, 12),
            "3f2504e0-4f89-11d3-9a0c-0305e82c3301-ledger-12-index"
        );
        assert_eq!(parse_key(&index_key(&u, 12)), Some((u, 12)));
        assert_eq!(parse_key(&data_key(&u, 7)), Some((u, 7)));
        assert_eq!(parse_key("nonsense"), None);
    }
}

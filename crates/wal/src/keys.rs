//! Where the WAL keeps its records in the metadata store and its objects in the object store.
//!
//! - `/wal/<managed ledger, one segment>/<ledger id:020>/<first entry:020>` → [`crate::Extent`]:
//!   one key per ledger per flush, in entry order under its ledger's prefix;
//! - `/walflush/<uuid>` → [`crate::format::FlushRecord`]: a committed flush not yet indexed
//!   into extent keys (normally for milliseconds; longer only if its writer stopped);
//! - objects `<object prefix>/<uuid>`, object prefix `wal/<cluster>/<broker>`.

/// Prefix of every extent key.
pub const EXTENT_PREFIX: &str = "/wal/";

/// Prefix of every flush record. Not under [`EXTENT_PREFIX`]: who lists extent keys never
/// takes a record for one.
pub const FLUSH_RECORD_PREFIX: &str = "/walflush/";

/// A new flush record's key.
pub fn flush_record_key() -> String {
    format!("{FLUSH_RECORD_PREFIX}{}", uuid::Uuid::new_v4())
}

/// Prefix of the extent keys of one ledger.
pub fn ledger_prefix(managed_ledger: &str, ledger_id: i64) -> String {
    format!(
        "{EXTENT_PREFIX}{}/{ledger_id:020}/",
        meta::key_segment(managed_ledger)
    )
}

/// The key of the extent of `ledger_id` that starts at entry `first`.
pub fn extent_key(managed_ledger: &str, ledger_id: i64, first: u64) -> String {
    format!("{}{first:020}", ledger_prefix(managed_ledger, ledger_id))
}

/// The first entry id an extent key names (`None` if it is not an extent key of `prefix`).
pub fn first_of_key(prefix: &str, key: &str) -> Option<u64> {
    key.strip_prefix(prefix)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_in_entry_order_and_names_stay_in_their_segment() {
        let a = extent_key("public/default/persistent/t", 7, 9);
        let b = extent_key("public/default/persistent/t", 7, 10);
        assert!(a < b);
        assert_eq!(
            first_of_key(&ledger_prefix("public/default/persistent/t", 7), &b),
            Some(10)
        );
        // A name cannot reach into another managed ledger's keys.
        assert!(!extent_key("a/b", 1, 0).starts_with(&ledger_prefix("a", 1)));
        assert!(!flush_record_key().starts_with(EXTENT_PREFIX));
    }
}

//! # meta — versioned key/value metadata
//!
//! The single source of truth about which ledgers exist, where their data lives and where each
//! cursor stands. The trait is deliberately narrow (get, compare-and-set put, delete, list by
//! prefix): every operation is one etcd request (range, txn comparing the key's version, range
//! with a prefix). Two implementations: [`RedbStore`] (embedded, one broker) and [`EtcdStore`]
//! (an etcd cluster, brokers sharing their metadata).
//!
//! Every value carries a version that grows by one on each successful put; writers pass the
//! version they read ([`Expected::Version`]) so that concurrent read-modify-write cycles cannot
//! silently overwrite each other.

mod etcd_store;
mod redb_store;

pub use etcd_store::EtcdStore;
pub use redb_store::RedbStore;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// Characters escaped in a key segment: all but `[A-Za-z0-9-_.~=:]` (so plain names keep their
/// form, and `/` and `%` never appear bare).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'=')
    .remove(b':');

/// `name` as one segment of a `/`-separated key: percent-encoded, so keys built from several
/// names never collide (subscription `c` of topic `a/b` and `b/c` of `a` are different keys).
pub fn key_segment(name: &str) -> String {
    utf8_percent_encode(name, SEGMENT).to_string()
}

/// The name a [`key_segment`] encodes (`None` if it is not valid percent-encoded UTF-8).
pub fn name_of_segment(segment: &str) -> Option<String> {
    percent_decode_str(segment)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// A stored value with its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    pub value: Vec<u8>,
    /// 1 for a freshly created key, +1 on every put.
    pub version: u64,
}

/// The precondition of a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// Write whatever is there.
    Any,
    /// The key must not exist.
    Absent,
    /// The key must exist with exactly this version.
    Version(u64),
}

/// Errors of a metadata store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetaError {
    /// The precondition of a put or delete did not hold: somebody else changed the key.
    #[error("version conflict on {key}: expected {expected:?}, found {found:?}")]
    Conflict {
        key: String,
        expected: Expected,
        found: Option<u64>,
    },
    /// The backing store failed (I/O, corruption, unavailable service).
    #[error("metadata store failure during {op} of {key}: {detail}")]
    Backend {
        op: &'static str,
        key: String,
        detail: String,
    },
}

pub type Result<T, E = MetaError> = std::result::Result<T, E>;

/// Versioned key/value metadata with compare-and-set.
#[async_trait::async_trait]
pub trait MetadataStore: Send + Sync + 'static {
    /// The value and version of `key`, if it exists.
    async fn get(&self, key: &str) -> Result<Option<Versioned>>;
    /// Writes `value` if `expected` holds; returns the new version.
    async fn put(&self, key: &str, value: Vec<u8>, expected: Expected) -> Result<u64>;
    /// Deletes `key` if `expected` holds. Deleting an absent key with `Expected::Any` succeeds.
    async fn delete(&self, key: &str, expected: Expected) -> Result<()>;
    /// Every key that starts with `prefix`, in ascending order.
    async fn list(&self, prefix: &str) -> Result<Vec<String>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_injective_and_plain_names_unchanged() {
        assert_eq!(key_segment("sub-1.a=b:c_~"), "sub-1.a=b:c_~");
        assert_eq!(key_segment("b/c"), "b%2Fc");
        assert_eq!(key_segment("50%"), "50%25");
        for name in ["b/c", "50%", "x y", "ünïcode", "%2F"] {
            assert_eq!(name_of_segment(&key_segment(name)).as_deref(), Some(name));
        }
        assert_ne!(key_segment("%2F"), key_segment("/"));
    }
}

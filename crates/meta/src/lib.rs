//! # meta — versioned key/value metadata and coordination
//!
//! The single source of truth about which ledgers exist, where their data lives and where each
//! cursor stands, and — between brokers — who is alive and who owns what. The trait is narrow
//! and maps one to one onto etcd's v3 API: get, list by prefix, an all-or-nothing transaction
//! of compare-and-set puts, deletes and checks ([`MetadataStore::commit`]), leases (keys that
//! vanish when their owner stops renewing them) and watches. Two implementations: [`RedbStore`]
//! (embedded, one broker) and [`EtcdStore`] (an etcd cluster, brokers sharing their metadata).
//!
//! Every value carries a version: the store's revision at the value's last change (etcd's
//! `mod_revision`). It grows with every change of the store and is never reused, not even when
//! a key is deleted and created again, so a writer holding a version from an older incarnation
//! of a key can never overwrite the new one (no ABA). Writers pass the version they read
//! ([`Expected::Version`]) so that concurrent read-modify-write cycles cannot silently overwrite
//! each other.

mod etcd_store;
mod redb_store;
mod session;

pub use etcd_store::{EtcdStore, compact_history};
pub use redb_store::RedbStore;
pub use session::Session;

use std::pin::Pin;
use std::time::Duration;

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
    /// The store's revision when the value was last written: larger after every change,
    /// never reused.
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

/// A precondition a writer puts in front of its transactions: `key` still at `version`. In a
/// cluster it is the ownership key of a topic's bundle at the version this broker created it
/// (see the `cluster` crate): once another broker owns the bundle the check fails, so the old
/// owner's writes fail however long it was paused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub key: String,
    pub version: u64,
}

impl Fence {
    /// The check to put in a transaction.
    pub fn check(&self) -> Op {
        Op::check(self.key.clone(), Expected::Version(self.version))
    }

    /// Whether `e` says this fence's check failed.
    pub fn failed(&self, e: &MetaError) -> bool {
        matches!(e, MetaError::Conflict { key, .. } if *key == self.key)
    }
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
    /// The lease does not exist (any more): it expired or was revoked, and its keys are gone.
    #[error("lease {lease} has expired or was revoked")]
    LeaseExpired { lease: LeaseId },
    /// A watch stopped delivering events (the store was closed, the connection dropped, or the
    /// watcher fell behind); the watcher must list again and watch anew.
    #[error("watch of {prefix} ended: {detail}")]
    WatchLost { prefix: String, detail: String },
    /// The request itself is invalid (two operations on one key in one transaction).
    #[error("invalid metadata request on {key}: {detail}")]
    Invalid { key: String, detail: String },
    /// The backing store failed (I/O, corruption, unavailable service). A write that failed
    /// this way has an unknown outcome: it may have been applied (its answer was lost).
    #[error("metadata store failure during {op} of {key}: {detail}")]
    Backend {
        op: &'static str,
        key: String,
        detail: String,
    },
}

pub type Result<T, E = MetaError> = std::result::Result<T, E>;

/// A lease: keys written with it are deleted when it expires (its holder stopped renewing it
/// within its time to live) or is revoked. etcd's lease id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaseId(pub i64);

impl std::fmt::Display for LeaseId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:x}", self.0)
    }
}

/// The most operations one [`MetadataStore::commit`] may carry: etcd's default limit
/// (`--max-txn-ops`), kept by every store so that code tried on one works on the other.
pub const MAX_TXN_OPS: usize = 128;

/// One operation of a [`MetadataStore::commit`] transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Write `value` to `key` if `expected` holds; with a lease, the key is deleted when the
    /// lease ends.
    Put {
        key: String,
        value: Vec<u8>,
        expected: Expected,
        lease: Option<LeaseId>,
    },
    /// Delete `key` if `expected` holds (an absent key with `Any` or `Absent` is fine).
    Delete { key: String, expected: Expected },
    /// Only a precondition: `key` must be as `expected` (a fencing check, for instance).
    Check { key: String, expected: Expected },
}

impl Op {
    pub fn put(key: impl Into<String>, value: Vec<u8>, expected: Expected) -> Op {
        Op::Put {
            key: key.into(),
            value,
            expected,
            lease: None,
        }
    }
    /// A put whose key is deleted when `lease` ends.
    pub fn put_leased(
        key: impl Into<String>,
        value: Vec<u8>,
        expected: Expected,
        lease: LeaseId,
    ) -> Op {
        Op::Put {
            key: key.into(),
            value,
            expected,
            lease: Some(lease),
        }
    }
    pub fn delete(key: impl Into<String>, expected: Expected) -> Op {
        Op::Delete {
            key: key.into(),
            expected,
        }
    }
    pub fn check(key: impl Into<String>, expected: Expected) -> Op {
        Op::Check {
            key: key.into(),
            expected,
        }
    }
    pub fn key(&self) -> &str {
        match self {
            Op::Put { key, .. } | Op::Delete { key, .. } | Op::Check { key, .. } => key,
        }
    }
    pub fn expected(&self) -> Expected {
        match self {
            Op::Put { expected, .. } | Op::Delete { expected, .. } | Op::Check { expected, .. } => {
                *expected
            }
        }
    }
}

/// Refuses a transaction too large for etcd, or that names a key twice (etcd refuses it too; what it would mean is
/// never what the caller wanted).
fn check_distinct_keys(ops: &[Op]) -> Result<()> {
    if ops.len() > MAX_TXN_OPS {
        return Err(MetaError::Invalid {
            key: ops.first().map(|o| o.key().to_string()).unwrap_or_default(),
            detail: format!(
                "{} operations in one transaction (at most {MAX_TXN_OPS})",
                ops.len()
            ),
        });
    }
    let mut seen = std::collections::HashSet::with_capacity(ops.len());
    for op in ops {
        if !seen.insert(op.key()) {
            return Err(MetaError::Invalid {
                key: op.key().to_string(),
                detail: "the key appears twice in one transaction".into(),
            });
        }
    }
    Ok(())
}

/// Whether a value found at `found` (its version, `None` if absent) satisfies `expected`.
fn holds(expected: Expected, found: Option<u64>) -> bool {
    match expected {
        Expected::Any => true,
        Expected::Absent => found.is_none(),
        Expected::Version(v) => found == Some(v),
    }
}

/// A change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// `key` was written; `version` is its new version.
    Put { key: String, version: u64 },
    /// `key` was deleted (by a delete, or because its lease ended).
    Delete { key: String },
}

impl WatchEvent {
    pub fn key(&self) -> &str {
        match self {
            WatchEvent::Put { key, .. } | WatchEvent::Delete { key } => key,
        }
    }
}

/// The changes under a prefix, in the order the store applied them. Ends after an `Err`
/// ([`MetaError::WatchLost`]): the watcher lists again and opens a new watch.
pub type WatchStream = Pin<Box<dyn futures::Stream<Item = Result<WatchEvent>> + Send>>;

/// Versioned key/value metadata with compare-and-set, leases and watches.
#[async_trait::async_trait]
pub trait MetadataStore: Send + Sync + 'static {
    /// The value and version of `key`, if it exists.
    async fn get(&self, key: &str) -> Result<Option<Versioned>>;
    /// Every key that starts with `prefix`, in ascending order.
    async fn list(&self, prefix: &str) -> Result<Vec<String>>;
    /// Every key that starts with `prefix` with its value, in ascending key order, as one
    /// snapshot: what `list` and a `get` per key give, without a round trip per key.
    async fn scan(&self, prefix: &str) -> Result<Vec<(String, Versioned)>>;
    /// Applies every operation, or none: if any precondition fails, nothing is written and
    /// the error is the [`MetaError::Conflict`] of the first operation (in `ops` order) whose
    /// precondition failed. Returns the new version of every key written (one revision for the
    /// whole transaction). A key may appear only once.
    async fn commit(&self, ops: Vec<Op>) -> Result<u64>;
    /// A new lease that ends `ttl` after its last renewal (etcd rounds short TTLs up to its
    /// minimum, about 2 s by default).
    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId>;
    /// Renews `lease` for another TTL; [`MetaError::LeaseExpired`] if it already ended.
    async fn keep_alive(&self, lease: LeaseId) -> Result<()>;
    /// Ends `lease` now, deleting its keys (an ended lease is not an error).
    async fn revoke_lease(&self, lease: LeaseId) -> Result<()>;
    /// The changes under `prefix` from the moment this call returns: watch first, then read,
    /// and nothing is missed.
    async fn watch(&self, prefix: &str) -> Result<WatchStream>;

    /// Writes `value` if `expected` holds; returns the new version.
    async fn put(&self, key: &str, value: Vec<u8>, expected: Expected) -> Result<u64> {
        self.commit(vec![Op::put(key, value, expected)]).await
    }
    /// Deletes `key` if `expected` holds. Deleting an absent key with `Expected::Any` succeeds.
    async fn delete(&self, key: &str, expected: Expected) -> Result<()> {
        self.commit(vec![Op::delete(key, expected)])
            .await
            .map(|_| ())
    }
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

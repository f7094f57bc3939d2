//! What a managed ledger persists in the metadata store, and where.
//!
//! Key layout (all JSON values):
//! - `/ml/<name>` → [`ManagedLedgerInfo`]: the ordered list of ledgers — the only truth about
//!   which ledgers of the topic exist and where their data is;
//! - `/cursors/<name>/<cursor>` → [`CursorInfo`]: a subscription's mark-delete position and the
//!   entries acknowledged individually above it (the cursor name percent-encoded as one segment);
//! - `/counters/ledger-id` → the next ledger id to hand out (shared by every managed ledger).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::compression::Compression;
use crate::config::HotTier;
use crate::error::{LedgerError, Result};
use crate::position::Position;

pub const ML_PREFIX: &str = "/ml/";
pub const CURSOR_PREFIX: &str = "/cursors/";
pub const LEDGER_ID_COUNTER: &str = "/counters/ledger-id";

pub fn ml_key(name: &str) -> String {
    format!("{ML_PREFIX}{name}")
}

pub fn cursor_prefix(name: &str) -> String {
    format!("{CURSOR_PREFIX}{name}/")
}

/// A cursor's key: its name is one encoded segment, so no cursor name reaches into another
/// managed ledger's keys.
pub fn cursor_key(name: &str, cursor: &str) -> String {
    format!("{CURSOR_PREFIX}{name}/{}", meta::key_segment(cursor))
}

/// The cursor name of a key listed under [`cursor_prefix`]`(name)`.
pub fn cursor_of_key(name: &str, key: &str) -> Option<String> {
    meta::name_of_segment(key.strip_prefix(&cursor_prefix(name))?)
}

/// Where a ledger's copy in long-term storage is (filled in by offload; a placeholder until then).
/// The location is kept in Pulsar's driver-metadata form and turned into an
/// [`offload::Location`] by [`OffloadContext::location`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct OffloadContext {
    /// The offload attempt's UUID (lowercase, hyphenated): names the objects.
    pub uuid: String,
    /// Both objects are written and the attempt was confirmed.
    pub complete: bool,
    /// The hot copy was deleted after the deletion lag.
    pub hot_deleted: bool,
    /// When the offload was marked complete (ms).
    pub timestamp_ms: u64,
    pub driver_name: String,
    pub driver_metadata: BTreeMap<String, String>,
}

impl OffloadContext {
    /// A context for an attempt starting now at `location`.
    pub fn attempt(uuid: &uuid::Uuid, location: &offload::Location) -> Self {
        let m = location.driver_metadata();
        OffloadContext {
            uuid: uuid.hyphenated().to_string(),
            complete: false,
            hot_deleted: false,
            timestamp_ms: 0,
            driver_name: m.driver_name,
            driver_metadata: m.properties,
        }
    }

    /// Where the attempt's objects are.
    pub fn location(&self) -> offload::Result<offload::Location> {
        offload::Location::from_driver_metadata(&offload::DriverMetadata {
            driver_name: self.driver_name.clone(),
            properties: self.driver_metadata.clone(),
        })
    }

    /// The attempt's UUID, if it is one.
    pub fn uuid(&self) -> Option<uuid::Uuid> {
        uuid::Uuid::parse_str(&self.uuid).ok()
    }
}

/// One ledger of a managed ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerInfo {
    pub ledger_id: i64,
    /// Entries in the ledger; 0 while it is being written (the live count is in memory).
    pub entries: i64,
    /// Payload bytes; 0 while it is being written.
    pub size: i64,
    /// When the ledger was closed (ms); 0 while it is being written.
    pub timestamp: u64,
    /// When the ledger was created (ms); 0 for ledgers listed before this was recorded. Goes
    /// into the `ctime` of its offload index.
    #[serde(default)]
    pub created_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offload: Option<OffloadContext>,
    /// In a cluster, the broker whose local disk holds the ledger's hot copy (absent when
    /// written by a standalone broker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hot_tier_broker: Option<String>,
    /// Where its hot copy is: a local file (absent), or extents of an object-storage WAL.
    #[serde(default, skip_serializing_if = "HotTier::is_local")]
    pub hot_tier: HotTier,
}

impl LedgerInfo {
    pub fn new_open(ledger_id: i64, created_ms: u64) -> Self {
        LedgerInfo {
            ledger_id,
            entries: 0,
            size: 0,
            timestamp: 0,
            created_ms,
            offload: None,
            hot_tier_broker: None,
            hot_tier: HotTier::Local,
        }
    }

    /// Whether its hot copy is recorded deleted (offloaded, deletion lag passed): the ledger is
    /// never read from the hot tier again, and what is left of that copy is garbage.
    pub fn hot_copy_deleted(&self) -> bool {
        self.offload
            .as_ref()
            .is_some_and(|o| o.complete && o.hot_deleted)
    }
}

/// The persisted ledger list of one managed ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ManagedLedgerInfo {
    pub ledgers: Vec<LedgerInfo>,
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Deletion has begun: the managed ledger cannot be opened, and whatever of it is left is
    /// deleted by the next delete or at start-up.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleting: bool,
    /// Terminated (Pulsar's `topics terminate`): no entry is ever appended again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub terminated: bool,
}

/// The persisted state of one durable cursor (subscription).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CursorInfo {
    /// Every entry at or before this position is acknowledged.
    pub mark_delete: Position,
    /// Acknowledged entries after `mark_delete`, as inclusive ranges `[ledger, first, last]`.
    #[serde(default)]
    pub individually_deleted: Vec<[i64; 3]>,
    /// Batch entries acknowledged in part (Pulsar's `batchedEntryDeletionIndexInfo`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batch_indexes: Vec<BatchAckInfo>,
    #[serde(default)]
    pub properties: BTreeMap<String, i64>,
}

/// One batch entry acknowledged in part: its messages still unacknowledged, as
/// [`crate::AckSet`] words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchAckInfo {
    pub position: Position,
    pub unacked: Vec<i64>,
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising these plain structs to JSON cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// `value` as stored under `compression`: JSON, compressed above its threshold.
pub fn encode_with<T: Serialize>(value: &T, compression: Compression) -> Vec<u8> {
    crate::compression::compress(encode(value), compression)
}

/// A stored value, plain or compressed (whatever this broker is configured to write).
pub fn decode<T: for<'de> Deserialize<'de>>(key: &str, raw: &[u8]) -> Result<T> {
    let bad = |detail: String| LedgerError::BadMetadata {
        key: key.to_string(),
        detail,
    };
    let json = crate::compression::decompress(raw).map_err(bad)?;
    serde_json::from_slice(&json).map_err(|e| bad(e.to_string()))
}

/// Turns a sorted set of positions into inclusive per-ledger ranges.
pub fn to_ranges(positions: impl IntoIterator<Item = Position>) -> Vec<[i64; 3]> {
    let mut out: Vec<[i64; 3]> = Vec::new();
    for p in positions {
        match out.last_mut() {
            Some(r) if r[0] == p.ledger_id && r[2] + 1 == p.entry_id => r[2] = p.entry_id,
            _ => out.push([p.ledger_id, p.entry_id, p.entry_id]),
        }
    }
    out
}

/// Expands ranges back into positions, refusing absurd ranges from damaged metadata.
pub fn from_ranges(key: &str, ranges: &[[i64; 3]]) -> Result<Vec<Position>> {
    let mut out = Vec::new();
    for r in ranges {
        let len = r[2]
            .checked_sub(r[1])
            .filter(|l| (0..10_000_000).contains(l));
        let Some(len) = len else {
            return Err(LedgerError::BadMetadata {
                key: key.to_string(),
                detail: format!("bad acknowledged range {r:?}"),
            });
        };
        out.extend((0..=len).map(|i| Position::new(r[0], r[1] + i)));
    }
    Ok(out)
}

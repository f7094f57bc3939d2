//! Ledger lists rebuilt from what the tier holds (`tierlog offload recover`): when a broker's
//! disk and metadata are lost, every offloaded ledger is still described by its index object
//! (ledger id, entry count, length, the managed ledger's name), so a new ledger list can name
//! them again and the topic serves them from the tier.
//!
//! A restored list only describes offloaded ledgers: complete offload contexts whose hot copies
//! are gone. Subscriptions are not restored (their cursors lived in the lost metadata): new ones
//! start where their clients say.

use std::sync::Arc;

use meta::{Expected, MetaError, MetadataStore};

use crate::error::Result;
use crate::ids::LedgerIdAllocator;
use crate::info::{LedgerInfo, ManagedLedgerInfo, OffloadContext, encode_with, ml_key};

/// What restoring one managed ledger's list did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restored {
    /// The list was written.
    Written,
    /// The managed ledger already has a list; it was left as it is.
    AlreadyListed,
}

impl OffloadContext {
    /// The context of a complete offload found in the tier, whose hot copy is gone.
    pub fn restored(uuid: &uuid::Uuid, location: &offload::Location, timestamp_ms: u64) -> Self {
        OffloadContext {
            complete: true,
            hot_deleted: true,
            timestamp_ms,
            ..OffloadContext::attempt(uuid, location)
        }
    }
}

impl LedgerInfo {
    /// A sealed ledger that exists only in the tier.
    pub fn offloaded(
        ledger_id: i64,
        entries: i64,
        size: i64,
        created_ms: u64,
        closed_ms: u64,
        offload: OffloadContext,
    ) -> Self {
        LedgerInfo {
            ledger_id,
            entries,
            size,
            timestamp: closed_ms,
            created_ms,
            offload: Some(offload),
            hot_tier_broker: None,
            hot_tier: crate::HotTier::Local,
        }
    }
}

/// Writes the ledger list of `name` from `ledgers` (any order; one per ledger id), unless the
/// managed ledger already has one. Ledger ids up to the largest restored one are never handed out
/// again. Crash window: the ids are reserved before the list is written, so a crash in between
/// leaves only unused ids, and running the restore again writes the list.
pub async fn restore_ledger_list(
    meta: Arc<dyn MetadataStore>,
    name: &str,
    mut ledgers: Vec<LedgerInfo>,
) -> Result<Restored> {
    ledgers.sort_by_key(|l| l.ledger_id);
    ledgers.dedup_by_key(|l| l.ledger_id);
    if let Some(last) = ledgers.last() {
        LedgerIdAllocator::new(Arc::clone(&meta))
            .reserve_through(last.ledger_id)
            .await?;
    }
    let info = ManagedLedgerInfo {
        ledgers,
        ..ManagedLedgerInfo::default()
    };
    match meta
        // A list rebuilt from a bucket can hold thousands of ledgers: stored as a broker
        // stores a large one by default (every broker reads it whatever its own setting).
        .put(
            &ml_key(name),
            encode_with(&info, crate::Compression::default()),
            Expected::Absent,
        )
        .await
    {
        Ok(_) => Ok(Restored::Written),
        Err(MetaError::Conflict { .. }) => Ok(Restored::AlreadyListed),
        Err(e) => Err(e.into()),
    }
}

/// Every offload attempt (UUID, ledger id) a ledger list in `meta` names, complete or not:
/// what orphan collection must keep.
pub async fn referenced_offloads(
    meta: &dyn MetadataStore,
) -> Result<std::collections::HashSet<(uuid::Uuid, i64)>> {
    let mut out = std::collections::HashSet::new();
    for (key, v) in meta.scan(crate::info::ML_PREFIX).await? {
        let info: ManagedLedgerInfo = crate::info::decode(&key, &v.value)?;
        for l in &info.ledgers {
            if let Some(uuid) = l.offload.as_ref().and_then(OffloadContext::uuid) {
                out.insert((uuid, l.ledger_id));
            }
        }
    }
    Ok(out)
}

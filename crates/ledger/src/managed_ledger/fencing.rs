//! A managed ledger in a cluster: the fencing check every metadata write carries, and the
//! refusal to serve ledgers whose hot copies are on another broker's disk.

use std::sync::atomic::Ordering;

use meta::Expected;

use super::ManagedLedger;
use crate::error::{LedgerError, Result};
use crate::info::ManagedLedgerInfo;

/// A precondition every metadata write of a managed ledger carries in its transaction: in a
/// cluster, the ownership key of the topic's bundle at the version this broker created it
/// (see the `cluster` crate). Once another broker owns the bundle, the check fails and the
/// managed ledger turns fenced: it writes nothing more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub key: String,
    pub version: u64,
}

/// Refuses to serve a managed ledger whose data this broker's disk does not hold: a ledger
/// written by another broker, not offloaded, and not empty (the open one may hold entries its
/// list does not count yet). Treating it as empty would hide its entries and write after
/// them.
pub(super) fn check_hot_copies_are_here(
    name: &str,
    info: &ManagedLedgerInfo,
    me: &str,
) -> Result<()> {
    let last = info.ledgers.last().map(|l| l.ledger_id);
    for l in &info.ledgers {
        let offloaded = l.offload.as_ref().is_some_and(|c| c.complete);
        if let Some(b) = &l.hot_tier_broker
            && b != me
            && !offloaded
            && (l.entries > 0 || Some(l.ledger_id) == last)
        {
            return Err(LedgerError::HotTierElsewhere {
                ledger: name.to_string(),
                ledger_id: l.ledger_id,
                broker: b.clone(),
            });
        }
    }
    Ok(())
}

impl ManagedLedger {
    /// Sets the fence of this broker's ownership (a new one after the bundle was taken again).
    pub fn set_fence(&self, fence: Option<Fence>) {
        let mut f = self.shared.fence.write().unwrap_or_else(|p| p.into_inner());
        if *f != fence {
            *f = fence;
            self.shared.fenced.store(false, Ordering::SeqCst);
        }
    }

    /// Whether a fencing check failed: another broker owns the topic now.
    pub fn is_fenced(&self) -> bool {
        self.shared.fenced.load(Ordering::SeqCst)
    }

    pub(super) fn refuse_if_fenced(&self) -> Result<()> {
        if self.is_fenced() {
            return Err(LedgerError::Fenced {
                ledger: self.shared.name.clone(),
            });
        }
        Ok(())
    }

    /// Commits `ops` with the fencing check in front; a failed check fences the managed
    /// ledger.
    pub(crate) async fn commit_fenced(&self, mut ops: Vec<meta::Op>) -> Result<u64> {
        self.refuse_if_fenced()?;
        let fence = self
            .shared
            .fence
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(f) = &fence {
            ops.insert(
                0,
                meta::Op::check(f.key.clone(), Expected::Version(f.version)),
            );
        }
        match self.shared.meta.commit(ops).await {
            Err(meta::MetaError::Conflict { key, .. })
                if fence.as_ref().is_some_and(|f| f.key == key) =>
            {
                self.shared.fenced.store(true, Ordering::SeqCst);
                tracing::warn!(ledger = %self.shared.name, "managed ledger fenced: its bundle has another owner");
                Err(LedgerError::Fenced {
                    ledger: self.shared.name.clone(),
                })
            }
            r => Ok(r?),
        }
    }
}

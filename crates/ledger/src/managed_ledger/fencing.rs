//! A managed ledger in a cluster: the fencing check every metadata write carries, and the
//! refusal to serve ledgers whose hot copies are on another broker's disk.

use std::sync::atomic::Ordering;

use super::ManagedLedger;
use crate::error::{LedgerError, Result};
use crate::info::ManagedLedgerInfo;

/// Every metadata write of a managed ledger carries its fence (in a cluster); once the check
/// fails the managed ledger turns fenced: it writes nothing more.
pub use meta::Fence;

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

    /// A fencing check failed (of a metadata write or of a WAL commit): from now on this
    /// managed ledger writes nothing.
    pub(super) fn fenced_now(&self) -> LedgerError {
        if !self.shared.fenced.swap(true, Ordering::SeqCst) {
            tracing::warn!(ledger = %self.shared.name, "managed ledger fenced: its bundle has another owner");
        }
        LedgerError::Fenced {
            ledger: self.shared.name.clone(),
        }
    }

    /// The fence this broker's metadata writes carry now.
    pub(super) fn current_fence(&self) -> Option<Fence> {
        self.shared
            .fence
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
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
        let fence = self.current_fence();
        if let Some(f) = &fence {
            ops.insert(0, f.check());
        }
        match self.shared.meta.commit(ops).await {
            Err(e) if fence.as_ref().is_some_and(|f| f.failed(&e)) => Err(self.fenced_now()),
            r => Ok(r?),
        }
    }
}

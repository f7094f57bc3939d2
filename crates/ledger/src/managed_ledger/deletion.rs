//! Deleting a managed ledger: everything it stored, in an order that survives a crash at any
//! point.
//!
//! 1. Appends stop and the ledger being written is sealed.
//! 2. The ledger list is marked `deleting` (compare-and-set). From here the managed ledger opens
//!    only for deletion, and whatever is left is deleted by the next [`ManagedLedger::delete`]
//!    (a repeated admin request, or [`crate::ManagedLedgerFactory::finish_deletions`] at start-up).
//! 3. The tier objects of every ledger with an offload context (complete or not), at the
//!    location recorded with each.
//! 4. The hot-tier files.
//! 5. The cursors and the ledger list, in one metadata transaction that holds only if the ledger
//!    list is still the version this deletion marked (no other broker took the topic over
//!    meanwhile). The list goes last, so nothing is ever left without a record of it; a topic
//!    with more cursors than one transaction may carry deletes the extra ones first, each batch
//!    under the same check.
//!
//! A step that fails stops the deletion with its error; repeating the deletion repeats only what
//! is left (every step deletes what exists and accepts what is already gone).

use meta::{Expected, Op};
use offload::OffloadError;

use super::ManagedLedger;
use crate::error::Result;
use crate::info;

impl ManagedLedger {
    /// Deletes the managed ledger and everything it stored (see the module documentation).
    /// Waits for a running offload to finish first.
    pub async fn delete(&self) -> Result<()> {
        let _offload = self.shared.offload_lock.lock().await;
        let mut st = self.shared.write.lock().await;
        st.closed = true;
        if let Some(w) = st.writer.take()
            && let Err(e) = w.seal().await
        {
            // Its entries are about to be deleted; nothing depends on the seal.
            tracing::debug!(ledger = %self.shared.name, error = %e, "seal before deletion failed");
        }
        if !st.info.deleting {
            let mut next = st.info.clone();
            next.deleting = true;
            self.persist_info(&mut st, next).await?;
            tracing::info!(ledger = %self.shared.name, "deleting managed ledger");
        }
        let ledgers = st.info.ledgers.clone();
        let version = st.info_version;
        drop(st);
        // Read handles of offloaded ledgers hold clients of objects about to go.
        self.shared.tiered.drain();

        for l in &ledgers {
            if let Some(ctx) = &l.offload {
                match self.delete_offloaded(l.ledger_id, ctx).await {
                    // The whole bucket is gone: so are the objects.
                    Ok(())
                    | Err(crate::LedgerError::Offload(OffloadError::NoSuchBucket { .. })) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        for l in &ledgers {
            self.try_delete_hot_copy(l).await?;
        }
        let slots: Vec<_> = std::mem::take(
            &mut *self
                .shared
                .cursors
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        )
        .into_values()
        .collect();
        for slot in slots {
            slot.retire().await;
        }
        let meta = &self.shared.meta;
        let ml_key = info::ml_key(&self.shared.name);
        let mut cursors = meta.list(&info::cursor_prefix(&self.shared.name)).await?;
        loop {
            // One op is the list's guard, one the fencing check.
            let batch: Vec<_> = cursors
                .drain(..cursors.len().min(meta::MAX_TXN_OPS - 2))
                .map(|key| Op::delete(key, Expected::Any))
                .collect();
            let last = cursors.is_empty();
            let guard = if last {
                Op::delete(ml_key.clone(), Expected::Version(version))
            } else {
                Op::check(ml_key.clone(), Expected::Version(version))
            };
            self.commit_fenced(batch.into_iter().chain([guard]).collect())
                .await?;
            if last {
                break;
            }
        }
        tracing::info!(ledger = %self.shared.name, ledgers = ledgers.len(), "deleted managed ledger");
        Ok(())
    }
}

//! Retention: removing the ledgers no cursor and no retention rule needs any more, and the hot
//! copies of offloaded ledgers once their deletion lag has passed.
//!
//! Crash windows: the ledger list is persisted first, then hot copies and offloaded objects are
//! deleted. A crash in between leaves hot-tier files no list names (deleted at the next start-up,
//! `ManagedLedgerFactory::collect_garbage`), WAL extents no ledger needs (deleted at start-up
//! and every 10 minutes, `ManagedLedgerFactory::collect_stale_extents`) or offloaded objects no
//! list names (the broker's periodic orphan pass, `tierlog offload gc`); never a listed ledger
//! whose data is gone.

use super::ManagedLedger;
use crate::config::HotTier;
use crate::error::Result;
use crate::info::LedgerInfo;
use crate::retention::{RetentionPolicy, ledgers_to_trim};

impl ManagedLedger {
    /// Removes the ledgers retention no longer needs (never one a cursor still needs, never the
    /// ledger being written) from the list, then deletes their files. Returns their ids.
    pub async fn trim(&self) -> Result<Vec<i64>> {
        let mut st = self.shared.write.lock().await;
        if st.closed {
            return Ok(Vec::new());
        }
        let slowest = self.slowest_mark_delete();
        let c = self.config();
        let policy = RetentionPolicy {
            time_ms: c.retention_time_ms,
            size_bytes: c.retention_size_bytes,
        };
        let now = self.shared.clock.now_ms();
        let uploading = self
            .shared
            .offloading
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .first()
            .copied();
        // A ledger being offloaded is not removed underneath its upload (nor anything after it).
        let ids: Vec<i64> = ledgers_to_trim(
            &st.info.ledgers,
            st.current_size as i64,
            slowest,
            policy,
            now,
        )
        .into_iter()
        .take_while(|id| Some(*id) != uploading)
        .collect();
        // Hot copies of offloaded ledgers whose deletion lag has passed. An object-tier
        // ledger's hot copy (WAL extents) goes as soon as its rewrite is complete: both copies
        // are in object storage, and its extent keys weigh on the metadata store.
        let lagged: Vec<i64> = st
            .info
            .ledgers
            .iter()
            .filter(|l| !ids.contains(&l.ledger_id))
            .filter(|l| {
                let lag = match l.hot_tier {
                    HotTier::Object => Some(0),
                    HotTier::Local => c.offload_deletion_lag_ms,
                };
                l.offload.as_ref().is_some_and(|o| {
                    o.complete
                        && !o.hot_deleted
                        && lag
                            .is_some_and(|lag| lag == 0 || now.saturating_sub(o.timestamp_ms) > lag)
                })
            })
            .map(|l| l.ledger_id)
            .collect();
        if ids.is_empty() && lagged.is_empty() {
            return Ok(ids);
        }
        let mut next = st.info.clone();
        let removed: Vec<LedgerInfo> = next
            .ledgers
            .iter()
            .filter(|l| ids.contains(&l.ledger_id))
            .cloned()
            .collect();
        next.ledgers.retain(|l| !ids.contains(&l.ledger_id));
        for l in next
            .ledgers
            .iter_mut()
            .filter(|l| lagged.contains(&l.ledger_id))
        {
            if let Some(o) = l.offload.as_mut() {
                o.hot_deleted = true;
            }
        }
        let hot_gone: Vec<LedgerInfo> = st
            .info
            .ledgers
            .iter()
            .filter(|l| ids.contains(&l.ledger_id) || lagged.contains(&l.ledger_id))
            .cloned()
            .collect();
        self.persist_info(&mut st, next).await?;
        drop(st);
        for l in &hot_gone {
            self.delete_hot_copy(l).await;
        }
        for l in &removed {
            if let Some(ctx) = &l.offload {
                self.delete_offloaded_logged(l.ledger_id, ctx, "trimmed by retention")
                    .await;
            }
        }
        if !ids.is_empty() {
            tracing::info!(ledger = %self.shared.name, ?ids, "retention removed ledgers");
        }
        if !lagged.is_empty() {
            tracing::info!(ledger = %self.shared.name, ?lagged, "deleted hot copies of offloaded ledgers");
        }
        Ok(ids)
    }
}

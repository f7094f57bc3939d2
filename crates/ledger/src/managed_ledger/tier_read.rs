//! Reads of offloaded ledgers: the tier's read handle per ledger (opened once, cached), and what
//! happens when the tier fails — the read goes to the hot copy while there is one, the failure
//! is recorded for stats and logged once per episode, and the tier is tried again after
//! [`TIER_RETRY_MS`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use offload::OffloadedLedger;

use super::counters::IoCounters;
use super::{HotReader, ManagedLedger, TierReadFailure};
use crate::error::{LedgerError, Result};
use crate::info::LedgerInfo;

/// How long reads of an offloaded ledger go to its hot copy after the tier failed to serve it,
/// before the tier is tried again (each try may wait the object store's timeouts).
const TIER_RETRY_MS: u64 = 30_000;

impl ManagedLedger {
    /// The tier's read handle for an offloaded ledger (opened once, then cached; opening one
    /// ledger's handle never waits for another's).
    pub(super) async fn tiered_handle(&self, info: &LedgerInfo) -> Result<Arc<OffloadedLedger>> {
        let bad = |detail: String| LedgerError::BadMetadata {
            key: crate::info::ml_key(&self.shared.name),
            detail,
        };
        let ctx = info
            .offload
            .as_ref()
            .ok_or_else(|| bad(format!("ledger {} has no offload context", info.ledger_id)))?;
        let uuid = ctx.uuid().ok_or_else(|| {
            bad(format!(
                "offload uuid {:?} of ledger {}",
                ctx.uuid, info.ledger_id
            ))
        })?;
        self.shared
            .tiered
            .get_or_try_init(info.ledger_id, || async {
                let location = ctx.location()?;
                let started = std::time::Instant::now();
                let handle = self.tier().read(info.ledger_id, uuid, &location).await?;
                self.shared.io.tier_open_latency.record(started.elapsed());
                Ok(Arc::new(handle))
            })
            .await
    }

    /// Entries `start..=last` of an offloaded ledger from the tier. When the tier fails and the
    /// hot copy still exists, they come from the hot copy instead; either way the failure is
    /// recorded for stats and metrics and logged once per episode, not once per read.
    pub(super) async fn read_offloaded(
        &self,
        info: &LedgerInfo,
        start: i64,
        last: i64,
        budget: usize,
    ) -> Result<Vec<Bytes>> {
        let id = info.ledger_id;
        // While the tier is failing for this ledger and its hot copy serves, reads go straight
        // to the hot copy; the tier is tried again once TIER_RETRY_MS passed.
        let hot_meanwhile = self.tier_failures().get(&id).is_some_and(|f| {
            f.served_hot && self.shared.clock.now_ms().saturating_sub(f.last_ms) < TIER_RETRY_MS
        });
        if hot_meanwhile {
            match self
                .read_hot(info, start, last, budget, HotReader::Dispatch)
                .await
            {
                Err(e) if Self::is_missing_hot_copy(&e) => {}
                other => return other,
            }
        }
        let tier = match self.tiered_handle(info).await {
            Ok(handle) => {
                let started = std::time::Instant::now();
                let data = handle.read_up_to(start, last, budget).await;
                if data.is_ok() {
                    self.shared.io.tier_read_latency.record(started.elapsed());
                }
                data.map_err(Into::into)
            }
            Err(e) => Err(e),
        };
        let e = match tier {
            Ok(data) => {
                IoCounters::add(&self.shared.io.tier_read_entries, data.len() as u64);
                IoCounters::add(
                    &self.shared.io.tier_read_bytes,
                    data.iter().map(|d| d.len() as u64).sum(),
                );
                if self.tier_failures().remove(&id).is_some() {
                    tracing::info!(ledger = %self.shared.name, ledger_id = id, "the tier serves the offloaded ledger again");
                }
                return Ok(data);
            }
            Err(e) => e,
        };
        // A handle whose objects vanished or changed is reopened by the next attempt.
        self.shared.tiered.remove(&id);
        self.shared.tier_read_errors.fetch_add(1, Ordering::Relaxed);
        let hot = if info.offload.as_ref().is_some_and(|o| o.hot_deleted) {
            None
        } else {
            match self
                .read_hot(info, start, last, budget, HotReader::Dispatch)
                .await
            {
                Ok(data) => Some(data),
                Err(e) if Self::is_missing_hot_copy(&e) => None,
                Err(hot_err) => {
                    tracing::debug!(ledger = %self.shared.name, ledger_id = id, error = %hot_err, "hot copy unreadable too");
                    None
                }
            }
        };
        self.note_tier_failure(id, &e, hot.is_some());
        match hot {
            Some(data) => Ok(data),
            None => Err(LedgerError::TierUnavailable {
                ledger_id: id,
                detail: e.to_string(),
            }),
        }
    }

    fn note_tier_failure(&self, ledger_id: i64, e: &LedgerError, served_hot: bool) {
        let now = self.shared.clock.now_ms();
        let mut failures = self.tier_failures();
        let f = failures
            .entry(ledger_id)
            .or_insert_with(|| TierReadFailure {
                error: String::new(),
                since_ms: now,
                last_ms: now,
                count: 0,
                served_hot,
            });
        let first = f.count == 0;
        let changed = f.served_hot != served_hot;
        f.error = e.to_string();
        f.last_ms = now;
        f.count += 1;
        f.served_hot = served_hot;
        if first || changed {
            if served_hot {
                tracing::warn!(ledger = %self.shared.name, ledger_id, error = %e, "the tier cannot serve an offloaded ledger: reading its hot copy");
            } else {
                tracing::warn!(ledger = %self.shared.name, ledger_id, error = %e, "the tier cannot serve an offloaded ledger and its hot copy is gone: reads wait and retry");
            }
        } else {
            tracing::debug!(ledger = %self.shared.name, ledger_id, error = %e, count = f.count, "tier read failed again");
        }
    }

    pub(super) fn tier_failures(
        &self,
    ) -> std::sync::MutexGuard<'_, BTreeMap<i64, TierReadFailure>> {
        self.shared
            .tier_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Whether reads of this ledger go to the tier.
    pub(super) fn reads_from_tier(&self, info: &LedgerInfo) -> bool {
        match &info.offload {
            Some(c) if c.complete => c.hot_deleted || self.config().read_tiered_first,
            _ => false,
        }
    }
}

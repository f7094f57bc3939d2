//! Tiered storage in the managed ledger: offloading sealed ledgers, reading them back from the
//! tier, deleting hot copies after the deletion lag, and cleaning up failed attempts.
//!
//! Offload context state machine of a ledger (persisted in the ledger list):
//! ```text
//! none ──prepare (uuid persisted BEFORE upload)──► {uuid, !complete}
//!   {uuid, !complete} ──data + index written, uuid unchanged──► {uuid, complete, timestamp}
//!   {uuid, !complete} at open or next attempt ──► objects of uuid deleted, context cleared / new uuid
//!   {complete, !hot_deleted} ──deletion lag elapsed (trim)──► {hot_deleted}, hot file deleted
//!   any ──ledger trimmed by retention──► ledger removed, objects of uuid deleted
//! ```
//! Crash windows: before or during the upload the context says incomplete, so the ledger is still
//! read from the hot tier and the next open deletes whatever objects the attempt left; after the
//! index but before the completion is persisted, the same happens (the objects are redone by the
//! next offload). A ledger is marked complete only after both objects exist.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use hot_tier::LedgerStore;
use offload::{LedgerOffloader, LedgerSource, OffloadedLedger, TierReader};
use uuid::Uuid;

use super::ManagedLedger;
use crate::error::{LedgerError, Result};
use crate::info::{LedgerInfo, OffloadContext};
use crate::position::Position;

/// Pulsar's `OffloadProcessStatus` of the last offload started through
/// [`ManagedLedger::offload_in_background`] (since the managed ledger was opened).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffloadStatus {
    NotRun,
    Running,
    /// Done; the first position not offloaded.
    Success(Position),
    /// Failed; what went wrong.
    Error(String),
}

/// A sealed hot-tier ledger as the offloader's source.
pub(super) struct HotLedgerSource {
    pub store: LedgerStore,
    pub info: LedgerInfo,
}

#[async_trait::async_trait]
impl LedgerSource for HotLedgerSource {
    fn ledger_id(&self) -> i64 {
        self.info.ledger_id
    }
    fn last_entry_id(&self) -> i64 {
        self.info.entries - 1
    }
    fn length(&self) -> u64 {
        self.info.size.max(0) as u64
    }
    fn created_ms(&self) -> u64 {
        self.info.created_ms
    }
    async fn read(&self, first: i64, last: i64, max_bytes: usize) -> Result<Vec<Bytes>, String> {
        let (store, id) = (self.store.clone(), self.info.ledger_id as u64);
        tokio::task::spawn_blocking(move || store.read(id, first as u64, last as u64, max_bytes))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }
}

/// Ledgers automatic offload should take, oldest first (Pulsar's rule): walking closed ledgers
/// newest to oldest and summing their sizes (offloaded ones included), a ledger not yet offloaded
/// is taken once the sum exceeds `threshold_bytes`, or once it was closed at least
/// `threshold_seconds` ago. Negative thresholds are off.
pub fn auto_offload_candidates(
    ledgers: &[LedgerInfo],
    threshold_bytes: i64,
    threshold_seconds: i64,
    now_ms: u64,
) -> Vec<i64> {
    if threshold_bytes < 0 && threshold_seconds < 0 {
        return Vec::new();
    }
    let mut summed = 0i64;
    let mut out = Vec::new();
    for l in ledgers.iter().rev().filter(|l| l.timestamp != 0) {
        summed += l.size;
        if l.offload.as_ref().is_some_and(|o| o.complete) || l.entries == 0 {
            continue;
        }
        let by_size = threshold_bytes >= 0 && summed > threshold_bytes;
        let by_age = threshold_seconds >= 0
            && now_ms.saturating_sub(l.timestamp)
                >= (threshold_seconds as u64).saturating_mul(1000);
        if by_size || by_age {
            out.push(l.ledger_id);
        }
    }
    out.reverse();
    out
}

impl ManagedLedger {
    /// Starts automatic offload in the background if the thresholds select any ledger (called
    /// after a rollover). Waits its turn if an offload is already running.
    pub fn maybe_offload_in_background(&self) {
        let c = self.config();
        if self.current_offloader().is_none()
            || (c.offload_threshold_bytes < 0 && c.offload_threshold_seconds < 0)
        {
            return;
        }
        let ml = self.clone();
        tokio::spawn(async move {
            if let Err(e) = ml.auto_offload().await {
                tracing::warn!(ledger = %ml.shared.name, error = %e, "automatic offload failed");
            }
        });
    }

    /// Offloads the ledgers the thresholds select, oldest first.
    pub async fn auto_offload(&self) -> Result<Vec<i64>> {
        let offloader = self.offloader()?;
        let _running = self.shared.offload_lock.lock().await;
        let c = self.config();
        let ids = {
            let st = self.shared.write.lock().await;
            auto_offload_candidates(
                &st.info.ledgers,
                c.offload_threshold_bytes,
                c.offload_threshold_seconds,
                self.shared.clock.now_ms(),
            )
        };
        let mut done = Vec::new();
        for id in ids {
            self.offload_one(&offloader, id).await?;
            done.push(id);
        }
        Ok(done)
    }

    /// What reads and deletes offloaded ledgers: the offloader if there is one (its credentials
    /// and read sizes), else the factory's reader. Either goes to each ledger's recorded location.
    fn tier(&self) -> Arc<dyn TierReader> {
        match self.current_offloader() {
            Some(o) => o,
            None => Arc::clone(&self.shared.reader),
        }
    }

    fn offloader(&self) -> Result<Arc<dyn LedgerOffloader>> {
        self.current_offloader()
            .ok_or(LedgerError::OffloadNotConfigured)
    }

    fn current_offloader(&self) -> Option<Arc<dyn LedgerOffloader>> {
        self.shared
            .offloader
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the offloader new offloads use (an offload policy changed). Ledgers offloaded
    /// before are still read and deleted at the location recorded with each.
    pub fn set_offloader(&self, offloader: Option<Arc<dyn LedgerOffloader>>) {
        *self
            .shared
            .offloader
            .write()
            .unwrap_or_else(|p| p.into_inner()) = offloader;
    }

    /// Deletes the objects of an offload attempt at its recorded location.
    pub(super) async fn delete_offloaded(
        &self,
        ledger_id: i64,
        ctx: &OffloadContext,
    ) -> Result<()> {
        let Some(uuid) = ctx.uuid() else {
            return Ok(()); // a placeholder context names no objects
        };
        self.shared.tiered.remove(&ledger_id);
        self.tier()
            .delete(ledger_id, uuid, &ctx.location()?)
            .await?;
        Ok(())
    }

    /// [`delete_offloaded`](Self::delete_offloaded), logging (not failing) on error: an object
    /// no ledger list references is garbage a later pass may collect.
    pub(super) async fn delete_offloaded_logged(
        &self,
        ledger_id: i64,
        ctx: &OffloadContext,
        why: &str,
    ) {
        if let Err(e) = self.delete_offloaded(ledger_id, ctx).await {
            tracing::warn!(ledger = %self.shared.name, ledger_id, uuid = %ctx.uuid, why, error = %e, "could not delete offloaded objects");
        }
    }

    /// At open: attempts that never completed are cleaned up (their objects deleted, the context
    /// cleared) so the ledger is read from the hot tier and offloaded again later.
    pub(super) async fn clean_incomplete_offloads(&self) -> Result<()> {
        let mut st = self.shared.write.lock().await;
        let incomplete: Vec<(i64, OffloadContext)> = st
            .info
            .ledgers
            .iter()
            .filter_map(|l| {
                l.offload
                    .as_ref()
                    .filter(|c| !c.complete)
                    .map(|c| (l.ledger_id, c.clone()))
            })
            .collect();
        if incomplete.is_empty() {
            return Ok(());
        }
        let mut next = st.info.clone();
        for l in &mut next.ledgers {
            if l.offload.as_ref().is_some_and(|c| !c.complete) {
                l.offload = None;
            }
        }
        self.persist_info(&mut st, next).await?;
        drop(st);
        for (id, ctx) in incomplete {
            tracing::info!(ledger = %self.shared.name, ledger_id = id, uuid = %ctx.uuid, "cleaning up an incomplete offload");
            self.delete_offloaded_logged(id, &ctx, "incomplete offload")
                .await;
        }
        Ok(())
    }

    /// Offloads every sealed, non-empty, not yet offloaded ledger before `limit`, oldest first, one
    /// at a time. Returns the first position not offloaded (Pulsar's `firstUnoffloadedMessage`), or
    /// the first error. Only one offload runs per managed ledger at a time.
    pub async fn offload_prefix(&self, limit: Position) -> Result<Position> {
        let offloader = self.offloader()?;
        let _running = self
            .shared
            .offload_lock
            .try_lock()
            .map_err(|_| LedgerError::OffloadInProgress)?;
        self.offload_prefix_locked(&offloader, limit).await
    }

    /// [`offload_prefix`](Self::offload_prefix) in a background task, its outcome kept for
    /// [`offload_status`](Self::offload_status) (Pulsar's `PUT …/offload` and `GET …/offload`).
    pub fn offload_in_background(&self, limit: Position) -> Result<()> {
        let offloader = self.offloader()?;
        let running = Arc::clone(&self.shared.offload_lock)
            .try_lock_owned()
            .map_err(|_| LedgerError::OffloadInProgress)?;
        self.set_offload_status(OffloadStatus::Running);
        let ml = self.clone();
        tokio::spawn(async move {
            let status = match ml.offload_prefix_locked(&offloader, limit).await {
                Ok(p) => OffloadStatus::Success(p),
                Err(e) => OffloadStatus::Error(e.to_string()),
            };
            drop(running);
            ml.set_offload_status(status);
        });
        Ok(())
    }

    /// The outcome of the last [`offload_in_background`](Self::offload_in_background).
    pub fn offload_status(&self) -> OffloadStatus {
        self.shared
            .last_offload
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_offload_status(&self, status: OffloadStatus) {
        *self
            .shared
            .last_offload
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = status;
    }

    async fn offload_prefix_locked(
        &self,
        offloader: &Arc<dyn LedgerOffloader>,
        limit: Position,
    ) -> Result<Position> {
        let (selected, first_retained) = {
            let st = self.shared.write.lock().await;
            let ledgers = &st.info.ledgers;
            let current = ledgers.last().map(|l| l.ledger_id).unwrap_or(-1);
            let mut selected = Vec::new();
            let mut first_retained = current;
            for l in ledgers.iter().filter(|l| l.ledger_id != current) {
                if l.ledger_id >= limit.ledger_id {
                    first_retained = l.ledger_id;
                    break;
                }
                let done = l.offload.as_ref().is_some_and(|c| c.complete);
                if !done && l.size > 0 && l.entries > 0 {
                    selected.push(l.ledger_id);
                }
            }
            (selected, first_retained)
        };
        let mut first_unoffloaded = Position::new(first_retained, 0);
        let mut first_error = None;
        for id in selected {
            if let Err(e) = self.offload_one(offloader, id).await {
                tracing::warn!(ledger = %self.shared.name, ledger_id = id, error = %e, "offload of ledger failed");
                first_unoffloaded = first_unoffloaded.min(Position::new(id, 0));
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(first_unoffloaded),
        }
    }

    async fn offload_one(
        &self,
        offloader: &Arc<dyn LedgerOffloader>,
        ledger_id: i64,
    ) -> Result<()> {
        let uuid = Uuid::new_v4();
        let attempt = OffloadContext::attempt(&uuid, offloader.location());
        // Prepare: the attempt's uuid and location are persisted before anything is uploaded.
        let (info, previous) = {
            let mut st = self.shared.write.lock().await;
            let Some(pos) = st
                .info
                .ledgers
                .iter()
                .position(|l| l.ledger_id == ledger_id)
            else {
                return Ok(()); // trimmed meanwhile: nothing to do
            };
            let mut next = st.info.clone();
            let previous = next.ledgers[pos].offload.replace(attempt.clone());
            let info = next.ledgers[pos].clone();
            self.persist_info(&mut st, next).await?;
            *self
                .shared
                .offloading
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(ledger_id);
            (info, previous)
        };
        if let Some(prev) = previous.filter(|p| !p.uuid.is_empty()) {
            self.delete_offloaded_logged(ledger_id, &prev, "previous failed offload")
                .await;
        }
        let source = HotLedgerSource {
            store: self.shared.store.clone(),
            info,
        };
        let extra = BTreeMap::from([(
            offload::keys::MANAGED_LEDGER_NAME.to_string(),
            self.shared.name.clone(),
        )]);
        let uploaded = offloader.offload(&source, uuid, &extra).await;
        *self
            .shared
            .offloading
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = None;
        uploaded?;
        // Complete: only if the ledger still carries this attempt's uuid.
        let mut st = self.shared.write.lock().await;
        let mut next = st.info.clone();
        let ours = next
            .ledgers
            .iter_mut()
            .find(|l| l.ledger_id == ledger_id)
            .and_then(|l| l.offload.as_mut())
            .filter(|c| c.uuid == uuid.hyphenated().to_string());
        match ours {
            Some(ctx) => {
                ctx.complete = true;
                ctx.timestamp_ms = self.shared.clock.now_ms();
                self.persist_info(&mut st, next).await?;
                Ok(())
            }
            None => {
                drop(st);
                self.delete_offloaded_logged(ledger_id, &attempt, "ledger changed during offload")
                    .await;
                Ok(())
            }
        }
    }

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
                let handle = self.tier().read(info.ledger_id, uuid, &location).await?;
                Ok(Arc::new(handle))
            })
            .await
    }

    /// Whether reads of this ledger go to the tier.
    pub(super) fn reads_from_tier(&self, info: &LedgerInfo) -> bool {
        match &info.offload {
            Some(c) if c.complete => c.hot_deleted || self.config().read_tiered_first,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed(id: i64, size: i64, ts: u64, offloaded: bool) -> LedgerInfo {
        LedgerInfo {
            ledger_id: id,
            entries: 10,
            size,
            timestamp: ts,
            created_ms: 0,
            offload: offloaded.then(|| OffloadContext {
                complete: true,
                ..Default::default()
            }),
        }
    }

    #[test]
    fn thresholds_select_like_pulsar() {
        let ledgers = vec![
            closed(1, 100, 1000, true),
            closed(2, 100, 2000, false),
            closed(3, 100, 3000, false),
            LedgerInfo::new_open(4, 0),
        ];
        assert!(auto_offload_candidates(&ledgers, -1, -1, 10_000).is_empty());
        assert_eq!(auto_offload_candidates(&ledgers, 0, -1, 10_000), vec![2, 3]);
        // Keep 150 bytes hot: ledger 3 (100) stays, ledger 2 (sum 200) goes.
        assert_eq!(auto_offload_candidates(&ledgers, 150, -1, 10_000), vec![2]);
        assert!(auto_offload_candidates(&ledgers, 1000, -1, 10_000).is_empty());
        // By age, at least 7 s: at 9.999 s ledger 2 (closed at 2 s) qualifies, ledger 3 not yet;
        // at 10 s both do (the bound is inclusive, as in Pulsar).
        assert_eq!(auto_offload_candidates(&ledgers, -1, 7, 9_999), vec![2]);
        assert_eq!(auto_offload_candidates(&ledgers, -1, 7, 10_000), vec![2, 3]);
    }
}

//! Tiered storage in the managed ledger: offloading sealed ledgers, deleting hot copies after the
//! deletion lag, cleaning up failed attempts, and rewriting object-tier ledgers into offload
//! objects once sealed. Reads from the tier are in [`super::tier_read`].
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
use offload::{LedgerOffloader, LedgerSource, TierReader};
use uuid::Uuid;

use super::counters::IoCounters;
use super::{HotReader, ManagedLedger};
use crate::error::{LedgerError, Result};
use crate::info::{LedgerInfo, OffloadContext};
use crate::position::Position;

/// Pulsar's `OffloadProcessStatus` of the last offload started through
/// [`ManagedLedger::offload_in_background`] (since the managed ledger was opened).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffloadStatus {
    NotRun,
    Running(OffloadProgress),
    /// Done; the first position not offloaded.
    Success(Position),
    /// Failed; what went wrong.
    Error(String),
}

/// How far a running offload has got: ledgers are offloaded one at a time, oldest first, and a
/// failed ledger does not stop the ones after it (as Pulsar's offload loop).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffloadProgress {
    /// Ledgers this offload set out to offload.
    pub ledgers_total: u64,
    pub ledgers_offloaded: u64,
    pub ledgers_failed: u64,
    /// The ledger being uploaded now.
    pub current_ledger: Option<i64>,
    /// The latest per-ledger failure, naming the ledger.
    pub last_error: Option<String>,
}

impl OffloadProgress {
    /// Ledgers neither offloaded nor failed yet (the current one included).
    pub fn ledgers_remaining(&self) -> u64 {
        self.ledgers_total
            .saturating_sub(self.ledgers_offloaded + self.ledgers_failed)
    }
}

/// A sealed ledger's hot copy (either tier) as the offloader's source.
pub(super) struct HotLedgerSource {
    pub ml: ManagedLedger,
    pub info: LedgerInfo,
    /// Where its reads run (`LedgerOffloader::background`).
    pub background: Option<tokio::runtime::Handle>,
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
        let started = std::time::Instant::now();
        let data = self
            .ml
            .read_hot(
                &self.info,
                first,
                last,
                max_bytes,
                HotReader::Offload(self.background.clone()),
            )
            .await
            .map_err(|e| e.to_string())?;
        self.ml
            .shared
            .io
            .offload_source_read_latency
            .record(started.elapsed());
        Ok(data)
    }
}

/// Sealed object-tier ledgers whose rewrite into the offload format is not complete yet.
fn object_ledgers_to_rewrite(ledgers: &[LedgerInfo]) -> Vec<i64> {
    ledgers
        .iter()
        .filter(|l| l.hot_tier == crate::HotTier::Object && l.timestamp != 0 && l.entries > 0)
        .filter(|l| !l.offload.as_ref().is_some_and(|o| o.complete))
        .map(|l| l.ledger_id)
        .collect()
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

    /// Rewrites sealed object-tier ledgers into the offload format, oldest first, in the
    /// background (called after a rollover and at open), then drops their WAL extents (see
    /// [`trim`](Self::trim)). From then on they are ordinary offloaded ledgers. A failed
    /// rewrite is retried at the next rollover or open; meanwhile the WAL serves the ledger.
    pub fn rewrite_in_background(&self) {
        let pending = object_ledgers_to_rewrite(&self.view().ledgers);
        if pending.is_empty() {
            return;
        }
        let Some(offloader) = self.current_offloader() else {
            tracing::warn!(ledger = %self.shared.name, ?pending, "object-tier ledgers wait for their rewrite: no offload driver is configured");
            return;
        };
        let ml = self.clone();
        tokio::spawn(async move {
            let running = ml.shared.offload_lock.lock().await;
            let pending = object_ledgers_to_rewrite(&ml.view().ledgers);
            for id in pending {
                if let Err(e) = ml.offload_one(&offloader, id).await {
                    tracing::warn!(ledger = %ml.shared.name, ledger_id = id, error = %e, "rewriting an object-tier ledger failed (retried at the next rollover)");
                    break;
                }
                tracing::debug!(ledger = %ml.shared.name, ledger_id = id, "object-tier ledger rewritten into the offload format");
            }
            drop(running);
            if let Err(e) = ml.trim().await {
                tracing::warn!(ledger = %ml.shared.name, error = %e, "trim after a rewrite failed");
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
        self.offload_ledgers(&offloader, ids.clone(), i64::MAX, &mut |_| {})
            .await?;
        Ok(ids)
    }

    /// What reads and deletes offloaded ledgers: the offloader if there is one (its credentials
    /// and read sizes), else the factory's reader. Either goes to each ledger's recorded location.
    pub(super) fn tier(&self) -> Arc<dyn TierReader> {
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
        let deleted: Result<()> = match ctx.location() {
            Ok(location) => self
                .tier()
                .delete(ledger_id, uuid, &location)
                .await
                .map_err(LedgerError::from),
            Err(e) => Err(LedgerError::from(e)),
        };
        let io = &self.shared.io;
        match &deleted {
            Ok(()) => IoCounters::add(&io.offload_deletes_ok, 1),
            Err(_) => IoCounters::add(&io.offload_deletes_failed, 1),
        }
        deleted
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
        self.offload_prefix_locked(&offloader, limit, &mut |_| {})
            .await
    }

    /// [`offload_prefix`](Self::offload_prefix) in a background task, its outcome kept for
    /// [`offload_status`](Self::offload_status) (Pulsar's `PUT …/offload` and `GET …/offload`).
    pub fn offload_in_background(&self, limit: Position) -> Result<()> {
        let offloader = self.offloader()?;
        let running = Arc::clone(&self.shared.offload_lock)
            .try_lock_owned()
            .map_err(|_| LedgerError::OffloadInProgress)?;
        self.set_offload_status(OffloadStatus::Running(OffloadProgress::default()));
        let ml = self.clone();
        tokio::spawn(async move {
            let mut report =
                |p: &OffloadProgress| ml.set_offload_status(OffloadStatus::Running(p.clone()));
            let outcome = ml
                .offload_prefix_locked(&offloader, limit, &mut report)
                .await;
            let status = match outcome {
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

    /// Offloads the selected ledgers, telling `progress` before and after each one.
    async fn offload_prefix_locked(
        &self,
        offloader: &Arc<dyn LedgerOffloader>,
        limit: Position,
        progress: &mut (dyn FnMut(&OffloadProgress) + Send),
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
        self.offload_ledgers(offloader, selected, first_retained, progress)
            .await
    }

    /// Offloads `selected` (oldest first), several at once, telling `progress` as each starts
    /// and ends. Returns the first position not offloaded: that of the oldest failed ledger, else
    /// the start of `first_retained`; or the first error.
    async fn offload_ledgers(
        &self,
        offloader: &Arc<dyn LedgerOffloader>,
        selected: Vec<i64>,
        first_retained: i64,
        progress: &mut (dyn FnMut(&OffloadProgress) + Send),
    ) -> Result<Position> {
        let mut first_unoffloaded = Position::new(first_retained, 0);
        let mut first_error = None;
        let mut state = OffloadProgress {
            ledgers_total: selected.len() as u64,
            ..OffloadProgress::default()
        };
        // Up to the offloader's number of ledgers at once (the broker-wide budget decides how
        // many of all topics' uploads really run, and how many blocks they hold).
        let parallel = offloader.max_parallel_ledgers().max(1);
        let mut waiting = selected.into_iter();
        let mut running = tokio::task::JoinSet::new();
        let mut in_flight = std::collections::BTreeSet::new();
        loop {
            while running.len() < parallel {
                let Some(id) = waiting.next() else { break };
                let (ml, offloader) = (self.clone(), Arc::clone(offloader));
                running.spawn(async move {
                    let started = std::time::Instant::now();
                    let result = ml.offload_one(&offloader, id).await;
                    (id, result, started.elapsed())
                });
                in_flight.insert(id);
                state.current_ledger = in_flight.first().copied();
                progress(&state);
            }
            let Some(joined) = running.join_next().await else {
                break;
            };
            let (id, result) = match joined {
                Ok((id, Ok(()), took)) => {
                    self.shared.io.offload_latency.record(took);
                    (id, Ok(()))
                }
                Ok((id, Err(e), _)) => (id, Err(e)),
                // The task panicked: which ledger is unknown, the first in flight is blamed so
                // the returned position does not pass it.
                Err(e) => (
                    in_flight.first().copied().unwrap_or(first_retained),
                    Err(LedgerError::Task(format!("offload task: {e}"))),
                ),
            };
            in_flight.remove(&id);
            match result {
                Ok(()) => state.ledgers_offloaded += 1,
                Err(e) => {
                    IoCounters::add(&self.shared.io.offload_errors, 1);
                    tracing::warn!(ledger = %self.shared.name, ledger_id = id, error = %e, "offload of ledger failed");
                    state.ledgers_failed += 1;
                    state.last_error = Some(format!("ledger {id}: {e}"));
                    first_unoffloaded = first_unoffloaded.min(Position::new(id, 0));
                    first_error.get_or_insert(e);
                }
            }
            state.current_ledger = in_flight.first().copied();
            progress(&state);
        }
        state.current_ledger = None;
        progress(&state);
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
            self.shared
                .offloading
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(ledger_id);
            (info, previous)
        };
        if let Some(prev) = previous.filter(|p| !p.uuid.is_empty()) {
            self.delete_offloaded_logged(ledger_id, &prev, "previous failed offload")
                .await;
        }
        let source = HotLedgerSource {
            ml: self.clone(),
            info,
            background: offloader.background(),
        };
        let extra = BTreeMap::from([(
            offload::keys::MANAGED_LEDGER_NAME.to_string(),
            self.shared.name.clone(),
        )]);
        let uploaded = offloader.offload(&source, uuid, &extra).await;
        self.shared
            .offloading
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&ledger_id);
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
                IoCounters::add(
                    &self.shared.io.offloaded_bytes,
                    source.info.size.max(0) as u64,
                );
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
            hot_tier_broker: None,
            hot_tier: crate::HotTier::Local,
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

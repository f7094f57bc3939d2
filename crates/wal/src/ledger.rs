//! One object-tier ledger: what it accepted, what is durable, where its extents are.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use meta::Fence;
use tokio::sync::{Notify, oneshot};

use crate::error::{Result, WalError};
use crate::format::Extent;
use crate::writer::Wal;

/// The state of a ledger this broker writes (or wrote, until it is deleted).
pub(crate) struct LedgerState {
    pub managed_ledger: String,
    pub ledger_id: i64,
    progress: Mutex<Progress>,
    /// Told whenever entries are committed or failed.
    settled: Notify,
}

#[derive(Default)]
pub(crate) struct Progress {
    /// Entries handed out ids.
    pub accepted: u64,
    /// Committed entries and their bytes.
    pub durable: u64,
    pub durable_bytes: u64,
    /// Accepted entries neither committed nor failed yet.
    pub unsettled: u64,
    /// Why the ledger takes no more entries (a failed flush, a failed fencing check).
    pub failure: Option<WalError>,
    pub sealed: bool,
    /// Committed extents, in entry order.
    pub extents: Vec<Extent>,
    /// The latest committed entries (contiguous ids), within the memory budget.
    pub recent: VecDeque<(u64, Bytes)>,
    pub recent_bytes: usize,
}

impl Progress {
    /// Entries `first..=last` from memory (at least one, up to `max_bytes`), if memory holds
    /// `first`.
    pub fn recent_entries(&self, first: u64, last: u64, max_bytes: usize) -> Option<Vec<Bytes>> {
        let (front, _) = self.recent.front()?;
        if first < *front || first >= front + self.recent.len() as u64 {
            return None;
        }
        let mut out = Vec::new();
        let mut used = 0usize;
        for (id, data) in self.recent.iter().skip((first - front) as usize) {
            if *id > last || (!out.is_empty() && used + data.len() > max_bytes) {
                break;
            }
            used += data.len();
            out.push(data.clone());
        }
        Some(out)
    }
}

impl LedgerState {
    pub fn new(managed_ledger: &str, ledger_id: i64) -> Self {
        LedgerState {
            managed_ledger: managed_ledger.to_string(),
            ledger_id,
            progress: Mutex::new(Progress::default()),
            settled: Notify::new(),
        }
    }

    pub fn progress(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Why an extent starting at `first` cannot be committed now, if it cannot.
    pub fn refuses_extent(&self, first: u64) -> Option<WalError> {
        let p = self.progress();
        if let Some(f) = &p.failure {
            return Some(f.clone());
        }
        (p.durable != first).then(|| WalError::LedgerFailed {
            ledger_id: self.ledger_id,
            detail: format!(
                "extent at entry {first} does not follow the {} committed entries",
                p.durable
            ),
        })
    }

    /// Records a committed extent and its entries (kept in memory within `recent_budget`).
    pub fn committed(&self, extent: Extent, entries: &[Bytes], recent_budget: usize) {
        let mut p = self.progress();
        p.durable += extent.entries;
        p.durable_bytes += extent.bytes;
        p.unsettled = p.unsettled.saturating_sub(extent.entries);
        for (i, e) in entries.iter().enumerate() {
            p.recent.push_back((extent.first + i as u64, e.clone()));
            p.recent_bytes += e.len();
        }
        while p.recent_bytes > recent_budget {
            match p.recent.pop_front() {
                Some((_, e)) => p.recent_bytes -= e.len(),
                None => break,
            }
        }
        p.extents.push(extent);
        drop(p);
        self.settled.notify_waiters();
    }

    /// Records that `entries` accepted entries failed with `error` (which ends the ledger).
    pub fn failed(&self, entries: u64, error: &WalError) {
        let mut p = self.progress();
        p.unsettled = p.unsettled.saturating_sub(entries);
        if p.failure.is_none() {
            tracing::warn!(ledger_id = self.ledger_id, managed_ledger = %self.managed_ledger, %error, "WAL ledger failed: it takes no more entries");
            p.failure = Some(error.clone());
        }
        drop(p);
        self.settled.notify_waiters();
    }

    /// Takes no more entries, waits for the ones accepted, and returns the committed entries
    /// and bytes (accepted entries that failed are not part of it).
    pub async fn seal(&self) -> (u64, u64) {
        self.progress().sealed = true;
        self.settle().await;
        let p = self.progress();
        (p.durable, p.durable_bytes)
    }

    /// Waits until every accepted entry is committed or failed.
    async fn settle(&self) {
        loop {
            let notified = self.settled.notified();
            if self.progress().unsettled == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// The writer of one object-tier ledger. Entries get consecutive ids from 0; each append
/// resolves once its flush is committed.
pub struct WalLedger {
    pub(crate) wal: Wal,
    pub(crate) state: Arc<LedgerState>,
}

impl WalLedger {
    pub fn ledger_id(&self) -> i64 {
        self.state.ledger_id
    }

    /// Queues `data` for the next flush, whose commit carries `fence`. Waits only while the
    /// broker's unflushed bytes are over their budget.
    pub async fn append(&self, data: Bytes, fence: Option<Fence>) -> Result<WalAppend> {
        self.wal.enqueue(&self.state, data, fence).await
    }

    /// Committed entries and their bytes.
    pub fn durable(&self) -> (u64, u64) {
        let p = self.state.progress();
        (p.durable, p.durable_bytes)
    }

    /// Committed extents (each one key in the metadata store until the ledger is deleted).
    pub fn extents(&self) -> usize {
        self.state.progress().extents.len()
    }

    /// Whether the ledger has as many extents as a ledger should have before it rolls over.
    pub fn wants_rollover(&self) -> bool {
        self.extents() >= self.wal.config().max_extents_per_ledger
    }

    /// Takes no more entries, waits for the ones accepted, and returns the ledger's committed
    /// entries and bytes. Accepted entries that failed are not part of it.
    pub async fn seal(self) -> Result<(u64, u64)> {
        Ok(self.state.seal().await)
    }
}

/// An accepted append; resolves to the entry's id once its flush is committed.
#[must_use = "an append is acknowledged only when it resolves"]
pub struct WalAppend {
    pub(crate) entry_id: u64,
    pub(crate) ledger_id: i64,
    pub(crate) done: oneshot::Receiver<Result<u64>>,
}

impl WalAppend {
    pub fn entry_id(&self) -> u64 {
        self.entry_id
    }
}

impl std::future::Future for WalAppend {
    type Output = Result<u64>;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let ledger_id = self.ledger_id;
        std::pin::Pin::new(&mut self.done).poll(cx).map(|r| {
            r.unwrap_or(Err(WalError::LedgerFailed {
                ledger_id,
                detail: "the WAL stopped before the entry was committed".into(),
            }))
        })
    }
}

//! The broker's WAL: the shared buffer, the flusher (one object per flush), the committer
//! (one flush record per flush, in flush order, fenced per bundle) and the indexer (the
//! records' extents to per-ledger keys, after the acknowledgements).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use meta::{Expected, Fence, MetaError, MetadataStore, Op};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use once_map::OnceMap;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error::{Result, WalError};
use crate::format::{Extent, FlushRecord, ObjectBody, RecordPart};
use crate::ledger::{LedgerState, WalAppend, WalLedger};
use crate::{index, keys};

/// How the WAL batches and where it writes.
#[derive(Debug, Clone)]
pub struct WalConfig {
    /// Object key prefix of this broker's objects: `wal/<cluster>/<broker>`.
    pub object_prefix: String,
    /// What the sweeper lists for garbage: `wal/<cluster>` (every broker's objects: a dead
    /// broker's garbage is collected too).
    pub sweep_prefix: String,
    /// `objectStorageWalFlushIntervalMs` (250 ms): the longest an entry waits for its flush.
    pub flush_interval: Duration,
    /// `objectStorageWalFlushMaxBytes` (8 MiB): a flush starts as soon as this much is buffered.
    pub flush_max_bytes: usize,
    /// Flushes uploading at once (committed in order).
    pub max_flushes_in_flight: usize,
    /// Committed entries kept in memory per ledger, for tailing readers.
    pub recent_bytes_per_ledger: usize,
    /// `objectStorageWalMaxExtentsPerLedger` (2000): a ledger with this many extents asks to
    /// be rolled over (its keys stay bounded until its rewrite).
    pub max_extents_per_ledger: usize,
    /// Objects no extent names are deleted once this old (10 min).
    pub garbage_grace: Duration,
}

impl WalConfig {
    pub fn new(cluster: &str, broker: &str) -> Self {
        let segment = |s: &str| meta::key_segment(s);
        WalConfig {
            object_prefix: format!("wal/{}/{}", segment(cluster), segment(broker)),
            sweep_prefix: format!("wal/{}", segment(cluster)),
            flush_interval: Duration::from_millis(250),
            flush_max_bytes: 8 << 20,
            max_flushes_in_flight: 4,
            recent_bytes_per_ledger: 1 << 20,
            max_extents_per_ledger: 2000,
            garbage_grace: Duration::from_secs(600),
        }
    }
}

/// What the WAL has done since it started.
#[derive(Debug, Default)]
pub struct WalCounters {
    /// Objects uploaded, and their bytes.
    pub objects: AtomicU64,
    pub object_bytes: AtomicU64,
    /// Entries committed, and commit transactions (one flush record each).
    pub entries: AtomicU64,
    pub commits: AtomicU64,
    /// Flush records this broker indexed into extent keys after their commit.
    pub indexed: AtomicU64,
    /// Flush parts (one ledger's extent) that failed.
    pub failed_extents: AtomicU64,
}

/// The broker's object-storage WAL. Cheap to clone.
#[derive(Clone)]
pub struct Wal {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub store: Arc<dyn ObjectStore>,
    pub meta: Arc<dyn MetadataStore>,
    pub config: WalConfig,
    buffer: Mutex<Buffer>,
    wake: Notify,
    /// Bytes accepted but not yet settled, bounded (back-pressure on appends).
    budget: Arc<Semaphore>,
    budget_total: usize,
    /// Ledgers written here (open or sealed, until deleted).
    pub open: Mutex<HashMap<i64, Arc<LedgerState>>>,
    /// Extents of ledgers read here that are not written here (after a failover), by ledger.
    pub listed: OnceMap<i64, Arc<Vec<Extent>>>,
    /// A few fetched extents, for readers that go through one in small steps.
    pub fetched: Mutex<std::collections::VecDeque<((String, u64), Bytes)>>,
    pub counters: WalCounters,
    closed: AtomicBool,
    /// The flusher, the committer and the indexer: each ends once the one before it did.
    tasks: Mutex<Vec<JoinHandle<()>>>,
    sweeper: Mutex<Option<JoinHandle<()>>>,
}

/// Entries waiting for the next flush, by ledger.
#[derive(Default)]
struct Buffer {
    ledgers: BTreeMap<i64, Batch>,
    bytes: usize,
    since: Option<Instant>,
}

/// One ledger's entries of a flush.
struct Batch {
    state: Arc<LedgerState>,
    fence: Option<Fence>,
    first: u64,
    entries: Vec<Bytes>,
    bytes: u64,
    waiters: Vec<oneshot::Sender<Result<u64>>>,
    permit: Option<OwnedSemaphorePermit>,
}

/// One ledger's entries of a flush and where they are in its object.
type Part = (Batch, Extent);

/// One flush on its way: uploading, then committed in order.
struct Flush {
    object: String,
    started: Instant,
    parts: Vec<Part>,
    upload: JoinHandle<Result<()>>,
}

impl Wal {
    /// Starts the WAL's flusher, committer and garbage sweeper (on the current runtime).
    pub fn start(
        store: Arc<dyn ObjectStore>,
        meta: Arc<dyn MetadataStore>,
        config: WalConfig,
    ) -> Wal {
        let budget_total = (config.flush_max_bytes * (config.max_flushes_in_flight + 2))
            .min(Semaphore::MAX_PERMITS)
            .min(u32::MAX as usize);
        let (tx, rx) = mpsc::channel(config.max_flushes_in_flight.max(1));
        let wal = Wal {
            inner: Arc::new(Inner {
                store,
                meta,
                budget: Arc::new(Semaphore::new(budget_total)),
                budget_total,
                config,
                buffer: Mutex::new(Buffer::default()),
                wake: Notify::new(),
                open: Mutex::new(HashMap::new()),
                listed: OnceMap::new(),
                fetched: Mutex::new(Default::default()),
                counters: WalCounters::default(),
                closed: AtomicBool::new(false),
                tasks: Mutex::new(Vec::new()),
                sweeper: Mutex::new(None),
            }),
        };
        let (index_tx, index_rx) = mpsc::unbounded_channel();
        let flusher = tokio::spawn(wal.clone().flusher(tx));
        let committer = tokio::spawn(wal.clone().committer(rx, index_tx));
        let indexer = tokio::spawn(wal.clone().indexer(index_rx));
        wal.tasks().extend([flusher, committer, indexer]);
        *wal.inner.sweeper.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(tokio::spawn(wal.clone().sweeper()));
        wal
    }

    fn tasks(&self) -> std::sync::MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.inner.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn config(&self) -> &WalConfig {
        &self.inner.config
    }

    pub fn counters(&self) -> &WalCounters {
        &self.inner.counters
    }

    /// Flushes what is buffered, waits for its commits and their indexing, and stops. Appends
    /// after it fail.
    pub async fn shutdown(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        self.inner.wake.notify_one();
        let sweeper = self
            .inner
            .sweeper
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(sweeper) = sweeper {
            sweeper.abort(); // it has nothing to finish
            let _ = sweeper.await;
        }
        let tasks: Vec<_> = self.tasks().drain(..).collect();
        for t in tasks {
            let _ = t.await;
        }
    }

    pub(crate) fn open_ledgers(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Arc<LedgerState>>> {
        self.inner.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new ledger written through this WAL (ledger ids are unique across the cluster).
    pub fn create_ledger(&self, managed_ledger: &str, ledger_id: i64) -> WalLedger {
        let state = Arc::new(LedgerState::new(managed_ledger, ledger_id));
        self.open_ledgers().insert(ledger_id, Arc::clone(&state));
        WalLedger {
            wal: self.clone(),
            state,
        }
    }

    /// Forgets a ledger written or read here (what is in memory of it; its extents stay).
    pub fn forget(&self, ledger_id: i64) {
        self.open_ledgers().remove(&ledger_id);
        self.inner.listed.remove(&ledger_id);
    }

    /// Committed entries and bytes of a ledger written here, if it is.
    pub fn durable(&self, ledger_id: i64) -> Option<(u64, u64)> {
        let state = self.open_ledgers().get(&ledger_id).cloned()?;
        let p = state.progress();
        Some((p.durable, p.durable_bytes))
    }

    pub(crate) async fn enqueue(
        &self,
        state: &Arc<LedgerState>,
        data: Bytes,
        fence: Option<Fence>,
    ) -> Result<WalAppend> {
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(WalError::Closed);
        }
        let len = data.len();
        let permits = len.clamp(1, self.inner.budget_total) as u32;
        let permit = Arc::clone(&self.inner.budget)
            .acquire_many_owned(permits)
            .await
            .map_err(|_| WalError::Closed)?;
        let (tx, rx) = oneshot::channel();
        let mut buffer = self.inner.buffer.lock().unwrap_or_else(|p| p.into_inner());
        let entry_id = {
            let mut p = state.progress();
            if let Some(f) = &p.failure {
                return Err(f.clone());
            }
            if p.sealed {
                return Err(WalError::Sealed(state.ledger_id));
            }
            p.accepted += 1;
            p.unsettled += 1;
            p.accepted - 1
        };
        let batch = buffer
            .ledgers
            .entry(state.ledger_id)
            .or_insert_with(|| Batch {
                state: Arc::clone(state),
                fence: None,
                first: entry_id,
                entries: Vec::new(),
                bytes: 0,
                waiters: Vec::new(),
                permit: None,
            });
        batch.entries.push(data);
        batch.bytes += len as u64;
        batch.waiters.push(tx);
        batch.fence = fence;
        match &mut batch.permit {
            Some(p) => p.merge(permit),
            None => batch.permit = Some(permit),
        }
        buffer.bytes += len;
        let first_in_buffer = buffer.since.is_none();
        buffer.since.get_or_insert_with(Instant::now);
        let full = buffer.bytes >= self.inner.config.flush_max_bytes;
        drop(buffer);
        if first_in_buffer || full {
            self.inner.wake.notify_one();
        }
        Ok(WalAppend {
            entry_id,
            ledger_id: state.ledger_id,
            done: rx,
        })
    }

    /// Takes the buffer when its flush is due (by size, by age, or at shutdown) and an upload
    /// slot is free. While every slot is busy the buffer keeps filling (within the append
    /// budget), so under back-pressure objects grow past `flush_max_bytes` instead of queueing.
    async fn flusher(self, tx: mpsc::Sender<Flush>) {
        let slots = Arc::new(Semaphore::new(
            self.inner.config.max_flushes_in_flight.max(1),
        ));
        loop {
            let due = {
                let b = self.inner.buffer.lock().unwrap_or_else(|p| p.into_inner());
                match b.since {
                    None => None,
                    Some(_)
                        if b.bytes >= self.inner.config.flush_max_bytes
                            || self.inner.closed.load(Ordering::SeqCst) =>
                    {
                        Some(Instant::now())
                    }
                    Some(since) => Some(since + self.inner.config.flush_interval),
                }
            };
            match due {
                None if self.inner.closed.load(Ordering::SeqCst) => return,
                None => {
                    self.inner.wake.notified().await;
                    continue;
                }
                Some(at) if at > Instant::now() => {
                    tokio::select! {
                        _ = self.inner.wake.notified() => continue,
                        _ = tokio::time::sleep_until(timer_deadline(at)) => {}
                    }
                }
                Some(_) => {}
            }
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                return;
            };
            let batches = {
                let mut b = self.inner.buffer.lock().unwrap_or_else(|p| p.into_inner());
                std::mem::take(&mut *b).ledgers
            };
            if batches.is_empty() {
                continue;
            }
            let flush = self.upload(batches, slot);
            if tx.send(flush).await.is_err() {
                return;
            }
        }
    }

    /// Builds the flush's object and starts its upload, which frees `slot` when it ends.
    fn upload(&self, batches: BTreeMap<i64, Batch>, slot: OwnedSemaphorePermit) -> Flush {
        let object = format!(
            "{}/{}",
            self.inner.config.object_prefix,
            uuid::Uuid::new_v4()
        );
        let mut body = ObjectBody::for_entries(batches.values().flat_map(|b| &b.entries));
        let mut parts = Vec::with_capacity(batches.len());
        for (_, batch) in batches {
            let offset = body.size();
            body.push_extent(&batch.entries);
            let extent = Extent {
                object: object.clone(),
                offset,
                length: body.size() - offset,
                first: batch.first,
                entries: batch.entries.len() as u64,
                bytes: batch.bytes,
            };
            parts.push((batch, extent));
        }
        let size = body.size();
        let body: object_store::PutPayload = body.into_chunks().into_iter().collect();
        let store = Arc::clone(&self.inner.store);
        let path = Path::from(object.as_str());
        let wal = self.clone();
        tracing::debug!(%object, bytes = size, ledgers = parts.len(), "WAL flush taken");
        let upload = tokio::spawn(async move {
            let _slot = slot;
            store.put(&path, body).await?;
            wal.inner.counters.objects.fetch_add(1, Ordering::Relaxed);
            wal.inner
                .counters
                .object_bytes
                .fetch_add(size, Ordering::Relaxed);
            Ok(())
        });
        Flush {
            object,
            started: Instant::now(),
            parts,
            upload,
        }
    }

    /// Commits flushes in the order they were taken, and hands their records to the indexer.
    async fn committer(
        self,
        mut rx: mpsc::Receiver<Flush>,
        index: mpsc::UnboundedSender<(String, u64, FlushRecord)>,
    ) {
        while let Some(flush) = rx.recv().await {
            let Flush {
                object,
                started,
                parts,
                upload,
            } = flush;
            let uploaded = match upload.await {
                Ok(r) => r,
                Err(e) => Err(WalError::Store(format!("upload task: {e}"))),
            };
            if let Err(e) = uploaded {
                tracing::warn!(%object, error = %e, "WAL object upload failed");
                self.fail_all(parts, &format!("uploading WAL object {object}: {e}"));
                continue;
            }
            if started.elapsed() > self.inner.config.garbage_grace / 2 {
                self.fail_all(
                    parts,
                    &format!(
                        "WAL object {object} was uploaded too long ago to be committed safely"
                    ),
                );
                continue;
            }
            let commits = transactions_of(parts);
            let wal = &self;
            let object = &object;
            let uploaded_at = started.elapsed();
            let transactions = commits.len();
            let records = futures::future::join_all(
                commits
                    .into_iter()
                    .map(|parts| async move { wal.commit(object, parts).await }),
            )
            .await;
            for record in records.into_iter().flatten() {
                // Cannot fail: the indexer ends only once this task has dropped its sender.
                let _ = index.send(record);
            }
            tracing::debug!(
                %object,
                uploaded_us = uploaded_at.as_micros() as u64,
                committed_us = started.elapsed().as_micros() as u64,
                transactions,
                queued = rx.len(),
                "WAL flush committed"
            );
        }
    }

    /// Commits the extents of `parts` as one flush record, in one transaction that carries the
    /// fencing check of every bundle among them, then settles them; returns the record and its
    /// key and version, for the indexer. A failed check fails only the ledgers behind it: etcd
    /// applies nothing of a transaction whose compare fails and names (through
    /// [`MetaError::Conflict`]) the key that failed, so the others are retried without it.
    async fn commit(&self, object: &str, parts: Vec<Part>) -> Option<(String, u64, FlushRecord)> {
        let mut ready = Vec::with_capacity(parts.len());
        for (batch, extent) in parts {
            match batch.state.refuses_extent(extent.first) {
                Some(e) => self.fail(batch, &e),
                None => ready.push((batch, extent)),
            }
        }
        // Which parts a failed commit names: those behind the bundle whose check failed.
        let fenced_by =
            |(b, _): &Part, e: &MetaError| b.fence.as_ref().is_some_and(|f| f.failed(e));
        while !ready.is_empty() {
            let mut fences: Vec<&Fence> =
                ready.iter().filter_map(|(b, _)| b.fence.as_ref()).collect();
            fences.sort_by(|a, b| a.key.cmp(&b.key));
            fences.dedup_by(|a, b| a.key == b.key);
            let mut ops: Vec<Op> = fences.iter().map(|f| f.check()).collect();
            let record = FlushRecord {
                object: object.to_string(),
                parts: ready.iter().map(record_part).collect(),
            };
            let key = keys::flush_record_key();
            let value = record.encode();
            ops.push(Op::put(key.clone(), value.clone(), Expected::Absent));
            let outcome = self.inner.meta.commit(ops).await;
            self.inner.counters.commits.fetch_add(1, Ordering::Relaxed);
            match outcome {
                Ok(version) => {
                    for (batch, extent) in ready {
                        self.settle(batch, extent);
                    }
                    return Some((key, version, record));
                }
                Err(e) if ready.iter().any(|p| fenced_by(p, &e)) => {
                    let (fenced, rest): (Vec<Part>, Vec<Part>) =
                        ready.into_iter().partition(|p| fenced_by(p, &e));
                    for (batch, _) in fenced {
                        let id = batch.state.ledger_id;
                        self.fail(batch, &WalError::Fenced { ledger_id: id });
                    }
                    ready = rest;
                }
                Err(e @ MetaError::Backend { .. }) => {
                    // The answer was lost: the transaction may have been applied. Read back.
                    tracing::warn!(error = %e, "WAL commit outcome unknown: reading the record back");
                    return self.resolve_unknown(ready, key, &value, record, &e).await;
                }
                Err(e) => {
                    for (batch, _) in ready {
                        self.fail_ledger(batch, format!("committing its WAL extent: {e}"));
                    }
                    return None;
                }
            }
        }
        None
    }

    /// Settles or fails `ready` after a commit of `record` at `key` whose answer was lost:
    /// committed if the record is there, or if its extents are (somebody indexed it already:
    /// a sweep, a deletion); failed if neither, or if they cannot be read.
    async fn resolve_unknown(
        &self,
        ready: Vec<Part>,
        key: String,
        value: &[u8],
        record: FlushRecord,
        error: &MetaError,
    ) -> Option<(String, u64, FlushRecord)> {
        match self.inner.meta.get(&key).await {
            Ok(Some(v)) if v.value == value => {
                for (batch, extent) in ready {
                    self.settle(batch, extent);
                }
                return Some((key, v.version, record));
            }
            Ok(_) => {}
            Err(read) => {
                for (batch, _) in ready {
                    self.fail_ledger(
                        batch,
                        format!("committing its WAL extent: {error}; reading it back: {read}"),
                    );
                }
                return None;
            }
        }
        for (batch, extent) in ready {
            let key = keys::extent_key(
                &batch.state.managed_ledger,
                batch.state.ledger_id,
                extent.first,
            );
            match self.inner.meta.get(&key).await {
                Ok(Some(v)) if Extent::decode(&key, &v.value).ok() == Some(extent.clone()) => {
                    self.settle(batch, extent)
                }
                Ok(_) => self.fail_ledger(batch, format!("committing its WAL extent: {error}")),
                Err(read) => self.fail_ledger(
                    batch,
                    format!("committing its WAL extent: {error}; reading it back: {read}"),
                ),
            }
        }
        None
    }

    /// Indexes committed flush records into extent keys, one after the other, off the
    /// acknowledgement path. One that fails stays a record (merged by readers) until a sweep
    /// indexes it.
    async fn indexer(self, mut rx: mpsc::UnboundedReceiver<(String, u64, FlushRecord)>) {
        let meta = self.inner.meta.as_ref();
        while let Some(first) = rx.recv().await {
            // The records waiting, indexed together (a flush over many bundles or thousands of
            // ledgers has several, and a slow etcd lets them pile up).
            let mut records = vec![first];
            while let Ok(more) = rx.try_recv() {
                records.push(more);
            }
            let outcomes = futures::future::join_all(records.iter().map(
                |(key, version, record)| async move {
                    (key, index::index_record(meta, key, *version, record).await)
                },
            ))
            .await;
            for (key, outcome) in outcomes {
                match outcome {
                    Ok(_) => {
                        self.inner.counters.indexed.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        tracing::warn!(%key, error = %e, "indexing a WAL flush record failed: a sweep will")
                    }
                }
            }
        }
    }

    fn settle(&self, batch: Batch, extent: Extent) {
        let Batch {
            state,
            entries,
            waiters,
            permit,
            first,
            ..
        } = batch;
        self.inner
            .counters
            .entries
            .fetch_add(extent.entries, Ordering::Relaxed);
        state.committed(extent, &entries, self.inner.config.recent_bytes_per_ledger);
        drop(permit);
        for (i, w) in waiters.into_iter().enumerate() {
            let _ = w.send(Ok(first + i as u64));
        }
    }

    fn fail(&self, batch: Batch, error: &WalError) {
        self.inner
            .counters
            .failed_extents
            .fetch_add(1, Ordering::Relaxed);
        batch.state.failed(batch.entries.len() as u64, error);
        drop(batch.permit);
        for w in batch.waiters {
            let _ = w.send(Err(error.clone()));
        }
    }

    /// Fails `batch` with [`WalError::LedgerFailed`] for `detail`.
    fn fail_ledger(&self, batch: Batch, detail: String) {
        let ledger_id = batch.state.ledger_id;
        self.fail(batch, &WalError::LedgerFailed { ledger_id, detail });
    }

    fn fail_all(&self, parts: Vec<Part>, detail: &str) {
        for (batch, _) in parts {
            self.fail_ledger(batch, detail.to_string());
        }
    }
}

/// What to ask tokio's timer for so that it fires by `at`: it rounds a deadline up to its next
/// millisecond tick, which made entries wait up to a millisecond longer than the flush
/// interval, the longest they are meant to wait; this asks for the tick at or before `at`.
fn timer_deadline(at: Instant) -> Instant {
    at.checked_sub(TIMER_RESOLUTION - Duration::from_nanos(1))
        .unwrap_or(at)
}

/// The resolution of tokio's timer.
const TIMER_RESOLUTION: Duration = Duration::from_millis(1);

/// A part of a flush record.
fn record_part((batch, extent): &Part) -> RecordPart {
    RecordPart {
        managed_ledger: batch.state.managed_ledger.clone(),
        ledger_id: batch.state.ledger_id,
        offset: extent.offset,
        length: extent.length,
        first: extent.first,
        entries: extent.entries,
        bytes: extent.bytes,
    }
}

/// A flush record's value stays under this many bytes (etcd refuses requests over 1.5 MiB).
const RECORD_MAX_BYTES: usize = 512 * 1024;

/// What a part adds to a record's value, at most (JSON: the name and seven numbers with their
/// field names).
fn record_bytes(part: &Part) -> usize {
    part.0.state.managed_ledger.len() + 200
}

/// Packs a flush's parts into commit transactions, each one flush record and the fencing check
/// of every bundle it touches, once: one for a flush unless its record would pass
/// [`RECORD_MAX_BYTES`] or its checks etcd's operation limit. One transaction per flush (rather
/// than one per bundle) keeps the commit to one etcd round trip and one raft entry. Two fences
/// on one key (a bundle that changed owner between two appends of one flush) go to different
/// transactions: a transaction names each key once.
fn transactions_of(mut parts: Vec<Part>) -> Vec<Vec<Part>> {
    let fence_of = |p: &Part| p.0.fence.as_ref().map(|f| (f.key.clone(), f.version));
    parts.sort_by_cached_key(fence_of);
    let mut transactions = Vec::new();
    let mut current: Vec<Part> = Vec::new();
    let mut bytes = 0usize;
    let mut checks: HashMap<String, u64> = HashMap::new();
    for part in parts {
        let fence = fence_of(&part);
        let clashes = |checks: &HashMap<String, u64>| {
            fence
                .as_ref()
                .is_some_and(|(k, v)| checks.get(k).is_some_and(|held| held != v))
        };
        let new_check = |checks: &HashMap<String, u64>| {
            usize::from(fence.as_ref().is_some_and(|(k, _)| !checks.contains_key(k)))
        };
        if !current.is_empty()
            && (clashes(&checks)
                || checks.len() + new_check(&checks) + 1 > meta::MAX_TXN_OPS
                || bytes + record_bytes(&part) > RECORD_MAX_BYTES)
        {
            transactions.push(std::mem::take(&mut current));
            checks.clear();
            bytes = 0;
        }
        if let Some((k, v)) = fence {
            checks.insert(k, v);
        }
        bytes += record_bytes(&part);
        current.push(part);
    }
    if !current.is_empty() {
        transactions.push(current);
    }
    transactions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(ledger_id: i64, fence: Option<(&str, u64)>) -> Part {
        let batch = Batch {
            state: Arc::new(LedgerState::new("t/ns/persistent/x", ledger_id)),
            fence: fence.map(|(key, version)| Fence {
                key: key.to_string(),
                version,
            }),
            first: 0,
            entries: Vec::new(),
            bytes: 0,
            waiters: Vec::new(),
            permit: None,
        };
        let extent = Extent {
            object: "o".into(),
            offset: 8,
            length: 0,
            first: 0,
            entries: 0,
            bytes: 0,
        };
        (batch, extent)
    }

    /// The fencing checks a transaction of these parts holds: one per fence key.
    fn checks(parts: &[Part]) -> usize {
        let keys: std::collections::HashSet<_> = parts
            .iter()
            .filter_map(|(b, _)| b.fence.as_ref().map(|f| f.key.clone()))
            .collect();
        keys.len()
    }

    #[test]
    fn a_flush_over_a_few_bundles_is_one_transaction() {
        let bundles = ["/b/0", "/b/1", "/b/2", "/b/3"];
        let parts = (0..1000)
            .map(|i| part(i, Some((bundles[i as usize % 4], 7))))
            .collect();
        let txns = transactions_of(parts);
        assert_eq!(txns.len(), 1);
        assert_eq!(checks(&txns[0]), 4);
    }

    #[test]
    fn transactions_stay_within_etcds_limits_and_keep_every_part() {
        // More bundles than one transaction has operations for their checks and the record.
        let bundles: Vec<String> = (0..300).map(|b| format!("/b/{b}")).collect();
        let parts = (0..1000)
            .map(|i| part(i, Some((bundles[i as usize % 300].as_str(), 1))))
            .collect();
        let txns = transactions_of(parts);
        assert!(txns.iter().all(|t| checks(t) < meta::MAX_TXN_OPS));
        assert_eq!(txns.iter().map(Vec::len).sum::<usize>(), 1000);
        assert_eq!(txns.len(), 3);
        // More parts than one record's value holds.
        let parts: Vec<Part> = (0..4000).map(|i| part(i, None)).collect();
        let txns = transactions_of(parts);
        assert!(txns.len() > 1);
        for t in &txns {
            let record = FlushRecord {
                object: "o".into(),
                parts: t.iter().map(record_part).collect(),
            };
            assert!(record.encode().len() <= RECORD_MAX_BYTES);
        }
        assert_eq!(txns.iter().map(Vec::len).sum::<usize>(), 4000);
    }

    #[test]
    fn two_versions_of_one_fence_never_share_a_transaction() {
        let parts = vec![
            part(1, Some(("/b/0", 3))),
            part(2, Some(("/b/0", 4))),
            part(3, Some(("/b/1", 1))),
        ];
        let txns = transactions_of(parts);
        for t in &txns {
            let versions: std::collections::HashSet<_> = t
                .iter()
                .filter_map(|(b, _)| b.fence.as_ref())
                .filter(|f| f.key == "/b/0")
                .map(|f| f.version)
                .collect();
            assert!(versions.len() <= 1, "{versions:?}");
        }
        assert_eq!(txns.iter().map(Vec::len).sum::<usize>(), 3);
    }
}

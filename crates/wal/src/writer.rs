//! The broker's WAL: the shared buffer, the flusher (one object per flush) and the committer
//! (extent keys in flush order, fenced per bundle).

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
use crate::format::{Extent, ObjectBody};
use crate::keys;
use crate::ledger::{LedgerState, WalAppend, WalLedger};

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
    /// Entries committed, and commit transactions.
    pub entries: AtomicU64,
    pub commits: AtomicU64,
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
    tasks: Mutex<Vec<JoinHandle<()>>>,
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
            }),
        };
        let flusher = tokio::spawn(wal.clone().flusher(tx));
        let committer = tokio::spawn(wal.clone().committer(rx));
        let sweeper = tokio::spawn(wal.clone().sweeper());
        wal.tasks().extend([flusher, committer, sweeper]);
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

    /// Flushes what is buffered, waits for its commits, and stops. Appends after it fail.
    pub async fn shutdown(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        self.inner.wake.notify_one();
        let tasks: Vec<_> = self.tasks().drain(..).collect();
        for (i, t) in tasks.into_iter().enumerate() {
            if i == 2 {
                t.abort(); // the sweeper has nothing to finish
            }
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

    /// Commits flushes in the order they were taken.
    async fn committer(self, mut rx: mpsc::Receiver<Flush>) {
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
            let uploaded_at = started.elapsed();
            let transactions = commits.len();
            futures::future::join_all(
                commits
                    .into_iter()
                    .map(|parts| async move { wal.commit(parts).await }),
            )
            .await;
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

    /// Commits the extents of `parts` in one transaction that carries the fencing check of
    /// every bundle among them, then settles them. A failed check fails only the ledgers behind
    /// it: etcd applies nothing of a transaction whose compare fails and names (through
    /// [`MetaError::Conflict`]) the key that failed, so the others are retried without it.
    async fn commit(&self, parts: Vec<Part>) {
        let mut ready = Vec::with_capacity(parts.len());
        for (batch, extent) in parts {
            match batch.state.refuses_extent(extent.first) {
                Some(e) => self.fail(batch, &e),
                None => ready.push((batch, extent)),
            }
        }
        let key_of = |b: &Batch, e: &Extent| {
            keys::extent_key(&b.state.managed_ledger, b.state.ledger_id, e.first)
        };
        // Which parts a failed commit names: those behind the bundle whose check failed, or
        // the one whose extent key exists already.
        let fenced_by =
            |(b, _): &Part, e: &MetaError| b.fence.as_ref().is_some_and(|f| f.failed(e));
        let taken_by = |(b, x): &Part, e: &MetaError| matches!(e, MetaError::Conflict { key, .. } if *key == key_of(b, x));
        while !ready.is_empty() {
            let mut fences: Vec<&Fence> =
                ready.iter().filter_map(|(b, _)| b.fence.as_ref()).collect();
            fences.sort_by(|a, b| a.key.cmp(&b.key));
            fences.dedup_by(|a, b| a.key == b.key);
            let mut ops: Vec<Op> = fences.iter().map(|f| f.check()).collect();
            ops.extend(
                ready
                    .iter()
                    .map(|(b, e)| Op::put(key_of(b, e), e.encode(), Expected::Absent)),
            );
            let outcome = self.inner.meta.commit(ops).await;
            self.inner.counters.commits.fetch_add(1, Ordering::Relaxed);
            match outcome {
                Ok(_) => {
                    for (batch, extent) in ready {
                        self.settle(batch, extent);
                    }
                    return;
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
                Err(e) if ready.iter().any(|p| taken_by(p, &e)) => {
                    // An extent key that exists already: that ledger has another writer.
                    let (taken, rest): (Vec<Part>, Vec<Part>) =
                        ready.into_iter().partition(|p| taken_by(p, &e));
                    for (batch, extent) in taken {
                        let key = key_of(&batch, &extent);
                        self.fail_ledger(batch, format!("its WAL extent {key} exists already"));
                    }
                    ready = rest;
                }
                Err(e @ MetaError::Backend { .. }) => {
                    // The answer was lost: the transaction may have been applied. Read back.
                    tracing::warn!(error = %e, "WAL commit outcome unknown: reading the extents back");
                    for (batch, extent) in ready {
                        let key = key_of(&batch, &extent);
                        match self.inner.meta.get(&key).await {
                            Ok(Some(v))
                                if Extent::decode(&key, &v.value).ok() == Some(extent.clone()) =>
                            {
                                self.settle(batch, extent)
                            }
                            Ok(_) => {
                                self.fail_ledger(batch, format!("committing its WAL extent: {e}"))
                            }
                            Err(read) => self.fail_ledger(
                                batch,
                                format!("committing its WAL extent: {e}; reading it back: {read}"),
                            ),
                        }
                    }
                    return;
                }
                Err(e) => {
                    for (batch, _) in ready {
                        self.fail_ledger(batch, format!("committing its WAL extent: {e}"));
                    }
                    return;
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

/// Packs a flush's parts into commit transactions: as few as etcd's operation limit allows,
/// each holding one put per ledger and the fencing check of every bundle it touches, once.
/// One transaction per flush (rather than one per bundle) keeps the commit to one etcd round
/// trip and one raft entry. Two fences on one key (a bundle that changed owner between two
/// appends of one flush) go to different transactions: a transaction names each key once.
fn transactions_of(mut parts: Vec<Part>) -> Vec<Vec<Part>> {
    let fence_of = |p: &Part| p.0.fence.as_ref().map(|f| (f.key.clone(), f.version));
    parts.sort_by_cached_key(fence_of);
    let mut transactions = Vec::new();
    let mut current: Vec<Part> = Vec::new();
    let mut checks: HashMap<String, u64> = HashMap::new();
    for part in parts {
        let fence = fence_of(&part);
        let clashes = |checks: &HashMap<String, u64>| {
            fence
                .as_ref()
                .is_some_and(|(k, v)| checks.get(k).is_some_and(|held| held != v))
        };
        let ops_needed = |checks: &HashMap<String, u64>| {
            1 + usize::from(fence.as_ref().is_some_and(|(k, _)| !checks.contains_key(k)))
        };
        if !current.is_empty()
            && (clashes(&checks)
                || current.len() + checks.len() + ops_needed(&checks) > meta::MAX_TXN_OPS)
        {
            transactions.push(std::mem::take(&mut current));
            checks.clear();
        }
        if let Some((k, v)) = fence {
            checks.insert(k, v);
        }
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

    /// Operations a transaction of these parts holds: a put per part, a check per fence key.
    fn ops(parts: &[Part]) -> usize {
        let keys: std::collections::HashSet<_> = parts
            .iter()
            .filter_map(|(b, _)| b.fence.as_ref().map(|f| f.key.clone()))
            .collect();
        parts.len() + keys.len()
    }

    #[test]
    fn a_flush_over_a_few_bundles_is_one_transaction() {
        let bundles = ["/b/0", "/b/1", "/b/2", "/b/3"];
        let parts = (0..100)
            .map(|i| part(i, Some((bundles[i as usize % 4], 7))))
            .collect();
        let txns = transactions_of(parts);
        assert_eq!(txns.len(), 1);
        assert_eq!(ops(&txns[0]), 104);
    }

    #[test]
    fn transactions_stay_within_etcds_operation_limit_and_keep_every_part() {
        let parts = (0..1000)
            .map(|i| part(i, Some((["/b/0", "/b/1", "/b/2"][i as usize % 3], 1))))
            .collect();
        let txns = transactions_of(parts);
        assert!(txns.iter().all(|t| ops(t) <= meta::MAX_TXN_OPS));
        assert_eq!(txns.iter().map(Vec::len).sum::<usize>(), 1000);
        // Nearly full: 1000 puts and a few checks fit in 8 transactions of 128.
        assert_eq!(txns.len(), 8);
        let unfenced = transactions_of((0..300).map(|i| part(i, None)).collect());
        assert_eq!(
            unfenced.iter().map(Vec::len).collect::<Vec<_>>(),
            [128, 128, 44]
        );
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

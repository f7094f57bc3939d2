//! The broker's WAL: its configuration and counters, the shared buffer, the flusher (one
//! object per flush) and the tasks' lifecycle. The committer and the indexer are in `commit`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use meta::{Fence, MetadataStore};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use once_map::OnceMap;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error::{Result, WalError};
use crate::format::{Extent, ObjectBody};
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
pub(crate) struct Batch {
    pub state: Arc<LedgerState>,
    pub fence: Option<Fence>,
    pub first: u64,
    pub entries: Vec<Bytes>,
    pub bytes: u64,
    pub waiters: Vec<oneshot::Sender<Result<u64>>>,
    pub permit: Option<OwnedSemaphorePermit>,
}

/// One ledger's entries of a flush and where they are in its object.
pub(crate) type Part = (Batch, Extent);

/// One flush on its way: uploading, then committed in order (`commit`).
pub(crate) struct Flush {
    pub object: String,
    pub started: Instant,
    pub parts: Vec<Part>,
    pub upload: JoinHandle<Result<()>>,
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

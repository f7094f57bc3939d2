//! The broker-wide budget of offloads: how many ledgers offload at once (turns; under an upload
//! rate a ledger whose blocks are all read sends its last parts without one), and how many parts
//! (each a block held in memory) are built or in flight at once over all of them. One budget is shared
//! by every offloader of a broker (it lives in [`crate::ObjectStores`]), so several topics — and
//! several ledgers of one topic — offload in parallel without their memory adding up unbounded:
//! at most `parts` blocks exist at any moment, whatever the number of offloads.
//!
//! Part uploads run on a runtime of their own (`managedLedgerOffloadMaxThreads` threads, as
//! Pulsar's offload threads): signing a part hashes all of its bytes (SHA-256 for SigV4), tens
//! of milliseconds per 64 MiB block, which on the broker's own workers would hold up the
//! producers and consumers they serve; its threads run at a lower CPU priority (nice 10).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::throttle::ByteRate;
use crate::topic_order::{TopicOrder, Turn};

/// Limits shared by every offload of a broker.
#[derive(Debug, Clone)]
pub struct OffloadBudget {
    runtime: Arc<UploadRuntime>,
    ledgers: Arc<Semaphore>,
    max_ledgers: usize,
    parts: Arc<Semaphore>,
    /// Part uploads started and not ended, over every offload of the broker.
    parts_uploading: Arc<AtomicUsize>,
    /// `managedLedgerOffloadFlowPermitsPerSecond`: bytes per second all uploads share.
    upload_rate: Option<Arc<ByteRate>>,
    /// The same rate for the offloads' reads of their ledgers, without bursts.
    source_read_rate: Option<Arc<ByteRate>>,
    /// Each topic's lines under the rate, while one of its offloads runs.
    topic_orders: Arc<Mutex<HashMap<String, Weak<TopicOrder>>>>,
}

impl OffloadBudget {
    /// `managedLedgerOffloadMaxThreads` (Pulsar's default 2) ledgers at once, and `parts` blocks
    /// built or uploading at once over all of them.
    pub fn new(max_ledgers: usize, parts: usize) -> Self {
        let max_ledgers = max_ledgers.max(1);
        OffloadBudget {
            runtime: Arc::new(UploadRuntime::new(max_ledgers)),
            ledgers: Arc::new(Semaphore::new(max_ledgers)),
            max_ledgers,
            parts: Arc::new(Semaphore::new(parts.max(1))),
            parts_uploading: Arc::default(),
            upload_rate: None,
            source_read_rate: None,
            topic_orders: Arc::default(),
        }
    }

    /// All uploads together send at most `bytes_per_second` (on average, over ~0.2 s).
    pub fn with_upload_rate(mut self, bytes_per_second: u64) -> Self {
        self.upload_rate = Some(Arc::new(ByteRate::per_second(bytes_per_second)));
        self.source_read_rate = Some(Arc::new(ByteRate::smooth(bytes_per_second)));
        self
    }

    /// The rate every upload through the broker's clients shares (the clients pace their
    /// parts by it: `paced_upload`, `s3_multipart`).
    pub fn upload_rate(&self) -> Option<&Arc<ByteRate>> {
        self.upload_rate.as_ref()
    }

    /// The upload rate again, for the offloads' reads of their ledgers (`upload::read_pace`).
    pub fn source_read_rate(&self) -> Option<&Arc<ByteRate>> {
        self.source_read_rate.as_ref()
    }

    /// The lines in which `managed_ledger`'s offloads read and send under a rate
    /// ([`TopicOrder`]): the same for every offload of that topic running at the same time.
    pub fn topic_order(&self, managed_ledger: &str) -> Arc<TopicOrder> {
        let mut orders = self.topic_orders.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(order) = orders.get(managed_ledger).and_then(Weak::upgrade) {
            return order;
        }
        // Lines of topics with no offload running go now and then, not one by one.
        orders.retain(|_, o| o.strong_count() > 0);
        let order = Arc::new(TopicOrder::default());
        orders.insert(managed_ledger.to_string(), Arc::downgrade(&order));
        order
    }

    /// How many ledgers may upload at once.
    pub fn max_ledgers(&self) -> usize {
        self.max_ledgers
    }

    /// Runs `upload` (a part upload: signing and sending) on the uploads' runtime.
    pub fn spawn_upload<F>(&self, upload: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let uploading = PartUploading::start(&self.parts_uploading);
        let upload = async move {
            let _uploading = uploading;
            upload.await
        };
        match &self.runtime.0 {
            Some(rt) => rt.spawn(upload),
            None => tokio::spawn(upload),
        }
    }

    /// How many part uploads (started by [`OffloadBudget::spawn_upload`]) are running now,
    /// broker-wide; those waiting for the upload rate count.
    pub fn parts_uploading(&self) -> usize {
        self.parts_uploading.load(Ordering::Relaxed)
    }

    /// The uploads' runtime, for other background work of an offload (its source's reads).
    pub fn background(&self) -> Option<tokio::runtime::Handle> {
        self.runtime.0.as_ref().map(|rt| rt.handle().clone())
    }

    /// Runs `build` (a block's copy: CPU and fresh memory) on a blocking thread of the uploads'
    /// runtime, whose threads yield the CPUs to the broker's own.
    pub fn spawn_build<F, R>(&self, build: F) -> tokio::task::JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        match &self.runtime.0 {
            Some(rt) => rt.spawn_blocking(build),
            None => tokio::task::spawn_blocking(build),
        }
    }

    /// Waits for a ledger's turn; the offload holds it until it ends, or under an upload rate
    /// until it has read its last block (its last parts still uploading at the rate).
    pub async fn ledger(&self) -> LedgerTurn {
        // The semaphores are never closed, so acquiring cannot fail.
        match Arc::clone(&self.ledgers).acquire_owned().await {
            Ok(permit) => LedgerTurn {
                budget: self.clone(),
                _permit: permit,
                _topic_read: None,
            },
            Err(_) => unreachable_closed(),
        }
    }

    /// [`Self::ledger`] for ledger `ledger_id` under a rate: first its turn in its topic's read
    /// line (after the topic's older ledgers have read theirs: [`TopicOrder`]), then the
    /// broker's turn, so that a ledger waiting for its topic holds no turn other topics need.
    pub async fn ledger_in_order(&self, topic: &TopicOrder, ledger_id: i64) -> LedgerTurn {
        let topic_read = topic.reads.turn(ledger_id, 0).await;
        LedgerTurn {
            _topic_read: Some(topic_read),
            ..self.ledger().await
        }
    }

    /// Waits for room for one more block; released when its part is uploaded (or dropped).
    pub async fn part(&self) -> OwnedSemaphorePermit {
        match Arc::clone(&self.parts).acquire_owned().await {
            Ok(p) => p,
            Err(_) => unreachable_closed(),
        }
    }
}

/// One ledger's turn to read (see [`OffloadBudget::ledger`]), with the budget it belongs to.
#[derive(Debug)]
pub struct LedgerTurn {
    budget: OffloadBudget,
    _permit: OwnedSemaphorePermit,
    /// Under a rate, the ledger's turn in its topic's read line, released with the rest.
    _topic_read: Option<Turn>,
}

impl LedgerTurn {
    pub fn budget(&self) -> &OffloadBudget {
        &self.budget
    }
}

impl Default for OffloadBudget {
    /// Pulsar's `managedLedgerOffloadMaxThreads` (2), each with tierlog's default of 4 parts in
    /// flight plus the one being built.
    fn default() -> Self {
        OffloadBudget::new(2, 2 * 5)
    }
}

/// Counts one part upload for as long as it lives (also when its task is aborted).
struct PartUploading(Arc<AtomicUsize>);

impl PartUploading {
    fn start(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        PartUploading(Arc::clone(count))
    }
}

impl Drop for PartUploading {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How much lower than the broker's the offload threads' CPU priority is (Linux's per-thread
/// nice value).
const UPLOAD_NICENESS: i32 = 10;

/// The runtime part uploads run on (`None` if it could not be started: they run on the
/// caller's, as before).
#[derive(Debug)]
struct UploadRuntime(Option<tokio::runtime::Runtime>);

impl UploadRuntime {
    fn new(threads: usize) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("tierlog-offload")
            // Background work: when the CPUs are busy, the broker's own threads go first.
            .on_thread_start(|| {
                if let Err(e) = rustix::process::nice(UPLOAD_NICENESS) {
                    tracing::debug!(error = %e, "could not lower the offload thread's priority");
                }
            })
            .enable_all()
            .build();
        match rt {
            Ok(rt) => UploadRuntime(Some(rt)),
            Err(e) => {
                tracing::warn!(error = %e, "could not start the offload threads; uploads share the broker's");
                UploadRuntime(None)
            }
        }
    }
}

impl Drop for UploadRuntime {
    fn drop(&mut self) {
        // May be dropped inside another runtime, where waiting for its threads is not allowed.
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

#[cold]
fn unreachable_closed() -> ! {
    // Only `Semaphore::close` makes acquiring fail, and nothing here calls it.
    panic!("offload budget semaphore closed")
}

//! The single writer of an open ledger, with group commit.
//!
//! `append` encodes the record into the ledger's pending batch and returns at once with a
//! [`PendingAppend`] that resolves when the entry is durable. Two threads per open ledger form a
//! pipeline: the flusher takes the whole pending batch and writes it with one `pwrite`; the
//! syncer takes every batch written so far, makes them durable with one `fdatasync` and completes
//! their waiters in entry order. The copy of one batch into the page cache thus overlaps the
//! fsync of the previous ones (the flusher spent ~70 % of its time waiting on fsync before), and
//! while either runs new appends collect in the next batch, so many appends share one fsync.
//!
//! Memory is bounded: every append first takes permits (bytes) from a per-ledger budget that the
//! flusher gives back after the batch is durable; a full budget makes `append` wait.
//!
//! Crash windows: a record is acknowledged only after the fsync that covers it returned; a crash
//! before that can leave it torn or partly written, which start-up recovery truncates.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};

use bytes::Bytes;
use tokio::sync::{Semaphore, oneshot};

use crate::error::{HotTierError, Result};
use crate::files;
use crate::format::{FILE_HEADER_LEN, RECORD_HEADER_LEN, encode_footer, encode_record};
use crate::read::EntryIndex;

struct Waiter {
    entry_id: u64,
    tx: oneshot::Sender<Result<u64>>,
}

#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    waiters: Vec<Waiter>,
    offsets: Vec<u64>,
    payload_bytes: u64,
    permits: usize,
}

/// Batches written but not yet covered by an fsync, handed from the flusher to the syncer.
#[derive(Default)]
struct SyncQueue {
    /// (batch without its bytes, file offset where it ends), in file order.
    written: Vec<(Batch, u64)>,
    /// The flusher has stopped: the syncer drains the queue and ends.
    done: bool,
}

/// Why a ledger stopped taking appends.
#[derive(Debug, Clone)]
struct Failure {
    reason: String,
    out_of_space: bool,
}

impl Failure {
    fn of(what: String, e: &std::io::Error) -> Failure {
        Failure {
            reason: format!("{what}: {e}"),
            out_of_space: crate::error::out_of_space(e),
        }
    }

    fn plain(reason: String) -> Failure {
        Failure {
            reason,
            out_of_space: false,
        }
    }

    fn error(&self, ledger_id: u64) -> HotTierError {
        HotTierError::LedgerFailed {
            ledger_id,
            reason: self.reason.clone(),
            out_of_space: self.out_of_space,
        }
    }
}

struct WriterState {
    next_entry_id: u64,
    /// File position where the next record will be placed (after everything pending).
    next_offset: u64,
    batch: Batch,
    /// The previous batch's buffer, cleared, for the next batch: reusing it spares a fresh
    /// multi-megabyte allocation (and its page faults) per group commit.
    spare: Vec<u8>,
    failed: Option<Failure>,
    /// Set once `seal` was called: no more appends; the flusher seals when the batch is drained.
    seal_requested: Option<oneshot::Sender<Result<EntryIndex>>>,
    closing: bool,
}

/// An open ledger: shared by its writer, its flusher thread and readers.
pub(crate) struct OpenLedger {
    pub id: u64,
    dir: PathBuf,
    pub path: PathBuf,
    pub file: File,
    state: Mutex<WriterState>,
    wake: Condvar,
    /// Entries known durable; readers see exactly these.
    pub durable: RwLock<EntryIndex>,
    budget: Semaphore,
    budget_bytes: usize,
    max_entry_bytes: usize,
    /// Batches made durable so far (each one `fdatasync`).
    fsyncs: AtomicU64,
    sync: Mutex<SyncQueue>,
    sync_wake: Condvar,
}

impl OpenLedger {
    /// Creates the file (header fsynced, directory entry fsynced) and starts the flusher thread.
    pub fn create(
        dir: PathBuf,
        id: u64,
        max_entry_bytes: usize,
        budget_bytes: usize,
    ) -> Result<Arc<Self>> {
        use std::io::Write;
        let path = files::open_path(&dir, id);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => HotTierError::LedgerExists(id),
                _ => HotTierError::io("create", &path, e),
            })?;
        file.write_all(&crate::format::encode_file_header(id))
            .and_then(|_| file.sync_data())
            .map_err(|e| HotTierError::io("write header", &path, e))?;
        files::fsync_dir(&dir)?;
        let ledger = Arc::new(OpenLedger {
            id,
            dir,
            path,
            file,
            state: Mutex::new(WriterState {
                next_entry_id: 0,
                next_offset: FILE_HEADER_LEN,
                batch: Batch::default(),
                spare: Vec::new(),
                failed: None,
                seal_requested: None,
                closing: false,
            }),
            wake: Condvar::new(),
            durable: RwLock::new(EntryIndex {
                offsets: Vec::new(),
                data_end: FILE_HEADER_LEN,
                payload_bytes: 0,
            }),
            budget: Semaphore::new(budget_bytes),
            budget_bytes,
            max_entry_bytes,
            fsyncs: AtomicU64::new(0),
            sync: Mutex::new(SyncQueue::default()),
            sync_wake: Condvar::new(),
        });
        let flusher = Arc::clone(&ledger);
        std::thread::Builder::new()
            .name(format!("ledger-{id}-flush"))
            .spawn(move || flusher.flush_loop())
            .map_err(|e| HotTierError::io("spawn flusher thread", "", e))?;
        Ok(ledger)
    }

    fn lock_state(&self) -> MutexGuard<'_, WriterState> {
        // A panic while holding the lock cannot leave the batch half-updated in a way that matters
        // more than losing the process, so a poisoned lock is simply taken over.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn append(&self, payload: Bytes) -> Result<PendingAppend> {
        if payload.len() > self.max_entry_bytes {
            return Err(HotTierError::EntryTooLarge {
                size: payload.len(),
                max: self.max_entry_bytes,
            });
        }
        let record_len = RECORD_HEADER_LEN + payload.len();
        let permits = record_len.min(self.budget_bytes);
        let permit = self
            .budget
            .acquire_many(permits as u32)
            .await
            .map_err(|_| HotTierError::Sealed(self.id))?;
        permit.forget();
        let (tx, rx) = oneshot::channel();
        let mut st = self.lock_state();
        if let Some(failure) = &st.failed {
            let e = failure.error(self.id);
            drop(st);
            self.budget.add_permits(permits);
            return Err(e);
        }
        if st.seal_requested.is_some() || st.closing {
            drop(st);
            self.budget.add_permits(permits);
            return Err(HotTierError::Sealed(self.id));
        }
        let entry_id = st.next_entry_id;
        st.next_entry_id += 1;
        let offset = st.next_offset;
        st.next_offset += record_len as u64;
        let batch = &mut st.batch;
        encode_record(&mut batch.bytes, entry_id, &payload);
        batch.offsets.push(offset);
        batch.payload_bytes += payload.len() as u64;
        batch.permits += permits;
        batch.waiters.push(Waiter { entry_id, tx });
        drop(st);
        self.wake.notify_one();
        Ok(PendingAppend {
            ledger_id: self.id,
            entry_id,
            rx,
        })
    }

    fn lock_sync(&self) -> MutexGuard<'_, SyncQueue> {
        self.sync.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fails every waiter of `batches` (and gives their budget back).
    fn fail_batches(&self, batches: impl IntoIterator<Item = Batch>, failure: &Failure) {
        for b in batches {
            self.budget.add_permits(b.permits);
            for w in b.waiters {
                let _ = w.tx.send(Err(failure.error(self.id)));
            }
        }
    }

    /// Marks the ledger failed and fails what is pending; returns the failure.
    fn fail(&self, failure: Failure) -> Failure {
        if failure.out_of_space {
            // Expected while a disk is full; the managed ledger reports it once.
            tracing::debug!(ledger_id = self.id, reason = %failure.reason, "ledger write failed: no space");
        } else {
            tracing::error!(ledger_id = self.id, reason = %failure.reason, "ledger write failed");
        }
        let mut st = self.lock_state();
        let failure = st.failed.get_or_insert(failure).clone();
        // Nothing after a failed write or fsync can be trusted: fail what is pending too.
        let rest = std::mem::take(&mut st.batch);
        drop(st);
        self.fail_batches([rest], &failure);
        failure
    }

    /// Stage 1: writes each pending batch into the file and hands it to the syncer.
    fn flush_loop(self: Arc<Self>) {
        let syncer = {
            let me = Arc::clone(&self);
            std::thread::Builder::new()
                .name(format!("ledger-{}-sync", self.id))
                .spawn(move || me.sync_loop())
        };
        let syncer = match syncer {
            Ok(h) => Some(h),
            Err(e) => {
                self.fail(Failure::plain(format!("spawning the sync thread: {e}")));
                None
            }
        };
        let seal_reply = loop {
            let (mut batch, start, failed) = {
                let mut st = self.lock_state();
                while st.batch.waiters.is_empty() && st.seal_requested.is_none() && !st.closing {
                    st = self.wake.wait(st).unwrap_or_else(|p| p.into_inner());
                }
                if st.batch.waiters.is_empty() {
                    break st.seal_requested.take();
                }
                let batch = std::mem::take(&mut st.batch);
                st.batch.bytes = std::mem::take(&mut st.spare);
                let start = st.next_offset - batch.bytes.len() as u64;
                (batch, start, st.failed.clone())
            };
            if let Some(failure) = failed {
                self.fail_batches([batch], &failure);
                continue;
            }
            let written = self.file.write_all_at(&batch.bytes, start);
            let end = start + batch.bytes.len() as u64;
            let mut bytes = std::mem::take(&mut batch.bytes);
            // Bounded so an idle ledger holds at most 16 MiB it does not use.
            if bytes.capacity() <= 16 << 20 {
                bytes.clear();
                let mut st = self.lock_state();
                if st.spare.capacity() < bytes.capacity() {
                    st.spare = bytes;
                }
            }
            match written {
                Ok(()) => {
                    self.lock_sync().written.push((batch, end));
                    self.sync_wake.notify_one();
                }
                Err(e) => {
                    let failure =
                        self.fail(Failure::of(format!("write of {}", self.path.display()), &e));
                    self.fail_batches([batch], &failure);
                }
            }
        };
        // Everything written must be durable before the ledger seals or closes.
        self.lock_sync().done = true;
        self.sync_wake.notify_one();
        if let Some(h) = syncer {
            let _ = h.join();
        }
        if let Some(reply) = seal_reply {
            let failed = self.lock_state().failed.clone();
            let result = match failed {
                Some(failure) => Err(failure.error(self.id)),
                None => self.write_footer_and_rename(),
            };
            let _ = reply.send(result);
        }
        self.budget.close();
    }

    /// Stage 2: one `fdatasync` covers every batch written so far; then their waiters complete.
    fn sync_loop(self: Arc<Self>) {
        let mut failed: Option<Failure> = None;
        loop {
            let written = {
                let mut q = self.lock_sync();
                while q.written.is_empty() && !q.done {
                    q = self.sync_wake.wait(q).unwrap_or_else(|p| p.into_inner());
                }
                if q.written.is_empty() {
                    return;
                }
                std::mem::take(&mut q.written)
            };
            if let Some(reason) = &failed {
                self.fail_batches(written.into_iter().map(|(b, _)| b), reason);
                continue;
            }
            match self.file.sync_data() {
                Ok(()) => {
                    self.fsyncs.fetch_add(1, Ordering::Relaxed);
                    {
                        let mut durable = self.durable.write().unwrap_or_else(|p| p.into_inner());
                        for (b, end) in &written {
                            durable.offsets.extend_from_slice(&b.offsets);
                            durable.data_end = *end;
                            durable.payload_bytes += b.payload_bytes;
                        }
                    }
                    for (b, _) in written {
                        for w in b.waiters {
                            let _ = w.tx.send(Ok(w.entry_id));
                        }
                        self.budget.add_permits(b.permits);
                    }
                }
                Err(e) => {
                    let failure =
                        self.fail(Failure::of(format!("fsync of {}", self.path.display()), &e));
                    self.fail_batches(written.into_iter().map(|(b, _)| b), &failure);
                    failed = Some(failure);
                }
            }
        }
    }

    /// Runs on the flusher thread once every append is durable.
    fn write_footer_and_rename(&self) -> Result<EntryIndex> {
        let index = self
            .durable
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let footer = encode_footer(&index.offsets);
        self.file
            .write_all_at(&footer, index.data_end)
            .and_then(|_| self.file.set_len(index.data_end + footer.len() as u64))
            .and_then(|_| self.file.sync_all())
            .map_err(|e| HotTierError::io("write footer", &self.path, e))?;
        let sealed = files::sealed_path(&self.dir, self.id);
        std::fs::rename(&self.path, &sealed)
            .map_err(|e| HotTierError::io("rename", &self.path, e))?;
        files::fsync_dir(&self.dir)?;
        Ok(index)
    }

    fn request_seal(&self) -> oneshot::Receiver<Result<EntryIndex>> {
        let (tx, rx) = oneshot::channel();
        let mut st = self.lock_state();
        if st.seal_requested.is_some() || st.closing {
            drop(st);
            let _ = tx.send(Err(HotTierError::Sealed(self.id)));
            return rx;
        }
        st.seal_requested = Some(tx);
        drop(st);
        self.wake.notify_one();
        rx
    }

    /// Stops the flusher after the pending batch without sealing (the file stays `.open`).
    fn close_unsealed(&self) {
        let mut st = self.lock_state();
        st.closing = true;
        drop(st);
        self.wake.notify_one();
    }
}

/// An append that was accepted; resolves to its entry id once the entry is durable.
#[must_use = "an append is only acknowledged when its PendingAppend resolves"]
pub struct PendingAppend {
    ledger_id: u64,
    entry_id: u64,
    rx: oneshot::Receiver<Result<u64>>,
}

impl PendingAppend {
    /// The id the entry will have (known before it is durable).
    pub fn entry_id(&self) -> u64 {
        self.entry_id
    }
}

impl std::future::Future for PendingAppend {
    type Output = Result<u64>;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let ledger_id = self.ledger_id;
        std::pin::Pin::new(&mut self.rx).poll(cx).map(|r| {
            r.unwrap_or_else(|_| {
                Err(HotTierError::LedgerFailed {
                    ledger_id,
                    reason: "flusher stopped before the entry was durable".into(),
                    out_of_space: false,
                })
            })
        })
    }
}

/// What sealing a ledger produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedLedger {
    pub ledger_id: u64,
    /// Number of entries (ids 0..entries).
    pub entries: u64,
    /// Sum of payload bytes.
    pub size_bytes: u64,
}

/// The one writer of an open ledger.
pub struct LedgerWriter {
    pub(crate) ledger: Arc<OpenLedger>,
    pub(crate) on_sealed: Box<dyn Fn(u64) + Send + Sync>,
}

impl LedgerWriter {
    pub fn ledger_id(&self) -> u64 {
        self.ledger.id
    }

    /// Queues `payload` as the next entry. Waits only while the ledger's memory budget is full.
    pub async fn append(&self, payload: Bytes) -> Result<PendingAppend> {
        self.ledger.append(payload).await
    }

    /// Entries accepted so far (durable or pending).
    pub fn entries_accepted(&self) -> u64 {
        self.ledger.lock_state().next_entry_id
    }

    /// Durable entries and payload bytes.
    pub fn durable_stats(&self) -> (u64, u64) {
        let d = self
            .ledger
            .durable
            .read()
            .unwrap_or_else(|p| p.into_inner());
        (d.offsets.len() as u64, d.payload_bytes)
    }

    /// How many group commits (one `fdatasync` each) this ledger has made.
    pub fn fsync_count(&self) -> u64 {
        self.ledger.fsyncs.load(Ordering::Relaxed)
    }

    /// Waits for every accepted append, then makes the ledger immutable (footer + rename, fsynced).
    pub async fn seal(self) -> Result<SealedLedger> {
        let rx = self.ledger.request_seal();
        let index = rx.await.unwrap_or_else(|_| {
            Err(HotTierError::LedgerFailed {
                ledger_id: self.ledger.id,
                reason: "flusher stopped during seal".into(),
                out_of_space: false,
            })
        })?;
        (self.on_sealed)(self.ledger.id);
        Ok(SealedLedger {
            ledger_id: self.ledger.id,
            entries: index.offsets.len() as u64,
            size_bytes: index.payload_bytes,
        })
    }
}

impl Drop for LedgerWriter {
    fn drop(&mut self) {
        // Dropped without `seal` (shutdown or crash simulation): stop the flusher after what is
        // pending; the file stays `.open` and start-up recovery seals it.
        self.ledger.close_unsealed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_append_abandoned_by_its_flusher_names_its_ledger() {
        let (tx, rx) = oneshot::channel();
        let pending = PendingAppend {
            ledger_id: 7,
            entry_id: 3,
            rx,
        };
        drop(tx);
        match pending.await {
            Err(HotTierError::LedgerFailed {
                ledger_id, reason, ..
            }) => {
                assert_eq!(ledger_id, 7, "the ledger, not the entry id 3");
                assert!(reason.contains("flusher stopped"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
}

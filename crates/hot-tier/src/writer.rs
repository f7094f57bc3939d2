//! The single writer of an open ledger.
//!
//! `append` gives the ledger's next entry id and file position to the record and queues it in
//! the store's journal, which makes it durable together with the appends of every other ledger
//! (group commit) and resolves its [`PendingAppend`] in entry order. An open ledger owns no
//! thread: its file, its write cache (journaled records not yet in the file), its durable index
//! for readers and its failure state.
//!
//! Memory is bounded by the journal's budget: every append first takes permits (bytes) that are
//! given back once its round is settled; a full budget makes `append` wait.

use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::error::{HotTierError, Result};
use crate::files;
use crate::format::{FILE_HEADER_LEN, RECORD_HEADER_LEN, encode_footer};
use crate::journal::{SealJob, Shared};
use crate::read::EntryIndex;

/// Why a ledger stopped taking appends.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    reason: String,
    out_of_space: bool,
}

impl Failure {
    pub fn of(what: String, e: &std::io::Error) -> Failure {
        Failure {
            reason: format!("{what}: {e}"),
            out_of_space: crate::error::out_of_space(e),
        }
    }

    pub fn plain(reason: String) -> Failure {
        Failure {
            reason,
            out_of_space: false,
        }
    }

    pub fn from_error(e: &HotTierError) -> Failure {
        Failure {
            reason: e.to_string(),
            out_of_space: e.is_out_of_space(),
        }
    }

    pub fn error(&self, ledger_id: u64) -> HotTierError {
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
    failed: Option<Failure>,
    /// `seal` was called, or the writer dropped: no more appends.
    closed: bool,
}

/// Records made durable by the journal but not yet written to the ledger's file: the bytes
/// `[base, base + bytes)` of the file, in order. The file holds everything before `base`.
#[derive(Default)]
struct WriteCache {
    base: u64,
    segments: VecDeque<Bytes>,
    bytes: u64,
}

/// An open ledger: shared by its writer, the journal's threads and readers.
pub(crate) struct OpenLedger {
    pub id: u64,
    dir: PathBuf,
    pub path: PathBuf,
    pub file: File,
    state: Mutex<WriterState>,
    /// Entries known durable; readers see exactly these.
    pub durable: RwLock<EntryIndex>,
    max_entry_bytes: usize,
    /// Group commits that made entries of this ledger durable.
    rounds: AtomicU64,
    cache: Mutex<WriteCache>,
    /// Held while the cache is written to the file (by the checkpoint, a direct write or the
    /// seal), so that one writer at a time moves it; this ledger's only.
    flush: Mutex<()>,
}

impl OpenLedger {
    /// Creates the file with its header. Not fsynced here: the journal fsyncs the directory (and
    /// the file's records) before the first append of the ledger is acknowledged; a ledger lost
    /// by a crash before that held nothing acknowledged.
    pub fn create(dir: PathBuf, id: u64, max_entry_bytes: usize) -> Result<Arc<Self>> {
        let path = files::open_path(&dir, id);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => HotTierError::LedgerExists(id),
                _ => HotTierError::io("create", &path, e),
            })?;
        file.write_all_at(&crate::format::encode_file_header(id), 0)
            .map_err(|e| HotTierError::io("write header", &path, e))?;
        Ok(Arc::new(OpenLedger {
            id,
            dir,
            path,
            file,
            state: Mutex::new(WriterState {
                next_entry_id: 0,
                next_offset: FILE_HEADER_LEN,
                failed: None,
                closed: false,
            }),
            durable: RwLock::new(EntryIndex {
                offsets: Vec::new(),
                data_end: FILE_HEADER_LEN,
                payload_bytes: 0,
            }),
            max_entry_bytes,
            rounds: AtomicU64::new(0),
            cache: Mutex::new(WriteCache {
                base: FILE_HEADER_LEN,
                ..WriteCache::default()
            }),
            flush: Mutex::new(()),
        }))
    }

    fn lock_cache(&self) -> MutexGuard<'_, WriteCache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Journaled records `[start, start + bytes.len())` wait in memory for the next checkpoint.
    pub fn cache_append(&self, bytes: Bytes) {
        let mut c = self.lock_cache();
        c.bytes += bytes.len() as u64;
        c.segments.push_back(bytes);
    }

    /// Writes the cached records into the file (no fsync); returns how many bytes it wrote.
    pub fn flush_cache(&self) -> std::io::Result<u64> {
        let _one_writer = self.flush.lock().unwrap_or_else(|p| p.into_inner());
        self.flush_cache_locked()
    }

    fn flush_cache_locked(&self) -> std::io::Result<u64> {
        // Readers keep using the cache while its bytes are written: they leave it only after.
        let (base, segments): (u64, Vec<Bytes>) = {
            let c = self.lock_cache();
            (c.base, c.segments.iter().cloned().collect())
        };
        crate::files::write_all_vectored_at(&self.file, &segments, base)?;
        let at = base + segments.iter().map(|s| s.len() as u64).sum::<u64>();
        let mut c = self.lock_cache();
        for _ in 0..segments.len() {
            c.segments.pop_front();
        }
        c.base = at;
        c.bytes -= at - base;
        Ok(at - base)
    }

    /// Writes a round's records straight into the file at `start`, after what the cache held (so
    /// the file has no gap for its fsync to cover); returns the cached bytes it wrote first.
    pub fn write_direct(&self, start: u64, bytes: &[u8]) -> std::io::Result<u64> {
        let _one_writer = self.flush.lock().unwrap_or_else(|p| p.into_inner());
        let flushed = self.flush_cache_locked()?;
        self.file.write_all_at(bytes, start)?;
        let mut c = self.lock_cache();
        c.base = start + bytes.len() as u64;
        Ok(flushed)
    }

    /// Reads durable entries `first..=last`: from the file, and from the cache where the file
    /// does not have them yet.
    pub fn read(&self, first: u64, last: u64, max_bytes: usize) -> Result<Vec<Bytes>> {
        let index = self
            .durable
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        // Taken after the index: every record the index names is in the file or in here.
        let (base, segments): (u64, Vec<Bytes>) = {
            let c = self.lock_cache();
            (c.base, c.segments.iter().cloned().collect())
        };
        crate::read::read_range_with(
            self.id,
            &index,
            first,
            last,
            max_bytes,
            |buf, start, len| {
                let end = start + len as u64;
                if start < base {
                    let in_file = (base.min(end) - start) as usize;
                    crate::read::read_exact_into(&self.file, &self.path, buf, start, in_file)?;
                }
                let mut at = base;
                for seg in &segments {
                    let (lo, hi) = (at.max(start), (at + seg.len() as u64).min(end));
                    if lo < hi {
                        buf.extend_from_slice(&seg[(lo - at) as usize..(hi - at) as usize]);
                    }
                    at += seg.len() as u64;
                }
                if end > at.max(base) {
                    return Err(HotTierError::Corrupt {
                        ledger_id: self.id,
                        detail: format!(
                            "bytes {start}..{end} are neither in the file nor in memory"
                        ),
                    });
                }
                Ok(())
            },
        )
    }

    fn lock_state(&self) -> MutexGuard<'_, WriterState> {
        // A panic while holding the lock cannot leave the state half-updated in a way that
        // matters more than losing the process, so a poisoned lock is simply taken over.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn append(self: &Arc<Self>, journal: &Shared, payload: Bytes) -> Result<PendingAppend> {
        if payload.len() > self.max_entry_bytes {
            return Err(HotTierError::EntryTooLarge {
                size: payload.len(),
                max: self.max_entry_bytes,
            });
        }
        let record_len = RECORD_HEADER_LEN + payload.len();
        let permits = record_len.min(journal.budget_bytes);
        let permit = journal
            .budget
            .acquire_many(permits as u32)
            .await
            .map_err(|_| HotTierError::Sealed(self.id))?;
        permit.forget();
        let (tx, rx) = oneshot::channel();
        let mut st = self.lock_state();
        let refused = if let Some(failure) = &st.failed {
            Some(failure.error(self.id))
        } else if st.closed {
            Some(HotTierError::Sealed(self.id))
        } else {
            None
        };
        if let Some(e) = refused {
            drop(st);
            journal.budget.add_permits(permits);
            return Err(e);
        }
        let entry_id = st.next_entry_id;
        let offset = st.next_offset;
        // Queued under the ledger's lock: its records enter the journal in entry order.
        if journal
            .enqueue(self, offset, entry_id, &payload, permits, tx)
            .is_err()
        {
            drop(st);
            journal.budget.add_permits(permits);
            return Err(Failure::plain("the ledger store was closed".into()).error(self.id));
        }
        st.next_entry_id += 1;
        st.next_offset += record_len as u64;
        drop(st);
        Ok(PendingAppend {
            ledger_id: self.id,
            entry_id,
            rx,
        })
    }

    pub fn failure(&self) -> Option<Failure> {
        self.lock_state().failed.clone()
    }

    /// Marks the ledger failed (the first failure stays) and returns the failure it keeps.
    pub fn fail(&self, failure: Failure) -> Failure {
        let mut st = self.lock_state();
        if st.failed.is_none() {
            if failure.out_of_space {
                // Expected while a disk is full; the managed ledger reports it once.
                tracing::debug!(ledger_id = self.id, reason = %failure.reason, "ledger write failed: no space");
            } else {
                tracing::error!(ledger_id = self.id, reason = %failure.reason, "ledger write failed");
            }
        }
        st.failed.get_or_insert(failure).clone()
    }

    /// Records in `offsets` (ending at `end`) are durable: readers may see them.
    pub fn made_durable(&self, end: u64, offsets: &[u64], payload_bytes: u64) {
        let mut d = self.durable.write().unwrap_or_else(|p| p.into_inner());
        d.offsets.extend_from_slice(offsets);
        d.data_end = end;
        d.payload_bytes += payload_bytes;
        drop(d);
        self.rounds.fetch_add(1, Ordering::Relaxed);
    }

    /// Runs on the seal thread once every append before the seal is settled: writes the footer,
    /// makes the file durable (its journaled records included) and renames it `.sealed`.
    pub fn seal_file(&self) -> Result<EntryIndex> {
        if let Some(failure) = self.failure() {
            return Err(failure.error(self.id));
        }
        let index = self
            .durable
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        self.flush_cache()
            .map_err(|e| HotTierError::io("write cached records", &self.path, e))?;
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

    /// No more appends (seal requested, or the writer dropped). True if it was open until now.
    fn close(&self) -> bool {
        let mut st = self.lock_state();
        !std::mem::replace(&mut st.closed, true)
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
                    reason: "the ledger store stopped before the entry was durable".into(),
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
    pub(crate) journal: Arc<Shared>,
    pub(crate) on_sealed: Box<dyn Fn(u64) + Send + Sync>,
}

impl LedgerWriter {
    pub fn ledger_id(&self) -> u64 {
        self.ledger.id
    }

    /// Queues `payload` as the next entry. Waits only while the store's memory budget is full.
    pub async fn append(&self, payload: Bytes) -> Result<PendingAppend> {
        self.ledger.append(&self.journal, payload).await
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

    /// How many group commits made entries of this ledger durable.
    pub fn fsync_count(&self) -> u64 {
        self.ledger.rounds.load(Ordering::Relaxed)
    }

    /// Waits for every accepted append, then makes the ledger immutable (footer + rename, fsynced).
    pub async fn seal(self) -> Result<SealedLedger> {
        let id = self.ledger.id;
        if !self.ledger.close() {
            return Err(HotTierError::Sealed(id));
        }
        let (reply, rx) = oneshot::channel();
        let job = SealJob {
            ledger: Arc::clone(&self.ledger),
            reply,
        };
        if let Err(job) = self.journal.enqueue_seal(job) {
            let _ = job.reply.send(Err(
                Failure::plain("the ledger store was closed".into()).error(id)
            ));
        }
        let index = rx.await.unwrap_or_else(|_| {
            Err(HotTierError::LedgerFailed {
                ledger_id: id,
                reason: "the ledger store stopped during the seal".into(),
                out_of_space: false,
            })
        })?;
        (self.on_sealed)(id);
        Ok(SealedLedger {
            ledger_id: id,
            entries: index.offsets.len() as u64,
            size_bytes: index.payload_bytes,
        })
    }
}

impl Drop for LedgerWriter {
    fn drop(&mut self) {
        // Dropped without `seal` (shutdown or crash simulation): what is pending still becomes
        // durable; the file stays `.open` and start-up recovery seals it.
        self.ledger.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_append_abandoned_by_the_store_names_its_ledger() {
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
                assert!(reason.contains("store stopped"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
}

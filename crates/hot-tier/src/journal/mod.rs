//! The store's journal: one group commit for the appends of every open ledger.
//!
//! BookKeeper's split, kept small: appends of all ledgers collect in one pending batch; a
//! *flusher* thread takes the whole batch and, per ledger, either
//! - **journals** it: its records go into the journal file as one chunk (one `pwrite` for the
//!   whole round) and into the ledger's *write cache* in memory, or
//! - **writes it directly** (the ledger brings at least `direct_write_min_bytes` to the round,
//!   at most `max_direct_per_round` ledgers, the largest; or it is the round's only ledger): the
//!   ledger's cache and then its records go into its own file, which the round fsyncs (a busy
//!   ledger pays no second copy);
//!
//! then hands the round to a *syncer* thread that makes it durable (one `fdatasync` of the
//! journal, one per directly written ledger, one of the ledger directory if ledger files were
//! created since the last round) and only then completes the round's appends, in order. While
//! either thread works, new appends collect in the next batch. The [`checkpoint`] thread writes
//! the write caches into their files, `syncfs`es them and trims the journal. Four threads serve
//! the whole store (flusher, syncer, checkpoint, and one that seals ledgers off the commit path),
//! whatever the number of ledgers; a round costs one journal write and at most
//! `max_direct_per_round` ledger writes, however many ledgers it carries.
//!
//! Crash windows:
//! - an append is acknowledged only after every fsync covering it returned: the journal's (its
//!   chunk) or its ledger file's (direct writes, which also cover the ledger's earlier journaled
//!   records: the cache is written to the file before a direct write);
//! - a journaled record reaches its ledger file only at a checkpoint (or with a later direct
//!   write, or the seal), and the checkpoint that lets the journal before it go is written only
//!   after `syncfs` made those writes durable; start-up replays the journal from the last
//!   checkpoint into the ledger files ([`crate::replay`]);
//! - a journal write or fsync that fails fails the appends of its round that depend on it and
//!   retires the journal file: later rounds go to a new file (rounds already written into the
//!   failed file fail too: after a failed fsync the kernel may have dropped their pages), so a
//!   damaged stretch is only ever at the end of a file, where replay stops reading that file.
//!
//! [`checkpoint`]: crate::checkpoint

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use smallvec::SmallVec;
use tokio::sync::{Semaphore, oneshot};

use crate::deleter::Deleter;
use crate::error::{HotTierError, Result};
use crate::files;
use crate::format::{JOURNAL_HEADER_LEN, encode_journal_header};
use crate::read::EntryIndex;
use crate::writer::{Failure, OpenLedger};

mod flush;
mod sync;

/// How the journal batches and where it writes.
#[derive(Debug, Clone)]
pub(crate) struct JournalOptions {
    pub dir: PathBuf,
    pub ledger_dir: PathBuf,
    pub file_bytes: u64,
    pub direct_write_min_bytes: usize,
    pub max_direct_per_round: usize,
    pub direct_when_alone: bool,
    pub write_cache_bytes: u64,
    pub max_pending_bytes: usize,
    pub checkpoint_interval: Duration,
    pub checkpoint_journal_bytes: u64,
}

/// Where the journal is durable up to: the end of the last round synced into file `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Position {
    pub seq: u64,
    pub offset: u64,
}

/// An append waiting for its round.
pub(crate) struct Waiter {
    pub entry_id: u64,
    pub tx: oneshot::Sender<Result<u64>>,
}

/// One ledger's appends of a round: records contiguous in its file from `start`.
pub(crate) struct LedgerBatch {
    pub ledger: Arc<OpenLedger>,
    pub start: u64,
    /// Where the batch's records end in the file.
    pub end: u64,
    pub bytes: Vec<u8>,
    /// Inline for the usual few entries: at thousands of ledgers a round most bring one, and
    /// two allocations per append showed in profiles.
    pub offsets: SmallVec<[u64; 2]>,
    pub payload_bytes: u64,
    pub waiters: SmallVec<[Waiter; 2]>,
    pub permits: usize,
}

/// A ledger to seal once everything appended to it before is settled.
pub(crate) struct SealJob {
    pub ledger: Arc<OpenLedger>,
    pub reply: oneshot::Sender<Result<EntryIndex>>,
}

#[derive(Default)]
struct Pending {
    ledgers: HashMap<u64, LedgerBatch>,
    seals: Vec<SealJob>,
    closed: bool,
}

impl Pending {
    /// Nothing for the flusher: it waits for this to change.
    fn is_empty(&self) -> bool {
        self.ledgers.is_empty() && self.seals.is_empty()
    }
}

/// A journal file and whether it can still be trusted.
struct JournalFile {
    seq: u64,
    path: PathBuf,
    file: File,
    /// A write or fsync into it failed: nothing written into it after that is durable.
    retired: AtomicBool,
}

/// A round written by the flusher, for the syncer.
struct Round {
    /// The journal file this round's chunks went to, and where they end.
    journal: Option<(Arc<JournalFile>, u64)>,
    journaled: Vec<LedgerBatch>,
    direct: Vec<LedgerBatch>,
    dir_sync: bool,
    seals: Vec<SealJob>,
}

#[derive(Default)]
struct SyncQueue {
    rounds: Vec<Round>,
    done: bool,
}

pub(crate) struct Shared {
    pub options: JournalOptions,
    pending: Mutex<Pending>,
    wake: Condvar,
    /// Bytes accepted but not yet settled (back-pressure on appends).
    pub budget: Semaphore,
    pub budget_bytes: usize,
    sync: Mutex<SyncQueue>,
    sync_wake: Condvar,
    /// The syncer took the queued rounds: the flusher may write the next one.
    sync_taken: Condvar,
    /// Ledger files created since the last round: the directory needs an fsync.
    dir_dirty: AtomicBool,
    /// The journal is durable up to here (every ledger-file write before it is done).
    synced: Mutex<Position>,
    /// Journal bytes written since the last checkpoint, to trigger the next one early.
    pub bytes_since_checkpoint: AtomicU64,
    /// Ledgers whose write cache holds records, and the bytes all caches hold.
    pub dirty: Mutex<HashMap<u64, Arc<OpenLedger>>>,
    pub cache_bytes: AtomicU64,
    pub checkpoint_wake: Condvar,
    pub checkpoint_lock: Mutex<bool>,
    seal_tx: Mutex<Option<std::sync::mpsc::Sender<SealJob>>>,
    /// Frees the journal files a checkpoint no longer needs (and the store's deleted ledgers).
    pub deleter: Arc<Deleter>,
    /// Group commits made and the fsyncs they took, for [`CommitStats`].
    group_commits: AtomicU64,
    fsyncs: AtomicU64,
}

/// What the journal's group commits cost so far: each makes every round written since the last
/// one durable with one fsync per journal file, one per directly written ledger and, when ledger
/// files were created, one of their directory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitStats {
    pub group_commits: u64,
    pub fsyncs: u64,
}

/// The journal and its threads. Dropping it drains what is pending and stops them.
pub(crate) struct Journal {
    pub shared: Arc<Shared>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Journal {
    /// Starts the journal with a new file `seq` (the replayed ones are no longer needed).
    pub fn start(options: JournalOptions, seq: u64, deleter: Arc<Deleter>) -> Result<Journal> {
        let first = create_journal_file(&options.dir, seq)?;
        let (seal_tx, seal_rx) = std::sync::mpsc::channel::<SealJob>();
        let shared = Arc::new(Shared {
            budget: Semaphore::new(options.max_pending_bytes),
            budget_bytes: options.max_pending_bytes,
            options,
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            sync: Mutex::new(SyncQueue::default()),
            sync_wake: Condvar::new(),
            sync_taken: Condvar::new(),
            dir_dirty: AtomicBool::new(false),
            synced: Mutex::new(Position {
                seq,
                offset: JOURNAL_HEADER_LEN,
            }),
            bytes_since_checkpoint: AtomicU64::new(0),
            dirty: Mutex::new(HashMap::new()),
            cache_bytes: AtomicU64::new(0),
            checkpoint_wake: Condvar::new(),
            checkpoint_lock: Mutex::new(false),
            seal_tx: Mutex::new(Some(seal_tx)),
            deleter,
            group_commits: AtomicU64::new(0),
            fsyncs: AtomicU64::new(0),
        });
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.to_string())
                .spawn(f)
                .map_err(|e| HotTierError::io("spawn thread", name, e))
        };
        let mut threads = Vec::new();
        let s = Arc::clone(&shared);
        threads.push(spawn(
            "hot-tier-flush",
            Box::new(move || flush::flush_loop(&s, first)),
        )?);
        let s = Arc::clone(&shared);
        threads.push(spawn(
            "hot-tier-sync",
            Box::new(move || sync::sync_loop(&s)),
        )?);
        let s = Arc::clone(&shared);
        threads.push(spawn(
            "hot-tier-seal",
            Box::new(move || {
                for job in seal_rx {
                    let result = match job.ledger.flush_cache() {
                        Ok(n) => {
                            s.cache_bytes.fetch_sub(n, Ordering::Relaxed);
                            job.ledger.seal_file()
                        }
                        Err(e) => Err(HotTierError::io(
                            "write cached records",
                            &job.ledger.path,
                            e,
                        )),
                    };
                    let _ = job.reply.send(result);
                }
            }),
        )?);
        let s = Arc::clone(&shared);
        threads.push(spawn(
            "hot-tier-checkpoint",
            Box::new(move || crate::checkpoint::run(&s)),
        )?);
        Ok(Journal { shared, threads })
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        // Drain first: what was accepted is made durable and its appends complete; then one
        // last checkpoint, so that a clean restart has nothing to replay.
        self.shared.lock_pending().closed = true;
        self.shared.wake.notify_all();
        let me = std::thread::current().id();
        // The last store handle may be dropped on one of these threads; it must not wait for
        // itself.
        let join = |t: std::thread::JoinHandle<()>| {
            if t.thread().id() != me {
                let _ = t.join();
            }
        };
        let mut threads = std::mem::take(&mut self.threads);
        let checkpointer = threads.pop();
        threads.into_iter().for_each(join);
        *self
            .shared
            .checkpoint_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = true;
        self.shared.checkpoint_wake.notify_all();
        checkpointer.into_iter().for_each(join);
    }
}

impl Shared {
    fn lock_pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_sync(&self) -> MutexGuard<'_, SyncQueue> {
        self.sync.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn commit_stats(&self) -> CommitStats {
        CommitStats {
            group_commits: self.group_commits.load(Ordering::Relaxed),
            fsyncs: self.fsyncs.load(Ordering::Relaxed),
        }
    }

    pub fn synced(&self) -> Position {
        *self.synced.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A ledger file was created: the next round fsyncs the directory before acknowledging.
    pub fn note_created(&self) {
        self.dir_dirty.store(true, Ordering::Release);
    }

    /// Adds one encoded record of `ledger` to the pending batch. Called with the ledger's state
    /// locked, so a ledger's records enter in entry order.
    #[allow(clippy::too_many_arguments)]
    pub fn enqueue(
        &self,
        ledger: &Arc<OpenLedger>,
        offset: u64,
        entry_id: u64,
        payload: &[u8],
        permits: usize,
        tx: oneshot::Sender<Result<u64>>,
    ) -> std::result::Result<(), oneshot::Sender<Result<u64>>> {
        let mut p = self.lock_pending();
        if p.closed {
            return Err(tx);
        }
        let was_idle = p.is_empty();
        let batch = p.ledgers.entry(ledger.id).or_insert_with(|| LedgerBatch {
            ledger: Arc::clone(ledger),
            start: offset,
            end: offset,
            bytes: Vec::new(),
            offsets: SmallVec::new(),
            payload_bytes: 0,
            waiters: SmallVec::new(),
            permits: 0,
        });
        crate::format::encode_record(&mut batch.bytes, entry_id, payload);
        batch.end = batch.start + batch.bytes.len() as u64;
        batch.offsets.push(offset);
        batch.payload_bytes += payload.len() as u64;
        batch.permits += permits;
        batch.waiters.push(Waiter { entry_id, tx });
        drop(p);
        // The flusher waits only for an empty batch to fill (checked under the lock), and a
        // condition variable's notify is a system call even with nobody waiting: one per
        // append at thousands of one-entry ledgers a round.
        if was_idle {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Queues the seal of `ledger` behind everything appended to it so far.
    pub fn enqueue_seal(&self, job: SealJob) -> std::result::Result<(), SealJob> {
        let mut p = self.lock_pending();
        if p.closed {
            return Err(job);
        }
        let was_idle = p.is_empty();
        p.seals.push(job);
        drop(p);
        if was_idle {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Fails a batch's appends (and gives their budget back).
    fn fail_batch(&self, batch: LedgerBatch, failure: &Failure) {
        let failure = batch.ledger.fail(failure.clone());
        self.budget.add_permits(batch.permits);
        for w in batch.waiters {
            let _ = w.tx.send(Err(failure.error(batch.ledger.id)));
        }
    }
}

fn journal_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.{}", files::JOURNAL_SUFFIX))
}

/// Creates journal file `seq` with its header, durable (file and directory entry).
fn create_journal_file(dir: &Path, seq: u64) -> Result<Arc<JournalFile>> {
    let path = journal_path(dir, seq);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .map_err(|e| HotTierError::io("create journal", &path, e))?;
    file.write_all_at(&encode_journal_header(seq), 0)
        .and_then(|_| file.sync_data())
        .map_err(|e| HotTierError::io("write journal header", &path, e))?;
    files::fsync_dir(dir)?;
    Ok(Arc::new(JournalFile {
        seq,
        path,
        file,
        retired: AtomicBool::new(false),
    }))
}

/// Journal files in `dir` by sequence number, ascending.
pub(crate) fn list_journal_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(HotTierError::io("list", dir, e)),
    };
    for entry in rd {
        let entry = entry.map_err(|e| HotTierError::io("list", dir, e))?;
        let name = entry.file_name();
        let Some((stem, ext)) = name.to_str().and_then(|n| n.rsplit_once('.')) else {
            continue;
        };
        if ext == files::JOURNAL_SUFFIX
            && let Ok(seq) = stem.parse::<u64>()
        {
            out.push((seq, entry.path()));
        }
    }
    out.sort_unstable();
    Ok(out)
}

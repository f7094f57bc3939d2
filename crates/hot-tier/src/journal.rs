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

use tokio::sync::{Semaphore, oneshot};

use crate::deleter::Deleter;
use crate::error::{HotTierError, Result};
use crate::files;
use crate::format::{JOURNAL_HEADER_LEN, encode_chunk, encode_journal_header};
use crate::read::EntryIndex;
use crate::writer::{Failure, OpenLedger};

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
    pub offsets: Vec<u64>,
    pub payload_bytes: u64,
    pub waiters: Vec<Waiter>,
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
            Box::new(move || flush_loop(&s, first)),
        )?);
        let s = Arc::clone(&shared);
        threads.push(spawn("hot-tier-sync", Box::new(move || sync_loop(&s)))?);
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
        let batch = p.ledgers.entry(ledger.id).or_insert_with(|| LedgerBatch {
            ledger: Arc::clone(ledger),
            start: offset,
            end: offset,
            bytes: Vec::new(),
            offsets: Vec::new(),
            payload_bytes: 0,
            waiters: Vec::new(),
            permits: 0,
        });
        crate::format::encode_record(&mut batch.bytes, entry_id, payload);
        batch.end = batch.start + batch.bytes.len() as u64;
        batch.offsets.push(offset);
        batch.payload_bytes += payload.len() as u64;
        batch.permits += permits;
        batch.waiters.push(Waiter { entry_id, tx });
        drop(p);
        self.wake.notify_one();
        Ok(())
    }

    /// Queues the seal of `ledger` behind everything appended to it so far.
    pub fn enqueue_seal(&self, job: SealJob) -> std::result::Result<(), SealJob> {
        let mut p = self.lock_pending();
        if p.closed {
            return Err(job);
        }
        p.seals.push(job);
        drop(p);
        self.wake.notify_one();
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

/// Stage 1: writes each pending batch (journal chunks, ledger files) and hands it to the syncer.
fn flush_loop(shared: &Shared, first: Arc<JournalFile>) {
    let mut flusher = Flusher {
        shared,
        next_seq: first.seq + 1,
        current: Some(first),
        offset: JOURNAL_HEADER_LEN,
        buf: Vec::new(),
    };
    while let Some((ledgers, seals)) = flusher.next_round() {
        let dir_sync = shared.dir_dirty.swap(false, Ordering::AcqRel);
        let (mut journaled, direct) = flusher.split(ledgers);
        let journal = flusher.write_journal(&mut journaled);
        if journal.is_some() {
            flusher.cache_journaled(&mut journaled);
        }
        let direct = flusher.write_direct(direct);
        shared.lock_sync().rounds.push(Round {
            journal,
            journaled,
            direct,
            dir_sync,
            seals,
        });
        shared.sync_wake.notify_one();
    }
    shared.lock_sync().done = true;
    shared.sync_wake.notify_one();
}

/// The flusher's state between rounds: the journal file it writes and where.
struct Flusher<'a> {
    shared: &'a Shared,
    /// `None` after creating a new file failed: the next round tries again.
    current: Option<Arc<JournalFile>>,
    next_seq: u64,
    offset: u64,
    /// The round's chunks, reused.
    buf: Vec<u8>,
}

impl Flusher<'_> {
    /// Waits until the syncer took the last round and appends are pending, then takes them;
    /// `None` once the journal is closed and drained.
    fn next_round(&mut self) -> Option<(HashMap<u64, LedgerBatch>, Vec<SealJob>)> {
        let shared = self.shared;
        // One round written ahead of the syncer at most: while it syncs, appends collect into
        // the next round instead of into many small ones it would sync together anyway (each
        // with its own direct ledgers, so their fsyncs would add up).
        {
            let mut q = shared.lock_sync();
            while !q.rounds.is_empty() {
                q = shared.sync_taken.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        }
        let mut p = shared.lock_pending();
        while p.ledgers.is_empty() && p.seals.is_empty() && !p.closed {
            p = shared.wake.wait(p).unwrap_or_else(|e| e.into_inner());
        }
        if p.ledgers.is_empty() && p.seals.is_empty() {
            return None;
        }
        Some((std::mem::take(&mut p.ledgers), std::mem::take(&mut p.seals)))
    }

    /// Fails the batches of failed ledgers and splits the rest into (journaled, direct).
    fn split(&self, ledgers: HashMap<u64, LedgerBatch>) -> (Vec<LedgerBatch>, Vec<LedgerBatch>) {
        let opts = &self.shared.options;
        let mut batches: Vec<LedgerBatch> = Vec::with_capacity(ledgers.len());
        for (_, batch) in ledgers {
            match batch.ledger.failure() {
                Some(failure) => self.shared.fail_batch(batch, &failure),
                None => batches.push(batch),
            }
        }
        // The largest ledgers of the round write directly; a bounded number, so a round's
        // fsyncs do not grow with its ledgers.
        if batches.len() > opts.max_direct_per_round {
            batches.select_nth_unstable_by_key(opts.max_direct_per_round, |b| {
                std::cmp::Reverse(b.bytes.len())
            });
        }
        // A ledger alone in its round goes direct whatever its size: one fsync either way, and
        // no second copy.
        let alone = opts.direct_when_alone && batches.len() == 1;
        let (mut journaled, mut direct) = (Vec::new(), Vec::new());
        for (i, batch) in batches.into_iter().enumerate() {
            if alone
                || (i < opts.max_direct_per_round
                    && batch.bytes.len() >= opts.direct_write_min_bytes)
            {
                direct.push(batch);
            } else {
                journaled.push(batch);
            }
        }
        (journaled, direct)
    }

    /// Writes the journaled batches' records as one chunk each, with one `pwrite`; returns the
    /// file and where the round ends in it. On failure the batches are failed and drained.
    fn write_journal(
        &mut self,
        journaled: &mut Vec<LedgerBatch>,
    ) -> Option<(Arc<JournalFile>, u64)> {
        if journaled.is_empty() {
            return None;
        }
        let shared = self.shared;
        let opts = &shared.options;
        // A full or retired file is replaced before the round is written.
        let usable = self
            .current
            .as_ref()
            .is_some_and(|f| !f.retired.load(Ordering::Acquire) && self.offset < opts.file_bytes);
        if !usable {
            match create_journal_file(&opts.dir, self.next_seq) {
                Ok(f) => {
                    self.current = Some(f);
                    self.next_seq += 1;
                    self.offset = JOURNAL_HEADER_LEN;
                }
                Err(e) => {
                    self.current = None;
                    let failure = Failure::from_error(&e);
                    for b in journaled.drain(..) {
                        shared.fail_batch(b, &failure);
                    }
                    return None;
                }
            }
        }
        let file = Arc::clone(self.current.as_ref()?);
        self.buf.clear();
        for b in journaled.iter() {
            encode_chunk(&mut self.buf, b.ledger.id, &b.bytes);
        }
        let written = file.file.write_all_at(&self.buf, self.offset);
        let len = self.buf.len() as u64;
        // Bounded so an idle store holds little it does not use.
        if self.buf.capacity() > 16 << 20 {
            self.buf = Vec::new();
        }
        match written {
            Ok(()) => {
                self.offset += len;
                let total = shared
                    .bytes_since_checkpoint
                    .fetch_add(len, Ordering::Relaxed)
                    + len;
                if total >= opts.checkpoint_journal_bytes {
                    shared.checkpoint_wake.notify_all();
                }
                Some((file, self.offset))
            }
            Err(e) => {
                file.retired.store(true, Ordering::Release);
                let failure = Failure::of(format!("write of {}", file.path.display()), &e);
                for b in journaled.drain(..) {
                    shared.fail_batch(b, &failure);
                }
                None
            }
        }
    }

    /// Journaled records wait in their ledgers' write caches for the next checkpoint.
    fn cache_journaled(&self, journaled: &mut [LedgerBatch]) {
        let shared = self.shared;
        let mut cached = 0u64;
        let mut dirty = shared.dirty.lock().unwrap_or_else(|p| p.into_inner());
        for b in journaled {
            cached += b.bytes.len() as u64;
            b.ledger
                .cache_append(bytes::Bytes::from(std::mem::take(&mut b.bytes)));
            dirty
                .entry(b.ledger.id)
                .or_insert_with(|| Arc::clone(&b.ledger));
        }
        drop(dirty);
        let total = shared.cache_bytes.fetch_add(cached, Ordering::Relaxed) + cached;
        if total >= shared.options.write_cache_bytes {
            shared.checkpoint_wake.notify_all();
        }
    }

    /// Direct ledgers: the cache, then the round's records, into the file; returns those
    /// written (the others are failed).
    fn write_direct(&self, direct: Vec<LedgerBatch>) -> Vec<LedgerBatch> {
        let shared = self.shared;
        let mut ok = Vec::with_capacity(direct.len());
        for b in direct {
            match b.ledger.write_direct(b.start, &b.bytes) {
                Ok(flushed) => {
                    shared.cache_bytes.fetch_sub(flushed, Ordering::Relaxed);
                    ok.push(b);
                }
                Err(e) => {
                    let failure = Failure::of(format!("write of {}", b.ledger.path.display()), &e);
                    shared.fail_batch(b, &failure);
                }
            }
        }
        ok
    }
}

/// Stage 2: makes every round written so far durable with as few fsyncs as it can, then
/// completes their appends in order and passes their seals on.
fn sync_loop(shared: &Shared) {
    loop {
        let rounds = {
            let mut q = shared.lock_sync();
            while q.rounds.is_empty() && !q.done {
                q = shared.sync_wake.wait(q).unwrap_or_else(|e| e.into_inner());
            }
            if q.rounds.is_empty() {
                break;
            }
            std::mem::take(&mut q.rounds)
        };
        shared.sync_taken.notify_one();
        sync_rounds(shared, rounds);
    }
    // Dropping the sender ends the seal thread once it has sealed what it was given.
    shared
        .seal_tx
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
}

fn sync_rounds(shared: &Shared, rounds: Vec<Round>) {
    shared.group_commits.fetch_add(1, Ordering::Relaxed);
    let dir_failure = if rounds.iter().any(|r| r.dir_sync) {
        shared.fsyncs.fetch_add(1, Ordering::Relaxed);
        files::fsync_dir(&shared.options.ledger_dir)
            .err()
            .map(|e| Failure::from_error(&e))
    } else {
        None
    };
    let (journal_failures, synced_to) = sync_journals(shared, &rounds);
    let direct_failures = sync_direct(shared, &rounds);
    for r in rounds {
        let journal_failure = r
            .journal
            .as_ref()
            .and_then(|(f, _)| journal_failures.get(&f.seq));
        for b in r.journaled {
            match dir_failure.as_ref().or(journal_failure) {
                Some(f) => shared.fail_batch(b, f),
                None => complete(shared, b),
            }
        }
        for b in r.direct {
            match dir_failure
                .as_ref()
                .or_else(|| direct_failures.get(&b.ledger.id))
            {
                Some(f) => shared.fail_batch(b, f),
                None => complete(shared, b),
            }
        }
        pass_on_seals(shared, r.seals);
    }
    if let Some(p) = synced_to {
        let mut s = shared.synced.lock().unwrap_or_else(|e| e.into_inner());
        *s = (*s).max(p);
    }
}

/// One `fdatasync` per journal file the rounds wrote into; returns the failures by file (rounds
/// of a retired file fail: see the module doc) and where the journal is durable up to now.
fn sync_journals(shared: &Shared, rounds: &[Round]) -> (HashMap<u64, Failure>, Option<Position>) {
    let mut failures: HashMap<u64, Failure> = HashMap::new();
    let mut synced_to: Option<Position> = None;
    for (file, end) in rounds.iter().filter_map(|r| r.journal.as_ref()) {
        if failures.contains_key(&file.seq) || synced_to.is_some_and(|p| p.seq == file.seq) {
            continue;
        }
        if file.retired.load(Ordering::Acquire) {
            let why = format!(
                "an earlier write or fsync of {} failed",
                file.path.display()
            );
            failures.insert(file.seq, Failure::plain(why));
            continue;
        }
        let last_end = rounds
            .iter()
            .filter_map(|r| r.journal.as_ref())
            .filter(|(f, _)| f.seq == file.seq)
            .map(|(_, e)| *e)
            .max()
            .unwrap_or(*end);
        shared.fsyncs.fetch_add(1, Ordering::Relaxed);
        match file.file.sync_data() {
            Ok(()) => {
                synced_to = synced_to.max(Some(Position {
                    seq: file.seq,
                    offset: last_end,
                }));
            }
            Err(e) => {
                file.retired.store(true, Ordering::Release);
                let failure = Failure::of(format!("fsync of {}", file.path.display()), &e);
                failures.insert(file.seq, failure);
            }
        }
    }
    (failures, synced_to)
}

/// One `fdatasync` per directly written ledger; returns the failures by ledger.
fn sync_direct(shared: &Shared, rounds: &[Round]) -> HashMap<u64, Failure> {
    let mut failures = HashMap::new();
    let mut synced = std::collections::HashSet::new();
    for b in rounds.iter().flat_map(|r| &r.direct) {
        if !synced.insert(b.ledger.id) {
            continue;
        }
        shared.fsyncs.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = b.ledger.file.sync_data() {
            let failure = Failure::of(format!("fsync of {}", b.ledger.path.display()), &e);
            failures.insert(b.ledger.id, failure);
        }
    }
    failures
}

/// Hands a settled round's seals to the seal thread (or fails them once it is gone).
fn pass_on_seals(shared: &Shared, seals: Vec<SealJob>) {
    if seals.is_empty() {
        return;
    }
    let seal_tx = shared
        .seal_tx
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    for job in seals {
        let unsent = match &seal_tx {
            Some(tx) => tx
                .send(job)
                .err()
                .map(|std::sync::mpsc::SendError(job)| job),
            None => Some(job),
        };
        if let Some(job) = unsent {
            let _ = job.reply.send(Err(HotTierError::Sealed(job.ledger.id)));
        }
    }
}

/// The batch is durable: readers see it, its appends complete — unless an earlier batch of its
/// ledger failed (a ledger's appends never succeed after one of them failed).
fn complete(shared: &Shared, b: LedgerBatch) {
    if let Some(failure) = b.ledger.failure() {
        shared.fail_batch(b, &failure);
        return;
    }
    b.ledger.made_durable(b.end, &b.offsets, b.payload_bytes);
    for w in b.waiters {
        let _ = w.tx.send(Ok(w.entry_id));
    }
    shared.budget.add_permits(b.permits);
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

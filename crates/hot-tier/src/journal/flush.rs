//! Stage 1 of a round: the flusher takes every pending batch, journals or writes each ledger's
//! part (see the parent module) and queues the round for the syncer.

use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{JournalFile, LedgerBatch, Round, SealJob, Shared, create_journal_file};
use crate::format::{JOURNAL_HEADER_LEN, encode_chunk};
use crate::writer::Failure;

/// Stage 1: writes each pending batch (journal chunks, ledger files) and hands it to the syncer.
pub(super) fn flush_loop(shared: &Shared, first: Arc<JournalFile>) {
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
        while p.is_empty() && !p.closed {
            p = shared.wake.wait(p).unwrap_or_else(|e| e.into_inner());
        }
        if p.is_empty() {
            return None;
        }
        // The next round likely carries as many ledgers: sized now, appends do not rehash it
        // while they hold the lock.
        let ledgers = HashMap::with_capacity(p.ledgers.len());
        Some((
            std::mem::replace(&mut p.ledgers, ledgers),
            std::mem::take(&mut p.seals),
        ))
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

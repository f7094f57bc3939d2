//! Stage 2 of a round: the syncer makes the rounds written so far durable with as few fsyncs
//! as it can, then completes their appends in order (or fails those a failed write or fsync
//! covers) and passes their seals on.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use super::{LedgerBatch, Position, Round, SealJob, Shared};
use crate::error::HotTierError;
use crate::files;
use crate::writer::Failure;

/// Stage 2: makes every round written so far durable with as few fsyncs as it can, then
/// completes their appends in order and passes their seals on.
pub(super) fn sync_loop(shared: &Shared) {
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

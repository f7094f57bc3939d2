//! Checkpoints: when the journal before a position is no longer needed.
//!
//! Every `checkpoint_interval`, or sooner once `checkpoint_journal_bytes` were journaled or the
//! write caches hold `write_cache_bytes`, the checkpoint thread takes the position the journal is
//! durable up to, writes every ledger's write cache into its file (the journal's rounds before
//! that position were put in the caches before they were synced), makes those files durable
//! (an fsync each when they are few, else one `syncfs` of their file system; journaled records
//! reach a file only here, in a direct write or in the seal, and the last two fsync it), records
//! the position in the `checkpoint` file (written aside, fsynced, renamed, directory fsynced) and
//! deletes the journal files wholly before it.
//!
//! Crash windows: before the rename the old checkpoint stands and replay starts earlier (records
//! already in their files are skipped by entry id); after it, journal files before the position
//! may remain until the next checkpoint deletes them (replay deletes them too).

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::error::{HotTierError, Result};
use crate::files;
use crate::format::{CHECKPOINT_LEN, decode_checkpoint, encode_checkpoint};
use crate::journal::{Position, Shared, list_journal_files};

/// The checkpoint thread: runs until the journal closes.
pub(crate) fn run(shared: &Shared) {
    let opts = &shared.options;
    let mut last = shared.synced();
    loop {
        {
            let started = Instant::now();
            let mut closed = shared
                .checkpoint_lock
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            loop {
                if *closed {
                    drop(closed);
                    // The journal has drained: a last checkpoint spares the next start a replay.
                    let position = shared.synced();
                    if position != last
                        && let Err(e) = checkpoint(shared, position)
                    {
                        tracing::warn!(error = %e, "final hot-tier checkpoint failed; the next start replays the journal");
                    }
                    return;
                }
                let elapsed = started.elapsed();
                if elapsed >= opts.checkpoint_interval
                    || shared.bytes_since_checkpoint.load(Ordering::Relaxed)
                        >= opts.checkpoint_journal_bytes
                    || shared.cache_bytes.load(Ordering::Relaxed) >= opts.write_cache_bytes
                {
                    break;
                }
                closed = shared
                    .checkpoint_wake
                    .wait_timeout(closed, opts.checkpoint_interval - elapsed)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        }
        let position = shared.synced();
        if position == last {
            continue;
        }
        let journaled = shared.bytes_since_checkpoint.load(Ordering::Relaxed);
        match checkpoint(shared, position) {
            Ok(()) => {
                last = position;
                shared
                    .bytes_since_checkpoint
                    .fetch_sub(journaled, Ordering::Relaxed);
            }
            Err(e) => {
                // The journal keeps growing until one succeeds; appends are not affected.
                tracing::warn!(error = %e, "hot-tier checkpoint failed; will retry");
            }
        }
    }
}

/// With at most this many ledger files written by a checkpoint, each is fsynced on its own;
/// with more, one `syncfs` is cheaper (it also flushes what other programs left dirty on that
/// file system, which a few files' fsyncs would not wait for).
const FSYNC_EACH_MAX: usize = 64;

/// Writes every ledger's write cache into its file and makes the files durable, then records
/// `position` and deletes the journal files before it. A ledger whose write fails stays in the
/// dirty set (its records are safe in the journal, which is kept until a checkpoint succeeds).
fn checkpoint(shared: &Shared, position: Position) -> Result<()> {
    let opts = &shared.options;
    let dirty = std::mem::take(&mut *shared.dirty.lock().unwrap_or_else(|p| p.into_inner()));
    let mut written = Vec::with_capacity(dirty.len());
    let mut failed = None;
    for (id, ledger) in dirty {
        match ledger.flush_cache() {
            Ok(n) => {
                shared.cache_bytes.fetch_sub(n, Ordering::Relaxed);
                written.push(ledger);
            }
            Err(e) => {
                failed.get_or_insert(HotTierError::io("write cached records", &ledger.path, e));
                shared
                    .dirty
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id, ledger);
            }
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    if written.len() <= FSYNC_EACH_MAX {
        for ledger in &written {
            ledger
                .file
                .sync_data()
                .map_err(|e| HotTierError::io("fsync", &ledger.path, e))?;
        }
    } else {
        let dir = File::open(&opts.ledger_dir)
            .map_err(|e| HotTierError::io("open", &opts.ledger_dir, e))?;
        rustix::fs::syncfs(&dir)
            .map_err(|e| HotTierError::io("syncfs", &opts.ledger_dir, e.into()))?;
    }
    write_checkpoint(&opts.dir, position)?;
    for (seq, path) in list_journal_files(&opts.dir)? {
        if seq < position.seq {
            // Hundreds of MB: freed a step at a time (see `deleter`).
            shared.deleter.delete(&path)?;
        }
    }
    Ok(())
}

pub(crate) fn write_checkpoint(journal_dir: &Path, position: Position) -> Result<()> {
    let path = journal_dir.join(files::CHECKPOINT_FILE);
    let tmp = journal_dir.join(format!("{}.tmp", files::CHECKPOINT_FILE));
    let f = File::create(&tmp).map_err(|e| HotTierError::io("create", &tmp, e))?;
    f.write_all_at(&encode_checkpoint(position.seq, position.offset), 0)
        .and_then(|_| f.sync_data())
        .map_err(|e| HotTierError::io("write checkpoint", &tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| HotTierError::io("rename", &tmp, e))?;
    files::fsync_dir(journal_dir)
}

/// The last checkpoint, or `None` when there is none or it is damaged (then the whole journal
/// is replayed, which is always safe).
pub(crate) fn read_checkpoint(journal_dir: &Path) -> Result<Option<Position>> {
    let path = journal_dir.join(files::CHECKPOINT_FILE);
    let mut f = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(HotTierError::io("open", &path, e)),
    };
    let mut bytes = Vec::with_capacity(CHECKPOINT_LEN);
    f.by_ref()
        .take(CHECKPOINT_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| HotTierError::io("read", &path, e))?;
    let position = decode_checkpoint(&bytes).map(|(seq, offset)| Position { seq, offset });
    if position.is_none() {
        tracing::warn!(path = %path.display(), "hot-tier checkpoint is damaged; replaying the whole journal");
    }
    Ok(position)
}

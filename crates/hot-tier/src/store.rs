//! The ledger store: a directory of ledger files with create / append / seal / read / delete,
//! and the journal that makes the appends of all its open ledgers durable together.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use crate::deleter::Deleter;
use crate::error::{HotTierError, Result};
use crate::files::{self, LedgerFileKind};
use crate::format::{FOOTER_TRAILER_LEN, decode_footer_offsets, decode_footer_trailer};
use crate::journal::{CommitStats, Journal, JournalOptions, Position};
use crate::read::{
    EntryIndex, check_range, read_exact_into, read_range, read_range_mapped, read_range_with,
};
use crate::read_ahead::{ReadAhead, WindowRead};
use crate::writer::{LedgerWriter, OpenLedger, SealedLedger};

/// Limits and layout of the store. Units are in the names.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Largest payload accepted by `append` (and believed during recovery).
    pub max_entry_bytes: usize,
    /// Bytes all open ledgers together may hold in pending rounds before `append` waits.
    pub max_pending_bytes: usize,
    /// How many sealed ledgers keep their file handle and offset index in memory.
    pub sealed_cache_ledgers: usize,
    /// Where the journal lives (BookKeeper's `journalDirectory`); `journal` inside the ledger
    /// directory when unset. Another disk than the ledgers' keeps the journal's fsyncs off
    /// their writeback.
    pub journal_dir: Option<PathBuf>,
    /// A journal file is closed and a new one started past this size (`journalMaxSizeMB`).
    pub journal_file_bytes: u64,
    /// A ledger that brings at least this much to one round is written to its own file and
    /// fsynced there instead of going through the journal (at most `max_direct_per_round`
    /// ledgers per round, the largest).
    pub direct_write_min_bytes: usize,
    pub max_direct_per_round: usize,
    /// A ledger alone in its round is written directly whatever its size (one fsync either
    /// way, and no second copy). Tests of the journal path turn it off.
    pub direct_when_alone: bool,
    /// Journaled records wait in memory for the next checkpoint to write them into their
    /// ledger files; a checkpoint starts early once they hold this much.
    pub write_cache_bytes: u64,
    /// The longest time between checkpoints (BookKeeper's `flushInterval`).
    pub checkpoint_interval: Duration,
    /// A checkpoint starts early once this much was journaled since the last one (at least
    /// twice `write_cache_bytes`).
    pub checkpoint_journal_bytes: u64,
    /// Bytes of sealed-ledger entries read ahead for readers reading in order, for the whole
    /// store (0: no read-ahead).
    pub read_ahead_cache_bytes: usize,
    /// How much one read-ahead reads.
    pub read_ahead_window_bytes: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_entry_bytes: 64 << 20,
            max_pending_bytes: 64 << 20,
            sealed_cache_ledgers: 64,
            journal_dir: None,
            journal_file_bytes: 512 << 20,
            direct_write_min_bytes: 128 << 10,
            max_direct_per_round: 8,
            direct_when_alone: true,
            write_cache_bytes: 512 << 20,
            checkpoint_interval: Duration::from_secs(10),
            checkpoint_journal_bytes: 256 << 20,
            read_ahead_cache_bytes: 64 << 20,
            read_ahead_window_bytes: 4 << 20,
        }
    }
}

/// A ledger found open at start-up, now truncated to its valid prefix and sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveredLedger {
    pub sealed: SealedLedger,
    /// Bytes cut off the end of the file (torn or corrupt tail).
    pub discarded_bytes: u64,
}

/// Whether a ledger is still written, and how much it holds (durable part only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerStat {
    pub ledger_id: u64,
    pub sealed: bool,
    pub entries: u64,
    pub size_bytes: u64,
}

/// The largest `pread` of [`LedgerStore::read_in_background`]: requests this size keep a
/// producer's `fdatasync` waiting little (p99 0.8-0.9 ms beside 50 MB/s of them, against
/// 1.6-2.8 ms with 1 MiB), and alone still read ~0.9 GB/s on this machine.
pub(crate) const BACKGROUND_READ_PIECE_BYTES: usize = 256 << 10;

struct SealedHandle {
    file: File,
    path: PathBuf,
    index: EntryIndex,
}

/// Open sealed ledgers (file handle and offset index), a few at a time.
#[derive(Default)]
struct SealedCache {
    handles: HashMap<u64, Arc<SealedHandle>>,
    /// Ledgers deleted so far: a handle opened while one was deleted is not cached (it may be
    /// of that ledger, whose file is gone from the directory).
    deletions: u64,
}

struct Inner {
    dir: PathBuf,
    options: StoreOptions,
    open: Mutex<HashMap<u64, Arc<OpenLedger>>>,
    sealed: Mutex<SealedCache>,
    journal: Journal,
    read_ahead: ReadAhead,
    deleter: Arc<Deleter>,
}

/// Durable local ledger storage. Cheap to clone.
#[derive(Clone)]
pub struct LedgerStore {
    inner: Arc<Inner>,
}

impl LedgerStore {
    /// Opens (creating if needed) the store in `dir`. Ledgers left open by a previous process are
    /// completed from the journal, truncated to their last valid entry and sealed
    /// ([`crate::replay`]). They are returned so the caller can record their final size.
    pub fn open(
        dir: impl Into<PathBuf>,
        options: StoreOptions,
    ) -> Result<(Self, Vec<RecoveredLedger>)> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| HotTierError::io("create directory", &dir, e))?;
        let journal_dir = options
            .journal_dir
            .clone()
            .unwrap_or_else(|| dir.join("journal"));
        std::fs::create_dir_all(&journal_dir)
            .map_err(|e| HotTierError::io("create directory", &journal_dir, e))?;
        let replayed = crate::replay::replay(&dir, &journal_dir, options.max_entry_bytes)?;
        let deleter = Arc::new(Deleter::start()?);
        let journal = Journal::start(
            JournalOptions {
                dir: journal_dir.clone(),
                ledger_dir: dir.clone(),
                file_bytes: options.journal_file_bytes.max(1),
                direct_write_min_bytes: options.direct_write_min_bytes,
                max_direct_per_round: options.max_direct_per_round,
                direct_when_alone: options.direct_when_alone,
                write_cache_bytes: options.write_cache_bytes,
                max_pending_bytes: options
                    .max_pending_bytes
                    .max(options.max_entry_bytes + 64)
                    .min(tokio::sync::Semaphore::MAX_PERMITS),
                checkpoint_interval: options.checkpoint_interval,
                // Every journaled entry waits in the write cache, so the journal since the last
                // checkpoint is at least as large: a journal trigger below the cache's would
                // start every checkpoint before the cache is full.
                checkpoint_journal_bytes: options
                    .checkpoint_journal_bytes
                    .max(options.write_cache_bytes.saturating_mul(2)),
            },
            replayed.next_seq,
            Arc::clone(&deleter),
        )?;
        // Every recovered ledger is sealed: the old journal is not needed once a checkpoint
        // names the new one.
        crate::checkpoint::write_checkpoint(
            &journal_dir,
            Position {
                seq: replayed.next_seq,
                offset: crate::format::JOURNAL_HEADER_LEN,
            },
        )?;
        for path in &replayed.old_journal {
            std::fs::remove_file(path).map_err(|e| HotTierError::io("delete", path, e))?;
        }
        let read_ahead = ReadAhead::start(options.read_ahead_cache_bytes)?;
        let store = LedgerStore {
            inner: Arc::new(Inner {
                dir,
                options,
                open: Mutex::new(HashMap::new()),
                sealed: Mutex::new(SealedCache::default()),
                journal,
                read_ahead,
                deleter,
            }),
        };
        Ok((store, replayed.recovered))
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    fn scan_dir(&self) -> Result<Vec<(LedgerFileKind, PathBuf)>> {
        let dir = &self.inner.dir;
        let mut out = Vec::new();
        let rd = std::fs::read_dir(dir).map_err(|e| HotTierError::io("list", dir, e))?;
        for entry in rd {
            let entry = entry.map_err(|e| HotTierError::io("list", dir, e))?;
            if let Some(kind) = entry.file_name().to_str().and_then(files::classify) {
                out.push((kind, entry.path()));
            }
        }
        Ok(out)
    }

    /// Bytes the file system holding the ledgers can still take (what an unprivileged writer
    /// may use).
    pub fn free_bytes(&self) -> Result<u64> {
        let st = rustix::fs::statvfs(&self.inner.dir)
            .map_err(|e| HotTierError::io("statvfs", &self.inner.dir, e.into()))?;
        Ok(st.f_bavail.saturating_mul(st.f_frsize))
    }

    /// What the journal's group commits have cost so far.
    pub fn commit_stats(&self) -> CommitStats {
        self.inner.journal.shared.commit_stats()
    }

    /// Ids of every ledger that has a file (open or sealed), ascending.
    pub fn list_ledgers(&self) -> Result<Vec<u64>> {
        let mut ids: Vec<u64> = self
            .scan_dir()?
            .into_iter()
            .map(|(k, _)| match k {
                LedgerFileKind::Open(id) | LedgerFileKind::Sealed(id) => id,
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    /// Creates ledger `id` and returns its only writer. Returns at once: the file's creation is
    /// made durable by the round that acknowledges the ledger's first append.
    pub fn create_ledger(&self, id: u64) -> Result<LedgerWriter> {
        if files::sealed_path(&self.inner.dir, id).exists() {
            return Err(HotTierError::LedgerExists(id));
        }
        let ledger = OpenLedger::create(
            self.inner.dir.clone(),
            id,
            self.inner.options.max_entry_bytes,
        )?;
        self.inner.journal.shared.note_created();
        self.lock_open().insert(id, Arc::clone(&ledger));
        let weak = Arc::downgrade(&self.inner);
        Ok(LedgerWriter {
            ledger,
            journal: Arc::clone(&self.inner.journal.shared),
            on_sealed: Box::new(move |id| {
                if let Some(inner) = weak.upgrade() {
                    inner
                        .open
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&id);
                }
            }),
        })
    }

    fn lock_open(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<OpenLedger>>> {
        self.inner.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_sealed(&self) -> std::sync::MutexGuard<'_, SealedCache> {
        self.inner.sealed.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sealed_handle(&self, id: u64) -> Result<Arc<SealedHandle>> {
        let deletions = {
            let cache = self.lock_sealed();
            if let Some(h) = cache.handles.get(&id) {
                return Ok(Arc::clone(h));
            }
            cache.deletions
        };
        // Opened and its footer read without the lock: readers of other ledgers (and the
        // read-ahead lookup on async threads) never wait for this I/O. Two readers of the same
        // ledger may both open it; the first handle cached is kept.
        let path = files::sealed_path(&self.inner.dir, id);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(HotTierError::NoSuchLedger(id));
            }
            Err(e) => return Err(HotTierError::io("open", &path, e)),
        };
        let index = load_footer(id, &file, &path)?;
        let handle = Arc::new(SealedHandle { file, path, index });
        let mut cache = self.lock_sealed();
        if let Some(h) = cache.handles.get(&id) {
            return Ok(Arc::clone(h));
        }
        if cache.deletions != deletions {
            return Ok(handle); // serves this read only
        }
        if cache.handles.len() >= self.inner.options.sealed_cache_ledgers.max(1) {
            // Any victim will do: the cache only saves a footer read.
            if let Some(victim) = cache.handles.keys().next().copied() {
                cache.handles.remove(&victim);
            }
        }
        cache.handles.insert(id, Arc::clone(&handle));
        Ok(handle)
    }

    /// Reads entries `first..=last` of any ledger (open: only durable entries are visible). Stops
    /// after at least one entry once `max_bytes` of records would be exceeded, or, when the
    /// entries come from a window read ahead, at the window's end: callers read on from the
    /// entry after the last one returned.
    pub fn read(&self, id: u64, first: u64, last: u64, max_bytes: usize) -> Result<Vec<Bytes>> {
        let open = self.lock_open().get(&id).cloned();
        if let Some(ledger) = open {
            return ledger.read(first, last, max_bytes);
        }
        if let Some(entries) = self.read_ahead(id, first, last, max_bytes) {
            return Ok(entries);
        }
        if self.inner.read_ahead.wait_if_reading(id, first)
            && let Some(entries) = self.read_ahead(id, first, last, max_bytes)
        {
            return Ok(entries);
        }
        let h = self.sealed_handle(id)?;
        let entries = read_range(id, &h.file, &h.path, &h.index, first, last, max_bytes)?;
        let next = first + entries.len() as u64;
        self.inner
            .read_ahead
            .read_from_file(id, first, next, |from| self.window_read(&h, id, from));
        Ok(entries)
    }

    /// Reads like [`LedgerStore::read`], for a copy made in the background (the offloader):
    /// from a file descriptor of its own with the kernel's read-ahead off, in `pread`s of at
    /// most `BACKGROUND_READ_PIECE_BYTES` (or one entry), and without starting the store's
    /// read-ahead.
    ///
    /// Why: a sequential read through the shared descriptor lets the kernel read ahead in
    /// windows of `read_ahead_kb` (8 MiB here), which reach the disk as requests of up to
    /// `max_sectors_kb` (4 MiB), and a producer's `fdatasync` queued behind them waits. On this
    /// machine's disk, 1000 write+`fdatasync`s a second (timed from when each was due) had a
    /// p99 of 8-35 ms beside 50 MB/s of such reads, 6 ms beside only 10 MB/s, and 0.8-0.9 ms
    /// beside 50 MB/s read in 256 KiB `pread`s without read-ahead (0.4 ms without reads;
    /// `./scripts/bench broker`, throttled phase). The page cache still serves what it holds.
    pub fn read_in_background(
        &self,
        id: u64,
        first: u64,
        last: u64,
        max_bytes: usize,
    ) -> Result<Vec<Bytes>> {
        if self.lock_open().contains_key(&id) {
            // Offloads take sealed ledgers only; an open one is read as any reader would.
            return self.read(id, first, last, max_bytes);
        }
        let h = self.sealed_handle(id)?;
        let file = match File::open(&h.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(HotTierError::NoSuchLedger(id));
            }
            Err(e) => return Err(HotTierError::io("open", &h.path, e)),
        };
        rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::Random)
            .map_err(|e| HotTierError::io("fadvise", &h.path, e.into()))?;
        // The entries the whole budget allows, then read in spans of at most a piece (an entry
        // larger than a piece alone), each in one `pread` into a buffer of its own that is
        // never zero-filled first.
        check_range(id, &h.index, first, last)?;
        let end = h.index.read_end(first, last, max_bytes);
        let mut entries = Vec::new();
        let mut next = first;
        while next <= end {
            let span = read_range_with(
                id,
                &h.index,
                next,
                end,
                BACKGROUND_READ_PIECE_BYTES,
                |buf, start, len| read_exact_into(&file, &h.path, buf, start, len),
            )?;
            next += span.len() as u64;
            entries.extend(span);
        }
        Ok(entries)
    }

    /// Entries `first..=last` of a sealed ledger if a read-ahead has them in memory (up to
    /// `max_bytes`, at least one entry), without any I/O: callers on an async thread try this
    /// before handing [`LedgerStore::read`] to a blocking one.
    pub fn read_ahead(
        &self,
        id: u64,
        first: u64,
        last: u64,
        max_bytes: usize,
    ) -> Option<Vec<Bytes>> {
        self.inner
            .read_ahead
            .get(id, first, last, max_bytes, |from| {
                // Only a handle already open: opening one reads its footer.
                let h = self.lock_sealed().handles.get(&id).cloned()?;
                self.window_read(&h, id, from)
            })
    }

    /// The read of the window of sealed ledger `id` starting at `from`, if it has entries there.
    fn window_read(&self, h: &Arc<SealedHandle>, id: u64, from: u64) -> Option<WindowRead> {
        let last = u64::try_from(h.index.last_entry_id()).ok()?;
        if from > last {
            return None;
        }
        let window = self.inner.options.read_ahead_window_bytes.max(1);
        let end = h.index.read_end(from, last, window);
        let h = Arc::clone(h);
        let mapped = Arc::clone(self.inner.deleter.mapped_files());
        Some(WindowRead {
            last: end,
            read: Box::new(move || {
                read_range_mapped(&mapped, id, &h.file, &h.path, &h.index, from, end, window)
            }),
        })
    }

    /// Size and state of a ledger.
    pub fn stat(&self, id: u64) -> Result<LedgerStat> {
        if let Some(ledger) = self.lock_open().get(&id).cloned() {
            let d = ledger.durable.read().unwrap_or_else(|p| p.into_inner());
            return Ok(LedgerStat {
                ledger_id: id,
                sealed: false,
                entries: d.offsets.len() as u64,
                size_bytes: d.payload_bytes,
            });
        }
        let h = self.sealed_handle(id)?;
        Ok(LedgerStat {
            ledger_id: id,
            sealed: true,
            entries: h.index.offsets.len() as u64,
            size_bytes: h.index.payload_bytes,
        })
    }

    /// Removes a ledger's file. Deleting a ledger that does not exist is not an error (idempotent).
    ///
    /// Blocking (unlinks, a directory fsync): callers on async threads run it on a blocking one.
    /// The file's blocks are freed later, a step at a time (see `deleter`); the handles cached
    /// for it are dropped after the caches' locks are released.
    pub fn delete_ledger(&self, id: u64) -> Result<()> {
        let open = self.lock_open().remove(&id);
        let removed = [
            files::sealed_path(&self.inner.dir, id),
            files::open_path(&self.inner.dir, id),
        ]
        .into_iter()
        // The name goes now, the blocks a step at a time (see `deleter`).
        .try_for_each(|path| self.inner.deleter.delete(&path).map(drop));
        // After the unlink: a handle opened before it was opened before this count changed, so
        // it is either removed here or not cached at all (see `sealed_handle`).
        let sealed = {
            let mut cache = self.lock_sealed();
            cache.deletions += 1;
            cache.handles.remove(&id)
        };
        self.inner.read_ahead.forget(id);
        drop((open, sealed));
        removed?;
        files::fsync_dir(&self.inner.dir)
    }
}

fn load_footer(id: u64, file: &File, path: &Path) -> Result<EntryIndex> {
    let len = file
        .metadata()
        .map_err(|e| HotTierError::io("stat", path, e))?
        .len();
    let corrupt = |detail: &str| HotTierError::Corrupt {
        ledger_id: id,
        detail: detail.to_string(),
    };
    if len < crate::format::FILE_HEADER_LEN + FOOTER_TRAILER_LEN {
        return Err(corrupt("sealed file too short"));
    }
    let mut trailer = [0u8; FOOTER_TRAILER_LEN as usize];
    file.read_exact_at(&mut trailer, len - FOOTER_TRAILER_LEN)
        .map_err(|e| HotTierError::io("read footer", path, e))?;
    let (n, crc) = decode_footer_trailer(id, &trailer)?;
    // Bound the allocation by the file size before trusting `n`.
    let offsets_len = n
        .checked_mul(8)
        .filter(|l| l + FOOTER_TRAILER_LEN + crate::format::FILE_HEADER_LEN <= len)
        .ok_or_else(|| corrupt("footer entry count exceeds the file"))?;
    let data_end = len - FOOTER_TRAILER_LEN - offsets_len;
    let mut raw = vec![0u8; offsets_len as usize];
    file.read_exact_at(&mut raw, data_end)
        .map_err(|e| HotTierError::io("read footer", path, e))?;
    let offsets = decode_footer_offsets(id, &raw, n, crc)?;
    if offsets
        .first()
        .is_some_and(|&o| o < crate::format::FILE_HEADER_LEN)
        || offsets.last().is_some_and(|&o| o >= data_end)
    {
        return Err(corrupt("footer offsets point outside the records"));
    }
    // Payload bytes = span of records minus their headers.
    let records_span = data_end - crate::format::FILE_HEADER_LEN;
    let payload_bytes = records_span.saturating_sub(n * crate::format::RECORD_HEADER_LEN as u64);
    Ok(EntryIndex {
        offsets,
        data_end,
        payload_bytes,
    })
}

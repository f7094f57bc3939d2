//! Deleting large files without stalling other writers' fsyncs.
//!
//! Freeing a file's blocks is not free: on a file system mounted with online discard (this
//! project's VM: ext4 `-o discard`) the journal commit that frees them also discards them, and
//! every `fdatasync` of the file system waits for that commit. Freeing a 256 MB ledger in one
//! go (its last `close` after the unlink) took 40–60 ms, and producers' publishes waited as
//! long (measured with `perf trace` during `./scripts/bench broker`'s throttled offload, which
//! deletes each ledger's hot copy once it is offloaded). So, as RocksDB's `DeleteScheduler`
//! does for its SST files, a deleted file's name goes at once and its blocks go a few MiB at a
//! time: a thread shortens the still-open file in [`STEP`]s, each made durable on its own
//! (about 1 ms here), with a pause between them.
//!
//! Shortening a file is what a mapping of it must never see: a page of a mapped window past the
//! file's new end raises `SIGBUS` when it is touched (a TLS connection encrypting a queued entry,
//! say), and that ends the broker. So each mapped window holds a [`MapPin`] of its file, taken
//! before it is mapped, and the deleter starts shortening a file only once no pin of it is left;
//! until then the file waits (its name is gone already; its blocks stay). Once shortening has
//! begun, no pin is given: the reader reads with `pread`, which fails as a read where the bytes
//! are gone.
//!
//! Crash window: the name is removed (and the caller fsyncs the directory) before any block
//! is freed; a crash meanwhile leaves an unlinked inode, which the file system frees when it
//! is mounted again. Nothing is written anywhere else.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::error::{HotTierError, Result};

/// Bytes freed per step.
const STEP: u64 = 4 << 20;
/// Pause between steps: at most ~400 MB/s are freed, a step's commit at a time.
const PAUSE: Duration = Duration::from_millis(10);
/// How long after its deletion a file's blocks start to go: a read that opened the ledger just
/// before it was deleted still finds its bytes (as with an unlinked file kept open).
const GRACE: Duration = Duration::from_secs(2);
/// How long a file still mapped waits before the deleter looks at it again.
const PINNED_RETRY: Duration = Duration::from_millis(200);

struct Doomed {
    file: File,
    path: PathBuf,
    /// When its blocks may start to go: [`GRACE`] after the deletion, later while it is mapped.
    due: Instant,
}

/// Which files have windows mapped (and how many), and which are being shortened: a file is
/// never in both at once.
#[derive(Default)]
pub(crate) struct MappedFiles {
    state: Mutex<MappedState>,
}

#[derive(Default)]
struct MappedState {
    pins: HashMap<PathBuf, usize>,
    shortening: HashSet<PathBuf>,
}

/// A mapped window's hold on its file: the deleter does not shorten the file while it lives.
pub(crate) struct MapPin {
    files: Arc<MappedFiles>,
    path: PathBuf,
}

impl MappedFiles {
    fn lock(&self) -> std::sync::MutexGuard<'_, MappedState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A pin of `path` for a window about to be mapped; `None` once the deleter has begun to
    /// shorten the file (read it with `pread` then).
    pub(crate) fn pin(self: &Arc<Self>, path: &Path) -> Option<MapPin> {
        let mut state = self.lock();
        if state.shortening.contains(path) {
            return None;
        }
        *state.pins.entry(path.to_path_buf()).or_default() += 1;
        Some(MapPin {
            files: Arc::clone(self),
            path: path.to_path_buf(),
        })
    }

    /// Marks `path` as being shortened, unless a window of it is mapped (`false`).
    fn begin_shortening(&self, path: &Path) -> bool {
        let mut state = self.lock();
        if state.pins.contains_key(path) {
            return false;
        }
        state.shortening.insert(path.to_path_buf());
        true
    }

    /// `path` is freed: a window mapped from a handle still open now finds an empty file, whose
    /// populate fails as a read.
    fn end_shortening(&self, path: &Path) {
        self.lock().shortening.remove(path);
    }
}

impl Drop for MapPin {
    fn drop(&mut self) {
        let mut state = self.files.lock();
        if let Some(n) = state.pins.get_mut(&self.path) {
            *n -= 1;
            if *n == 0 {
                state.pins.remove(&self.path);
            }
        }
    }
}

/// The store's file deleter: one thread, files freed in the order they were deleted (a file
/// still mapped goes to the back).
pub(crate) struct Deleter {
    queue: Mutex<mpsc::Sender<Doomed>>,
    mapped: Arc<MappedFiles>,
    /// How long after its deletion a file's blocks may start to go ([`GRACE`]).
    grace: Duration,
}

impl Deleter {
    pub(crate) fn start() -> Result<Self> {
        let (tx, rx) = mpsc::channel::<Doomed>();
        let mapped = Arc::new(MappedFiles::default());
        let m = Arc::clone(&mapped);
        std::thread::Builder::new()
            .name("hot-tier-delete".into())
            .spawn(move || free_loop(&rx, &m, PAUSE))
            .map_err(|e| HotTierError::io("spawn thread", "deleter", e))?;
        Ok(Deleter {
            queue: Mutex::new(tx),
            mapped,
            grace: GRACE,
        })
    }

    /// The registry mapped windows pin their files in.
    pub(crate) fn mapped_files(&self) -> &Arc<MappedFiles> {
        &self.mapped
    }

    /// Removes `path`'s name now and frees its blocks over the next moments; `false` if there
    /// was no such file. The removal is not durable until the caller fsyncs the directory.
    pub(crate) fn delete(&self, path: &Path) -> Result<bool> {
        // Opened for writing before the unlink: the thread shortens the file through it.
        let file = match OpenOptions::new().write(true).open(path) {
            Ok(f) => Some(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            // Not writable (a read-only copy of the directory): removed the plain way.
            Err(_) => None,
        };
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(HotTierError::io("delete", path, e)),
        }
        if let Some(file) = file {
            let doomed = Doomed {
                file,
                path: path.to_path_buf(),
                due: Instant::now() + self.grace,
            };
            // A store being dropped has no thread any more: the file is closed here instead.
            let _ = self
                .queue
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .send(doomed);
        }
        Ok(true)
    }
}

/// Frees the files sent on `rx` once due, a [`STEP`] every `pause`; a file with a window still
/// mapped (see [`MappedFiles`]) waits [`PINNED_RETRY`] more at the back of the queue. Ends when
/// the store (the only sender) is gone; files still waiting are then closed at once (a mapped
/// one lives on, whole, until its last window is unmapped).
fn free_loop(rx: &mpsc::Receiver<Doomed>, mapped: &MappedFiles, pause: Duration) {
    let mut waiting: VecDeque<Doomed> = VecDeque::new();
    loop {
        let Some(head) = waiting.front() else {
            match rx.recv() {
                Ok(d) => waiting.push_back(d),
                Err(_) => return,
            }
            continue;
        };
        let now = Instant::now();
        if head.due > now {
            match rx.recv_timeout(head.due - now) {
                Ok(d) => waiting.push_back(d),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
            continue;
        }
        let Some(mut d) = waiting.pop_front() else {
            continue;
        };
        if mapped.begin_shortening(&d.path) {
            free_gradually(&d, pause);
            mapped.end_shortening(&d.path);
        } else {
            d.due = now + PINNED_RETRY;
            waiting.push_back(d);
        }
    }
}

/// Shortens `d`'s file to nothing, [`STEP`] by [`STEP`], each step durable before the pause.
fn free_gradually(d: &Doomed, pause: Duration) {
    let mut len = match d.file.metadata() {
        Ok(m) => m.len(),
        Err(e) => {
            tracing::warn!(path = %d.path.display(), error = %e, "could not stat a deleted file; freeing it at once");
            return;
        }
    };
    while len > 0 {
        len = len.saturating_sub(STEP);
        if let Err(e) = d.file.set_len(len).and_then(|()| d.file.sync_all()) {
            // The file is gone by name already; closing it frees the rest in one go.
            tracing::warn!(path = %d.path.display(), error = %e, "could not shorten a deleted file; freeing the rest at once");
            return;
        }
        std::thread::sleep(pause);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_of(dir: &Path, name: &str, len: usize) -> PathBuf {
        let path = dir.join(name);
        let mut f = File::create(&path).unwrap();
        f.write_all(&vec![7u8; len]).unwrap();
        path
    }

    /// A deleter whose thread the test starts itself, with `free_loop(&rx, &mapped, …)`.
    fn deleter_with(grace: Duration) -> (Deleter, mpsc::Receiver<Doomed>, Arc<MappedFiles>) {
        let (tx, rx) = mpsc::channel();
        let mapped = Arc::new(MappedFiles::default());
        let deleter = Deleter {
            queue: Mutex::new(tx),
            mapped: Arc::clone(&mapped),
            grace,
        };
        (deleter, rx, mapped)
    }

    #[test]
    fn a_deleted_file_loses_its_name_at_once_and_its_blocks_in_steps_after_the_grace() {
        let dir = tempfile::tempdir().unwrap();
        let path = file_of(dir.path(), "big", (2 * STEP + 5) as usize);
        // Another handle, like a read in flight, sees the file shrink.
        let reader = File::open(&path).unwrap();
        let (deleter, rx, mapped) = deleter_with(Duration::from_millis(300));
        assert!(deleter.delete(&path).unwrap());
        assert!(!path.exists(), "the name is gone before any block is freed");
        assert!(
            !deleter.delete(&path).unwrap(),
            "deleting again finds nothing"
        );
        let thread = std::thread::spawn(move || free_loop(&rx, &mapped, Duration::ZERO));
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(
            reader.metadata().unwrap().len(),
            2 * STEP + 5,
            "nothing is freed within the grace"
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while reader.metadata().unwrap().len() > 0 {
            assert!(Instant::now() < deadline, "the file was never freed");
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(deleter);
        thread.join().unwrap();
    }

    #[test]
    fn files_waiting_when_the_store_goes_are_closed_and_the_thread_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = file_of(dir.path(), "f", 10);
        let reader = File::open(&path).unwrap();
        let (deleter, rx, mapped) = deleter_with(Duration::from_secs(3600));
        deleter.delete(&path).unwrap();
        let thread = std::thread::spawn(move || free_loop(&rx, &mapped, PAUSE));
        drop(deleter);
        thread.join().unwrap();
        assert_eq!(
            reader.metadata().unwrap().len(),
            10,
            "not shortened, only closed"
        );
    }

    #[test]
    fn a_file_with_a_window_mapped_keeps_its_blocks_until_the_window_goes() {
        let dir = tempfile::tempdir().unwrap();
        let path = file_of(dir.path(), "mapped", (STEP + 5) as usize);
        let reader = File::open(&path).unwrap();
        let (deleter, rx, mapped) = deleter_with(Duration::ZERO);
        let pin = mapped.pin(&path).expect("nothing shortens the file yet");
        let second = mapped.pin(&path).expect("pins of one file add up");
        assert!(deleter.delete(&path).unwrap());
        let m = Arc::clone(&mapped);
        let thread = std::thread::spawn(move || free_loop(&rx, &m, Duration::ZERO));
        // Due at once, but pinned: looked at again and again, never shortened.
        std::thread::sleep(PINNED_RETRY * 3);
        assert_eq!(
            reader.metadata().unwrap().len(),
            STEP + 5,
            "shortened while mapped"
        );
        drop(pin);
        std::thread::sleep(PINNED_RETRY * 2);
        assert_eq!(
            reader.metadata().unwrap().len(),
            STEP + 5,
            "shortened while one window of two was still mapped"
        );
        drop(second);
        let deadline = Instant::now() + Duration::from_secs(10);
        while reader.metadata().unwrap().len() > 0 {
            assert!(
                Instant::now() < deadline,
                "the file was never freed once unmapped"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(deleter);
        thread.join().unwrap();
    }

    #[test]
    fn no_window_is_pinned_while_its_file_is_being_shortened() {
        let mapped = Arc::new(MappedFiles::default());
        let path = Path::new("/ledgers/7.sealed");
        assert!(mapped.begin_shortening(path));
        assert!(mapped.pin(path).is_none(), "pinned a file being shortened");
        mapped.end_shortening(path);
        let pin = mapped
            .pin(path)
            .expect("a freed file maps again (and fails as a read)");
        assert!(
            !mapped.begin_shortening(path),
            "shortening began under a pin"
        );
        drop(pin);
        assert!(mapped.begin_shortening(path));
        assert!(
            mapped.lock().pins.is_empty(),
            "a dropped pin left its count behind"
        );
    }
}

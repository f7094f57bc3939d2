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
//! Crash window: the name is removed (and the caller fsyncs the directory) before any block
//! is freed; a crash meanwhile leaves an unlinked inode, which the file system frees when it
//! is mounted again. Nothing is written anywhere else.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::error::{HotTierError, Result};

/// Bytes freed per step.
const STEP: u64 = 4 << 20;
/// Pause between steps: at most ~400 MB/s are freed, a step's commit at a time.
const PAUSE: Duration = Duration::from_millis(10);
/// How long after its deletion a file's blocks start to go: a read that opened the ledger just
/// before it was deleted still finds its bytes (as with an unlinked file kept open).
const GRACE: Duration = Duration::from_secs(2);

struct Doomed {
    file: File,
    path: PathBuf,
    deleted_at: Instant,
}

/// The store's file deleter: one thread, files freed in the order they were deleted.
pub(crate) struct Deleter {
    queue: Mutex<mpsc::Sender<Doomed>>,
}

impl Deleter {
    pub(crate) fn start() -> Result<Self> {
        let (tx, rx) = mpsc::channel::<Doomed>();
        std::thread::Builder::new()
            .name("hot-tier-delete".into())
            .spawn(move || free_loop(&rx, GRACE, PAUSE))
            .map_err(|e| HotTierError::io("spawn thread", "deleter", e))?;
        Ok(Deleter {
            queue: Mutex::new(tx),
        })
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
                deleted_at: Instant::now(),
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

/// Frees the files sent on `rx`, each `grace` after its deletion, a [`STEP`] every `pause`. Ends
/// when the store (the only sender) is gone; files still waiting are then closed at once.
fn free_loop(rx: &mpsc::Receiver<Doomed>, grace: Duration, pause: Duration) {
    let mut waiting: VecDeque<Doomed> = VecDeque::new();
    loop {
        let Some(head) = waiting.front() else {
            match rx.recv() {
                Ok(d) => waiting.push_back(d),
                Err(_) => return,
            }
            continue;
        };
        let due = head.deleted_at + grace;
        let now = Instant::now();
        if due > now {
            match rx.recv_timeout(due - now) {
                Ok(d) => waiting.push_back(d),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
            continue;
        }
        if let Some(d) = waiting.pop_front() {
            free_gradually(&d, pause);
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

    #[test]
    fn a_deleted_file_loses_its_name_at_once_and_its_blocks_in_steps_after_the_grace() {
        let dir = tempfile::tempdir().unwrap();
        let path = file_of(dir.path(), "big", (2 * STEP + 5) as usize);
        // Another handle, like a read in flight, sees the file shrink.
        let reader = File::open(&path).unwrap();
        let (tx, rx) = mpsc::channel();
        let deleter = Deleter {
            queue: Mutex::new(tx),
        };
        assert!(deleter.delete(&path).unwrap());
        assert!(!path.exists(), "the name is gone before any block is freed");
        assert!(
            !deleter.delete(&path).unwrap(),
            "deleting again finds nothing"
        );
        let grace = Duration::from_millis(300);
        let thread = std::thread::spawn(move || free_loop(&rx, grace, Duration::ZERO));
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
        let (tx, rx) = mpsc::channel();
        let deleter = Deleter {
            queue: Mutex::new(tx),
        };
        deleter.delete(&path).unwrap();
        let thread = std::thread::spawn(move || free_loop(&rx, Duration::from_secs(3600), PAUSE));
        drop(deleter);
        thread.join().unwrap();
        assert_eq!(
            reader.metadata().unwrap().len(),
            10,
            "not shortened, only closed"
        );
    }
}

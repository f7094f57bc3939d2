//! The local disk cache of the cold tier: chunks of offloaded objects kept on local disk, so
//! data read from the tier once (by any subscription or reader of the broker) is read again from
//! disk instead of by another GET.
//!
//! Layout: one directory per object, named as the object (`<uuid>-ledger-<id>` or
//! `<uuid>-ledger-<id>-index`), one file per chunk named by the chunk's offset in the object.
//! Data objects are cached in aligned chunks of [`ChunkCache::chunk_size`] bytes (the last one
//! shorter); an index object as one chunk at offset 0. Offloaded objects never change (a new
//! offload of a ledger gets a new UUID), so a chunk never goes stale.
//!
//! Each file is a 16-byte header (magic, CRC32C of the payload, payload length) and the payload.
//! A file that is short, long, or fails its checksum is deleted, counted as corrupt and treated
//! as a miss: the caller fetches the chunk from the store again, it is never served. Files are
//! written to a temporary name and renamed, so a crash leaves a whole file or none (a torn or
//! lost write of the page cache is caught by the checksum). Nothing is fsynced: this is a cache.
//!
//! Eviction is least-recently-used over the whole directory, within `limit_bytes` of payload.
//! The recency order is kept in memory; after a restart it starts from the files' modification
//! times. No lock is held across file I/O.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::buffer_pool::BufferPool;

/// `tlc1`: a tierlog cache chunk, format 1.
const MAGIC: u32 = 0x746c_6331;
const HEADER_LEN: usize = 16;
const TMP_SUFFIX: &str = ".tmp";
/// Idle read buffers kept for reuse: a few ranges of the largest size (8 MiB by default) for
/// each of a handful of readers.
const IDLE_BUFFER_BYTES: usize = 64 << 20;

/// Counters of the cache, for metrics and benchmarks.
#[derive(Debug, Default)]
pub struct CacheCounters {
    /// Chunks served from disk.
    pub hits: AtomicU64,
    /// Chunks looked up and not found (each then read from the store).
    pub misses: AtomicU64,
    /// Chunks removed to stay within the size limit.
    pub evictions: AtomicU64,
    /// Files found damaged (bad header, length or checksum), deleted and refetched.
    pub corrupt: AtomicU64,
    /// Payload bytes served from disk.
    pub hit_bytes: AtomicU64,
    /// Payload bytes written.
    pub written_bytes: AtomicU64,
}

impl CacheCounters {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Why the cache directory cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("offload cache directory {}: {source}", dir.display())]
pub struct CacheOpenError {
    dir: PathBuf,
    #[source]
    source: std::io::Error,
}

#[derive(Debug)]
struct Cached {
    size: u64,
    tick: u64,
}

/// The in-memory picture of the directory: every file's size and recency.
#[derive(Debug, Default)]
struct State {
    files: HashMap<(String, u64), Cached>,
    /// Recency order: tick → file.
    by_tick: BTreeMap<u64, (String, u64)>,
    next_tick: u64,
    total: u64,
    /// Objects whose offload was deleted, newest last (at most [`REMEMBERED_REMOVALS`]): a
    /// chunk of one that a read fetched before the deletion and stores after it is dropped.
    /// An object name holds its offload's uuid, so it is never written again.
    removed: std::collections::VecDeque<String>,
}

/// How many deleted objects the cache remembers against late writes of their chunks.
const REMEMBERED_REMOVALS: usize = 1024;

impl State {
    fn touch(&mut self, key: &(String, u64)) -> bool {
        let tick = self.next_tick;
        let Some(c) = self.files.get_mut(key) else {
            return false;
        };
        self.by_tick.remove(&c.tick);
        c.tick = tick;
        self.by_tick.insert(tick, key.clone());
        self.next_tick += 1;
        true
    }

    fn insert(&mut self, key: (String, u64), size: u64) {
        self.remove(&key);
        let tick = self.next_tick;
        self.next_tick += 1;
        self.by_tick.insert(tick, key.clone());
        self.files.insert(key, Cached { size, tick });
        self.total += size;
    }

    fn remove(&mut self, key: &(String, u64)) -> bool {
        match self.files.remove(key) {
            Some(c) => {
                self.by_tick.remove(&c.tick);
                self.total -= c.size;
                true
            }
            None => false,
        }
    }

    /// Takes least-recently-used files out until the rest fits in `limit`.
    fn over(&mut self, limit: u64) -> Vec<(String, u64)> {
        let mut victims = Vec::new();
        while self.total > limit {
            let Some((_, key)) = self.by_tick.pop_first() else {
                break;
            };
            if let Some(c) = self.files.remove(&key) {
                self.total -= c.size;
            }
            victims.push(key);
        }
        victims
    }
}

/// A broker's disk cache of offloaded chunks (see the module documentation).
#[derive(Debug)]
pub struct ChunkCache {
    dir: PathBuf,
    limit_bytes: u64,
    chunk_size: u64,
    state: Mutex<State>,
    counters: CacheCounters,
    /// Buffers of ranges read from the cache, reused (see [`BufferPool`]).
    buffers: Arc<BufferPool>,
}

impl ChunkCache {
    /// Chunk size of data objects: Pulsar's default read buffer.
    pub const DEFAULT_CHUNK_SIZE: u64 = 1 << 20;

    /// Opens (creating) the cache in `dir`, holding at most `limit_bytes` of chunks: scans what
    /// an earlier run left, drops unfinished temporary files and evicts down to the limit.
    pub fn open(
        dir: impl Into<PathBuf>,
        limit_bytes: u64,
        chunk_size: u64,
    ) -> Result<Self, CacheOpenError> {
        let dir = dir.into();
        let err = |source| CacheOpenError {
            dir: dir.clone(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(err)?;
        let mut found: Vec<(std::time::SystemTime, (String, u64), u64)> = Vec::new();
        for object in std::fs::read_dir(&dir).map_err(err)? {
            let object = object.map_err(err)?;
            let Some(object_name) = object.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if !object.file_type().map_err(err)?.is_dir() {
                continue;
            }
            for chunk in std::fs::read_dir(object.path()).map_err(err)? {
                let chunk = chunk.map_err(err)?;
                let name = chunk.file_name();
                let offset = name.to_str().and_then(|n| n.parse::<u64>().ok());
                let Some(offset) = offset else {
                    // A temporary file of a write that never finished, or a stranger.
                    let _ = std::fs::remove_file(chunk.path());
                    continue;
                };
                let Ok(meta) = chunk.metadata() else { continue };
                let size = meta.len().saturating_sub(HEADER_LEN as u64);
                let modified = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
                found.push((modified, (object_name.clone(), offset), size));
            }
        }
        found.sort_by_key(|(t, _, _)| *t);
        let mut state = State::default();
        for (_, key, size) in found {
            state.insert(key, size);
        }
        let cache = ChunkCache {
            dir,
            limit_bytes,
            chunk_size: chunk_size.max(1),
            state: Mutex::new(state),
            counters: CacheCounters::default(),
            buffers: BufferPool::new(IDLE_BUFFER_BYTES),
        };
        let victims = cache.lock().over(limit_bytes);
        cache.delete_files(&victims);
        Ok(cache)
    }

    pub fn chunk_size(&self) -> u64 {
        self.chunk_size
    }

    pub fn counters(&self) -> &CacheCounters {
        &self.counters
    }

    /// Payload bytes held now.
    pub fn size_bytes(&self) -> u64 {
        self.lock().total
    }

    pub fn limit_bytes(&self) -> u64 {
        self.limit_bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is plain bookkeeping: a panic elsewhere cannot leave it half-updated in a
        // way that matters more than losing the cache, so a poisoned lock is used as is.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn file(&self, object: &str, offset: u64) -> PathBuf {
        self.dir.join(object).join(offset.to_string())
    }

    /// The chunk of `object` at `offset`, if cached whole and intact. `expected_len` (known for
    /// data chunks from the index) must match too. Blocking: call from a blocking thread.
    pub fn get_blocking(
        &self,
        object: &str,
        offset: u64,
        expected_len: Option<u64>,
    ) -> Option<Bytes> {
        let mut out = Vec::new();
        self.append_blocking(object, offset, expected_len, &mut out)
            .then(|| Bytes::from(out))
    }

    /// The bytes of `start..end` of data object `object` if every chunk of it is cached whole
    /// and intact; `start` is chunk-aligned, and `end` is too or is the object's end. Read into
    /// one buffer of the pool. Blocking: call from a blocking thread.
    pub fn get_range_blocking(&self, object: &str, start: u64, end: u64) -> Option<Bytes> {
        let mut out = self.buffers.take(end.saturating_sub(start) as usize);
        let mut offset = start;
        while offset < end {
            let len = self.chunk_size.min(end - offset);
            if !self.append_blocking(object, offset, Some(len), &mut out) {
                return None;
            }
            offset += len;
        }
        Some(self.buffers.freeze(out))
    }

    /// Appends the chunk of `object` at `offset` to `out` if it is cached whole and intact (see
    /// [`Self::get_blocking`]), reading the file straight into `out`'s spare capacity; returns
    /// whether it did. On a miss `out` is left as it was.
    fn append_blocking(
        &self,
        object: &str,
        offset: u64,
        expected_len: Option<u64>,
        out: &mut Vec<u8>,
    ) -> bool {
        let key = (object.to_string(), offset);
        if !self.lock().touch(&key) {
            CacheCounters::add(&self.counters.misses, 1);
            return false;
        }
        let before = out.len();
        match self.read_file_into(&self.file(object, offset), expected_len, out) {
            Ok(true) => {
                CacheCounters::add(&self.counters.hits, 1);
                CacheCounters::add(&self.counters.hit_bytes, (out.len() - before) as u64);
                true
            }
            Ok(false) => {
                out.truncate(before);
                tracing::warn!(
                    object,
                    offset,
                    "offload cache: damaged chunk file removed, refetching"
                );
                CacheCounters::add(&self.counters.corrupt, 1);
                CacheCounters::add(&self.counters.misses, 1);
                self.lock().remove(&key);
                let _ = std::fs::remove_file(self.file(object, offset));
                false
            }
            Err(e) => {
                out.truncate(before);
                // Evicted meanwhile, or unreadable: a miss either way.
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(object, offset, error = %e, "offload cache: chunk unreadable");
                }
                CacheCounters::add(&self.counters.misses, 1);
                self.lock().remove(&key);
                false
            }
        }
    }

    /// Reads and checks one file, appending its payload to `out`: `Ok(false)` when it is damaged
    /// (what was appended is then the caller's to drop). The payload is read into `out`'s spare
    /// capacity, never zeroed or copied first: a cache hit is one copy out of the page cache
    /// and one checksum pass.
    fn read_file_into(
        &self,
        path: &Path,
        expected_len: Option<u64>,
        out: &mut Vec<u8>,
    ) -> std::io::Result<bool> {
        let mut file = std::fs::File::open(path)?;
        let mut header = [0u8; HEADER_LEN];
        if let Err(e) = file.read_exact(&mut header) {
            return match e.kind() {
                std::io::ErrorKind::UnexpectedEof => Ok(false),
                _ => Err(e),
            };
        }
        let magic = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let crc = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        let mut len_bytes = [0u8; 8];
        len_bytes.copy_from_slice(&header[8..16]);
        let len = u64::from_be_bytes(len_bytes);
        if magic != MAGIC || expected_len.is_some_and(|e| e != len) || len > 1 << 32 {
            return Ok(false);
        }
        let start = out.len();
        out.reserve_exact(len as usize);
        // One byte more than the header promises: trailing bytes mean the file is not what
        // was written, and so does a short one.
        file.take(len + 1).read_to_end(out)?;
        Ok(out.len() - start == len as usize && crc_fast::crc32_iscsi(&out[start..]) == crc)
    }

    /// Stores a chunk (replacing one of the same name), then evicts down to the limit. Errors
    /// are logged, not returned: a chunk that is not cached is fetched again next time.
    /// Blocking: call from a blocking thread.
    pub fn put_blocking(&self, object: &str, offset: u64, payload: &[u8]) {
        if payload.len() as u64 > self.limit_bytes {
            return;
        }
        let path = self.file(object, offset);
        if let Err(e) = self.write_file(&path, payload) {
            tracing::warn!(object, offset, error = %e, "offload cache: chunk not stored");
            return;
        }
        let victims = {
            let mut state = self.lock();
            if state.removed.iter().any(|o| o == object) {
                // Its offload was deleted while this chunk was on its way: the deletion may
                // have run before the file was written, so the file goes now.
                drop(state);
                let _ = std::fs::remove_file(&path);
                let _ = std::fs::remove_dir(self.dir.join(object));
                return;
            }
            state.insert((object.to_string(), offset), payload.len() as u64);
            state.over(self.limit_bytes)
        };
        CacheCounters::add(&self.counters.written_bytes, payload.len() as u64);
        self.delete_files(&victims);
    }

    fn write_file(&self, path: &Path, payload: &[u8]) -> std::io::Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let tmp = path.with_extension(format!(
            "{}{TMP_SUFFIX}",
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let mut header = [0u8; HEADER_LEN];
        header[0..4].copy_from_slice(&MAGIC.to_be_bytes());
        header[4..8].copy_from_slice(&crc_fast::crc32_iscsi(payload).to_be_bytes());
        header[8..16].copy_from_slice(&(payload.len() as u64).to_be_bytes());
        let result = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&header)?;
            f.write_all(payload)?;
            std::fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    fn delete_files(&self, victims: &[(String, u64)]) {
        for (object, offset) in victims {
            CacheCounters::add(&self.counters.evictions, 1);
            let _ = std::fs::remove_file(self.file(object, *offset));
            // The object's directory goes with its last chunk (fails harmlessly otherwise).
            let _ = std::fs::remove_dir(self.dir.join(object));
        }
    }

    /// Drops one chunk (its bytes proved wrong at a higher level). Blocking.
    pub fn remove_blocking(&self, object: &str, offset: u64) {
        self.lock().remove(&(object.to_string(), offset));
        let _ = std::fs::remove_file(self.file(object, offset));
    }

    /// Forgets every chunk of `object` (its offload was deleted), also one a read stores later.
    /// Blocking.
    pub fn remove_object_blocking(&self, object: &str) {
        {
            let mut state = self.lock();
            if state.removed.len() >= REMEMBERED_REMOVALS {
                state.removed.pop_front();
            }
            state.removed.push_back(object.to_string());
            let keys: Vec<_> = state
                .files
                .keys()
                .filter(|(o, _)| o == object)
                .cloned()
                .collect();
            for k in keys {
                state.remove(&k);
            }
        }
        let _ = std::fs::remove_dir_all(self.dir.join(object));
    }
}

/// Makes temporary names unique among concurrent writers of the same chunk.
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(n: usize, seed: u8) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn a_stored_chunk_reads_back_and_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let c = ChunkCache::open(dir.path(), 1 << 20, 4096).unwrap();
        assert!(c.get_blocking("u-ledger-1", 0, Some(4096)).is_none());
        c.put_blocking("u-ledger-1", 0, &chunk(4096, 1));
        assert_eq!(
            c.get_blocking("u-ledger-1", 0, Some(4096)).unwrap(),
            chunk(4096, 1)
        );
        c.put_blocking("u-ledger-1", 4096, &chunk(100, 2));
        drop(c);
        let c = ChunkCache::open(dir.path(), 1 << 20, 4096).unwrap();
        assert_eq!(c.size_bytes(), 4096 + 100);
        assert_eq!(
            c.get_blocking("u-ledger-1", 4096, None).unwrap(),
            chunk(100, 2)
        );
        assert_eq!(c.counters().hits.load(Ordering::Relaxed), 1);
        // The index knows another length: not served, and dropped as damaged.
        assert!(c.get_blocking("u-ledger-1", 0, Some(4000)).is_none());
        assert_eq!(c.counters().corrupt.load(Ordering::Relaxed), 1);
        assert_eq!(c.size_bytes(), 100);
    }

    #[test]
    fn a_damaged_file_is_never_served_and_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let c = ChunkCache::open(dir.path(), 1 << 20, 4096).unwrap();
        for (offset, damage) in [(0u64, "flip"), (4096, "truncate"), (8192, "extend")] {
            c.put_blocking("u-ledger-2", offset, &chunk(4096, 3));
            let path = dir.path().join("u-ledger-2").join(offset.to_string());
            let mut bytes = std::fs::read(&path).unwrap();
            match damage {
                "flip" => bytes[HEADER_LEN + 1000] ^= 0x10,
                "truncate" => bytes.truncate(HEADER_LEN + 2000),
                _ => bytes.push(0),
            }
            std::fs::write(&path, bytes).unwrap();
            assert!(
                c.get_blocking("u-ledger-2", offset, Some(4096)).is_none(),
                "{damage}"
            );
            assert!(!path.exists(), "{damage}: the damaged file is removed");
        }
        assert_eq!(c.counters().corrupt.load(Ordering::Relaxed), 3);
        assert_eq!(c.size_bytes(), 0);
    }

    #[test]
    fn a_range_reads_back_its_chunks_in_order_and_only_when_all_are_whole() {
        let dir = tempfile::tempdir().unwrap();
        let c = ChunkCache::open(dir.path(), 1 << 20, 4096).unwrap();
        let object = "u-ledger-4";
        // Three whole chunks and the object's short last one.
        let chunks: Vec<Vec<u8>> = (0..4u8)
            .map(|i| chunk(if i == 3 { 1000 } else { 4096 }, i))
            .collect();
        for (i, bytes) in chunks.iter().enumerate() {
            c.put_blocking(object, i as u64 * 4096, bytes);
        }
        let end = 3 * 4096 + 1000;
        for _ in 0..3 {
            // Again and again: the buffers come back and are reused.
            let range = c.get_range_blocking(object, 0, end).unwrap();
            assert_eq!(&range[..], &chunks.concat()[..]);
        }
        assert_eq!(
            &c.get_range_blocking(object, 4096, 3 * 4096).unwrap()[..],
            &chunks[1..3].concat()[..]
        );
        // A range is served only whole: a damaged chunk in its middle makes it a miss (and the
        // file goes), a missing one too.
        let path = dir.path().join(object).join("8192");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[HEADER_LEN + 7] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        assert!(c.get_range_blocking(object, 0, end).is_none());
        assert!(!path.exists());
        assert!(c.get_range_blocking(object, 0, 3 * 4096).is_none());
        assert_eq!(
            &c.get_range_blocking(object, 0, 2 * 4096).unwrap()[..],
            &chunks[..2].concat()[..]
        );
    }

    /// A read that fetched a chunk before its offload was deleted stores it after: the chunk
    /// must not come back (it would sit in the cache, unreachable, until evicted).
    #[test]
    fn a_chunk_stored_after_its_object_was_removed_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let c = ChunkCache::open(dir.path(), 1 << 20, 1000).unwrap();
        c.put_blocking("gone", 0, &chunk(1000, 1));
        c.put_blocking("kept", 0, &chunk(1000, 2));
        c.remove_object_blocking("gone");
        c.put_blocking("gone", 1000, &chunk(1000, 3));
        assert!(c.get_blocking("gone", 1000, None).is_none());
        assert!(!dir.path().join("gone").exists());
        assert_eq!(c.size_bytes(), 1000, "only the other object's chunk");
        assert!(c.get_blocking("kept", 0, None).is_some());
        c.put_blocking("kept", 1000, &chunk(1000, 4));
        assert_eq!(c.size_bytes(), 2000);
    }

    #[test]
    fn least_recently_used_chunks_go_first() {
        let dir = tempfile::tempdir().unwrap();
        let c = ChunkCache::open(dir.path(), 3 * 1000, 1000).unwrap();
        for i in 0..3u64 {
            c.put_blocking("o", i * 1000, &chunk(1000, i as u8));
        }
        // Chunk 0 is read again, so chunk 1 is now the oldest.
        assert!(c.get_blocking("o", 0, None).is_some());
        c.put_blocking("o", 3000, &chunk(1000, 9));
        assert!(c.get_blocking("o", 1000, None).is_none());
        for kept in [0u64, 2000, 3000] {
            assert!(c.get_blocking("o", kept, None).is_some(), "{kept}");
        }
        assert_eq!(c.counters().evictions.load(Ordering::Relaxed), 1);
        assert_eq!(c.size_bytes(), 3000);
        // A smaller limit at the next start evicts the oldest files down to it.
        drop(c);
        let c = ChunkCache::open(dir.path(), 1000, 1000).unwrap();
        assert_eq!(c.size_bytes(), 1000);
        c.remove_object_blocking("o");
        assert_eq!(c.size_bytes(), 0);
        assert!(!dir.path().join("o").exists());
    }
}

//! Reading an offloaded ledger back: the read handle.
//!
//! Opening fetches the whole index object and checks the format version (object_store retries
//! failed requests; nothing here retries on top of it). Reads locate the first entry through the index (floor block + forward scan), then go
//! record by record; the index is consulted again only at a block boundary. Sequential reads
//! continue where the previous one stopped without any index search.
//!
//! Bytes come from [`RangeReader`]: ranged GETs that start at the read buffer size (so the first
//! entry of a read arrives as soon as it does with one small GET) and grow fourfold per range
//! while the access stays sequential, up to the maximum range size, with the next ranges fetched
//! in parallel while the consumer works through the current one. A seek elsewhere starts again
//! from small ranges. Ranges are aligned to the chunk size, so that a [`ChunkCache`] can serve
//! and keep them chunk by chunk.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore};
use tokio::task::JoinHandle;

use crate::cache::ChunkCache;
use crate::error::{OffloadError, Result};
use crate::format::block::{RECORD_HEADER_LEN, be_i32, be_i64};
use crate::format::entry;
use crate::format::index::{OffloadIndex, decode_index};
use crate::keys;
use crate::location::Location;
use crate::throttle::Rates;

/// How large reads of offloaded data are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadSizes {
    /// The first ranged GET of a read, and the smallest (`…ReadBufferSizeInBytes`).
    pub read_buffer_size_bytes: u64,
    /// What ranges grow to while a reader stays sequential.
    pub max_read_range_bytes: u64,
    /// Ranged GETs kept in flight ahead of a sequential reader (also bounded in bytes: two
    /// maximum ranges, or this many read buffers if that is more).
    pub read_ahead_requests: usize,
}

impl Default for ReadSizes {
    fn default() -> Self {
        ReadSizes {
            read_buffer_size_bytes: 1 << 20,
            max_read_range_bytes: 16 << 20,
            read_ahead_requests: 16,
        }
    }
}

/// How the reader talks to the store.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    pub sizes: ReadSizes,
    /// Check `s3managedledgeroffloaderformatversion` on every response (not for filesystem).
    pub verify_format_version: bool,
    /// Where chunks read before are kept (and where what is read now goes).
    pub cache: Option<Arc<ChunkCache>>,
    /// The limits on bytes fetched from the tier (the broker's, the namespace's, the topic's).
    pub rates: Rates,
}

async fn get_checked(
    store: &Arc<dyn ObjectStore>,
    location: &Location,
    key: &str,
    range: Option<std::ops::Range<u64>>,
    verify: bool,
) -> Result<Bytes> {
    let path = Path::from(key);
    let options = GetOptions {
        range: range.map(GetRange::Bounded),
        ..Default::default()
    };
    let result = store
        .get_opts(&path, options)
        .await
        .map_err(|e| OffloadError::on_read("reading", location, key, e))?;
    if verify {
        let found = keys::format_version(&result.attributes);
        if found.as_deref() != Some(keys::FORMAT_VERSION) {
            return Err(OffloadError::BadFormatVersion {
                key: key.to_string(),
                found,
            });
        }
    }
    result
        .bytes()
        .await
        .map_err(|e| OffloadError::on_read("reading", location, key, e))
}

/// Where a [`RangeReader`]'s bytes come from: the cache, else the store (then the cache keeps
/// them).
#[derive(Clone)]
struct Fetcher {
    store: Arc<dyn ObjectStore>,
    location: Location,
    key: String,
    verify: bool,
    cache: Option<Arc<ChunkCache>>,
    rates: Rates,
}

impl Fetcher {
    /// A ranged GET of the data object, within the read rates.
    async fn get_range(&self, start: u64, end: u64) -> Result<Bytes> {
        self.rates.take(end - start).await;
        get_checked(
            &self.store,
            &self.location,
            &self.key,
            Some(start..end),
            self.verify,
        )
        .await
    }

    /// The bytes of `start..end`; with a cache, `start` is chunk-aligned and `end` is too or is
    /// the object's end.
    async fn fetch(&self, start: u64, end: u64) -> Result<Bytes> {
        let Some(cache) = &self.cache else {
            return self.get_range(start, end).await;
        };
        let chunk = cache.chunk_size();
        let (c, key) = (Arc::clone(cache), self.key.clone());
        let cached = tokio::task::spawn_blocking(move || c.get_range_blocking(&key, start, end))
            .await
            .map_err(|e| OffloadError::Task(format!("cache read: {e}")))?;
        if let Some(bytes) = cached {
            return Ok(bytes);
        }
        let bytes = self.get_range(start, end).await?;
        // Kept in the background: the reader does not wait for the disk.
        let (c, key, kept) = (Arc::clone(cache), self.key.clone(), bytes.clone());
        tokio::task::spawn_blocking(move || {
            let mut offset = 0u64;
            while offset < kept.len() as u64 {
                let len = chunk.min(kept.len() as u64 - offset);
                c.put_blocking(
                    &key,
                    start + offset,
                    &kept[offset as usize..(offset + len) as usize],
                );
                offset += len;
            }
        });
        Ok(bytes)
    }

    /// A whole small object (an index): from the cache as one chunk, else from the store.
    async fn fetch_whole(&self, key: &str) -> Result<Bytes> {
        if let Some(cache) = &self.cache {
            let (c, k) = (Arc::clone(cache), key.to_string());
            let cached = tokio::task::spawn_blocking(move || c.get_blocking(&k, 0, None))
                .await
                .map_err(|e| OffloadError::Task(format!("cache read: {e}")))?;
            if let Some(bytes) = cached {
                return Ok(bytes);
            }
        }
        let bytes = get_checked(&self.store, &self.location, key, None, self.verify).await?;
        if let Some(cache) = &self.cache {
            let (c, k, kept) = (Arc::clone(cache), key.to_string(), bytes.clone());
            tokio::task::spawn_blocking(move || c.put_blocking(&k, 0, &kept));
        }
        Ok(bytes)
    }
}

/// Sequential byte access to one object through ranged GETs with read-ahead.
struct RangeReader {
    fetcher: Fetcher,
    object_len: u64,
    sizes: ReadSizes,
    /// Ranges start and (but at the object's end) end on multiples of this.
    align: u64,
    /// The chunk being consumed: (object offset of its first byte, bytes).
    current: Option<(u64, Bytes)>,
    /// Ranges being fetched, in object order, contiguous after `current`.
    pending: VecDeque<(u64, JoinHandle<Result<Bytes>>)>,
    /// Next object offset to request.
    next_fetch: u64,
    /// Next object offset to hand out.
    pos: u64,
    /// Size of the last range requested: the read buffer after a jump, then four times larger
    /// per range once the reader has moved past its first range, up to the maximum.
    next_len: u64,
    /// Whether the reader has read on from one range into the next since the last jump.
    sequential: bool,
    /// Current read-ahead depth: 1 after a jump, doubling per range consumed up to the maximum,
    /// so a random read does not pull megabytes it will not use.
    window: usize,
}

impl RangeReader {
    fn new(fetcher: Fetcher, object_len: u64, sizes: ReadSizes) -> Self {
        let align = match &fetcher.cache {
            Some(c) => c.chunk_size(),
            None => 1,
        };
        let round = |n: u64| n.max(1).div_ceil(align) * align;
        let sizes = ReadSizes {
            read_buffer_size_bytes: round(sizes.read_buffer_size_bytes),
            max_read_range_bytes: round(
                sizes.max_read_range_bytes.max(sizes.read_buffer_size_bytes),
            ),
            read_ahead_requests: sizes.read_ahead_requests.max(1),
        };
        RangeReader {
            fetcher,
            object_len,
            align,
            current: None,
            pending: VecDeque::new(),
            next_fetch: 0,
            pos: 0,
            next_len: sizes.read_buffer_size_bytes,
            sequential: false,
            window: 1,
            sizes,
        }
    }

    fn in_flight_bytes(&self) -> u64 {
        let first = self.pending.front().map_or(self.next_fetch, |(s, _)| *s);
        self.next_fetch - first
    }

    fn spawn_fetch(&mut self) {
        if self.sequential {
            self.next_len = (self.next_len * 4).min(self.sizes.max_read_range_bytes);
        }
        let start = self.next_fetch;
        let end = (start + self.next_len).min(self.object_len);
        let fetcher = self.fetcher.clone();
        let handle = tokio::spawn(async move { fetcher.fetch(start, end).await });
        self.pending.push_back((start, handle));
        self.next_fetch = end;
    }

    fn fill_read_ahead(&mut self) {
        // At most two maximum ranges (or the read-ahead requests' worth of read buffers) ahead:
        // the memory of a reader stays bounded however deep the read-ahead in requests.
        let byte_limit = (2 * self.sizes.max_read_range_bytes)
            .max(self.sizes.read_ahead_requests as u64 * self.sizes.read_buffer_size_bytes);
        while self.pending.len() < self.window
            && self.next_fetch < self.object_len
            && self.in_flight_bytes() < byte_limit
        {
            self.spawn_fetch();
        }
    }

    fn drop_pending(&mut self) {
        for (_, h) in self.pending.drain(..) {
            h.abort();
        }
    }

    /// Moves the read position; keeps buffered and in-flight data that is still ahead.
    fn seek(&mut self, pos: u64) {
        self.pos = pos;
        if let Some((start, bytes)) = &self.current
            && pos >= *start
            && pos < start + bytes.len() as u64
        {
            return;
        }
        while let Some((start, _)) = self.pending.front() {
            let end = self
                .pending
                .get(1)
                .map(|(s, _)| *s)
                .unwrap_or(self.next_fetch);
            if pos >= *start && pos < end {
                self.current = None;
                return;
            }
            if let Some((_, h)) = self.pending.pop_front() {
                h.abort();
            }
        }
        self.current = None;
        self.drop_pending();
        self.next_fetch = pos - pos % self.align;
        self.next_len = self.sizes.read_buffer_size_bytes;
        self.sequential = false;
        self.window = 1;
    }

    /// Reads exactly `n` bytes at the current position.
    async fn read_exact(&mut self, n: u64) -> Result<Bytes> {
        if n == 0 {
            return Ok(Bytes::new());
        }
        if self
            .pos
            .checked_add(n)
            .is_none_or(|end| end > self.object_len)
        {
            return Err(OffloadError::Corrupt {
                key: self.fetcher.key.clone(),
                source: crate::FormatError::Truncated {
                    what: "record",
                    need: self.pos.saturating_add(n),
                    have: self.object_len,
                },
            });
        }
        let mut out: Option<BytesMut> = None;
        let mut remaining = n;
        loop {
            if let Some((start, bytes)) = &self.current
                && self.pos >= *start
            {
                let off = (self.pos - start) as usize;
                if off < bytes.len() {
                    let take = remaining.min((bytes.len() - off) as u64) as usize;
                    let piece = bytes.slice(off..off + take);
                    self.pos += take as u64;
                    remaining -= take as u64;
                    if remaining == 0 && out.is_none() {
                        return Ok(piece);
                    }
                    out.get_or_insert_with(|| BytesMut::with_capacity(n as usize))
                        .extend_from_slice(&piece);
                    if remaining == 0 {
                        return Ok(out.map(BytesMut::freeze).unwrap_or_default());
                    }
                }
            }
            self.advance().await?;
        }
    }

    /// Makes the range containing `pos` current, fetching (and prefetching) as needed.
    async fn advance(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            self.next_fetch = self.pos - self.pos % self.align;
            self.spawn_fetch();
        }
        let Some((start, handle)) = self.pending.pop_front() else {
            return Err(OffloadError::Task("no chunk to read".into()));
        };
        self.fill_read_ahead();
        // A random read touches one range and the one prefetched after it, both small; a reader
        // that comes back for more is sequential, and its ranges grow from now on.
        self.sequential = true;
        self.window = (self.window * 2).min(self.sizes.read_ahead_requests);
        let bytes = handle
            .await
            .map_err(|e| OffloadError::Task(format!("read-ahead task: {e}")))??;
        self.current = Some((start, bytes));
        if self.pos < start {
            self.pos = start;
        }
        Ok(())
    }
}

impl RangeReader {
    /// Forgets every byte of `start..end` held in memory or in the cache, so that reading them
    /// again fetches them from the store.
    async fn forget(&mut self, start: u64, end: u64) {
        self.current = None;
        self.drop_pending();
        self.next_fetch = self.pos;
        if let Some(cache) = &self.fetcher.cache {
            let (cache, key) = (Arc::clone(cache), self.fetcher.key.clone());
            let chunk = cache.chunk_size();
            let _ = tokio::task::spawn_blocking(move || {
                let mut offset = start - start % chunk;
                while offset < end {
                    cache.remove_blocking(&key, offset);
                    offset += chunk;
                }
            })
            .await;
        }
    }
}

impl Drop for RangeReader {
    fn drop(&mut self) {
        self.drop_pending();
    }
}

struct ReadState {
    reader: RangeReader,
    /// Where the next entry after the previous read starts: (entry id, object offset).
    resume: Option<(i64, u64)>,
}

/// A read handle on one offloaded ledger.
pub struct OffloadedLedger {
    ledger_id: i64,
    data_key: String,
    index: OffloadIndex,
    state: tokio::sync::Mutex<ReadState>,
}

impl std::fmt::Debug for OffloadedLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OffloadedLedger")
            .field("ledger_id", &self.ledger_id)
            .field("data_key", &self.data_key)
            .finish()
    }
}

impl OffloadedLedger {
    /// Opens the ledger stored under `uuid` by reading and checking its index.
    pub async fn open(
        store: Arc<dyn ObjectStore>,
        location: &Location,
        ledger_id: i64,
        uuid: &uuid::Uuid,
        options: ReadOptions,
    ) -> Result<Self> {
        let index_key = keys::index_key(uuid, ledger_id);
        let data_key = keys::data_key(uuid, ledger_id);
        let fetcher = Fetcher {
            store,
            location: location.clone(),
            key: data_key.clone(),
            verify: options.verify_format_version,
            cache: options.cache,
            rates: options.rates,
        };
        let raw = fetcher.fetch_whole(&index_key).await?;
        let index = decode_index(&raw).map_err(|source| OffloadError::Corrupt {
            key: index_key.clone(),
            source,
        })?;
        let reader = RangeReader::new(fetcher, index.data_object_len, options.sizes);
        Ok(OffloadedLedger {
            ledger_id,
            data_key,
            index,
            state: tokio::sync::Mutex::new(ReadState {
                reader,
                resume: None,
            }),
        })
    }

    pub fn ledger_id(&self) -> i64 {
        self.ledger_id
    }

    pub fn last_entry_id(&self) -> i64 {
        self.index.last_entry_id
    }

    /// Sum of payload bytes, from the ledger metadata.
    pub fn length(&self) -> i64 {
        self.index.length
    }

    pub fn index(&self) -> &OffloadIndex {
        &self.index
    }

    fn corrupt(&self, detail: String) -> OffloadError {
        OffloadError::Corrupt {
            key: self.data_key.clone(),
            source: crate::FormatError::Invalid(detail),
        }
    }

    /// Reads entries `first..=last` in order.
    pub async fn read(&self, first: i64, last: i64) -> Result<Vec<Bytes>> {
        self.read_up_to(first, last, usize::MAX).await
    }

    /// Reads entries from `first` in order, up to `last` or until `max_bytes` of entry data
    /// have been read (at least one entry), so a caller with a byte budget does not fetch
    /// entries it would drop.
    pub async fn read_up_to(&self, first: i64, last: i64, max_bytes: usize) -> Result<Vec<Bytes>> {
        if first < 0 || first > last || last > self.index.last_entry_id {
            return Err(OffloadError::NoSuchEntry {
                ledger_id: self.ledger_id,
                first,
                last,
                last_entry_id: self.index.last_entry_id,
            });
        }
        let mut st = self.state.lock().await;
        let start = match st.resume {
            Some((e, off)) if e == first => off,
            _ => self.locate(&mut st.reader, first).await?,
        };
        st.reader.seek(start);
        let mut out = Vec::with_capacity((last - first + 1).min(10_000) as usize);
        let mut expected = first;
        let mut used = 0usize;
        // The entry whose checksum failed once (it is fetched from the store a second time).
        let mut refetched = None;
        while expected <= last {
            let record_start = st.reader.pos;
            let len = be_i32(&st.reader.read_exact(4).await?);
            if len < 0 {
                // Padding or the next block's header: jump to the block that starts here.
                let off = self.block_start_for(expected)?;
                st.reader.seek(off);
                continue;
            }
            let id = be_i64(&st.reader.read_exact(8).await?);
            if id != expected {
                return Err(self.corrupt(format!("expected entry {expected}, found entry {id}")));
            }
            if !out.is_empty() && used.saturating_add(len as usize) > max_bytes {
                // Over budget: the next read resumes at this record.
                st.reader.seek(record_start);
                break;
            }
            let entry = st.reader.read_exact(len as u64).await?;
            if !entry::checksum_matches(&entry) {
                let end = st.reader.pos;
                if refetched == Some(expected) {
                    return Err(OffloadError::EntryChecksum {
                        key: self.data_key.clone(),
                        ledger_id: self.ledger_id,
                        entry_id: expected,
                        start: record_start,
                        end,
                    });
                }
                tracing::warn!(
                    key = %self.data_key,
                    entry = expected,
                    start = record_start,
                    end,
                    "offloaded entry does not match its checksum: fetching it again"
                );
                refetched = Some(expected);
                st.reader.forget(record_start, end).await;
                st.reader.seek(record_start);
                continue;
            }
            out.push(entry);
            expected += 1;
            used = used.saturating_add(len as usize);
        }
        st.resume = Some((expected, st.reader.pos));
        Ok(out)
    }

    /// Data offset of the block whose first entry is `entry` (after padding, it must be one).
    fn block_start_for(&self, entry: i64) -> Result<u64> {
        match self.index.block_of(entry) {
            Some((i, e)) if e.first_entry_id == entry => Ok(self.index.data_offset(i).unwrap_or(0)),
            _ => Err(self.corrupt(format!(
                "end of block reached but no block starts at entry {entry}"
            ))),
        }
    }

    /// Object offset of the record of `entry`: floor block from the index, then forward scan.
    async fn locate(&self, reader: &mut RangeReader, entry: i64) -> Result<u64> {
        let (i, block) = self
            .index
            .block_of(entry)
            .ok_or_else(|| self.corrupt(format!("no block holds entry {entry}")))?;
        let mut off = self.index.data_offset(i).unwrap_or(0);
        let mut current = block.first_entry_id;
        let block_end = self.index.block_end(i);
        while current < entry {
            reader.seek(off);
            let len = be_i32(&reader.read_exact(4).await?);
            let id = be_i64(&reader.read_exact(8).await?);
            if len < 0 || id != current {
                return Err(self.corrupt(format!("scanning for entry {entry}: found {id} (len {len}) where entry {current} was expected")));
            }
            off += RECORD_HEADER_LEN + len as u64;
            if off > block_end {
                return Err(self.corrupt(format!("entry {current} runs past the end of its block")));
            }
            current += 1;
        }
        Ok(off)
    }
}

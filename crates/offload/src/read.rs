//! Reading an offloaded ledger back: the read handle.
//!
//! Opening fetches the whole index object and checks the format version (object_store retries
//! failed requests; nothing here retries on top of it). Reads locate the first entry through the index (floor block + forward scan), then go
//! record by record; the index is consulted again only at a block boundary. Sequential reads
//! continue where the previous one stopped without any index search.
//!
//! Bytes come from [`RangeReader`]: ranged GETs of `read_buffer_size` bytes (never smaller, so
//! sequential reads cost at most one GET per read buffer), with the next `read_ahead` ranges
//! fetched in parallel while the consumer works through the current one.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore};
use tokio::task::JoinHandle;

use crate::error::{OffloadError, Result};
use crate::format::block::{RECORD_HEADER_LEN, be_i32, be_i64};
use crate::format::index::{OffloadIndex, decode_index};
use crate::keys;
use crate::location::Location;

/// How the reader talks to the store.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    pub read_buffer_size_bytes: u64,
    pub read_ahead_requests: usize,
    /// Check `s3managedledgeroffloaderformatversion` on every response (not for filesystem).
    pub verify_format_version: bool,
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

/// Sequential byte access to one object through ranged GETs with read-ahead.
struct RangeReader {
    store: Arc<dyn ObjectStore>,
    location: Location,
    key: String,
    object_len: u64,
    options: ReadOptions,
    /// The chunk being consumed: (object offset of its first byte, bytes).
    current: Option<(u64, Bytes)>,
    /// Chunks being fetched, in object order, contiguous after `current`.
    pending: VecDeque<(u64, JoinHandle<Result<Bytes>>)>,
    /// Next object offset to request.
    next_fetch: u64,
    /// Next object offset to hand out.
    pos: u64,
    /// Current read-ahead depth: 1 after a jump, doubling per chunk consumed up to the maximum,
    /// so a random read does not pull megabytes it will not use.
    window: usize,
}

impl RangeReader {
    fn spawn_fetch(&mut self) {
        let start = self.next_fetch;
        let end = (start + self.options.read_buffer_size_bytes).min(self.object_len);
        let (store, location, key) = (
            Arc::clone(&self.store),
            self.location.clone(),
            self.key.clone(),
        );
        let verify = self.options.verify_format_version;
        let handle = tokio::spawn(async move {
            get_checked(&store, &location, &key, Some(start..end), verify).await
        });
        self.pending.push_back((start, handle));
        self.next_fetch = end;
    }

    fn fill_read_ahead(&mut self) {
        while self.pending.len() < self.window && self.next_fetch < self.object_len {
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
        self.next_fetch = pos;
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
                key: self.key.clone(),
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
            if let Some((start, bytes)) = &self.current {
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

    /// Makes the chunk containing `pos` current, fetching (and prefetching) as needed.
    async fn advance(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            self.next_fetch = self.pos;
            self.spawn_fetch();
        }
        let Some((start, handle)) = self.pending.pop_front() else {
            return Err(OffloadError::Task("no chunk to read".into()));
        };
        self.fill_read_ahead();
        self.window = (self.window * 2).min(self.options.read_ahead_requests.max(1));
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
        let raw = get_checked(
            &store,
            location,
            &index_key,
            None,
            options.verify_format_version,
        )
        .await?;
        let index = decode_index(&raw).map_err(|source| OffloadError::Corrupt {
            key: index_key.clone(),
            source,
        })?;
        let reader = RangeReader {
            store,
            location: location.clone(),
            key: data_key.clone(),
            object_len: index.data_object_len,
            options,
            current: None,
            pending: VecDeque::new(),
            next_fetch: 0,
            pos: 0,
            window: 1,
        };
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
            out.push(st.reader.read_exact(len as u64).await?);
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

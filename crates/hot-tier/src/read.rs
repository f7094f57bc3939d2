//! Reading a range of entries from a ledger file given its entry offset index.
//!
//! Shared by open ledgers (index kept in memory as entries become durable) and sealed ones (index
//! loaded from the footer). Every record is checked against its CRC and expected id before it is
//! returned, so damaged bytes surface as [`HotTierError::ChecksumMismatch`], never as data.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use bytes::Bytes;

use crate::error::{HotTierError, Result};
use crate::format::{RECORD_HEADER_LEN, decode_record_header};

/// The durable shape of a ledger: where each entry's record starts and where the records end.
#[derive(Debug, Default, Clone)]
pub struct EntryIndex {
    pub offsets: Vec<u64>,
    /// File position just past the last record.
    pub data_end: u64,
    /// Sum of the payload lengths of all entries.
    pub payload_bytes: u64,
}

impl EntryIndex {
    pub fn last_entry_id(&self) -> i64 {
        self.offsets.len() as i64 - 1
    }

    fn record_end(&self, entry: usize) -> u64 {
        self.offsets
            .get(entry + 1)
            .copied()
            .unwrap_or(self.data_end)
    }
}

/// Reads entries `first..=last` from `file`, stopping early (after at least one entry) once
/// `max_bytes` of payload would be exceeded.
pub fn read_range(
    ledger_id: u64,
    file: &File,
    path: &Path,
    index: &EntryIndex,
    first: u64,
    last: u64,
    max_bytes: usize,
) -> Result<Vec<Bytes>> {
    read_range_with(ledger_id, index, first, last, max_bytes, |buf, start| {
        file.read_exact_at(buf, start)
            .map_err(|e| HotTierError::io("read", path, e))
    })
}

/// [`read_range`] with the bytes `[start, start + buf.len())` of the ledger provided by `fill`
/// (an open ledger's newest records may still be in memory).
pub fn read_range_with(
    ledger_id: u64,
    index: &EntryIndex,
    first: u64,
    last: u64,
    max_bytes: usize,
    fill: impl FnOnce(&mut [u8], u64) -> Result<()>,
) -> Result<Vec<Bytes>> {
    let last_entry_id = index.last_entry_id();
    if first > last || last as i64 > last_entry_id || last > i64::MAX as u64 {
        return Err(HotTierError::NoSuchEntry {
            ledger_id,
            entry_id: if first > last { first } else { last },
            last_entry_id,
        });
    }
    // Choose how many entries fit in the byte budget using the index alone (no I/O).
    let first_i = first as usize;
    let mut last_i = first_i;
    while last_i < last as usize {
        let span = index.record_end(last_i + 1) - index.offsets[first_i];
        if span as usize > max_bytes {
            break;
        }
        last_i += 1;
    }
    let start = index.offsets[first_i];
    let end = index.record_end(last_i);
    let len = usize::try_from(end - start).map_err(|_| HotTierError::Corrupt {
        ledger_id,
        detail: "record span does not fit in memory".into(),
    })?;
    let mut buf = vec![0u8; len];
    fill(&mut buf, start)?;
    let buf = Bytes::from(buf);

    let mut out = Vec::with_capacity(last_i - first_i + 1);
    for entry in first_i..=last_i {
        let rel = (index.offsets[entry] - start) as usize;
        let rel_end = (index.record_end(entry) - start) as usize;
        let record = &buf[rel..rel_end];
        let entry_id = entry as u64;
        let header: &[u8; RECORD_HEADER_LEN] = record
            .get(..RECORD_HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(HotTierError::ChecksumMismatch {
                ledger_id,
                entry_id,
            })?;
        let header = decode_record_header(header);
        let payload = buf.slice(rel + RECORD_HEADER_LEN..rel_end);
        if header.entry_id != entry_id || !header.matches(&payload) {
            return Err(HotTierError::ChecksumMismatch {
                ledger_id,
                entry_id,
            });
        }
        out.push(payload);
    }
    Ok(out)
}

//! Reading a range of entries from a ledger file given its entry offset index.
//!
//! Shared by open ledgers (index kept in memory as entries become durable) and sealed ones (index
//! loaded from the footer). Every record is checked against its CRC and expected id before it is
//! returned, so damaged bytes surface as [`HotTierError::ChecksumMismatch`], never as data.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use crate::deleter::MappedFiles;
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

    /// The last entry a read of `first..=last` returns when its records may span `max_bytes`
    /// (at least `first`). Both must be entries of the index.
    pub fn read_end(&self, first: u64, last: u64, max_bytes: usize) -> u64 {
        let first_i = first as usize;
        let mut last_i = first_i;
        while last_i < last as usize {
            let span = self.record_end(last_i + 1) - self.offsets[first_i];
            if span as usize > max_bytes {
                break;
            }
            last_i += 1;
        }
        last_i as u64
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
    read_range_with(
        ledger_id,
        index,
        first,
        last,
        max_bytes,
        |buf, start, len| read_exact_into(file, path, buf, start, len),
    )
}

/// Appends the `len` bytes at `start` of `file` to `buf`, reading straight into its spare
/// capacity (a read of megabytes would otherwise first write as many zeros). Bytes read past
/// `len` when `buf` has more room than that are dropped again.
pub(crate) fn read_exact_into(
    file: &File,
    path: &Path,
    buf: &mut Vec<u8>,
    start: u64,
    len: usize,
) -> Result<()> {
    let base = buf.len();
    let target = base + len;
    buf.reserve_exact(len);
    while buf.len() < target {
        let at = start + (buf.len() - base) as u64;
        match rustix::io::pread(file, rustix::buffer::spare_capacity(buf), at) {
            Ok(0) => {
                return Err(HotTierError::io(
                    "read",
                    path,
                    std::io::ErrorKind::UnexpectedEof.into(),
                ));
            }
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(HotTierError::io("read", path, e.into())),
        }
    }
    buf.truncate(target);
    Ok(())
}

/// Whether `first..=last` are entries of the ledger, in order.
pub(crate) fn check_range(ledger_id: u64, index: &EntryIndex, first: u64, last: u64) -> Result<()> {
    let last_entry_id = index.last_entry_id();
    if first > last || last as i64 > last_entry_id || last > i64::MAX as u64 {
        return Err(HotTierError::NoSuchEntry {
            ledger_id,
            entry_id: if first > last { first } else { last },
            last_entry_id,
        });
    }
    Ok(())
}

/// [`read_range`] with the bytes `[start, start + len)` of the ledger appended to the buffer by
/// `fill` (an open ledger's newest records may still be in memory).
pub fn read_range_with(
    ledger_id: u64,
    index: &EntryIndex,
    first: u64,
    last: u64,
    max_bytes: usize,
    fill: impl FnOnce(&mut Vec<u8>, u64, usize) -> Result<()>,
) -> Result<Vec<Bytes>> {
    check_range(ledger_id, index, first, last)?;
    // Choose how many entries fit in the byte budget using the index alone (no I/O).
    let first_i = first as usize;
    let last_i = index.read_end(first, last, max_bytes) as usize;
    let start = index.offsets[first_i];
    let end = index.record_end(last_i);
    let len = usize::try_from(end - start).map_err(|_| HotTierError::Corrupt {
        ledger_id,
        detail: "record span does not fit in memory".into(),
    })?;
    let mut buf = Vec::with_capacity(len);
    fill(&mut buf, start, len)?;
    if buf.len() != len {
        return Err(HotTierError::Corrupt {
            ledger_id,
            detail: format!("read {} bytes of a {len}-byte span", buf.len()),
        });
    }
    split_records(ledger_id, index, first_i, last_i, Bytes::from(buf))
}

/// [`read_range`] of a sealed ledger's file with its records mapped rather than copied (see
/// [`crate::mapped`]), the mapping pinned in `mapped`; read with `pread` when the kernel will
/// not map them or the file is being freed.
#[allow(clippy::too_many_arguments)] // read_range's seven, and where to pin
pub(crate) fn read_range_mapped(
    mapped: &Arc<MappedFiles>,
    ledger_id: u64,
    file: &File,
    path: &Path,
    index: &EntryIndex,
    first: u64,
    last: u64,
    max_bytes: usize,
) -> Result<Vec<Bytes>> {
    check_range(ledger_id, index, first, last)?;
    let first_i = first as usize;
    let last_i = index.read_end(first, last, max_bytes) as usize;
    let start = index.offsets[first_i];
    let len =
        usize::try_from(index.record_end(last_i) - start).map_err(|_| HotTierError::Corrupt {
            ledger_id,
            detail: "record span does not fit in memory".into(),
        })?;
    let Some(pin) = mapped.pin(path) else {
        return read_range(ledger_id, file, path, index, first, last, max_bytes);
    };
    match crate::mapped::map_populated(file, path, start, len, pin)? {
        Some(records) => split_records(ledger_id, index, first_i, last_i, records),
        None => read_range(ledger_id, file, path, index, first, last, max_bytes),
    }
}

/// Splits `records`, those of entries `first_i..=last_i`, into the entries' payloads, each
/// checked against its record's CRC and entry id.
fn split_records(
    ledger_id: u64,
    index: &EntryIndex,
    first_i: usize,
    last_i: usize,
    records: Bytes,
) -> Result<Vec<Bytes>> {
    let start = index.offsets[first_i];
    let mut out = Vec::with_capacity(last_i - first_i + 1);
    for entry in first_i..=last_i {
        let rel = (index.offsets[entry] - start) as usize;
        let rel_end = (index.record_end(entry) - start) as usize;
        let record = &records[rel..rel_end];
        let entry_id = entry as u64;
        let header: &[u8; RECORD_HEADER_LEN] = record
            .get(..RECORD_HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(HotTierError::ChecksumMismatch {
                ledger_id,
                entry_id,
            })?;
        let header = decode_record_header(header);
        let payload = records.slice(rel + RECORD_HEADER_LEN..rel_end);
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

//! Start-up recovery of ledgers that were open when the process stopped.
//!
//! An open ledger file may end in a torn record (the process died mid-write) or in bytes that were
//! written but never made durable and came back damaged. Records are checked one by one from the
//! start; the first one whose length, id or CRC is wrong ends the valid prefix, and the file is
//! truncated there. Only entries in the valid prefix can have been acknowledged, because an append is
//! acknowledged after its fsync and every record before it was part of the same or an earlier fsync.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use crate::error::{HotTierError, Result};
use crate::format::{FILE_HEADER_LEN, RECORD_HEADER_LEN, decode_file_header, decode_record_header};
use crate::read::EntryIndex;

/// What scanning an open ledger file found.
#[derive(Debug)]
pub struct ScanOutcome {
    pub index: EntryIndex,
    /// Bytes after the valid prefix that were (or will be) cut off.
    pub discarded_bytes: u64,
    /// The file header itself was missing or damaged (the file was created but never written).
    pub header_missing: bool,
}

/// Reads the whole file and returns the index of its valid prefix.
pub fn scan(
    ledger_id: u64,
    path: &Path,
    file: &File,
    max_entry_bytes: usize,
) -> Result<ScanOutcome> {
    let file_len = file
        .metadata()
        .map_err(|e| HotTierError::io("stat", path, e))?
        .len();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut header = [0u8; FILE_HEADER_LEN as usize];
    let header_ok = read_full(&mut reader, &mut header, path)?
        && decode_file_header(&header) == Some(ledger_id);
    if !header_ok {
        return Ok(ScanOutcome {
            index: EntryIndex {
                offsets: Vec::new(),
                data_end: FILE_HEADER_LEN,
                payload_bytes: 0,
            },
            discarded_bytes: file_len,
            header_missing: true,
        });
    }

    let mut index = EntryIndex {
        offsets: Vec::new(),
        data_end: FILE_HEADER_LEN,
        payload_bytes: 0,
    };
    let mut payload = Vec::new();
    loop {
        let mut rh = [0u8; RECORD_HEADER_LEN];
        if !read_full(&mut reader, &mut rh, path)? {
            break;
        }
        let rh = decode_record_header(&rh);
        let expected_id = index.offsets.len() as u64;
        let remaining = file_len - index.data_end - RECORD_HEADER_LEN as u64;
        if rh.entry_id != expected_id
            || rh.len as usize > max_entry_bytes
            || rh.len as u64 > remaining
        {
            break;
        }
        payload.resize(rh.len as usize, 0);
        if !read_full(&mut reader, &mut payload, path)? || !rh.matches(&payload) {
            break;
        }
        index.offsets.push(index.data_end);
        index.data_end += (RECORD_HEADER_LEN + payload.len()) as u64;
        index.payload_bytes += payload.len() as u64;
    }
    Ok(ScanOutcome {
        discarded_bytes: file_len - index.data_end,
        index,
        header_missing: false,
    })
}

/// Fills `buf` completely; `Ok(false)` if the file ended first.
pub(crate) fn read_full(reader: &mut impl Read, buf: &mut [u8], path: &Path) -> Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => return Ok(false),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(HotTierError::io("read", path, e)),
        }
    }
    Ok(true)
}

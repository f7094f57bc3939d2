//! Start-up: ledgers left open are completed from the journal and sealed.
//!
//! 1. Every `.open` ledger file is scanned for its valid prefix ([`recovery::scan`]: CRC32C on
//!    every record; a torn or corrupt tail ends it).
//! 2. The journal is read from the last checkpoint (all of it when there is none), file by file,
//!    chunk by chunk; a chunk that does not match its CRC ends its file (a torn tail, or the rest
//!    of a file the journal retired after a failed write). Each chunk's records are copied into
//!    their ledger file where its valid prefix ends; records already there are skipped by entry
//!    id. A record beyond the next expected id would leave a gap: the ledger then ends before it
//!    (logged as an error — acknowledged entries would be missing, which the checkpoint rule
//!    prevents unless the disk lost data).
//! 3. Every open ledger is truncated there, gets its footer, is fsynced and renamed `.sealed`.
//!
//! Journal chunks of ledgers that are sealed or deleted are ignored: a sealed file was fsynced
//! whole before its rename, and a deleted ledger is not brought back (creation is durable
//! before any append of the ledger is acknowledged, so there is no file to recreate).
//!
//! Crash windows: replay changes only `.open` files and is idempotent until their rename; the
//! journal files are deleted only after a new checkpoint names the journal file started after it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::checkpoint::read_checkpoint;
use crate::error::{HotTierError, Result};
use crate::files::{self, LedgerFileKind};
use crate::format::{
    CHUNK_HEADER_LEN, JOURNAL_HEADER_LEN, RECORD_HEADER_LEN, chunk_records, decode_chunk_header,
    decode_journal_header, encode_file_header, encode_footer,
};
use crate::journal::list_journal_files;
use crate::read::EntryIndex;
use crate::recovery::{self, read_full};
use crate::store::RecoveredLedger;
use crate::writer::SealedLedger;

struct Recovering {
    file: File,
    path: PathBuf,
    index: EntryIndex,
    discarded_bytes: u64,
    header_missing: bool,
    /// A gap was found: nothing after it is applied.
    gap: bool,
}

/// What start-up found.
pub(crate) struct Replayed {
    pub recovered: Vec<RecoveredLedger>,
    /// The journal files that were read: deleted once the new journal is checkpointed.
    pub old_journal: Vec<PathBuf>,
    /// The sequence number the new journal file takes.
    pub next_seq: u64,
}

pub(crate) fn replay(
    ledger_dir: &Path,
    journal_dir: &Path,
    max_entry_bytes: usize,
) -> Result<Replayed> {
    let mut open: BTreeMap<u64, Recovering> = BTreeMap::new();
    let rd = std::fs::read_dir(ledger_dir).map_err(|e| HotTierError::io("list", ledger_dir, e))?;
    for entry in rd {
        let entry = entry.map_err(|e| HotTierError::io("list", ledger_dir, e))?;
        if let Some(LedgerFileKind::Open(id)) = entry.file_name().to_str().and_then(files::classify)
        {
            let path = entry.path();
            let file = files::open_rw(&path)?;
            let scan = recovery::scan(id, &path, &file, max_entry_bytes)?;
            open.insert(
                id,
                Recovering {
                    file,
                    path,
                    index: scan.index,
                    discarded_bytes: scan.discarded_bytes,
                    header_missing: scan.header_missing,
                    gap: false,
                },
            );
        }
    }

    let journal = list_journal_files(journal_dir)?;
    let checkpoint = read_checkpoint(journal_dir)?;
    let next_seq = journal.last().map_or(0, |(seq, _)| seq + 1);
    let last_seq = journal.last().map(|(seq, _)| *seq);
    for (seq, path) in &journal {
        let start = match checkpoint {
            Some(p) if *seq < p.seq => continue,
            Some(p) if *seq == p.seq => p.offset,
            _ => JOURNAL_HEADER_LEN,
        };
        replay_file(
            *seq,
            path,
            start,
            Some(*seq) == last_seq,
            &mut open,
            max_entry_bytes,
        )?;
    }

    let mut recovered = Vec::with_capacity(open.len());
    for (id, r) in open {
        recovered.push(seal(ledger_dir, id, r)?);
    }
    if !recovered.is_empty() {
        files::fsync_dir(ledger_dir)?;
    }
    Ok(Replayed {
        recovered,
        old_journal: journal.into_iter().map(|(_, p)| p).collect(),
        next_seq,
    })
}

/// Applies the chunks of one journal file from `start` until its end or its first bad chunk.
fn replay_file(
    seq: u64,
    path: &Path,
    start: u64,
    last: bool,
    open: &mut BTreeMap<u64, Recovering>,
    max_entry_bytes: usize,
) -> Result<()> {
    let file = File::open(path).map_err(|e| HotTierError::io("open", path, e))?;
    let len = file
        .metadata()
        .map_err(|e| HotTierError::io("stat", path, e))?
        .len();
    let mut header = [0u8; JOURNAL_HEADER_LEN as usize];
    if file.read_exact_at(&mut header, 0).is_err() || decode_journal_header(&header) != Some(seq) {
        tracing::warn!(path = %path.display(), "journal file without a valid header skipped");
        return Ok(());
    }
    let mut reader = BufReader::with_capacity(1 << 20, file);
    reader
        .seek(SeekFrom::Start(start))
        .map_err(|e| HotTierError::io("seek", path, e))?;
    let mut pos = start;
    let mut records = Vec::new();
    // A chunk holds at most a pending budget of records; more than the whole store accepts
    // per ledger and round would be a damaged length.
    let max_chunk = (max_entry_bytes as u64 + RECORD_HEADER_LEN as u64).max(256 << 20);
    loop {
        let mut ch = [0u8; CHUNK_HEADER_LEN];
        if len - pos < CHUNK_HEADER_LEN as u64 || !read_full(&mut reader, &mut ch, path)? {
            break;
        }
        let header = decode_chunk_header(&ch);
        let body_end = pos + CHUNK_HEADER_LEN as u64 + header.len as u64;
        if header.len as u64 > max_chunk || body_end > len {
            break;
        }
        records.resize(header.len as usize, 0);
        if !read_full(&mut reader, &mut records, path)? || !header.matches(&records) {
            break;
        }
        pos = body_end;
        if let Some(r) = open.get_mut(&header.ledger_id) {
            apply(header.ledger_id, r, &records)?;
        }
    }
    if pos < len {
        let rest = len - pos;
        if last {
            tracing::info!(path = %path.display(), bytes = rest, "torn journal tail ignored");
        } else {
            tracing::warn!(path = %path.display(), bytes = rest, "journal file ends in a bad chunk (it was retired after a failed write); the next file continues");
        }
    }
    Ok(())
}

/// Copies a chunk's records that extend `r`'s valid prefix into its file.
fn apply(id: u64, r: &mut Recovering, records: &[u8]) -> Result<()> {
    if r.gap {
        return Ok(());
    }
    for (entry_id, record) in chunk_records(records) {
        let next = r.index.offsets.len() as u64;
        if entry_id < next {
            continue;
        }
        if entry_id > next {
            tracing::error!(
                ledger_id = id,
                expected = next,
                found = entry_id,
                "journal skips entries of an open ledger: it ends before the gap"
            );
            r.gap = true;
            return Ok(());
        }
        r.file
            .write_all_at(record, r.index.data_end)
            .map_err(|e| HotTierError::io("write replayed record", &r.path, e))?;
        r.index.offsets.push(r.index.data_end);
        r.index.data_end += record.len() as u64;
        r.index.payload_bytes += (record.len() - RECORD_HEADER_LEN) as u64;
    }
    Ok(())
}

/// Truncates a recovered ledger to its records, writes its footer and renames it `.sealed`.
fn seal(dir: &Path, id: u64, r: Recovering) -> Result<RecoveredLedger> {
    if r.header_missing {
        r.file
            .write_all_at(&encode_file_header(id), 0)
            .map_err(|e| HotTierError::io("write header", &r.path, e))?;
    }
    if r.discarded_bytes > 0 {
        tracing::warn!(
            ledger_id = id,
            discarded_bytes = r.discarded_bytes,
            entries = r.index.offsets.len(),
            "truncated torn or corrupt tail of unsealed ledger"
        );
    }
    let footer = encode_footer(&r.index.offsets);
    r.file
        .set_len(r.index.data_end)
        .and_then(|_| r.file.write_all_at(&footer, r.index.data_end))
        .and_then(|_| r.file.sync_all())
        .map_err(|e| HotTierError::io("seal recovered ledger", &r.path, e))?;
    std::fs::rename(&r.path, files::sealed_path(dir, id))
        .map_err(|e| HotTierError::io("rename", &r.path, e))?;
    Ok(RecoveredLedger {
        sealed: SealedLedger {
            ledger_id: id,
            entries: r.index.offsets.len() as u64,
            size_bytes: r.index.payload_bytes,
        },
        discarded_bytes: r.discarded_bytes,
    })
}

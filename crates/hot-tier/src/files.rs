//! Ledger file naming and the small durable-filesystem helpers (create, fsync of a directory).
//!
//! A ledger's state lives in its file name: `<id>.open` while it is written, `<id>.sealed` once its
//! footer is durable. The rename from one to the other is the atomic "sealed" transition.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::error::{HotTierError, Result};

pub const OPEN_SUFFIX: &str = "open";
pub const SEALED_SUFFIX: &str = "sealed";
pub const JOURNAL_SUFFIX: &str = "journal";
pub const CHECKPOINT_FILE: &str = "checkpoint";

pub fn open_path(dir: &Path, ledger_id: u64) -> PathBuf {
    dir.join(format!("{ledger_id:020}.{OPEN_SUFFIX}"))
}

pub fn sealed_path(dir: &Path, ledger_id: u64) -> PathBuf {
    dir.join(format!("{ledger_id:020}.{SEALED_SUFFIX}"))
}

/// What a directory entry is, judged by its name alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerFileKind {
    Open(u64),
    Sealed(u64),
}

pub fn classify(name: &str) -> Option<LedgerFileKind> {
    let (stem, ext) = name.rsplit_once('.')?;
    let id: u64 = stem.parse().ok()?;
    match ext {
        OPEN_SUFFIX => Some(LedgerFileKind::Open(id)),
        SEALED_SUFFIX => Some(LedgerFileKind::Sealed(id)),
        _ => None,
    }
}

/// Makes a directory's entries (creates, renames, unlinks) durable.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    let d = File::open(dir).map_err(|e| HotTierError::io("open directory", dir, e))?;
    d.sync_all()
        .map_err(|e| HotTierError::io("fsync directory", dir, e))
}

pub fn open_rw(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| HotTierError::io("open", path, e))
}

/// The most buffers one `pwritev` takes (Linux's `IOV_MAX`).
const MAX_IOVECS: usize = 1024;

/// Writes `segments` one after another into `file` from `offset`, with as few `pwritev` calls as
/// it can: a checkpoint writes a ledger's cached rounds — at thousands of ledgers, one small
/// record each — and the file system's cost is per call (block reservation, inode times), not
/// per byte.
pub fn write_all_vectored_at(
    file: &File,
    segments: &[bytes::Bytes],
    offset: u64,
) -> std::io::Result<()> {
    // `seg`/`skip`: where the bytes not yet written start; `left`: bytes of the last call not
    // yet passed over.
    let (mut seg, mut skip, mut at, mut left) = (0usize, 0usize, offset, 0usize);
    loop {
        // Past the buffers written whole (and empty ones), into the one written in part.
        while seg < segments.len() && left >= segments[seg].len() - skip {
            left -= segments[seg].len() - skip;
            (seg, skip) = (seg + 1, 0);
        }
        skip += std::mem::take(&mut left);
        if seg == segments.len() {
            return Ok(());
        }
        let slices: Vec<std::io::IoSlice<'_>> = segments[seg..]
            .iter()
            .take(MAX_IOVECS)
            .enumerate()
            .map(|(i, s)| std::io::IoSlice::new(if i == 0 { &s[skip..] } else { s }))
            .collect();
        left = match rustix::io::pwritev(file, &slices, at) {
            Ok(0) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::WriteZero,
                    "pwritev wrote nothing",
                ));
            }
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => 0,
            Err(e) => return Err(e.into()),
        };
        at += left as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        /// Whatever the sizes (empty ones, and more buffers than one call takes), the file holds
        /// the buffers' bytes in order from the offset, and nothing before it is touched.
        #[test]
        fn vectored_writes_put_every_byte_in_order(
            sizes in proptest::collection::vec(0usize..300, 0..2500),
            offset in 0u64..5000,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("f");
            let file = OpenOptions::new().read(true).write(true).create_new(true).open(&path).unwrap();
            let segments: Vec<bytes::Bytes> = sizes
                .iter()
                .enumerate()
                .map(|(i, n)| bytes::Bytes::from(vec![(i % 251) as u8; *n]))
                .collect();
            write_all_vectored_at(&file, &segments, offset).unwrap();
            let got = std::fs::read(&path).unwrap();
            let expected: Vec<u8> = segments.iter().flat_map(|s| s.iter().copied()).collect();
            if expected.is_empty() {
                prop_assert!(got.is_empty());
            } else {
                prop_assert_eq!(got.len() as u64, offset + expected.len() as u64);
                prop_assert!(got[..offset as usize].iter().all(|b| *b == 0));
                prop_assert_eq!(&got[offset as usize..], &expected[..]);
            }
        }
    }
}

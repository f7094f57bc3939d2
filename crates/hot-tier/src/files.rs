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

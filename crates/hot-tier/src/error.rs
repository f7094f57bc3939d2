//! Typed errors of the hot tier: each variant says what went wrong and where.

use std::io;
use std::path::PathBuf;

/// Everything the ledger store can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HotTierError {
    /// An operating-system call on a ledger file failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A stored entry does not match its CRC32C: the bytes on disk are damaged.
    #[error(
        "checksum mismatch in ledger {ledger_id} entry {entry_id}: the stored bytes are corrupt"
    )]
    ChecksumMismatch { ledger_id: u64, entry_id: u64 },
    /// A ledger file's structure is damaged beyond a single entry (bad header, bad footer, bad length).
    #[error("ledger {ledger_id} is corrupt: {detail}")]
    Corrupt { ledger_id: u64, detail: String },
    /// No ledger with this id exists in the store.
    #[error("no such ledger {0}")]
    NoSuchLedger(u64),
    /// The entry id is beyond the last durable entry of the ledger.
    #[error("no such entry {entry_id} in ledger {ledger_id} (last entry is {last_entry_id})")]
    NoSuchEntry {
        ledger_id: u64,
        entry_id: u64,
        last_entry_id: i64,
    },
    /// A ledger with this id already exists and cannot be created again.
    #[error("ledger {0} already exists")]
    LedgerExists(u64),
    /// A previous write or fsync failed; the ledger accepts no more appends.
    #[error("ledger {ledger_id} failed and accepts no more appends: {reason}")]
    LedgerFailed {
        ledger_id: u64,
        reason: String,
        /// The failure was the file system being full or read-only, not damage.
        out_of_space: bool,
    },
    /// The ledger was sealed; appends are refused.
    #[error("ledger {0} is sealed")]
    Sealed(u64),
    /// An entry is larger than the store accepts.
    #[error("entry of {size} bytes exceeds the maximum entry size of {max} bytes")]
    EntryTooLarge { size: usize, max: usize },
}

impl HotTierError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        HotTierError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// Whether the error is the file system refusing writes for lack of room (full, over
    /// quota) or because it is read-only: it goes away when space returns, unlike damage.
    pub fn is_out_of_space(&self) -> bool {
        match self {
            HotTierError::Io { source, .. } => out_of_space(source),
            HotTierError::LedgerFailed { out_of_space, .. } => *out_of_space,
            _ => false,
        }
    }
}

/// Whether an OS error means "no room to write here".
pub fn out_of_space(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull
            | io::ErrorKind::QuotaExceeded
            | io::ErrorKind::ReadOnlyFilesystem
    )
}

pub type Result<T, E = HotTierError> = std::result::Result<T, E>;

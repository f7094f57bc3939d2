//! Errors of the object-storage WAL.

/// What went wrong with a WAL ledger, a flush or a read.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum WalError {
    /// The bundle's fencing check failed: another broker owns the topic now. Nothing of this
    /// flush was committed, and this ledger takes no more entries.
    #[error("ledger {ledger_id} is fenced: its bundle has another owner")]
    Fenced { ledger_id: i64 },
    /// A flush of this ledger failed (upload, commit, or an unknown commit outcome that could
    /// not be resolved): its entries were not acknowledged and the ledger takes no more
    /// (continue in a new ledger).
    #[error("ledger {ledger_id} can take no more entries: {detail}")]
    LedgerFailed { ledger_id: i64, detail: String },
    /// The ledger was sealed.
    #[error("ledger {0} is sealed")]
    Sealed(i64),
    /// The WAL was shut down.
    #[error("the object-storage WAL is shut down")]
    Closed,
    /// The object store failed.
    #[error("object store: {0}")]
    Store(String),
    /// The metadata store failed.
    #[error("metadata store: {0}")]
    Meta(String),
    /// Bytes or metadata that do not decode (never served).
    #[error("corrupt WAL data in {what}: {detail}")]
    Corrupt { what: String, detail: String },
    /// A read of entries this ledger does not have.
    #[error("ledger {ledger_id} has no entries {first}..={last} in the WAL")]
    NoSuchEntries {
        ledger_id: i64,
        first: u64,
        last: u64,
    },
}

impl WalError {
    /// Whether the ledger can take no more entries (the caller continues in a new ledger).
    pub fn is_ledger_done(&self) -> bool {
        matches!(self, WalError::LedgerFailed { .. } | WalError::Sealed(_))
    }
}

impl From<object_store::Error> for WalError {
    fn from(e: object_store::Error) -> Self {
        WalError::Store(e.to_string())
    }
}

impl From<meta::MetaError> for WalError {
    fn from(e: meta::MetaError) -> Self {
        WalError::Meta(e.to_string())
    }
}

pub type Result<T, E = WalError> = std::result::Result<T, E>;

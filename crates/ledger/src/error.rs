//! Errors of the managed ledger.

use crate::position::Position;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    #[error(transparent)]
    HotTier(#[from] hot_tier::HotTierError),
    #[error(transparent)]
    Meta(#[from] meta::MetaError),
    /// The object-storage WAL (hot tier of object-tier ledgers) failed.
    #[error(transparent)]
    Wal(#[from] wal::WalError),
    /// A ledger of the object hot tier, on a broker that has no object-storage WAL.
    #[error(
        "managed ledger {ledger} uses the object hot tier, which needs an offload driver (the WAL's bucket) on this broker"
    )]
    ObjectTierNotConfigured { ledger: String },
    /// Stored metadata could not be decoded.
    #[error("metadata of {key} is unreadable: {detail}")]
    BadMetadata { key: String, detail: String },
    /// In a cluster: a ledger's hot copy is on another broker's local disk (and not offloaded),
    /// so this broker cannot serve the managed ledger.
    #[error(
        "managed ledger {ledger}: ledger {ledger_id} is on the local disk of broker {broker}; the topic is unavailable until that broker serves it"
    )]
    HotTierElsewhere {
        ledger: String,
        ledger_id: i64,
        broker: String,
    },
    /// In a cluster: the broker lost the topic's bundle (its fencing check failed); this
    /// instance writes nothing any more (Pulsar's ManagedLedgerFencedException).
    #[error("managed ledger {ledger} is fenced: its bundle is owned by another broker now")]
    Fenced { ledger: String },
    /// The managed ledger was closed; no more appends or reads.
    #[error("managed ledger {0} is closed")]
    Closed(String),
    /// Terminated: it takes no more entries, ever.
    #[error("Topic was already terminated ({0})")]
    Terminated(String),
    /// The file system is full (or read-only): appends are refused until space returns.
    #[error("storage is full: {ledger} takes no appends until space returns ({detail})")]
    StorageFull { ledger: String, detail: String },
    /// The managed ledger is being deleted.
    #[error("managed ledger {0} is being deleted")]
    Deleting(String),
    /// No cursor of that name.
    #[error("cursor {cursor} not found on {ledger}")]
    CursorNotFound { ledger: String, cursor: String },
    /// A mark-delete position after the last entry of the managed ledger.
    #[error("Invalid mark deleted position {position} on {ledger}: the last entry is {last}")]
    InvalidPosition {
        ledger: String,
        position: Position,
        last: Position,
    },
    #[error(transparent)]
    Offload(#[from] offload::OffloadError),
    /// An offloaded ledger whose hot copy is gone cannot be read from the tier now.
    #[error("ledger {ledger_id} is offloaded and the tier cannot serve it now: {detail}")]
    TierUnavailable { ledger_id: i64, detail: String },
    /// No offload driver is configured.
    #[error("no offload driver is configured")]
    OffloadNotConfigured,
    /// Only one offload runs per managed ledger at a time.
    #[error("Offload already in progress")]
    OffloadInProgress,
    /// A blocking task panicked or was cancelled.
    #[error("internal task failed: {0}")]
    Task(String),
}

impl LedgerError {
    /// Whether the ledger being written can take no more entries (a failed write, a sealed
    /// ledger): the managed ledger continues in a new one.
    pub fn is_ledger_done(&self) -> bool {
        match self {
            LedgerError::HotTier(
                hot_tier::HotTierError::LedgerFailed { .. } | hot_tier::HotTierError::Sealed(_),
            ) => true,
            LedgerError::Wal(w) => w.is_ledger_done(),
            _ => false,
        }
    }

    /// Whether the storage is full (or read-only): an expected state the managed ledger reports
    /// once, not a failure to log per message.
    pub fn is_out_of_space(&self) -> bool {
        match self {
            LedgerError::StorageFull { .. } => true,
            LedgerError::HotTier(h) => h.is_out_of_space(),
            _ => false,
        }
    }
}

pub type Result<T, E = LedgerError> = std::result::Result<T, E>;

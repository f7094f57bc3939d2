//! # ledger — the managed ledger
//!
//! A topic's log is a *managed ledger*: an ordered list of hot-tier ledgers persisted in the
//! metadata store. Only the last ledger is written; it rolls over on Pulsar's entry-count, size
//! and time rules. Durable cursors (one per subscription) persist their mark-delete position and
//! individually acknowledged entries (and, for batch entries acknowledged in part, which of their
//! messages are still unacknowledged). Retention removes ledgers every cursor has consumed and the
//! namespace policy no longer needs. Reads from any position yield entries across ledger
//! boundaries in order.
//!
//! This crate knows nothing of the Pulsar protocol; positions are `(ledgerId, entryId)`.

pub mod ack_set;
pub mod clock;
pub mod compression;
pub mod config;
pub mod cursor;
pub mod error;
mod factory;
mod ids;
pub mod info;
mod managed_ledger;
pub mod position;
pub mod restore;
pub mod retention;

pub use ack_set::AckSet;
pub use clock::{Clock, SystemClock, TestClock};
pub use compression::{Codec, Compression};
pub use config::{HotTier, ManagedLedgerConfig};
pub use cursor::{CursorState, InitialPosition};
pub use error::{LedgerError, Result};
pub use factory::ManagedLedgerFactory;
pub use managed_ledger::{
    AppendReceipt, Entry, Fence, IoStats, LATENCY_BOUNDS_US, LatencySnapshot, LedgerStats,
    ManagedLedger, OffloadProgress, OffloadStatus, TierReadFailure,
};
pub use position::Position;

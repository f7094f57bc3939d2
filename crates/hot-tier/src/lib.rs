//! # hot-tier — durable local ledger storage
//!
//! The hot tier plays BookKeeper's role for tierlog: it stores *ledgers*, append-only sequences of
//! entries with ids `0, 1, 2, …`, each written by a single writer, then *sealed* (immutable) and
//! eventually deleted. It knows nothing of topics, cursors or the Pulsar protocol.
//!
//! Guarantees:
//! - an append is acknowledged only after its bytes are durable (`fdatasync`); concurrent appends
//!   share fsyncs (group commit, see [`writer`]);
//! - every entry carries a CRC32C; damaged bytes are reported as
//!   [`HotTierError::ChecksumMismatch`], never served;
//! - at start-up, ledgers that were still open are truncated to their last valid entry and sealed
//!   ([`recovery`]);
//! - any durable entry of any ledger, open or sealed, can be read while others are written.

pub mod error;
mod files;
pub mod format;
mod read;
pub mod recovery;
mod store;
pub mod writer;

pub use error::{HotTierError, Result};
pub use store::{LedgerStat, LedgerStore, RecoveredLedger, StoreOptions};
pub use writer::{LedgerWriter, PendingAppend, SealedLedger};

//! # hot-tier — durable local ledger storage
//!
//! The hot tier plays BookKeeper's role for tierlog: it stores *ledgers*, append-only sequences of
//! entries with ids `0, 1, 2, …`, each written by a single writer, then *sealed* (immutable) and
//! eventually deleted. It knows nothing of topics, cursors or the Pulsar protocol.
//!
//! Guarantees:
//! - an append is acknowledged only after its bytes are durable (`fdatasync`); the appends of
//!   all open ledgers share one journal and its fsyncs (group commit, see the `journal` module), served by
//!   a fixed number of threads whatever the number of ledgers;
//! - every entry carries a CRC32C; damaged bytes are reported as
//!   [`HotTierError::ChecksumMismatch`], never served;
//! - at start-up, ledgers that were still open are completed from the journal, truncated to their
//!   last valid entry and sealed (the `replay` module, [`recovery`]);
//! - any durable entry of any ledger, open or sealed, can be read while others are written;
//!   a reader reading a sealed ledger in order finds the next entries read ahead (the
//!   `read_ahead` module).

mod checkpoint;
mod deleter;
pub mod error;
mod files;
pub mod format;
mod journal;
mod mapped;
mod read;
mod read_ahead;
pub mod recovery;
mod replay;
mod store;
pub mod writer;

pub use error::{HotTierError, Result};
pub use journal::CommitStats;
pub use store::{LedgerStat, LedgerStore, RecoveredLedger, StoreOptions};
pub use writer::{LedgerWriter, PendingAppend, SealedLedger};

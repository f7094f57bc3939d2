//! Positions in a managed ledger: `(ledgerId, entryId)`, ordered as Pulsar orders them.

use serde::{Deserialize, Serialize};

/// A position in a managed ledger. `entry_id == -1` means "just before entry 0 of this ledger"
/// (used by mark-delete positions and by Pulsar clients' cumulative acks of batch index 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Position {
    pub ledger_id: i64,
    pub entry_id: i64,
}

impl Position {
    pub const fn new(ledger_id: i64, entry_id: i64) -> Self {
        Position {
            ledger_id,
            entry_id,
        }
    }

    /// Pulsar's "earliest" sentinel `(-1, -1)`.
    pub const EARLIEST: Position = Position::new(-1, -1);
    /// Pulsar's "latest" sentinel `(i64::MAX, i64::MAX)`.
    pub const LATEST: Position = Position::new(i64::MAX, i64::MAX);
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.ledger_id, self.entry_id)
    }
}

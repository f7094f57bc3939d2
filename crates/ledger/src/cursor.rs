//! A durable cursor's acknowledgement state: the mark-delete position plus the entries acked
//! individually above it. Acks that close a gap advance the mark-delete position.

use std::collections::BTreeSet;

use crate::Result;
use crate::info::{CursorInfo, from_ranges, to_ranges};
use crate::position::Position;

/// Where a new subscription starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialPosition {
    /// Only entries appended after the cursor was created.
    Latest,
    /// From the first retained entry.
    Earliest,
}

/// In-memory state of one durable cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorState {
    pub mark_delete: Position,
    pub individually_deleted: BTreeSet<Position>,
}

impl CursorState {
    pub fn new(mark_delete: Position) -> Self {
        CursorState {
            mark_delete,
            individually_deleted: BTreeSet::new(),
        }
    }

    pub fn from_info(key: &str, info: &CursorInfo) -> Result<Self> {
        Ok(CursorState {
            mark_delete: info.mark_delete,
            individually_deleted: from_ranges(key, &info.individually_deleted)?
                .into_iter()
                .collect(),
        })
    }

    pub fn to_info(&self) -> CursorInfo {
        CursorInfo {
            mark_delete: self.mark_delete,
            individually_deleted: to_ranges(self.individually_deleted.iter().copied()),
            properties: Default::default(),
        }
    }

    /// Acknowledges single entries; `next` gives the position that follows a position.
    pub fn ack(&mut self, positions: &[Position], next: impl Fn(Position) -> Position) {
        for &p in positions {
            if p > self.mark_delete {
                self.individually_deleted.insert(p);
            }
        }
        self.advance(next);
    }

    /// Acknowledges everything up to and including `upto`.
    pub fn ack_cumulative(&mut self, upto: Position, next: impl Fn(Position) -> Position) {
        if upto > self.mark_delete {
            self.mark_delete = upto;
            self.individually_deleted = self.individually_deleted.split_off(&Position::new(
                upto.ledger_id,
                upto.entry_id.saturating_add(1),
            ));
        }
        self.advance(next);
    }

    /// Moves the cursor so that `read_from` is the next entry to read; earlier entries count as
    /// acknowledged, later acks are forgotten.
    pub fn reset(&mut self, mark_delete: Position) {
        self.mark_delete = mark_delete;
        self.individually_deleted.clear();
    }

    fn advance(&mut self, next: impl Fn(Position) -> Position) {
        loop {
            let n = next(self.mark_delete);
            if self.individually_deleted.remove(&n) {
                self.mark_delete = n;
            } else {
                break;
            }
        }
        // Anything at or below the mark-delete position is implied.
        self.individually_deleted = self.individually_deleted.split_off(&Position::new(
            self.mark_delete.ledger_id,
            self.mark_delete.entry_id.saturating_add(1),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Ledger 1 has 3 entries, ledger 2 is open.
    fn next(p: Position) -> Position {
        if p.ledger_id == 1 && p.entry_id >= 2 {
            Position::new(2, 0)
        } else {
            Position::new(p.ledger_id, p.entry_id + 1)
        }
    }

    #[test]
    fn individual_acks_fill_gaps_across_ledgers() {
        let mut c = CursorState::new(Position::new(1, -1));
        c.ack(&[Position::new(1, 1), Position::new(2, 0)], next);
        assert_eq!(c.mark_delete, Position::new(1, -1));
        c.ack(&[Position::new(1, 2)], next);
        assert_eq!(c.mark_delete, Position::new(1, -1));
        c.ack(&[Position::new(1, 0)], next);
        assert_eq!(c.mark_delete, Position::new(2, 0));
        assert!(c.individually_deleted.is_empty());
    }

    #[test]
    fn cumulative_ack_drops_covered_individual_acks_and_tolerates_minus_one() {
        let mut c = CursorState::new(Position::new(1, -1));
        c.ack(&[Position::new(2, 3)], next);
        c.ack_cumulative(Position::new(2, -1), next);
        assert_eq!(c.mark_delete, Position::new(2, -1));
        c.ack_cumulative(Position::new(2, 2), next);
        assert_eq!(c.mark_delete, Position::new(2, 3));
        // Going backwards is a no-op.
        c.ack_cumulative(Position::new(1, 0), next);
        assert_eq!(c.mark_delete, Position::new(2, 3));
    }

    #[test]
    fn info_round_trip() {
        let mut c = CursorState::new(Position::new(1, -1));
        c.ack(
            &[
                Position::new(2, 3),
                Position::new(2, 4),
                Position::new(2, 7),
            ],
            next,
        );
        let info = c.to_info();
        assert_eq!(info.individually_deleted, vec![[2, 3, 4], [2, 7, 7]]);
        assert_eq!(CursorState::from_info("k", &info).unwrap(), c);
    }
}

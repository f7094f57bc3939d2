//! A durable cursor's acknowledgement state: the mark-delete position plus the entries acked
//! individually above it, and for batch entries acknowledged in part the messages still
//! unacknowledged. Acks that close a gap advance the mark-delete position.

use std::collections::{BTreeMap, BTreeSet};

use crate::Result;
use crate::ack_set::AckSet;
use crate::error::LedgerError;
use crate::info::{BatchAckInfo, CursorInfo, from_ranges, to_ranges};
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
    /// Batch entries after `mark_delete`, not in `individually_deleted`, of which some messages
    /// are acknowledged: the messages still unacknowledged (never empty).
    pub partly_acked: BTreeMap<Position, AckSet>,
}

impl CursorState {
    pub fn new(mark_delete: Position) -> Self {
        CursorState {
            mark_delete,
            individually_deleted: BTreeSet::new(),
            partly_acked: BTreeMap::new(),
        }
    }

    pub fn from_info(key: &str, info: &CursorInfo) -> Result<Self> {
        let mut partly_acked = BTreeMap::new();
        for b in &info.batch_indexes {
            let set = AckSet::from_words(&b.unacked).ok_or_else(|| LedgerError::BadMetadata {
                key: key.to_string(),
                detail: format!("ack set of {} is too long", b.position),
            })?;
            partly_acked.insert(b.position, set);
        }
        Ok(CursorState {
            mark_delete: info.mark_delete,
            individually_deleted: from_ranges(key, &info.individually_deleted)?
                .into_iter()
                .collect(),
            partly_acked,
        })
    }

    pub fn to_info(&self) -> CursorInfo {
        CursorInfo {
            mark_delete: self.mark_delete,
            individually_deleted: to_ranges(self.individually_deleted.iter().copied()),
            batch_indexes: self
                .partly_acked
                .iter()
                .map(|(p, s)| BatchAckInfo {
                    position: *p,
                    unacked: s.words().to_vec(),
                })
                .collect(),
            properties: Default::default(),
        }
    }

    /// Whether the whole entry at `p` is acknowledged.
    pub fn is_acked(&self, p: Position) -> bool {
        p <= self.mark_delete || self.individually_deleted.contains(&p)
    }

    /// Acknowledges some messages of batch entries: each `(entry, still unacknowledged)` as a
    /// client sends it. An entry left with nothing unacknowledged is acknowledged as a whole;
    /// entries acknowledged as a whole already are left alone.
    pub fn ack_batch_indexes(
        &mut self,
        acks: &[(Position, AckSet)],
        next: impl Fn(Position) -> Position,
    ) {
        let mut done = Vec::new();
        for (p, given) in acks {
            if self.is_acked(*p) {
                continue;
            }
            let set = self
                .partly_acked
                .entry(*p)
                .and_modify(|s| s.intersect(given))
                .or_insert_with(|| given.clone());
            if set.is_empty() {
                done.push(*p);
            }
        }
        if !done.is_empty() {
            self.ack(&done, next);
        }
    }

    /// Acknowledges single entries; `next` gives the position that follows a position.
    pub fn ack(&mut self, positions: &[Position], next: impl Fn(Position) -> Position) {
        for &p in positions {
            self.partly_acked.remove(&p);
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
        self.partly_acked.clear();
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
        let above = Position::new(
            self.mark_delete.ledger_id,
            self.mark_delete.entry_id.saturating_add(1),
        );
        self.individually_deleted = self.individually_deleted.split_off(&above);
        self.partly_acked = self.partly_acked.split_off(&above);
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

    /// Messages 0..n of a batch with `acked` cleared, as a Pulsar client sends it.
    fn unacked_but(n: usize, acked: &[usize]) -> AckSet {
        let mut word = 0i64;
        for i in (0..n).filter(|i| !acked.contains(i)) {
            word |= 1 << i;
        }
        AckSet::from_words(&[word]).unwrap()
    }

    #[test]
    fn batch_index_acks_add_up_to_an_entry_ack() {
        let mut c = CursorState::new(Position::new(1, -1));
        c.ack_batch_indexes(&[(Position::new(1, 0), unacked_but(4, &[0, 2]))], next);
        c.ack_batch_indexes(&[(Position::new(1, 1), unacked_but(4, &[1]))], next);
        assert_eq!(c.mark_delete, Position::new(1, -1));
        assert_eq!(c.partly_acked.len(), 2);
        // The rest of entry 0: the entry is acknowledged and the mark-delete position moves.
        c.ack_batch_indexes(&[(Position::new(1, 0), unacked_but(4, &[1, 3]))], next);
        assert_eq!(c.mark_delete, Position::new(1, 0));
        assert_eq!(
            c.partly_acked.keys().collect::<Vec<_>>(),
            [&Position::new(1, 1)]
        );
        // A whole-entry ack wins over what was acked in part; a late partial ack of an entry
        // acknowledged already changes nothing.
        c.ack(&[Position::new(1, 1)], next);
        c.ack_batch_indexes(&[(Position::new(1, 1), unacked_but(4, &[0]))], next);
        assert_eq!(c.mark_delete, Position::new(1, 1));
        assert!(c.partly_acked.is_empty());
    }

    #[test]
    fn cumulative_acks_and_resets_drop_covered_partial_acks() {
        let mut c = CursorState::new(Position::new(1, -1));
        for e in [0, 1, 2] {
            c.ack_batch_indexes(&[(Position::new(1, e), unacked_but(4, &[0]))], next);
        }
        c.ack_cumulative(Position::new(1, 1), next);
        assert_eq!(
            c.partly_acked.keys().collect::<Vec<_>>(),
            [&Position::new(1, 2)]
        );
        c.reset(Position::new(1, -1));
        assert!(c.partly_acked.is_empty());
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
        c.ack_batch_indexes(&[(Position::new(2, 5), unacked_but(3, &[1]))], next);
        let info = c.to_info();
        assert_eq!(info.individually_deleted, vec![[2, 3, 4], [2, 7, 7]]);
        assert_eq!(info.batch_indexes[0].unacked, vec![0b101]);
        assert_eq!(CursorState::from_info("k", &info).unwrap(), c);
    }
}

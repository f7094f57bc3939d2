//! Positions in a managed ledger's list of ledgers: the last durable entry, what follows a
//! position, how many entries and bytes come after one, and skipping entries — what cursors,
//! backlogs, TTL and backlog quotas count with.

use super::{ManagedLedger, View};
use crate::cursor::CursorState;
use crate::error::{LedgerError, Result};
use crate::position::Position;

impl ManagedLedger {
    /// The last durable entry, or `(current ledger, -1)` if there is none.
    pub fn last_confirmed(&self) -> Position {
        let view = self.view();
        for l in view.ledgers.iter().rev() {
            let entries = self.durable_entries(&view, l);
            if entries > 0 {
                return Position::new(l.ledger_id, entries - 1);
            }
        }
        Position::new(view.current_id, -1)
    }

    /// Whether `p` is a durable entry of this managed ledger.
    pub fn contains(&self, p: Position) -> bool {
        let view = self.view();
        view.ledgers
            .iter()
            .find(|l| l.ledger_id == p.ledger_id)
            .is_some_and(|l| {
                let entries = self.durable_entries(&view, l);
                (0..entries).contains(&p.entry_id)
            })
    }

    /// Refuses a mark-delete position after the last durable entry (Pulsar's "Invalid mark
    /// deleted position"): acknowledging what does not exist yet would skip it when it comes.
    pub fn check_mark_delete(&self, upto: Position) -> Result<()> {
        let last = self.last_confirmed();
        if upto > last {
            return Err(LedgerError::InvalidPosition {
                ledger: self.shared.name.clone(),
                position: upto,
                last,
            });
        }
        Ok(())
    }

    /// The position of the first retained entry (or where the first entry will go).
    pub fn first_position(&self) -> Position {
        let view = self.view();
        let first = view
            .ledgers
            .iter()
            .find(|l| l.entries > 0 || l.ledger_id == view.current_id)
            .map(|l| l.ledger_id)
            .unwrap_or(view.current_id);
        Position::new(first, 0)
    }

    /// The position that follows `p` (skipping empty and removed ledgers).
    pub fn position_after(&self, p: Position) -> Position {
        Self::next_position(&self.view(), p)
    }

    /// [`position_after`](Self::position_after) over one snapshot of the ledger list, for
    /// callers that step through many positions (cursor acks).
    pub fn successor(&self) -> impl Fn(Position) -> Position + use<> {
        let view = self.view();
        move |p| Self::next_position(&view, p)
    }

    /// The position after `p`, skipping empty and removed ledgers.
    fn next_position(view: &View, p: Position) -> Position {
        if p.ledger_id == view.current_id {
            return Position::new(p.ledger_id, p.entry_id + 1);
        }
        if let Some(l) = view.ledgers.iter().find(|l| l.ledger_id == p.ledger_id)
            && p.entry_id + 1 < l.entries
        {
            return Position::new(p.ledger_id, p.entry_id + 1);
        }
        view.ledgers
            .iter()
            .find(|l| {
                l.ledger_id > p.ledger_id && (l.entries > 0 || l.ledger_id == view.current_id)
            })
            .map(|l| Position::new(l.ledger_id, 0))
            .unwrap_or(Position::new(p.ledger_id, p.entry_id + 1))
    }

    /// How many durable entries come after `p` (Pulsar's backlog of a cursor at `p`).
    pub fn entries_after(&self, p: Position) -> i64 {
        let view = self.view();
        view.ledgers
            .iter()
            .filter(|l| l.ledger_id >= p.ledger_id)
            .map(|l| {
                let count = self.durable_entries(&view, l);
                if l.ledger_id == p.ledger_id {
                    (count - (p.entry_id + 1)).max(0)
                } else {
                    count
                }
            })
            .sum()
    }

    /// Payload bytes of the durable entries after `p` (Pulsar's estimated backlog size of a
    /// cursor at `p`): whole ledgers after `p`'s, and `p`'s own in proportion to the entries
    /// left in it.
    pub fn bytes_after(&self, p: Position) -> i64 {
        let view = self.view();
        view.ledgers
            .iter()
            .filter(|l| l.ledger_id >= p.ledger_id)
            .map(|l| {
                let (entries, size) = if l.ledger_id == view.current_id {
                    self.durable_stat(l)
                        .map(|(e, b)| (e as i64, b as i64))
                        .unwrap_or((0, 0))
                } else {
                    (l.entries, l.size)
                };
                if l.ledger_id == p.ledger_id && entries > 0 {
                    let left = (entries - (p.entry_id + 1)).clamp(0, entries);
                    (size as i128 * left as i128 / entries as i128) as i64
                } else {
                    size
                }
            })
            .sum()
    }

    /// The position `n` durable entries after `p` (the last durable entry if fewer follow).
    pub fn skip_entries(&self, p: Position, n: i64) -> Position {
        let view = self.view();
        let mut left = n;
        let mut at = p;
        for l in view.ledgers.iter().filter(|l| l.ledger_id >= p.ledger_id) {
            let count = self.durable_entries(&view, l);
            let first = if l.ledger_id == p.ledger_id {
                p.entry_id + 1
            } else {
                0
            };
            let available = (count - first).max(0);
            if left <= available {
                return Position::new(l.ledger_id, first + left - 1);
            }
            left -= available;
            if available > 0 {
                at = Position::new(l.ledger_id, count - 1);
            }
        }
        at
    }

    /// Entries a cursor in `state` has not acknowledged yet.
    pub fn backlog(&self, state: &CursorState) -> i64 {
        (self.entries_after(state.mark_delete) - state.individually_deleted.len() as i64).max(0)
    }
}

//! Durable cursors: each subscription's acknowledgement state, persisted in the metadata store
//! under `/cursors/<managed ledger>/<cursor>`.
//!
//! A change is made in memory under the cursor's own short lock, then written. Writes of one
//! cursor are serialised by that cursor's `persisted` lock and always write the newest state
//! (so a slow write never lets an older state overwrite a newer one, e.g. an ack landing after a
//! seek); writes of different cursors, and everything else, never wait for each other.

use std::sync::{Arc, Mutex, MutexGuard};

use meta::Expected;

use super::ManagedLedger;
use crate::ack_set::AckSet;
use crate::cursor::{CursorState, InitialPosition};
use crate::error::{LedgerError, Result};
use crate::info;
use crate::position::Position;

/// One cursor's state and the bookkeeping of its writes.
pub(super) struct CursorSlot {
    /// The state, and a counter bumped by every change to it.
    state: Mutex<(CursorState, u64)>,
    /// Held while this cursor is written: the change counter of the state last written, `None`
    /// once the cursor is deleted (nothing may write it again).
    persisted: tokio::sync::Mutex<Option<u64>>,
}

impl CursorSlot {
    /// A cursor as loaded from the metadata store.
    pub(super) fn persisted(state: CursorState) -> Self {
        CursorSlot {
            state: Mutex::new((state, 0)),
            persisted: tokio::sync::Mutex::new(Some(0)),
        }
    }

    fn unwritten(state: CursorState) -> Self {
        CursorSlot {
            state: Mutex::new((state, 1)),
            persisted: tokio::sync::Mutex::new(Some(0)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, (CursorState, u64)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The state now.
    pub(super) fn state(&self) -> CursorState {
        self.lock().0.clone()
    }

    /// Changes the state in memory; returns the new state.
    fn update(&self, f: impl FnOnce(&mut CursorState)) -> CursorState {
        let mut s = self.lock();
        f(&mut s.0);
        s.1 += 1;
        s.0.clone()
    }

    /// Marks the cursor deleted once its in-flight write (if any) is done.
    pub(super) async fn retire(&self) {
        *self.persisted.lock().await = None;
    }
}

impl ManagedLedger {
    fn cursor_map(&self) -> MutexGuard<'_, std::collections::BTreeMap<String, Arc<CursorSlot>>> {
        self.shared
            .cursors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn slot(&self, name: &str) -> Result<Arc<CursorSlot>> {
        self.cursor_map()
            .get(name)
            .cloned()
            .ok_or_else(|| self.cursor_not_found(name))
    }

    fn cursor_not_found(&self, name: &str) -> LedgerError {
        LedgerError::CursorNotFound {
            ledger: self.shared.name.clone(),
            cursor: name.to_string(),
        }
    }

    /// Writes the cursor's newest state unless a newer or equal one was written already.
    async fn persist(&self, name: &str, slot: &CursorSlot) -> Result<()> {
        let mut persisted = slot.persisted.lock().await;
        let Some(done) = *persisted else {
            return Err(self.cursor_not_found(name));
        };
        let (state, changes) = {
            let s = slot.lock();
            (s.0.clone(), s.1)
        };
        if changes <= done {
            return Ok(());
        }
        let key = info::cursor_key(&self.shared.name, name);
        self.commit_fenced(vec![meta::Op::put(
            key,
            info::encode_with(&state.to_info(), self.shared.cursor_info_compression),
            Expected::Any,
        )])
        .await?;
        *persisted = Some(changes);
        Ok(())
    }

    /// The lowest mark-delete position of all cursors (what retention must keep).
    pub(super) fn slowest_mark_delete(&self) -> Option<Position> {
        let slots: Vec<Arc<CursorSlot>> = self.cursor_map().values().cloned().collect();
        slots.iter().map(|s| s.lock().0.mark_delete).min()
    }

    /// Opens the durable cursor `name`, creating it at `initial` if it does not exist. Returns its
    /// mark-delete position (an existing cursor keeps its stored position).
    pub async fn open_cursor(&self, name: &str, initial: InitialPosition) -> Result<Position> {
        if self.shared.write.lock().await.closed {
            return Err(LedgerError::Closed(self.shared.name.clone()));
        }
        let mark_delete = match initial {
            InitialPosition::Latest => self.last_confirmed(),
            InitialPosition::Earliest => {
                let view = self.view();
                Position::new(
                    view.ledgers
                        .first()
                        .map(|l| l.ledger_id)
                        .unwrap_or(view.current_id),
                    -1,
                )
            }
        };
        let (slot, created) = {
            let mut map = self.cursor_map();
            match map.get(name) {
                Some(s) => (Arc::clone(s), false),
                None => {
                    let s = Arc::new(CursorSlot::unwritten(CursorState::new(mark_delete)));
                    map.insert(name.to_string(), Arc::clone(&s));
                    (s, true)
                }
            }
        };
        if let Err(e) = self.persist(name, &slot).await {
            if created {
                let mut map = self.cursor_map();
                if map.get(name).is_some_and(|s| Arc::ptr_eq(s, &slot)) {
                    map.remove(name);
                }
            }
            return Err(e);
        }
        Ok(slot.lock().0.mark_delete)
    }

    /// Acknowledges individual entries (positions that are not entries of this managed ledger
    /// are ignored); returns the new mark-delete position.
    pub async fn ack(&self, cursor: &str, positions: &[Position]) -> Result<Position> {
        self.ack_entries(cursor, positions, &[]).await
    }

    /// Acknowledges whole entries and some messages of batch entries (`(entry, messages still
    /// unacknowledged)`) in one write; positions that are not entries of this managed ledger
    /// are ignored. Returns the new mark-delete position.
    pub async fn ack_entries(
        &self,
        cursor: &str,
        whole: &[Position],
        partly: &[(Position, AckSet)],
    ) -> Result<Position> {
        let slot = self.slot(cursor)?;
        let next = self.successor();
        let whole: Vec<Position> = whole
            .iter()
            .copied()
            .filter(|p| self.contains(*p))
            .collect();
        let partly: Vec<(Position, AckSet)> = partly
            .iter()
            .filter(|(p, _)| self.contains(*p))
            .cloned()
            .collect();
        let state = slot.update(|c| {
            c.ack(&whole, &next);
            c.ack_batch_indexes(&partly, &next);
        });
        self.persist(cursor, &slot).await?;
        Ok(state.mark_delete)
    }

    /// Acknowledges everything up to and including `upto`; returns the new mark-delete position.
    pub async fn ack_cumulative(&self, cursor: &str, upto: Position) -> Result<Position> {
        self.check_mark_delete(upto)?;
        let slot = self.slot(cursor)?;
        let next = self.successor();
        let state = slot.update(|c| c.ack_cumulative(upto, next));
        self.persist(cursor, &slot).await?;
        Ok(state.mark_delete)
    }

    /// Moves a cursor so that `read_from` is the next entry it delivers (seek).
    pub async fn reset_cursor(&self, cursor: &str, read_from: Position) -> Result<()> {
        let slot = self.slot(cursor)?;
        slot.update(|c| c.reset(Position::new(read_from.ledger_id, read_from.entry_id - 1)));
        self.persist(cursor, &slot).await
    }

    /// The position after a cursor's mark-delete position: where it resumes reading.
    pub async fn cursor_read_position(&self, cursor: &str) -> Result<Position> {
        let mark_delete = self.slot(cursor)?.lock().0.mark_delete;
        Ok(self.position_after(mark_delete))
    }

    /// One durable cursor's state.
    pub async fn cursor(&self, name: &str) -> Option<CursorState> {
        self.slot(name).ok().map(|s| s.state())
    }

    /// Every durable cursor with its state.
    pub async fn cursors(&self) -> Vec<(String, CursorState)> {
        let slots: Vec<(String, Arc<CursorSlot>)> = self
            .cursor_map()
            .iter()
            .map(|(k, v)| (k.clone(), Arc::clone(v)))
            .collect();
        slots.into_iter().map(|(k, s)| (k, s.state())).collect()
    }

    /// Deletes a durable cursor (unsubscribe).
    pub async fn delete_cursor(&self, cursor: &str) -> Result<()> {
        let slot = self
            .cursor_map()
            .remove(cursor)
            .ok_or_else(|| self.cursor_not_found(cursor))?;
        slot.retire().await;
        let key = info::cursor_key(&self.shared.name, cursor);
        self.commit_fenced(vec![meta::Op::delete(key, Expected::Any)])
            .await?;
        Ok(())
    }
}

//! Under an upload rate, one topic's offloads go oldest ledger first: a ledger reads its blocks
//! once the older ledgers of its topic have read theirs, and the parts are sent one at a time,
//! the oldest ledger's first (then by part number), whatever order they were built in.
//!
//! Why: a topic offloads several ledgers at once. Read and sent side by side under a rate, each
//! ledger got its share of it and all of them finished at the very end: no ledger was offloaded
//! (its hot copy releasable, its progress safe from a restart) until the last part of the last
//! one went, and the stores' `CompleteMultipartUpload`s, which take a while for large objects,
//! all came at once at the end instead of overlapping the uploads still running. In order, the
//! rate is used as fully (it is all that passes) and ledgers finish one after another — as long
//! as one part's stream can carry the rate: a topic now sends one S3 part at a time where it
//! sent one per ledger, so a limit above what one connection to the store reaches (hundreds of
//! MB/s to a remote region) would be reached by several topics together, not by one. Other
//! topics are not held up: each topic has its own lines, taken before the broker's ledger turn
//! (a ledger waiting for its topic holds no turn), and the topics' parts share the rate (the
//! token bucket serves its waiters in turn). Without a rate none of this applies: a topic's
//! ledgers read and upload side by side, as fast as they can.
//!
//! A waiter that is dropped (its offload aborted) leaves the line; a turn handed to a waiter
//! that is gone passes on to the next.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// A topic's lines (see the module documentation).
#[derive(Debug, Default)]
pub struct TopicOrder {
    /// Ledgers waiting to read their blocks.
    pub reads: Arc<OrderedTurn>,
    /// Parts waiting to be sent.
    pub sends: Arc<OrderedTurn>,
}

/// A turn that waiters get in the order of their keys (ledger id, then part number), not of
/// their arrival: one holder at a time.
#[derive(Debug, Default)]
pub struct OrderedTurn {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Someone holds the turn.
    held: bool,
    /// Waiters by (ledger id, part number, arrival).
    waiting: BTreeMap<(i64, u32, u64), oneshot::Sender<Turn>>,
    arrivals: u64,
}

/// A held [`OrderedTurn`]; the next waiter in line gets it when this is dropped.
#[derive(Debug)]
pub struct Turn {
    order: Arc<OrderedTurn>,
    /// False for a turn that could not be handed over (the waiter had gone), which must not
    /// pass the turn on a second time.
    armed: bool,
}

impl OrderedTurn {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Plain bookkeeping, consistent between statements: a poisoned lock is used as is.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for the turn of part `part` of ledger `ledger_id` (0 for the ledger as a whole): at
    /// once if nobody holds it, else after every waiter before it in line (older ledgers, lower
    /// part numbers).
    pub async fn turn(self: &Arc<Self>, ledger_id: i64, part: u32) -> Turn {
        loop {
            let rx = {
                let mut state = self.lock();
                if !state.held {
                    state.held = true;
                    return Turn {
                        order: Arc::clone(self),
                        armed: true,
                    };
                }
                let (tx, rx) = oneshot::channel();
                let arrival = state.arrivals;
                state.arrivals += 1;
                state.waiting.insert((ledger_id, part, arrival), tx);
                rx
            };
            if let Ok(turn) = rx.await {
                return turn;
            }
            // The sender went without sending: only if the line was dropped; ask again.
        }
    }

    /// Hands the turn to the first waiter still there, or frees it.
    fn pass_on(self: &Arc<Self>) {
        let mut state = self.lock();
        while let Some((_, tx)) = state.waiting.pop_first() {
            let turn = Turn {
                order: Arc::clone(self),
                armed: true,
            };
            match tx.send(turn) {
                Ok(()) => return,
                // That waiter is gone (its offload was aborted): disarmed, so that dropping
                // it here, under the lock, does not pass the turn again.
                Err(mut unsent) => unsent.armed = false,
            }
        }
        state.held = false;
    }

    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.lock().waiting.len()
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        if self.armed {
            self.armed = false;
            self.order.pass_on();
        }
    }
}

/// What an upload's parts are sent in: the send line of its topic and its ledger's place in
/// it. Carried to the store clients in the upload's options (`PutMultipartOptions::extensions`).
#[derive(Debug, Clone)]
pub struct PartSending {
    pub order: Arc<OrderedTurn>,
    pub ledger_id: i64,
}

impl PartSending {
    /// A line of the upload's own (an upload that belongs to no topic's line).
    pub fn alone() -> Self {
        PartSending {
            order: OrderedTurn::new(),
            ledger_id: 0,
        }
    }

    pub async fn turn(&self, part: u32) -> Turn {
        self.order.turn(self.ledger_id, part).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn settle() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    #[tokio::test]
    async fn parts_go_oldest_ledger_first_then_by_part_number() {
        let order = OrderedTurn::new();
        let first = order.turn(7, 1).await;
        let sent = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        // Arriving newest first.
        for (ledger, part) in [(9, 1), (8, 2), (9, 2), (8, 1), (7, 2)] {
            let (order, sent) = (Arc::clone(&order), Arc::clone(&sent));
            tasks.push(tokio::spawn(async move {
                let _turn = order.turn(ledger, part).await;
                sent.lock().unwrap().push((ledger, part));
                settle().await;
            }));
            settle().await;
        }
        assert!(sent.lock().unwrap().is_empty(), "all wait for the turn");
        drop(first);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(
            *sent.lock().unwrap(),
            [(7, 2), (8, 1), (8, 2), (9, 1), (9, 2)]
        );
    }

    #[tokio::test]
    async fn a_part_that_stops_waiting_leaves_the_line() {
        let order = OrderedTurn::new();
        let first = order.turn(1, 1).await;
        let gone = tokio::spawn({
            let order = Arc::clone(&order);
            async move { order.turn(1, 2).await }
        });
        let next = tokio::spawn({
            let order = Arc::clone(&order);
            async move { order.turn(2, 1).await }
        });
        settle().await;
        assert_eq!(order.waiting(), 2);
        gone.abort();
        assert!(gone.await.unwrap_err().is_cancelled());
        drop(first);
        let next = tokio::time::timeout(Duration::from_secs(5), next)
            .await
            .expect("the turn passed over the part that left")
            .unwrap();
        drop(next);
        // Free again: a new part goes at once.
        let again = tokio::time::timeout(Duration::from_secs(5), order.turn(3, 1)).await;
        assert!(again.is_ok());
    }

    #[tokio::test]
    async fn a_turn_handed_to_a_part_that_never_takes_it_passes_on() {
        let order = OrderedTurn::new();
        let first = order.turn(1, 1).await;
        // A waiter whose future is polled once (it joins the line) and then dropped while the
        // turn is on its way to it.
        let mut waiter = Box::pin(order.turn(1, 2));
        assert!(futures::poll!(waiter.as_mut()).is_pending());
        let behind = tokio::spawn({
            let order = Arc::clone(&order);
            async move { order.turn(5, 1).await }
        });
        settle().await;
        drop(first); // handed to `waiter`, which is never polled again
        drop(waiter);
        let behind = tokio::time::timeout(Duration::from_secs(5), behind).await;
        assert!(behind.is_ok(), "the turn reached the part behind");
    }
}

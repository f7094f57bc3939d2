//! Acknowledgements: applied to the subscription's state at once (its copy of the cursor, the
//! deliveries they settle, the consumers they bring back below their unacknowledged limit) and
//! handed to a task that persists them to the durable cursor in groups, so a consumer acking
//! every message does not cost one metadata commit per message.

use std::sync::Arc;

use ledger::{AckSet, Position};
use tokio::sync::{mpsc, oneshot};

use super::{State, SubType, Subscription, lock};
use crate::error::BrokerError;

pub(super) enum AckOp {
    /// Whole entries, and batch entries acknowledged in part (with what is left unacknowledged).
    Individual {
        whole: Vec<Position>,
        partly: Vec<(Position, AckSet)>,
    },
    Cumulative(Position),
    Reset(Position, oneshot::Sender<Result<(), BrokerError>>),
}

impl Subscription {
    /// Acknowledges whole entries, and single messages of batch entries (`(entry, messages
    /// still unacknowledged)`, kept only with batch-index acks on); positions that are no
    /// entries of the topic are ignored (they would otherwise be taken as acknowledged before
    /// they exist).
    pub(crate) fn ack_individual(
        &self,
        mut whole: Vec<Position>,
        mut partly: Vec<(Position, AckSet)>,
    ) {
        whole.retain(|p| self.topic.ml.contains(*p));
        if !self.topic.delivery.batch_index_acks {
            partly.clear();
        }
        partly.retain(|(p, _)| self.topic.ml.contains(*p));
        if whole.is_empty() && partly.is_empty() {
            return;
        }
        {
            let next = self.topic.ml.successor();
            let mut st = self.state();
            st.cursor.ack(&whole, &next);
            for &p in &whole {
                st.settle(p);
            }
            self.ack_batch_indexes(&mut st, &partly, &next);
        }
        self.send_ack(AckOp::Individual { whole, partly });
        // Acks may bring a consumer held at its unacknowledged limit back below it.
        self.wake.notify_one();
    }

    /// Applies batch-index acks to the subscription's copy of the cursor and to the tracking
    /// of what its consumers hold.
    fn ack_batch_indexes(
        &self,
        st: &mut State,
        partly: &[(Position, AckSet)],
        next: impl Fn(Position) -> Position,
    ) {
        let before: Vec<Option<u32>> = partly
            .iter()
            .map(|(p, _)| st.cursor.partly_acked.get(p).map(AckSet::count))
            .collect();
        st.cursor.ack_batch_indexes(partly, next);
        for ((p, _), before) in partly.iter().zip(before) {
            if st.is_acked(*p) {
                st.settle(*p);
            } else if let Some(left) = st.cursor.partly_acked.get(p).map(AckSet::count) {
                let before = before.or_else(|| st.pending.get(p).map(|(_, n)| *n));
                st.untrack_messages(*p, before.unwrap_or(left).saturating_sub(left));
            }
        }
    }

    /// Acknowledges everything up to and including `upto`, and with batch-index acks on
    /// `partly`: some messages of the entry after it (a cumulative ack of a message inside a
    /// batch).
    pub(crate) fn ack_cumulative(
        &self,
        upto: Position,
        partly: Option<(Position, AckSet)>,
    ) -> Result<(), BrokerError> {
        // A mark-delete after the last entry would skip what is produced next.
        self.topic.ml.check_mark_delete(upto)?;
        let partly: Vec<(Position, AckSet)> = partly
            .filter(|(p, _)| self.topic.delivery.batch_index_acks && self.topic.ml.contains(*p))
            .into_iter()
            .collect();
        {
            let next = self.topic.ml.successor();
            let mut st = self.state();
            if matches!(st.sub_type, SubType::Shared | SubType::KeyShared) {
                return Err(BrokerError::NotAllowed(
                    "Cumulative acks are not allowed on Shared or Key_Shared subscriptions".into(),
                ));
            }
            settle_upto(&mut st, upto, &next);
            self.ack_batch_indexes(&mut st, &partly, &next);
        }
        self.send_ack(AckOp::Cumulative(upto));
        if !partly.is_empty() {
            self.send_ack(AckOp::Individual {
                whole: Vec::new(),
                partly,
            });
        }
        self.wake.notify_one();
        Ok(())
    }

    /// Acknowledges everything up to and including `upto` whatever the subscription type (the
    /// broker expiring messages: TTL, backlog eviction).
    pub(crate) fn expire_upto(&self, upto: Position) -> Result<(), BrokerError> {
        self.topic.ml.check_mark_delete(upto)?;
        {
            let next = self.topic.ml.successor();
            settle_upto(&mut self.state(), upto, &next);
        }
        self.send_ack(AckOp::Cumulative(upto));
        self.wake.notify_one();
        Ok(())
    }

    fn send_ack(&self, op: AckOp) {
        if let Some(tx) = lock(&self.acks).as_ref() {
            let _ = tx.send(op);
        }
    }
}

/// Acknowledges everything up to `upto` in the subscription's state: the cursor, and the
/// deliveries it settles.
fn settle_upto(st: &mut State, upto: Position, next: impl Fn(Position) -> Position) {
    st.cursor.ack_cumulative(upto, next);
    let settled: Vec<Position> = st
        .pending
        .range(..=upto)
        .map(|(p, _)| *p)
        .chain(st.redeliver.range(..=upto).copied())
        .collect();
    for p in settled {
        st.settle(p);
    }
}

/// Applies acknowledgements to the durable cursor, many at a time.
pub(super) async fn persist_acks(sub: Arc<Subscription>, mut rx: mpsc::UnboundedReceiver<AckOp>) {
    let ml = sub.topic.ml.clone();
    while let Some(first) = rx.recv().await {
        let mut ops = vec![first];
        while let Ok(op) = rx.try_recv() {
            ops.push(op);
        }
        let mut individual = Individual::default();
        for op in ops {
            match op {
                AckOp::Individual { whole, partly } => {
                    individual.whole.extend(whole);
                    individual.partly.extend(partly);
                }
                AckOp::Cumulative(p) => {
                    flush_individual(&sub, &ml, &mut individual).await;
                    if let Err(e) = ml.ack_cumulative(&sub.name, p).await {
                        tracing::warn!(subscription = %sub.name, error = %e, "persisting a cumulative ack failed");
                    }
                }
                AckOp::Reset(p, done) => {
                    flush_individual(&sub, &ml, &mut individual).await;
                    let r = ml
                        .reset_cursor(&sub.name, p)
                        .await
                        .map_err(BrokerError::from);
                    let _ = done.send(r);
                }
            }
        }
        flush_individual(&sub, &ml, &mut individual).await;
    }
}

/// Individual acks gathered for one write.
#[derive(Default)]
struct Individual {
    whole: Vec<Position>,
    partly: Vec<(Position, AckSet)>,
}

async fn flush_individual(sub: &Subscription, ml: &ledger::ManagedLedger, acks: &mut Individual) {
    if acks.whole.is_empty() && acks.partly.is_empty() {
        return;
    }
    if let Err(e) = ml.ack_entries(&sub.name, &acks.whole, &acks.partly).await {
        tracing::warn!(subscription = %sub.name, error = %e, "persisting acks failed");
    }
    *acks = Individual::default();
}

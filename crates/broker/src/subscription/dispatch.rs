//! The dispatcher of a subscription: the task that reads what its consumers have permits for
//! (redeliveries first, then from the read position, through the compacted view for
//! `read_compacted` consumers) and pushes it to them, retrying failed reads with back-off, and
//! telling consumers when a terminated topic has nothing more.

use std::sync::Arc;
use std::time::Duration;

use ledger::Position;
use protocol::commands;
use protocol::frame::message_frame;

use super::{Subscription, now_ms};
use crate::error::BrokerError;

/// How many entries one dispatch round reads at most.
const READ_BATCH: usize = 100;
/// Waits between dispatch attempts after a failed read: doubling from the first to the last.
const DISPATCH_MIN_BACKOFF: Duration = Duration::from_millis(200);
const DISPATCH_MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Byte budget of one dispatch round's read.
const READ_BYTES: usize = 8 << 20;

impl Subscription {
    pub(super) async fn dispatch_loop(self: Arc<Self>) {
        let mut appended = self.topic.watch_appended();
        let mut stop = self.stop.subscribe();
        // After a failed read (a tier that cannot serve an offloaded ledger, say) the next
        // attempt waits longer each time, up to DISPATCH_MAX_BACKOFF; the failure is logged
        // when it starts or changes, not on every retry.
        let mut backoff = DISPATCH_MIN_BACKOFF;
        let mut last_error: Option<String> = None;
        loop {
            let stopped = *stop.borrow();
            if stopped {
                return;
            }
            match self.dispatch_once().await {
                Ok(delivered) => {
                    if last_error.take().is_some() {
                        tracing::info!(topic = %self.topic.name, subscription = %self.name, "dispatch works again");
                    }
                    backoff = DISPATCH_MIN_BACKOFF;
                    if delivered {
                        continue;
                    }
                }
                Err(e) => {
                    let text = e.to_string();
                    if last_error.as_deref() != Some(text.as_str()) {
                        tracing::warn!(topic = %self.topic.name, subscription = %self.name, error = %text, retry_in = ?backoff, "dispatch failed; retrying with back-off");
                    } else {
                        tracing::debug!(topic = %self.topic.name, subscription = %self.name, error = %text, retry_in = ?backoff, "dispatch failed again");
                    }
                    last_error = Some(text);
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.changed() => {}
                    }
                    backoff = (backoff * 2).min(DISPATCH_MAX_BACKOFF);
                    continue;
                }
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = appended.changed() => {}
                _ = stop.changed() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// One round: read what the consumers have permits for and push it. Returns whether
    /// anything was delivered (then another round follows at once).
    async fn dispatch_once(&self) -> Result<bool, BrokerError> {
        enum Plan {
            Redeliver(Vec<Position>),
            /// From a position, how many entries, whether through the compacted view.
            Read(Position, usize, bool),
            Buffered(Vec<ledger::Entry>),
        }
        let (plan, epoch) = {
            let mut st = self.state();
            if self.is_closed() || !st.has_permits() {
                return Ok(false);
            }
            // Held entries whose time has come are delivered like redeliveries (by position).
            let now = now_ms();
            while let Some(&(at, p)) = st.delayed.first() {
                if at > now {
                    break;
                }
                st.delayed.pop_first();
                st.redeliver.insert(p);
            }
            let permits: i64 = st.consumers.iter().map(|c| c.permits.max(0)).sum();
            // Entries, not messages: a batch entry uses as many permits as it has messages.
            let n =
                ((permits as f64 / st.avg_messages_per_entry).ceil() as usize).clamp(1, READ_BATCH);
            let plan = if !st.redeliver.is_empty() {
                Plan::Redeliver(st.redeliver.iter().take(n).copied().collect())
            } else if !st.buffered.is_empty() {
                Plan::Buffered(st.buffered.drain(..).collect())
            } else {
                let compacted = !st.tracks_each_delivery()
                    && st
                        .active_index()
                        .is_some_and(|i| st.consumers[i].spec.read_compacted);
                Plan::Read(st.read_position, n, compacted)
            };
            (plan, st.epoch)
        };
        let ml = &self.topic.ml;
        let (entries, redelivering) = match plan {
            Plan::Buffered(entries) => (entries, false),
            Plan::Read(from, n, false) => (ml.read(from, n, READ_BYTES).await?, false),
            Plan::Read(from, n, true) => (self.read_compacted(from, n).await?, false),
            Plan::Redeliver(ps) => {
                let mut out = Vec::with_capacity(ps.len());
                let mut gone = Vec::new();
                for p in ps {
                    match ml.read(p, 1, READ_BYTES).await?.pop() {
                        Some(e) if e.position == p => out.push(e),
                        _ => gone.push(p), // removed by retention
                    }
                }
                if !gone.is_empty() {
                    let mut st = self.state();
                    for p in gone {
                        st.settle(p);
                    }
                }
                (out, true)
            }
        };
        if entries.is_empty() {
            if !redelivering && ml.is_terminated() {
                self.tell_end_of_topic();
            }
            return Ok(false);
        }
        let mut st = self.state();
        if st.epoch != epoch || self.is_closed() {
            return Ok(true);
        }
        let mut delivered = false;
        let hold = self.topic.delivery.delayed_delivery && st.tracks_each_delivery();
        let now = now_ms();
        let mut entries: std::collections::VecDeque<ledger::Entry> = entries.into();
        while let Some(e) = entries.pop_front() {
            let pos = e.position;
            if !redelivering && pos < st.read_position {
                continue;
            }
            if st.is_acked(pos) || (redelivering && !st.redeliver.contains(&pos)) {
                if !redelivering {
                    st.read_position = Position::new(pos.ledger_id, pos.entry_id + 1);
                }
                continue;
            }
            let meta = protocol::parse_entry(&e.data).ok().map(|(m, _)| m);
            if hold
                && !redelivering
                && let Some(at) = meta.as_ref().and_then(|m| m.deliver_at_time)
                && at > now
            {
                // Held until then; reading goes on past it.
                st.delayed.insert((at, pos));
                st.read_position = Position::new(pos.ledger_id, pos.entry_id + 1);
                delivered = true;
                continue;
            }
            let count = meta
                .as_ref()
                .map(protocol::entry::message_count)
                .unwrap_or(1);
            let key = meta.as_ref().and_then(protocol::entry::routing_key);
            let Some(i) = st.pick(key) else {
                if !redelivering {
                    // Keep what was read for the next round, in order.
                    entries.push_front(e);
                    st.buffered = entries;
                }
                break;
            };
            st.avg_messages_per_entry = 0.5 * st.avg_messages_per_entry + 0.5 * f64::from(count);
            let redeliveries = st.redelivery_counts.get(&pos).copied().unwrap_or(0);
            // The client skips the messages of a batch acknowledged already (and gives their
            // permits back).
            let ack_set = st
                .cursor
                .partly_acked
                .get(&pos)
                .map(|s| s.words().to_vec())
                .unwrap_or_default();
            st.msg_out += u64::from(count);
            st.bytes_out += e.data.len() as u64;
            let c = &mut st.consumers[i];
            c.permits -= i64::from(count);
            c.msg_out += u64::from(count);
            c.bytes_out += e.data.len() as u64;
            let cmd = commands::message(
                c.spec.key.1,
                commands::message_id(pos.ledger_id, pos.entry_id, self.topic.partition),
                redeliveries,
                ack_set,
            );
            let sent = c.spec.outbox.send(message_frame(&cmd, e.data)).is_ok();
            if !sent {
                // The connection is gone; its clean-up detaches the consumer. Entries not
                // delivered are read again from the read position.
                c.permits = 0;
                break;
            }
            delivered = true;
            st.track(i, pos, count);
            if redelivering {
                st.redeliver.remove(&pos);
            } else {
                st.read_position = Position::new(pos.ledger_id, pos.entry_id + 1);
            }
        }
        Ok(delivered)
    }

    /// The topic is terminated and everything was read: each consumer not told yet gets
    /// REACHED_END_OF_TOPIC (Pulsar's clients then report the end of the topic).
    fn tell_end_of_topic(&self) {
        let mut st = self.state();
        for c in st.consumers.iter_mut().filter(|c| !c.told_end_of_topic) {
            let cmd = protocol::pb::BaseCommand {
                reached_end_of_topic: Some(Box::new(protocol::pb::CommandReachedEndOfTopic {
                    consumer_id: c.spec.key.1,
                })),
                ..commands::base(protocol::pb::base_command::Type::ReachedEndOfTopic)
            };
            c.told_end_of_topic = c.spec.outbox.send(protocol::encode_command(&cmd)).is_ok();
        }
    }

    /// Wakes the dispatcher (after the topic was terminated, say).
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// Up to `n` entries from `from` as a `read_compacted` consumer sees them: the compacted
    /// view's up to its horizon, then the live log after it.
    async fn read_compacted(
        &self,
        from: Position,
        n: usize,
    ) -> Result<Vec<ledger::Entry>, BrokerError> {
        let ml = &self.topic.ml;
        let Some(view) = self.topic.compacted_view().await? else {
            return Ok(ml.read(from, n, READ_BYTES).await?);
        };
        if from <= view.horizon {
            let entries = view.read(from, n).await?;
            if !entries.is_empty() {
                return Ok(entries);
            }
        }
        let live = from.max(ml.position_after(view.horizon));
        Ok(ml.read(live, n, READ_BYTES).await?)
    }
}

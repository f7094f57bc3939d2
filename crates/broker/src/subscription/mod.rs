//! A subscription: its cursor (durable, persisted by the managed ledger; or in memory for
//! readers), the attached consumers with their permits, the entries delivered but not yet
//! acknowledged, and the dispatcher task that pushes entries to consumers.
//!
//! Dispatch order: redeliveries first (oldest position first), then new entries from the read
//! position. Permits are counted per message (a batch costs its size). Acks update the local
//! state at once and are persisted by a separate task in groups ([`acks`]), so a consumer
//! acking every message does not cost one metadata commit per message.
//!
//! What is delivered and not acknowledged is held as Pulsar holds it, so memory stays bounded:
//! - Exclusive and Failover have one active consumer and keep no per-message state: a
//!   redelivery request, or the active consumer leaving or changing, rewinds the read position
//!   to the first unacknowledged entry (acknowledged ones are skipped).
//! - Shared and Key_Shared track each delivered entry; a consumer holding
//!   `maxUnackedMessagesPerConsumer` unacknowledged messages, or a subscription holding
//!   `maxUnackedMessagesPerSubscription`, gets nothing more until acks bring it below half the
//!   limit; when the last consumer leaves, the tracking is dropped and the subscription rewinds.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use ledger::{CursorState, InitialPosition, ManagedLedger, Position};
use protocol::commands;
use tokio::sync::{Notify, mpsc, oneshot, watch};

use crate::error::BrokerError;
use crate::topic::{Start, Topic};

mod acks;
mod dispatch;

use acks::{AckOp, persist_acks};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubType {
    Exclusive,
    Shared,
    Failover,
    KeyShared,
}

impl SubType {
    pub fn from_wire(v: i32) -> SubType {
        match v {
            1 => SubType::Shared,
            2 => SubType::Failover,
            3 => SubType::KeyShared,
            _ => SubType::Exclusive,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SubType::Exclusive => "Exclusive",
            SubType::Shared => "Shared",
            SubType::Failover => "Failover",
            SubType::KeyShared => "Key_Shared",
        }
    }
}

/// A consumer is known by (connection id, consumer id).
pub(crate) type ConsumerKey = (u64, u64);

pub(crate) use protocol::io::Outbox;

pub(crate) struct ConsumerSpec {
    pub key: ConsumerKey,
    pub name: String,
    pub priority: i32,
    pub outbox: Outbox,
    /// The client's address and version, and when it attached (for stats).
    pub address: String,
    pub client_version: String,
    pub connected_since: std::time::SystemTime,
    /// Reads the topic's compacted view up to its horizon (Exclusive and Failover only).
    pub read_compacted: bool,
}

struct Consumer {
    spec: ConsumerSpec,
    permits: i64,
    /// Messages and bytes delivered to it.
    msg_out: u64,
    bytes_out: u64,
    /// Messages delivered to it and not acknowledged (Shared, Key_Shared).
    unacked: u64,
    /// Delivery stopped at `maxUnackedMessagesPerConsumer` until it is below half of it.
    blocked: bool,
    /// Told REACHED_END_OF_TOPIC (the topic is terminated and it has read everything).
    told_end_of_topic: bool,
    /// Rates of `msg_out` and `bytes_out` over the last stats interval.
    out_rates: crate::rates::RateMeter<2>,
}

/// Pulsar's `maxUnackedMessagesPerConsumer` / `maxUnackedMessagesPerSubscription`: 0 is no
/// limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnackedLimits {
    pub per_consumer: u64,
    pub per_subscription: u64,
}

impl Default for UnackedLimits {
    fn default() -> Self {
        UnackedLimits {
            per_consumer: 50_000,
            per_subscription: 200_000,
        }
    }
}

/// The broker's rules for delivering to consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryRules {
    /// `maxUnackedMessagesPerConsumer` / `maxUnackedMessagesPerSubscription`.
    pub unacked_limits: UnackedLimits,
    /// `delayedDeliveryEnabled` (true): Shared and Key_Shared subscriptions hold messages with
    /// a `deliver_at_time` until then.
    pub delayed_delivery: bool,
    /// `acknowledgmentAtBatchIndexLevelEnabled` (true since Pulsar 4.1, PIP-391): acks of single
    /// messages of a batch entry are kept (and persisted with the cursor), and the entry is
    /// delivered again with the set of its messages still unacknowledged, which the client
    /// skips. Off, such acks are ignored and the whole batch is delivered again.
    pub batch_index_acks: bool,
}

impl Default for DeliveryRules {
    fn default() -> Self {
        DeliveryRules {
            unacked_limits: UnackedLimits::default(),
            delayed_delivery: true,
            batch_index_acks: true,
        }
    }
}

/// Whether `unacked` has reached `limit` (0: never), and whether it is back below half of it.
fn reached(unacked: u64, limit: u64) -> bool {
    limit > 0 && unacked >= limit
}

fn below_half(unacked: u64, limit: u64) -> bool {
    limit == 0 || unacked < limit.div_ceil(2)
}

struct State {
    sub_type: SubType,
    consumers: Vec<Consumer>,
    /// The next entry to read for first delivery.
    read_position: Position,
    /// What is acknowledged: the mark-delete position and the acks above it (the same state the
    /// managed ledger persists for durable cursors; readers keep only this copy).
    cursor: CursorState,
    /// Delivered, not yet acknowledged (Shared, Key_Shared): position → (consumer, messages in
    /// the entry).
    pending: BTreeMap<Position, (ConsumerKey, u32)>,
    /// Messages in `pending`.
    unacked: u64,
    /// Delivery stopped at `maxUnackedMessagesPerSubscription` until below half of it.
    blocked: bool,
    limits: UnackedLimits,
    /// Messages and bytes delivered by this subscription.
    msg_out: u64,
    bytes_out: u64,
    /// Rates of `msg_out` and `bytes_out` over the last stats interval.
    out_rates: crate::rates::RateMeter<2>,
    /// To deliver again before anything new.
    redeliver: BTreeSet<Position>,
    redelivery_counts: HashMap<Position, u32>,
    /// Round-robin cursor over consumers (Shared).
    next_consumer: usize,
    /// Bumped by seek, so a dispatch round that read before the seek discards its entries.
    epoch: u64,
    /// Entries read from the read position on but not delivered yet (no permits left): the
    /// next round starts with them instead of reading them again.
    buffered: std::collections::VecDeque<ledger::Entry>,
    /// Messages per entry seen so far (batches), to size reads to the permits.
    avg_messages_per_entry: f64,
    /// Entries held until their `deliver_at_time` (ms since the epoch), Shared and Key_Shared
    /// only. Not acknowledged, so the cursor keeps them: after a restart they are read again
    /// (from whichever tier) and held again.
    delayed: BTreeSet<(i64, Position)>,
}

impl State {
    fn is_acked(&self, p: Position) -> bool {
        self.cursor.is_acked(p)
    }

    fn tracks_each_delivery(&self) -> bool {
        matches!(self.sub_type, SubType::Shared | SubType::KeyShared)
    }

    fn can_receive(c: &Consumer) -> bool {
        c.permits > 0 && !c.blocked
    }

    fn has_permits(&self) -> bool {
        match self.sub_type {
            SubType::Exclusive | SubType::Failover => self
                .active_index()
                .is_some_and(|i| self.consumers[i].permits > 0),
            SubType::Shared | SubType::KeyShared => {
                !self.blocked && self.consumers.iter().any(Self::can_receive)
            }
        }
    }

    /// The active consumer's key (Exclusive, Failover).
    fn active_key(&self) -> Option<ConsumerKey> {
        self.active_index().map(|i| self.consumers[i].spec.key)
    }

    /// Starts again at the first unacknowledged entry; whatever a dispatch round has in hand
    /// is dropped (the epoch changes), and so is all per-delivery tracking.
    fn rewind(&mut self, first_unacked: Position) {
        self.read_position = first_unacked;
        self.buffered.clear();
        self.epoch += 1;
        self.pending.clear();
        self.redeliver.clear();
        self.redelivery_counts.clear();
        self.delayed.clear();
        self.unacked = 0;
        self.blocked = false;
        for c in &mut self.consumers {
            c.unacked = 0;
            c.blocked = false;
        }
    }

    /// Counts a delivery of `count` messages to consumer `i`.
    fn track(&mut self, i: usize, pos: Position, count: u32) {
        if !self.tracks_each_delivery() {
            return;
        }
        let limits = self.limits;
        let c = &mut self.consumers[i];
        c.unacked += u64::from(count);
        c.blocked |= reached(c.unacked, limits.per_consumer);
        self.pending.insert(pos, (c.spec.key, count));
        self.unacked += u64::from(count);
        self.blocked |= reached(self.unacked, limits.per_subscription);
    }

    /// Takes a delivery out of the tracking (acknowledged, or returned for redelivery).
    fn untrack(&mut self, p: Position) {
        if let Some((key, count)) = self.pending.remove(&p) {
            self.release(key, count);
        }
    }

    /// `acked` more messages of a tracked delivery are acknowledged (batch-index acks); the
    /// delivery itself stays tracked until the whole entry is.
    fn untrack_messages(&mut self, p: Position, acked: u32) {
        let Some((key, count)) = self.pending.get_mut(&p) else {
            return;
        };
        let acked = acked.min(*count);
        *count -= acked;
        let key = *key;
        self.release(key, acked);
    }

    /// `messages` held by consumer `key` are no longer unacknowledged: the subscription and the
    /// consumer count them off, and deliver again once below half their limit.
    fn release(&mut self, key: ConsumerKey, messages: u32) {
        let limits = self.limits;
        self.unacked = self.unacked.saturating_sub(u64::from(messages));
        if below_half(self.unacked, limits.per_subscription) {
            self.blocked = false;
        }
        if let Some(c) = self.consumers.iter_mut().find(|c| c.spec.key == key) {
            c.unacked = c.unacked.saturating_sub(u64::from(messages));
            if below_half(c.unacked, limits.per_consumer) {
                c.blocked = false;
            }
        }
    }

    /// The consumer that receives everything (Exclusive, Failover).
    fn active_index(&self) -> Option<usize> {
        (0..self.consumers.len()).min_by(|&a, &b| {
            let (ca, cb) = (&self.consumers[a].spec, &self.consumers[b].spec);
            (ca.priority, &ca.name, ca.key).cmp(&(cb.priority, &cb.name, cb.key))
        })
    }

    fn pick(&mut self, key: Option<&[u8]>) -> Option<usize> {
        let n = self.consumers.len();
        if n == 0 {
            return None;
        }
        if self.tracks_each_delivery() && self.blocked {
            return None; // held at maxUnackedMessagesPerSubscription
        }
        let with_permits = |s: &State, i: usize| State::can_receive(&s.consumers[i]);
        match (self.sub_type, key) {
            (SubType::Exclusive | SubType::Failover, _) => {
                self.active_index().filter(|&i| with_permits(self, i))
            }
            (SubType::KeyShared, Some(k)) => {
                // Stable key → consumer map over consumers ordered by their identity.
                let mut order: Vec<usize> = (0..n).collect();
                order.sort_by_key(|&i| self.consumers[i].spec.key);
                let i = order[crc_fast::crc32_iscsi(k) as usize % n];
                with_permits(self, i).then_some(i)
            }
            _ => {
                for step in 0..n {
                    let i = (self.next_consumer + step) % n;
                    if with_permits(self, i) {
                        self.next_consumer = i + 1;
                        return Some(i);
                    }
                }
                None
            }
        }
    }

    /// Puts a consumer's unacknowledged deliveries back for redelivery.
    fn return_pending(&mut self, key: ConsumerKey, only: Option<&[Position]>) {
        let mine: Vec<Position> = self
            .pending
            .iter()
            .filter(|(p, (k, _))| *k == key && only.is_none_or(|o| o.contains(p)))
            .map(|(p, _)| *p)
            .collect();
        for p in mine {
            self.untrack(p);
            self.redeliver.insert(p);
            *self.redelivery_counts.entry(p).or_insert(0) += 1;
        }
    }

    fn settle(&mut self, p: Position) {
        self.untrack(p);
        self.redeliver.remove(&p);
        self.redelivery_counts.remove(&p);
    }
}

pub struct Subscription {
    pub name: String,
    topic: Arc<Topic>,
    durable: bool,
    state: Mutex<State>,
    wake: Notify,
    acks: Mutex<Option<mpsc::UnboundedSender<AckOp>>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    stop: watch::Sender<bool>,
}

impl Subscription {
    pub(crate) async fn create(
        topic: Arc<Topic>,
        name: &str,
        sub_type: SubType,
        start: Start,
    ) -> Result<Arc<Subscription>, BrokerError> {
        let ml = &topic.ml;
        let (durable, cursor) = match start {
            Start::Durable(initial) => {
                ml.open_cursor(name, initial).await?;
                let cursor = ml
                    .cursor(name)
                    .await
                    .ok_or_else(|| BrokerError::Metadata(format!("cursor {name} vanished")))?;
                (true, cursor)
            }
            Start::NonDurable(at) => {
                let read = read_position_for(ml, at.unwrap_or(Position::LATEST));
                let md = Position::new(read.ledger_id, read.entry_id - 1);
                (false, CursorState::new(md))
            }
        };
        let read_position = ml.position_after(cursor.mark_delete);
        let sub = Arc::new(Subscription {
            name: name.to_string(),
            topic: Arc::clone(&topic),
            durable,
            state: Mutex::new(State {
                sub_type,
                consumers: Vec::new(),
                read_position,
                cursor,
                pending: BTreeMap::new(),
                unacked: 0,
                blocked: false,
                limits: topic.delivery.unacked_limits,
                msg_out: 0,
                bytes_out: 0,
                out_rates: crate::rates::RateMeter::starting(std::time::Instant::now(), [0, 0]),
                redeliver: BTreeSet::new(),
                redelivery_counts: HashMap::new(),
                next_consumer: 0,
                epoch: 0,
                buffered: std::collections::VecDeque::new(),
                avg_messages_per_entry: 1.0,
                delayed: BTreeSet::new(),
            }),
            wake: Notify::new(),
            acks: Mutex::new(None),
            tasks: Mutex::new(Vec::new()),
            stop: watch::channel(false).0,
        });
        let mut tasks = Vec::new();
        if durable {
            let (tx, rx) = mpsc::unbounded_channel();
            *lock(&sub.acks) = Some(tx);
            tasks.push(tokio::spawn(persist_acks(Arc::clone(&sub), rx)));
        }
        tasks.push(tokio::spawn(Arc::clone(&sub).dispatch_loop()));
        *lock(&sub.tasks) = tasks;
        Ok(sub)
    }

    pub fn is_durable(&self) -> bool {
        self.durable
    }

    fn is_closed(&self) -> bool {
        *self.stop.borrow()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Attaches a consumer, enforcing the subscription type's rules.
    pub(crate) fn add_consumer(
        &self,
        spec: ConsumerSpec,
        sub_type: SubType,
    ) -> Result<(), BrokerError> {
        let mut st = self.state();
        if self.topic.is_fenced() {
            return Err(self.topic.fenced_error());
        }
        if st.consumers.iter().any(|c| c.spec.key == spec.key) {
            return Ok(());
        }
        if !st.consumers.is_empty() {
            if st.sub_type != sub_type {
                return Err(BrokerError::ConsumerBusy(format!(
                    "Subscription {} is of type {}, a {} consumer cannot attach",
                    self.name,
                    st.sub_type.name(),
                    sub_type.name()
                )));
            }
            if sub_type == SubType::Exclusive {
                return Err(BrokerError::ConsumerBusy(
                    "Exclusive consumer is already connected".into(),
                ));
            }
        }
        st.sub_type = sub_type;
        let active = st.active_key();
        st.consumers.push(Consumer {
            spec,
            permits: 0,
            msg_out: 0,
            bytes_out: 0,
            unacked: 0,
            blocked: false,
            told_end_of_topic: false,
            // Nothing delivered yet: the first rates cover the time since it attached.
            out_rates: crate::rates::RateMeter::starting(std::time::Instant::now(), [0, 0]),
        });
        self.rewind_if_active_changed(&mut st, active);
        drop(st);
        self.wake.notify_one();
        Ok(())
    }

    /// Exclusive/Failover: a new active consumer starts at the first unacknowledged entry
    /// (what the previous one held is delivered again).
    fn rewind_if_active_changed(&self, st: &mut State, before: Option<ConsumerKey>) {
        if !st.tracks_each_delivery() && before.is_some() && st.active_key() != before {
            let first = self.topic.ml.position_after(st.cursor.mark_delete);
            st.rewind(first);
        }
    }

    pub(crate) fn has_consumer(&self, key: ConsumerKey) -> bool {
        self.state().consumers.iter().any(|c| c.spec.key == key)
    }

    /// Whether the consumer reads the compacted view (`read_compacted`).
    pub(crate) fn reads_compacted(&self, key: ConsumerKey) -> bool {
        self.state()
            .consumers
            .iter()
            .any(|c| c.spec.key == key && c.spec.read_compacted)
    }

    /// Detaches a consumer; its unacknowledged deliveries go back for redelivery. Returns how
    /// many consumers are left.
    pub(crate) fn remove_consumer(&self, key: ConsumerKey) -> usize {
        let mut st = self.state();
        let active = st.active_key();
        st.return_pending(key, None);
        st.consumers.retain(|c| c.spec.key != key);
        if st.consumers.is_empty() {
            // Nobody left to redeliver to: drop the tracking, start again from the cursor.
            let first = self.topic.ml.position_after(st.cursor.mark_delete);
            st.rewind(first);
        } else {
            self.rewind_if_active_changed(&mut st, active);
        }
        let left = st.consumers.len();
        drop(st);
        self.wake.notify_one();
        left
    }

    pub(crate) fn consumer_count(&self) -> usize {
        self.state().consumers.len()
    }

    /// Tells every consumer to close (CLOSE_CONSUMER) and detaches them; returns how many.
    pub(crate) fn disconnect_consumers(&self) -> usize {
        close_consumers(&mut self.state()).len()
    }

    pub(crate) fn flow(&self, key: ConsumerKey, permits: u32) {
        let mut st = self.state();
        if let Some(c) = st.consumers.iter_mut().find(|c| c.spec.key == key) {
            c.permits = c.permits.saturating_add(i64::from(permits));
        }
        drop(st);
        self.wake.notify_one();
    }

    pub(crate) fn redeliver(&self, key: ConsumerKey, only: Option<&[Position]>) {
        let mut st = self.state();
        if st.tracks_each_delivery() {
            st.return_pending(key, only);
        } else if st.active_key() == Some(key) {
            // Exclusive/Failover deliver again everything after the mark-delete position.
            let first = self.topic.ml.position_after(st.cursor.mark_delete);
            st.rewind(first);
        }
        drop(st);
        self.wake.notify_one();
    }

    /// Samples the delivery counters for rates (every `statsUpdateFrequencyInSecs`); returns
    /// them (messages, bytes).
    pub(crate) fn sample_rates(&self, now: std::time::Instant) -> (u64, u64) {
        let mut st = self.state();
        let out = (st.msg_out, st.bytes_out);
        st.out_rates.sample(now, [out.0, out.1]);
        for c in &mut st.consumers {
            c.out_rates.sample(now, [c.msg_out, c.bytes_out]);
        }
        out
    }

    /// Pulsar's `SubscriptionStats` of this subscription.
    pub(crate) fn stats(&self, ml: &ManagedLedger) -> crate::stats::SubscriptionStats {
        let st = self.state();
        let unacked = |key: Option<ConsumerKey>| -> u64 {
            match key {
                None => st.unacked,
                Some(key) => st
                    .consumers
                    .iter()
                    .find(|c| c.spec.key == key)
                    .map(|c| c.unacked)
                    .unwrap_or(0),
            }
        };
        let consumers = st
            .consumers
            .iter()
            .map(|c| crate::stats::ConsumerStats {
                msg_rate_out: c.out_rates.rates()[0],
                msg_throughput_out: c.out_rates.rates()[1],
                consumer_name: c.spec.name.clone(),
                available_permits: c.permits,
                unacked_messages: unacked(Some(c.spec.key)),
                msg_out_counter: c.msg_out,
                bytes_out_counter: c.bytes_out,
                address: c.spec.address.clone(),
                connected_since: crate::stats::timestamp(c.spec.connected_since),
                client_version: c.spec.client_version.clone(),
            })
            .collect();
        let active_consumer_name = match st.sub_type {
            SubType::Exclusive | SubType::Failover => {
                st.active_index().map(|i| st.consumers[i].spec.name.clone())
            }
            SubType::Shared | SubType::KeyShared => None,
        };
        crate::stats::SubscriptionStats {
            sub_type: st.sub_type.name(),
            msg_backlog: ml.backlog(&st.cursor),
            unacked_messages: unacked(None),
            msg_out_counter: st.msg_out,
            bytes_out_counter: st.bytes_out,
            msg_rate_out: st.out_rates.rates()[0],
            msg_throughput_out: st.out_rates.rates()[1],
            active_consumer_name,
            consumers,
            is_durable: self.durable,
            non_contiguous_deleted_messages_ranges: ledger::info::to_ranges(
                st.cursor.individually_deleted.iter().copied(),
            )
            .len() as u64,
        }
    }

    /// The subscription's cursor as it is now (acks not persisted yet included).
    pub(crate) fn cursor_state(&self) -> CursorState {
        self.state().cursor.clone()
    }

    /// The subscription's mark-delete position, for GET_LAST_MESSAGE_ID.
    pub(crate) fn mark_delete(&self) -> Position {
        self.state().cursor.mark_delete
    }

    /// Seek: detaches every consumer (CLOSE_CONSUMER, the clients re-subscribe) and moves the
    /// cursor so that `read_from` is delivered next.
    pub(crate) async fn seek(&self, read_from: Position) -> Result<Vec<ConsumerKey>, BrokerError> {
        let detached = {
            let mut st = self.state();
            let consumers = close_consumers(&mut st);
            st.rewind(read_from);
            st.cursor
                .reset(Position::new(read_from.ledger_id, read_from.entry_id - 1));
            consumers.into_iter().map(|c| c.spec.key).collect()
        };
        let tx = lock(&self.acks).clone();
        if let Some(tx) = tx {
            let (done_tx, done_rx) = oneshot::channel();
            let _ = tx.send(AckOp::Reset(read_from, done_tx));
            done_rx
                .await
                .map_err(|_| BrokerError::Metadata("subscription closed during seek".into()))??;
        }
        self.wake.notify_one();
        Ok(detached)
    }

    /// Stops the dispatcher and persists pending acks.
    pub(crate) async fn close(&self) {
        let _ = self.stop.send(true);
        lock(&self.acks).take();
        let tasks = std::mem::take(&mut *lock(&self.tasks));
        for t in tasks {
            let _ = t.await;
        }
    }

    /// Deletes the durable cursor (unsubscribe).
    pub(crate) async fn delete(&self) -> Result<(), BrokerError> {
        self.close().await;
        if self.durable {
            self.topic.ml.delete_cursor(&self.name).await?;
        }
        Ok(())
    }
}

/// Milliseconds since the epoch (what `deliver_at_time` counts).
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The read position a client's message id asks for (reader start, seek): earliest `(-1,-1)` is
/// the first retained entry, latest the position after the last entry, anything else the entry
/// itself (a `(L,-1)` id, "before entry 0", is entry 0).
pub(crate) fn read_position_for(ml: &ManagedLedger, id: Position) -> Position {
    let end = ml.position_after(ml.last_confirmed());
    if id.ledger_id < 0 {
        ml.first_position()
    } else {
        // Nothing past the end: a reader or seek there would skip what is produced next.
        Position::new(id.ledger_id, id.entry_id.max(0)).min(end)
    }
}

/// The first entry published at or after `ts` (ms), or the end of the topic.
pub(crate) async fn find_by_publish_time(
    ml: &ledger::ManagedLedger,
    ts: u64,
) -> Result<Position, BrokerError> {
    let mut from = ml.first_position();
    loop {
        let batch = ml.read(from, 1000, 64 << 20).await?;
        let Some(last) = batch.last().map(|e| e.position) else {
            return Ok(ml.position_after(ml.last_confirmed()));
        };
        for e in &batch {
            if let Ok((meta, _)) = protocol::parse_entry(&e.data)
                && meta.publish_time >= ts
            {
                return Ok(e.position);
            }
        }
        from = Position::new(last.ledger_id, last.entry_id + 1);
    }
}

/// Where a durable subscription starts when it is created.
pub(crate) fn initial_position(v: Option<i32>) -> InitialPosition {
    match v {
        Some(1) => InitialPosition::Earliest,
        _ => InitialPosition::Latest,
    }
}

/// Detaches every consumer of `st`, telling each to close (CLOSE_CONSUMER): the clients
/// subscribe again (after a seek) or find the topic gone (after a forced delete).
fn close_consumers(st: &mut State) -> Vec<Consumer> {
    let consumers = std::mem::take(&mut st.consumers);
    for c in &consumers {
        let _ = c
            .spec
            .outbox
            .send(protocol::encode_command(&commands::close_consumer(
                c.spec.key.1,
            )));
    }
    consumers
}

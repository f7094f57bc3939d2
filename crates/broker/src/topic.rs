//! A loaded topic: its managed ledger, producers and subscriptions.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use ledger::{InitialPosition, ManagedLedger, Position};
use protocol::TopicName;
use tokio::sync::watch;

use crate::compaction::{CompactedView, CompactionStatus};
use crate::dedup::{Dedup, DedupSnapshot};
use crate::error::BrokerError;
use crate::producers::Producers;
pub(crate) use crate::producers::{Admitted, ProducerEntry, ProducerRequest};
use crate::service::TopicStore;
use crate::stats::{PublisherStats, SubscriptionStats, TopicStats, timestamp};
use crate::subscription::{SubType, Subscription};

pub struct Topic {
    pub name: TopicName,
    pub ml: ManagedLedger,
    /// Partition index for MESSAGE ids; -1 when not a partition.
    pub partition: i32,
    /// Bumped whenever entries become durable, to wake dispatchers at the tail.
    appended: watch::Sender<u64>,
    pub(crate) subscriptions: tokio::sync::Mutex<HashMap<String, Arc<Subscription>>>,
    producers: std::sync::Mutex<Producers>,
    /// How subscriptions deliver: unacknowledged limits, delayed delivery, batch-index acks.
    pub(crate) delivery: crate::subscription::DeliveryRules,
    /// Messages and bytes published since the topic was loaded.
    msg_in: AtomicU64,
    bytes_in: AtomicU64,
    /// Entries stored since the topic was loaded.
    entries_in: AtomicU64,
    /// How long stored entries took to become durable, this stats interval.
    write_latency: crate::rates::LatencyBuckets,
    /// Rates and latencies of the last stats interval.
    sampled: std::sync::Mutex<Sampled>,
    /// Set while the topic is being deleted: no producer or consumer attaches, no SEND is
    /// stored (the clients were told to close and resend what they hold elsewhere).
    fenced: AtomicBool,
    /// Message deduplication's state (see [`crate::dedup`]).
    pub(crate) dedup: std::sync::Mutex<Dedup>,
    /// The last deduplication snapshot saved (the next one folds the log after it).
    dedup_snapshot: tokio::sync::Mutex<Option<DedupSnapshot>>,
    snapshotting: AtomicBool,
    /// What the metadata store last said about producers of this topic.
    rules: std::sync::Mutex<ProducerRules>,
    /// Where the topic's policies and compacted views are kept.
    store: Arc<dyn TopicStore>,
    /// The compacted view `read_compacted` consumers read (loaded on first use).
    compacted: std::sync::Mutex<Option<Arc<CompactedView>>>,
    compaction_status: std::sync::Mutex<CompactionStatus>,
}

/// What the last stats interval measured: the rates of the counters at these indexes.
#[derive(Debug, Default)]
struct Sampled {
    rates: crate::rates::RateMeter<SAMPLED>,
    write_latency: crate::rates::LatencySnapshot,
}

const MSG_IN: usize = 0;
const BYTES_IN: usize = 1;
const MSG_OUT: usize = 2;
const BYTES_OUT: usize = 3;
const ENTRIES_IN: usize = 4;
const ENTRIES_READ: usize = 5;
const BYTES_READ: usize = 6;
const READ_ERRORS: usize = 7;
const ADD_ERRORS: usize = 8;
const OFFLOADED_BYTES: usize = 9;
const TIER_READ_BYTES: usize = 10;
const SAMPLED: usize = 11;

/// The namespace rules a PRODUCER needs, as last read (used while the store is unreachable).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ProducerRules {
    pub deduplication: Option<bool>,
    /// A producer without a schema was admitted (no schema validation enforced).
    pub schemaless_allowed: bool,
}

/// Where a new subscription starts reading.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Start {
    /// A durable subscription created at this initial position (kept position if it exists).
    Durable(InitialPosition),
    /// A reader: earliest, latest, or at a message id (inclusive).
    NonDurable(Option<Position>),
}

impl Topic {
    pub(crate) fn new(
        name: TopicName,
        ml: ManagedLedger,
        delivery: crate::subscription::DeliveryRules,
        store: Arc<dyn TopicStore>,
    ) -> Self {
        let partition = name.partition_index().map(|p| p as i32).unwrap_or(-1);
        let io = Self::io_values(&ml.io_stats());
        Topic {
            name,
            ml,
            partition,
            appended: watch::channel(0).0,
            subscriptions: Default::default(),
            producers: Default::default(),
            delivery,
            msg_in: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            entries_in: AtomicU64::new(0),
            write_latency: Default::default(),
            sampled: std::sync::Mutex::new(Sampled {
                rates: crate::rates::RateMeter::starting(std::time::Instant::now(), io),
                write_latency: Default::default(),
            }),
            fenced: AtomicBool::new(false),
            dedup: Default::default(),
            dedup_snapshot: Default::default(),
            snapshotting: AtomicBool::new(false),
            rules: Default::default(),
            store,
            compacted: Default::default(),
            compaction_status: std::sync::Mutex::new(CompactionStatus::not_run()),
        }
    }

    /// The compacted view, if the topic was ever compacted. Opened without holding the cache's
    /// lock (opening reads the whole view); two first readers may both open it, one is kept.
    pub(crate) async fn compacted_view(&self) -> Result<Option<Arc<CompactedView>>, BrokerError> {
        if let Some(view) = self.cached_view().clone() {
            return Ok(Some(view));
        }
        let Some(state) = self.store.compaction_state(&self.name).await? else {
            return Ok(None);
        };
        let view = Arc::new(CompactedView::open(self.store.as_ref(), self, state).await?);
        Ok(Some(Arc::clone(self.cached_view().get_or_insert(view))))
    }

    fn cached_view(&self) -> std::sync::MutexGuard<'_, Option<Arc<CompactedView>>> {
        self.compacted.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts compacting the topic in the background (Pulsar's `PUT …/compaction`); refused
    /// while a compaction runs.
    pub fn trigger_compaction(self: &Arc<Self>) -> Result<(), BrokerError> {
        {
            let mut status = self
                .compaction_status
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if status.status == "RUNNING" {
                return Err(BrokerError::AlreadyRunning(
                    "Compaction already in progress".into(),
                ));
            }
            *status = CompactionStatus {
                status: "RUNNING",
                last_error: String::new(),
            };
        }
        let topic = Arc::clone(self);
        tokio::spawn(async move {
            let result = crate::compaction::compact(&topic, topic.store.as_ref()).await;
            let status = match result {
                Ok(state) => {
                    // The next read_compacted read opens the new view.
                    let mut cached = topic.cached_view();
                    if cached.as_ref().is_none_or(|v| v.horizon != state.horizon) {
                        *cached = None;
                    }
                    drop(cached);
                    CompactionStatus {
                        status: "SUCCESS",
                        last_error: String::new(),
                    }
                }
                Err(e) => {
                    tracing::warn!(topic = %topic.name, error = %e, "compaction failed");
                    CompactionStatus {
                        status: "ERROR",
                        last_error: e.to_string(),
                    }
                }
            };
            *topic
                .compaction_status
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = status;
        });
        Ok(())
    }

    pub fn compaction_status(&self) -> CompactionStatus {
        self.compaction_status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn is_fenced(&self) -> bool {
        self.fenced.load(Ordering::SeqCst)
    }

    pub(crate) fn fenced_error(&self) -> BrokerError {
        BrokerError::TopicFenced(format!("Topic {} is being deleted", self.name))
    }

    /// Producers and consumers attached now.
    pub(crate) async fn attached_clients(&self) -> usize {
        let subs: Vec<Arc<Subscription>> =
            self.subscriptions.lock().await.values().cloned().collect();
        let producers = self
            .producers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len();
        producers + subs.iter().map(|s| s.consumer_count()).sum::<usize>()
    }

    /// Fences the topic for deletion. Unless `force`, refuses (and unfences) while producers
    /// or consumers are attached; with `force`, tells each of them to close (CLOSE_PRODUCER,
    /// CLOSE_CONSUMER) and detaches them. Attaching checks the fence under the same locks the
    /// counting takes, so no client slips in between.
    pub(crate) async fn fence_for_delete(&self, force: bool) -> Result<(), BrokerError> {
        self.fenced.store(true, Ordering::SeqCst);
        if !force {
            let attached = self.attached_clients().await;
            if attached > 0 {
                self.fenced.store(false, Ordering::SeqCst);
                tracing::info!(topic = %self.name, attached, "deletion refused: clients attached");
                return Err(BrokerError::TopicBusy(
                    "Topic has active producers/subscriptions".into(),
                ));
            }
            return Ok(());
        }
        let subs: Vec<Arc<Subscription>> =
            self.subscriptions.lock().await.values().cloned().collect();
        let producers = self.close_producers();
        let consumers: usize = subs.iter().map(|s| s.disconnect_consumers()).sum();
        tracing::info!(topic = %self.name, producers, consumers, "closed the clients of a topic being deleted");
        Ok(())
    }

    /// Tells every producer to close (CLOSE_PRODUCER) and detaches them; the clients create
    /// them again (and meet whatever made the topic close them). Returns how many.
    pub(crate) fn close_producers(&self) -> usize {
        let producers: Vec<((u64, u64), ProducerEntry)> = self
            .producers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain();
        for ((_, producer_id), p) in &producers {
            let _ = p.outbox.send(protocol::encode_command(
                &protocol::commands::close_producer(*producer_id),
            ));
        }
        producers.len()
    }

    /// Acknowledges everything up to `to` for durable subscription `name` (TTL, backlog
    /// eviction): through its loaded subscription, whose delivery must know, else on the
    /// cursor itself.
    pub(crate) async fn move_cursor(&self, name: &str, to: Position) -> Result<(), BrokerError> {
        let loaded = self.subscriptions.lock().await.get(name).cloned();
        match loaded {
            Some(sub) if sub.is_durable() => sub.expire_upto(to)?,
            _ => {
                self.ml.ack_cumulative(name, to).await?;
            }
        }
        Ok(())
    }

    /// Counts a stored entry of `messages` messages and `bytes` bytes (and for its producer).
    pub(crate) fn count_in(
        &self,
        producer: Option<&crate::producers::PublisherCounts>,
        messages: u64,
        bytes: u64,
    ) {
        self.msg_in.fetch_add(messages, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes, Ordering::Relaxed);
        self.entries_in.fetch_add(1, Ordering::Relaxed);
        if let Some(p) = producer {
            p.add(messages, bytes);
        }
    }

    /// The sampled counters that come from the managed ledger (the topic's own are 0).
    fn io_values(io: &ledger::IoStats) -> [u64; SAMPLED] {
        let mut values = [0u64; SAMPLED];
        values[ENTRIES_READ] = io.read_entries;
        values[BYTES_READ] = io.read_bytes;
        values[READ_ERRORS] = io.read_errors;
        values[ADD_ERRORS] = io.add_errors;
        values[OFFLOADED_BYTES] = io.offloaded_bytes;
        values[TIER_READ_BYTES] = io.tier_read_bytes;
        values
    }

    /// How long a stored entry took to become durable.
    pub(crate) fn record_write_latency(&self, d: std::time::Duration) {
        self.write_latency.record(d);
    }

    /// Samples the counters for rates and closes the latency interval (every
    /// `statsUpdateFrequencyInSecs`).
    pub(crate) async fn sample_stats(&self, now: std::time::Instant) {
        let subs: Vec<Arc<Subscription>> =
            self.subscriptions.lock().await.values().cloned().collect();
        let (mut msgs_out, mut bytes_out) = (0, 0);
        for sub in &subs {
            let (m, b) = sub.sample_rates(now);
            msgs_out += m;
            bytes_out += b;
        }
        let publishers: Vec<Arc<crate::producers::PublisherCounts>> = {
            let p = self.producers.lock().unwrap_or_else(|e| e.into_inner());
            p.attached().map(|(_, e)| Arc::clone(&e.counted)).collect()
        };
        for c in publishers {
            c.sample(now);
        }
        let mut values = Self::io_values(&self.ml.io_stats());
        values[MSG_IN] = self.msg_in.load(Ordering::Relaxed);
        values[BYTES_IN] = self.bytes_in.load(Ordering::Relaxed);
        values[MSG_OUT] = msgs_out;
        values[BYTES_OUT] = bytes_out;
        values[ENTRIES_IN] = self.entries_in.load(Ordering::Relaxed);
        let mut s = self.sampled.lock().unwrap_or_else(|e| e.into_inner());
        s.rates.sample(now, values);
        s.write_latency = self.write_latency.take();
    }

    pub(crate) fn notify_appended(&self) {
        self.appended.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub(crate) fn watch_appended(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }

    /// Registers a producer under its access mode (see [`crate::producers`]).
    pub(crate) fn add_producer(
        &self,
        key: (u64, u64),
        entry: ProducerEntry,
        request: ProducerRequest,
    ) -> Result<Admitted, BrokerError> {
        let mut p = self.producers.lock().unwrap_or_else(|e| e.into_inner());
        if self.is_fenced() {
            return Err(self.fenced_error());
        }
        p.admit(key, entry, request)
    }

    /// The counters of producer `key` if it is attached: admitted, not waiting for exclusive
    /// access (its SENDs are stored only then).
    pub(crate) fn attached_producer(
        &self,
        key: (u64, u64),
    ) -> Option<Arc<crate::producers::PublisherCounts>> {
        self.producers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .counts_of(key)
    }

    pub(crate) fn remember_rules(&self, f: impl FnOnce(&mut ProducerRules)) {
        f(&mut self.rules.lock().unwrap_or_else(|e| e.into_inner()));
    }

    pub(crate) fn remembered_rules(&self) -> ProducerRules {
        *self.rules.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The name of an attached producer.
    pub(crate) fn producer_name(&self, key: (u64, u64)) -> Option<String> {
        self.producers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .name_of(key)
    }

    /// Turns deduplication on or off. Turning it on the first time since the topic loaded
    /// recovers each producer's highest sequence id: the last snapshot, then the log after it.
    pub(crate) async fn set_deduplication(
        &self,
        enabled: bool,
        store: &dyn crate::TopicStore,
    ) -> Result<(), BrokerError> {
        let lock = |t: &Self| t.dedup.lock().unwrap_or_else(|e| e.into_inner()).recovered;
        if !enabled || lock(self) {
            self.dedup.lock().unwrap_or_else(|e| e.into_inner()).enabled = enabled;
            return Ok(());
        }
        // One recovery at a time; the snapshot slot's lock serializes them.
        let mut last = self.dedup_snapshot.lock().await;
        if !lock(self) {
            // Entries after the last snapshot stay until the next one (a new cursor starts at
            // the earliest entry; an existing one keeps its position).
            self.ml
                .open_cursor(crate::dedup::DEDUP_CURSOR, InitialPosition::Earliest)
                .await?;
            let saved = store
                .dedup_snapshot(&self.name)
                .await?
                .unwrap_or_else(DedupSnapshot::empty);
            let folded = crate::dedup::fold_log(&self.ml, saved).await?;
            tracing::info!(topic = %self.name, producers = folded.producers.len(), "deduplication state recovered");
            self.dedup
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .restore(folded.producers.clone());
            *last = Some(folded);
        }
        self.dedup.lock().unwrap_or_else(|e| e.into_inner()).enabled = true;
        Ok(())
    }

    /// After `interval` durable entries, saves a new deduplication snapshot in the background
    /// (one at a time).
    pub(crate) fn maybe_snapshot_dedup(
        self: &Arc<Self>,
        store: Arc<dyn crate::TopicStore>,
        interval: u64,
    ) {
        {
            let d = self.dedup.lock().unwrap_or_else(|e| e.into_inner());
            if !d.enabled || d.since_snapshot < interval {
                return;
            }
        }
        if self.snapshotting.swap(true, Ordering::SeqCst) {
            return;
        }
        let topic = Arc::clone(self);
        tokio::spawn(async move {
            let mut last = topic.dedup_snapshot.lock().await;
            let base = last.clone().unwrap_or_else(DedupSnapshot::empty);
            topic
                .dedup
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .since_snapshot = 0;
            match crate::dedup::fold_log(&topic.ml, base).await {
                Ok(folded) => match store.save_dedup_snapshot(&topic.name, &folded).await {
                    Ok(()) => {
                        // Saved: the entries up to it are no longer needed for recovery.
                        if folded.entry_id >= 0
                            && let Err(e) = topic
                                .ml
                                .ack_cumulative(
                                    crate::dedup::DEDUP_CURSOR,
                                    Position::new(folded.ledger_id, folded.entry_id),
                                )
                                .await
                        {
                            tracing::warn!(topic = %topic.name, error = %e, "moving the deduplication cursor failed");
                        }
                        *last = Some(folded);
                    }
                    Err(e) => {
                        tracing::warn!(topic = %topic.name, error = %e, "saving the deduplication snapshot failed")
                    }
                },
                Err(e) => {
                    tracing::warn!(topic = %topic.name, error = %e, "reading the log for a deduplication snapshot failed")
                }
            }
            topic.snapshotting.store(false, Ordering::SeqCst);
        });
    }

    pub(crate) fn remove_producer(&self, key: (u64, u64)) {
        let mut p = self.producers.lock().unwrap_or_else(|e| e.into_inner());
        p.remove(key);
    }

    /// The subscription `name`, created if missing.
    pub(crate) async fn subscription(
        self: &Arc<Self>,
        name: &str,
        sub_type: SubType,
        start: Start,
    ) -> Result<Arc<Subscription>, BrokerError> {
        let mut subs = self.subscriptions.lock().await;
        if let Some(s) = subs.get(name) {
            return Ok(Arc::clone(s));
        }
        let s = Subscription::create(Arc::clone(self), name, sub_type, start).await?;
        subs.insert(name.to_string(), Arc::clone(&s));
        Ok(s)
    }

    /// Removes a subscription from the topic (unsubscribe, or the last reader left).
    pub(crate) async fn remove_subscription(&self, name: &str) -> Option<Arc<Subscription>> {
        self.subscriptions.lock().await.remove(name)
    }

    pub(crate) async fn close(&self) {
        let subs: Vec<_> = self
            .subscriptions
            .lock()
            .await
            .drain()
            .map(|(_, s)| s)
            .collect();
        for s in subs {
            s.close().await;
        }
    }

    /// Pulsar's `TopicStats` of this topic: its producers, its subscriptions (loaded ones with
    /// their consumers, and durable cursors no consumer has attached to since the topic loaded).
    pub async fn stats(&self) -> TopicStats {
        let ml_stats = self.ml.stats().await;
        let offloaded: i64 = ml_stats
            .ledgers
            .iter()
            .filter(|l| l.offload.as_ref().is_some_and(|o| o.complete))
            .map(|l| l.size)
            .sum();
        let mut publishers: Vec<PublisherStats> = {
            let p = self.producers.lock().unwrap_or_else(|e| e.into_inner());
            p.attached()
                .map(|((_, id), e)| PublisherStats {
                    msg_rate_in: e.counted.rates()[0],
                    msg_throughput_in: e.counted.rates()[1],
                    average_msg_size: match e.counted.rates() {
                        [m, b] if m > 0.0 => b / m,
                        _ => 0.0,
                    },
                    producer_id: *id,
                    producer_name: e.name.clone(),
                    access_mode: e.mode.name(),
                    address: e.address.clone(),
                    connected_since: timestamp(e.connected_since),
                    client_version: e.client_version.clone(),
                })
                .collect()
        };
        publishers.sort_by(|a, b| a.producer_name.cmp(&b.producer_name));
        let loaded: Vec<Arc<Subscription>> =
            self.subscriptions.lock().await.values().cloned().collect();
        let mut subscriptions = BTreeMap::new();
        for sub in &loaded {
            subscriptions.insert(sub.name.clone(), sub.stats(&self.ml));
        }
        let cursors = self.ml.cursors().await;
        // Bytes after the slowest durable cursor (internal ones included: they hold data too).
        let backlog_size = cursors
            .iter()
            .map(|(_, c)| c.mark_delete)
            .min()
            .map_or(0, |p| self.ml.bytes_after(p));
        for (name, cursor) in cursors {
            if name == crate::dedup::DEDUP_CURSOR {
                // Deduplication's own cursor, not a subscription (as in Pulsar's stats).
                continue;
            }
            subscriptions
                .entry(name)
                .or_insert_with(|| SubscriptionStats {
                    sub_type: "None",
                    msg_backlog: self.ml.backlog(&cursor),
                    unacked_messages: 0,
                    msg_out_counter: 0,
                    bytes_out_counter: 0,
                    msg_rate_out: 0.0,
                    msg_throughput_out: 0.0,
                    active_consumer_name: None,
                    consumers: Vec::new(),
                    is_durable: true,
                    non_contiguous_deleted_messages_ranges: ledger::info::to_ranges(
                        cursor.individually_deleted.iter().copied(),
                    )
                    .len() as u64,
                });
        }
        let (rates, deltas, write_latency) = {
            let s = self.sampled.lock().unwrap_or_else(|e| e.into_inner());
            (s.rates.rates(), s.rates.deltas(), s.write_latency)
        };
        TopicStats {
            msg_rate_in: rates[MSG_IN],
            msg_throughput_in: rates[BYTES_IN],
            msg_rate_out: rates[MSG_OUT],
            msg_throughput_out: rates[BYTES_OUT],
            average_msg_size: if rates[MSG_IN] > 0.0 {
                rates[BYTES_IN] / rates[MSG_IN]
            } else {
                0.0
            },
            backlog_size,
            metrics: crate::stats::TopicMetrics {
                storage_write_rate: rates[ENTRIES_IN],
                storage_read_rate: rates[ENTRIES_READ],
                storage_read_bytes_rate: rates[BYTES_READ],
                offload_rate: rates[OFFLOADED_BYTES],
                read_offload_rate: rates[TIER_READ_BYTES],
                interval_read_entries: deltas[ENTRIES_READ],
                interval_read_errors: deltas[READ_ERRORS],
                interval_add_errors: deltas[ADD_ERRORS],
                write_latency,
                io: ml_stats.io,
                tier_read_errors: ml_stats.tier_read_errors,
            },
            msg_in_counter: self.msg_in.load(Ordering::Relaxed),
            bytes_in_counter: self.bytes_in.load(Ordering::Relaxed),
            msg_out_counter: subscriptions.values().map(|s| s.msg_out_counter).sum(),
            bytes_out_counter: subscriptions.values().map(|s| s.bytes_out_counter).sum(),
            storage_size: ml_stats.total_size,
            offloaded_storage_size: offloaded,
            publishers,
            waiting_publishers: 0,
            subscriptions,
            deduplication_status: "Disabled",
        }
    }
}

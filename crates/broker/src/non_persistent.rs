//! Non-persistent topics (`non-persistent://…`), as Pulsar has them: a message goes from its
//! producer straight to the consumers attached at that moment — in each subscription the one
//! the subscription type picks, if it has a permit — and is acknowledged to the producer at
//! once (message id 0:0). Nothing is stored: a message no consumer can take is dropped (and
//! counted), there is no redelivery, acks change nothing, and a subscription ends with its last
//! consumer. The topic itself lives in memory while it has producers or subscriptions.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use protocol::TopicName;
use protocol::commands;
use protocol::frame::message_frame;

use crate::error::BrokerError;
use crate::subscription::{ConsumerKey, Outbox, SubType};

/// A consumer of a non-persistent subscription.
pub(crate) struct NpConsumer {
    pub key: ConsumerKey,
    pub name: String,
    pub priority: i32,
    pub outbox: Outbox,
    pub permits: i64,
}

struct NpSubscription {
    sub_type: SubType,
    consumers: Vec<NpConsumer>,
    /// Round-robin position (Shared).
    next: usize,
}

impl NpSubscription {
    /// The consumer that takes a message with `key`, if it has a permit now.
    fn pick(&mut self, key: Option<&[u8]>) -> Option<usize> {
        let n = self.consumers.len();
        if n == 0 {
            return None;
        }
        let has_permit = |c: &NpConsumer| c.permits > 0;
        match (self.sub_type, key) {
            (SubType::Exclusive | SubType::Failover, _) => (0..n)
                .min_by(|&a, &b| {
                    let (ca, cb) = (&self.consumers[a], &self.consumers[b]);
                    (ca.priority, &ca.name, ca.key).cmp(&(cb.priority, &cb.name, cb.key))
                })
                .filter(|&i| has_permit(&self.consumers[i])),
            (SubType::KeyShared, Some(k)) => {
                let mut order: Vec<usize> = (0..n).collect();
                order.sort_by_key(|&i| self.consumers[i].key);
                let i = order[crc_fast::crc32_iscsi(k) as usize % n];
                has_permit(&self.consumers[i]).then_some(i)
            }
            _ => {
                let i = (0..n)
                    .map(|step| (self.next + step) % n)
                    .find(|&i| has_permit(&self.consumers[i]))?;
                self.next = i + 1;
                Some(i)
            }
        }
    }
}

#[derive(Default)]
struct Clients {
    /// Attached producers: (connection, producer id) → producer name.
    producers: HashMap<ConsumerKey, String>,
    subscriptions: HashMap<String, NpSubscription>,
}

pub struct NonPersistentTopic {
    pub name: TopicName,
    clients: Mutex<Clients>,
    msg_in: AtomicU64,
    /// Messages no consumer could take (no consumer, or no permit).
    msg_dropped: AtomicU64,
}

impl NonPersistentTopic {
    pub(crate) fn new(name: TopicName) -> Self {
        NonPersistentTopic {
            name,
            clients: Mutex::new(Clients::default()),
            msg_in: AtomicU64::new(0),
            msg_dropped: AtomicU64::new(0),
        }
    }

    fn clients(&self) -> std::sync::MutexGuard<'_, Clients> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the topic has no producer and no subscription left (it can be forgotten).
    pub(crate) fn is_idle(&self) -> bool {
        let c = self.clients();
        c.producers.is_empty() && c.subscriptions.is_empty()
    }

    pub(crate) fn add_producer(&self, key: ConsumerKey, name: &str) -> Result<(), BrokerError> {
        let mut c = self.clients();
        if c.producers.iter().any(|(k, n)| n == name && *k != key) {
            return Err(BrokerError::ProducerBusy(format!(
                "Producer with name '{name}' is already connected to topic"
            )));
        }
        c.producers.insert(key, name.to_string());
        Ok(())
    }

    pub(crate) fn remove_producer(&self, key: ConsumerKey) {
        self.clients().producers.remove(&key);
    }

    /// Attaches a consumer, by the subscription type's rules (as persistent subscriptions).
    pub(crate) fn add_consumer(
        &self,
        subscription: &str,
        sub_type: SubType,
        consumer: NpConsumer,
    ) -> Result<(), BrokerError> {
        let mut c = self.clients();
        let sub = c
            .subscriptions
            .entry(subscription.to_string())
            .or_insert_with(|| NpSubscription {
                sub_type,
                consumers: Vec::new(),
                next: 0,
            });
        if !sub.consumers.is_empty() {
            if sub.sub_type != sub_type {
                return Err(BrokerError::ConsumerBusy(format!(
                    "Subscription {subscription} is of type {}, a {} consumer cannot attach",
                    sub.sub_type.name(),
                    sub_type.name()
                )));
            }
            if sub_type == SubType::Exclusive {
                return Err(BrokerError::ConsumerBusy(
                    "Exclusive consumer is already connected".into(),
                ));
            }
        }
        sub.sub_type = sub_type;
        sub.consumers.push(consumer);
        Ok(())
    }

    /// Detaches a consumer; a subscription without consumers ends.
    pub(crate) fn remove_consumer(&self, subscription: &str, key: ConsumerKey) {
        let mut c = self.clients();
        if let Some(sub) = c.subscriptions.get_mut(subscription) {
            sub.consumers.retain(|k| k.key != key);
            if sub.consumers.is_empty() {
                c.subscriptions.remove(subscription);
            }
        }
    }

    pub(crate) fn flow(&self, subscription: &str, key: ConsumerKey, permits: u32) {
        let mut c = self.clients();
        if let Some(k) = c
            .subscriptions
            .get_mut(subscription)
            .and_then(|s| s.consumers.iter_mut().find(|k| k.key == key))
        {
            k.permits = k.permits.saturating_add(i64::from(permits));
        }
    }

    /// Hands an entry (as the producer sent it) to one consumer of each subscription; what
    /// nobody can take is dropped.
    pub(crate) fn publish(&self, entry: &Bytes) {
        let meta = protocol::parse_entry(entry).ok().map(|(m, _)| m);
        let count = meta
            .as_ref()
            .map(protocol::entry::message_count)
            .unwrap_or(1);
        let key = meta.as_ref().and_then(protocol::entry::routing_key);
        let partition = self.name.partition_index().map(|p| p as i32).unwrap_or(-1);
        self.msg_in.fetch_add(u64::from(count), Ordering::Relaxed);
        let mut c = self.clients();
        let mut dropped = 0u64;
        if c.subscriptions.is_empty() {
            dropped += u64::from(count);
        }
        for sub in c.subscriptions.values_mut() {
            let Some(i) = sub.pick(key) else {
                dropped += u64::from(count);
                continue;
            };
            let consumer = &mut sub.consumers[i];
            consumer.permits -= i64::from(count);
            let cmd = commands::message(
                consumer.key.1,
                commands::message_id(0, 0, partition),
                0,
                Vec::new(),
            );
            if consumer
                .outbox
                .send(message_frame(&cmd, entry.clone()))
                .is_err()
            {
                dropped += u64::from(count);
            }
        }
        if dropped > 0 {
            self.msg_dropped.fetch_add(dropped, Ordering::Relaxed);
        }
    }

    /// Messages published, and messages dropped for want of a consumer that could take them.
    pub fn counters(&self) -> (u64, u64) {
        (
            self.msg_in.load(Ordering::Relaxed),
            self.msg_dropped.load(Ordering::Relaxed),
        )
    }
}

//! A loaded topic: its managed ledger, producers and subscriptions.

use std::collections::HashMap;
use std::sync::Arc;

use ledger::{InitialPosition, ManagedLedger, Position};
use protocol::TopicName;
use tokio::sync::watch;

use crate::error::BrokerError;
use crate::subscription::{SubType, Subscription};

/// A producer attached to the topic, by (connection, producer id).
#[derive(Debug, Clone)]
pub(crate) struct ProducerEntry {
    pub name: String,
    pub exclusive: bool,
}

pub struct Topic {
    pub name: TopicName,
    pub ml: ManagedLedger,
    /// Partition index for MESSAGE ids; -1 when not a partition.
    pub partition: i32,
    /// Bumped whenever entries become durable, to wake dispatchers at the tail.
    appended: watch::Sender<u64>,
    subscriptions: tokio::sync::Mutex<HashMap<String, Arc<Subscription>>>,
    producers: std::sync::Mutex<HashMap<(u64, u64), ProducerEntry>>,
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
    pub(crate) fn new(name: TopicName, ml: ManagedLedger) -> Self {
        let partition = name.partition().map(|p| p as i32).unwrap_or(-1);
        Topic {
            name,
            ml,
            partition,
            appended: watch::channel(0).0,
            subscriptions: Default::default(),
            producers: Default::default(),
        }
    }

    pub(crate) fn notify_appended(&self) {
        self.appended.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub(crate) fn watch_appended(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }

    /// Registers a producer, enforcing name uniqueness and exclusive access.
    pub(crate) fn add_producer(
        &self,
        key: (u64, u64),
        entry: ProducerEntry,
    ) -> Result<(), BrokerError> {
        let mut p = self.producers.lock().unwrap_or_else(|e| e.into_inner());
        if p.get(&key)
            .is_some_and(|existing| existing.name == entry.name)
        {
            return Ok(());
        }
        if p.values().any(|e| e.name == entry.name) {
            return Err(BrokerError::ProducerBusy(format!(
                "Producer with name '{}' is already connected to topic",
                entry.name
            )));
        }
        if entry.exclusive && !p.is_empty() {
            return Err(BrokerError::ProducerBusy(format!(
                "Topic {} has existing shared producers, an exclusive producer cannot attach",
                self.name
            )));
        }
        if p.values().any(|e| e.exclusive) {
            return Err(BrokerError::ProducerBusy(format!(
                "Topic {} has an exclusive producer",
                self.name
            )));
        }
        p.insert(key, entry);
        Ok(())
    }

    pub(crate) fn remove_producer(&self, key: (u64, u64)) {
        let mut p = self.producers.lock().unwrap_or_else(|e| e.into_inner());
        p.remove(&key);
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
}

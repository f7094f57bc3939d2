//! A topic's producers and Pulsar's producer access modes, as `AbstractTopic` decides them:
//!
//! - `Shared`: any number, unless an exclusive producer holds the topic or one is waiting
//!   (`ProducerBusy`);
//! - `Exclusive`: only when no other producer is attached or waiting (`ProducerFenced`);
//! - `ExclusiveWithFencing`: takes the topic: waiting producers fail (`ProducerFenced`),
//!   attached ones are closed (CLOSE_PRODUCER; when they come back, their older topic epoch
//!   fences them);
//! - `WaitForExclusive`: queued (PRODUCER_SUCCESS with `producer_ready=false`) until every
//!   other producer has left, then made exclusive (PRODUCER_SUCCESS, `producer_ready=true`).
//!
//! Every exclusive grant moves the topic epoch (returned as `topic_epoch`); a producer that
//! comes back with an older epoch than the topic's is fenced. The epoch lives as long as the
//! loaded topic (Pulsar keeps it in the managed ledger's properties): after a reload a
//! returning producer's epoch is taken as the topic's.

use std::collections::{HashMap, VecDeque};
use std::time::SystemTime;

use bytes::Bytes;
use protocol::pb::{self, BaseCommand, ServerError, base_command::Type};
use protocol::{commands, encode_command};

use crate::error::BrokerError;
use crate::subscription::Outbox;

/// `ProducerAccessMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AccessMode {
    Shared,
    Exclusive,
    WaitForExclusive,
    ExclusiveWithFencing,
}

impl AccessMode {
    pub(crate) fn from_wire(mode: Option<i32>) -> AccessMode {
        match mode.and_then(|m| pb::ProducerAccessMode::try_from(m).ok()) {
            Some(pb::ProducerAccessMode::Exclusive) => AccessMode::Exclusive,
            Some(pb::ProducerAccessMode::WaitForExclusive) => AccessMode::WaitForExclusive,
            Some(pb::ProducerAccessMode::ExclusiveWithFencing) => AccessMode::ExclusiveWithFencing,
            _ => AccessMode::Shared,
        }
    }

    /// The name Pulsar's stats give it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            AccessMode::Shared => "Shared",
            AccessMode::Exclusive => "Exclusive",
            AccessMode::WaitForExclusive => "WaitForExclusive",
            AccessMode::ExclusiveWithFencing => "ExclusiveWithFencing",
        }
    }
}

/// A producer attached to the topic, by (connection, producer id).
#[derive(Debug, Clone)]
pub(crate) struct ProducerEntry {
    pub name: String,
    pub mode: AccessMode,
    pub address: String,
    pub client_version: String,
    pub connected_since: SystemTime,
    /// The producer's connection, to tell it the producer is closed (CLOSE_PRODUCER).
    pub outbox: Outbox,
    /// Messages and bytes it published, and their rates over the last stats interval.
    pub counted: std::sync::Arc<PublisherCounts>,
}

/// What a producer published (for its `PublisherStats`): counted as receipts go out, without
/// a lock; sampled for rates every stats interval.
#[derive(Debug)]
pub(crate) struct PublisherCounts {
    pub messages: std::sync::atomic::AtomicU64,
    pub bytes: std::sync::atomic::AtomicU64,
    pub rates: std::sync::Mutex<crate::rates::RateMeter<2>>,
}

impl Default for PublisherCounts {
    /// Nothing published yet: the first rates cover the time since the producer attached.
    fn default() -> Self {
        PublisherCounts {
            messages: Default::default(),
            bytes: Default::default(),
            rates: std::sync::Mutex::new(crate::rates::RateMeter::starting(
                std::time::Instant::now(),
                [0, 0],
            )),
        }
    }
}

impl PublisherCounts {
    pub(crate) fn add(&self, messages: u64, bytes: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.messages.fetch_add(messages, Relaxed);
        self.bytes.fetch_add(bytes, Relaxed);
    }

    pub(crate) fn sample(&self, now: std::time::Instant) {
        use std::sync::atomic::Ordering::Relaxed;
        let values = [self.messages.load(Relaxed), self.bytes.load(Relaxed)];
        self.meter().sample(now, values);
    }

    /// Messages and bytes per second over the last stats interval.
    pub(crate) fn rates(&self) -> [f64; 2] {
        self.meter().rates()
    }

    fn meter(&self) -> std::sync::MutexGuard<'_, crate::rates::RateMeter<2>> {
        self.rates.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a PRODUCER asked for, beyond its entry.
#[derive(Debug, Clone)]
pub(crate) struct ProducerRequest {
    pub request_id: u64,
    /// The topic epoch a reconnecting producer had.
    pub epoch: Option<u64>,
    /// Its schema's version, repeated in the PRODUCER_SUCCESS that ends its wait.
    pub schema_version: Option<Bytes>,
}

#[derive(Debug)]
struct Waiter {
    key: (u64, u64),
    entry: ProducerEntry,
    request: ProducerRequest,
}

/// How a producer was admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admitted {
    /// Attached now; the topic epoch to report, if the topic has one.
    Ready { epoch: Option<u64> },
    /// Waiting for exclusive access; a PRODUCER_SUCCESS follows when it gets it.
    Queued,
}

#[derive(Debug, Default)]
pub(crate) struct Producers {
    attached: HashMap<(u64, u64), ProducerEntry>,
    /// The name of the producer holding exclusive access.
    exclusive: Option<String>,
    waiting: VecDeque<Waiter>,
    epoch: Option<u64>,
}

fn fenced(msg: impl Into<String>) -> BrokerError {
    BrokerError::ProducerFenced(msg.into())
}

impl Producers {
    pub(crate) fn attached(&self) -> impl Iterator<Item = (&(u64, u64), &ProducerEntry)> {
        self.attached.iter()
    }

    pub(crate) fn len(&self) -> usize {
        self.attached.len()
    }

    pub(crate) fn name_of(&self, key: (u64, u64)) -> Option<String> {
        self.attached.get(&key).map(|e| e.name.clone())
    }

    /// An attached producer's counters (`None`: not attached).
    pub(crate) fn counts_of(&self, key: (u64, u64)) -> Option<std::sync::Arc<PublisherCounts>> {
        self.attached
            .get(&key)
            .map(|e| std::sync::Arc::clone(&e.counted))
    }

    /// Detaches every producer (the topic is being deleted); what was attached or waiting.
    pub(crate) fn drain(&mut self) -> Vec<((u64, u64), ProducerEntry)> {
        self.exclusive = None;
        let mut all: Vec<_> = self.attached.drain().collect();
        all.extend(self.waiting.drain(..).map(|w| (w.key, w.entry)));
        all
    }

    /// Admits a producer under its access mode.
    pub(crate) fn admit(
        &mut self,
        key: (u64, u64),
        entry: ProducerEntry,
        request: ProducerRequest,
    ) -> Result<Admitted, BrokerError> {
        if self
            .attached
            .get(&key)
            .is_some_and(|existing| existing.name == entry.name)
        {
            // The same PRODUCER again (a client retrying its request).
            return Ok(Admitted::Ready { epoch: self.epoch });
        }
        if self.attached.values().any(|e| e.name == entry.name)
            || self.waiting.iter().any(|w| w.entry.name == entry.name)
        {
            return Err(BrokerError::ProducerBusy(format!(
                "Producer with name '{}' is already connected to topic",
                entry.name
            )));
        }
        let holder = || self.exclusive.clone().unwrap_or_default();
        match entry.mode {
            AccessMode::Shared => {
                if self.exclusive.is_some() || !self.waiting.is_empty() {
                    return Err(BrokerError::ProducerBusy(format!(
                        "Topic has an existing exclusive producer: {}",
                        holder()
                    )));
                }
                self.attached.insert(key, entry);
                Ok(Admitted::Ready { epoch: self.epoch })
            }
            AccessMode::Exclusive => {
                if self.exclusive.is_some() || !self.waiting.is_empty() {
                    return Err(fenced(format!(
                        "Topic has an existing exclusive producer: {}",
                        holder()
                    )));
                }
                if !self.attached.is_empty() {
                    return Err(fenced("Topic has existing shared producers"));
                }
                self.grant(key, entry, request.epoch)
            }
            AccessMode::ExclusiveWithFencing => {
                for w in self.waiting.drain(..) {
                    let _ = w.entry.outbox.send(encode_command(&commands::error(
                        w.request.request_id,
                        ServerError::ProducerFenced,
                        "Fenced out",
                    )));
                }
                for ((_, producer_id), p) in self.attached.drain() {
                    tracing::info!(producer = %p.name, "fencing out a producer");
                    let _ = p
                        .outbox
                        .send(encode_command(&commands::close_producer(producer_id)));
                }
                self.exclusive = None;
                self.grant(key, entry, request.epoch)
            }
            AccessMode::WaitForExclusive => {
                if self.exclusive.is_some() || !self.attached.is_empty() {
                    self.waiting.push_back(Waiter {
                        key,
                        entry,
                        request,
                    });
                    return Ok(Admitted::Queued);
                }
                self.grant(key, entry, request.epoch)
            }
        }
    }

    /// Makes `entry` the exclusive producer and moves the topic epoch (to the producer's, when
    /// it comes back with one), unless its epoch is older than the topic's.
    fn grant(
        &mut self,
        key: (u64, u64),
        entry: ProducerEntry,
        producer_epoch: Option<u64>,
    ) -> Result<Admitted, BrokerError> {
        if let (Some(theirs), Some(ours)) = (producer_epoch, self.epoch)
            && theirs < ours
        {
            return Err(fenced(format!(
                "Topic epoch has already moved. Current epoch: {ours}, Producer epoch: {theirs}"
            )));
        }
        let epoch = producer_epoch.unwrap_or_else(|| self.epoch.map_or(0, |e| e + 1));
        self.epoch = Some(epoch);
        self.exclusive = Some(entry.name.clone());
        self.attached.insert(key, entry);
        Ok(Admitted::Ready { epoch: Some(epoch) })
    }

    /// Detaches a producer (or takes it out of the queue). When no producer is left attached,
    /// the first waiting one gets exclusive access and its PRODUCER_SUCCESS.
    pub(crate) fn remove(&mut self, key: (u64, u64)) {
        if let Some(e) = self.attached.remove(&key) {
            if self.exclusive.as_deref() == Some(e.name.as_str()) {
                self.exclusive = None;
            }
        } else {
            self.waiting.retain(|w| w.key != key);
        }
        while self.attached.is_empty() && self.exclusive.is_none() {
            let Some(w) = self.waiting.pop_front() else {
                break;
            };
            let outbox = w.entry.outbox.clone();
            let name = w.entry.name.clone();
            match self.grant(w.key, w.entry, w.request.epoch) {
                Ok(Admitted::Ready { epoch }) => {
                    let _ = outbox.send(encode_command(&BaseCommand {
                        producer_success: Some(Box::new(pb::CommandProducerSuccess {
                            request_id: w.request.request_id,
                            producer_name: name,
                            last_sequence_id: Some(-1),
                            schema_version: w.request.schema_version,
                            topic_epoch: epoch,
                            producer_ready: Some(true),
                        })),
                        ..commands::base(Type::ProducerSuccess)
                    }));
                }
                Ok(Admitted::Queued) => {}
                Err(e) => {
                    let _ = outbox.send(encode_command(&commands::error(
                        w.request.request_id,
                        e.server_error(),
                        e.to_string(),
                    )));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(
        name: &str,
        mode: AccessMode,
    ) -> (
        ProducerEntry,
        tokio::sync::mpsc::UnboundedReceiver<protocol::OutFrame>,
    ) {
        let (tx, rx) = protocol::io::Outbox::unbounded();
        (
            ProducerEntry {
                name: name.into(),
                mode,
                address: String::new(),
                client_version: String::new(),
                connected_since: SystemTime::now(),
                outbox: tx,
                counted: Default::default(),
            },
            rx,
        )
    }

    fn request(id: u64, epoch: Option<u64>) -> ProducerRequest {
        ProducerRequest {
            request_id: id,
            epoch,
            schema_version: None,
        }
    }

    #[test]
    fn exclusive_is_refused_beside_any_producer_and_shared_beside_an_exclusive() {
        let mut p = Producers::default();
        let (s, _rx) = entry("s", AccessMode::Shared);
        assert_eq!(
            p.admit((1, 1), s, request(1, None)).unwrap(),
            Admitted::Ready { epoch: None }
        );
        let (x, _rx) = entry("x", AccessMode::Exclusive);
        let e = p.admit((1, 2), x, request(2, None)).unwrap_err();
        assert!(
            matches!(e, BrokerError::ProducerFenced(m) if m.contains("existing shared producers"))
        );
        p.remove((1, 1));
        let (x, _rx) = entry("x", AccessMode::Exclusive);
        assert_eq!(
            p.admit((1, 2), x, request(3, None)).unwrap(),
            Admitted::Ready { epoch: Some(0) }
        );
        let (s2, _rx) = entry("s2", AccessMode::Shared);
        let e = p.admit((1, 3), s2, request(4, None)).unwrap_err();
        assert!(matches!(e, BrokerError::ProducerBusy(m) if m.contains("exclusive producer: x")));
    }

    #[test]
    fn fencing_closes_the_holder_and_its_older_epoch_is_refused_when_it_returns() {
        let mut p = Producers::default();
        let (a, mut a_rx) = entry("a", AccessMode::Exclusive);
        assert_eq!(
            p.admit((1, 1), a, request(1, None)).unwrap(),
            Admitted::Ready { epoch: Some(0) }
        );
        let (b, _rx) = entry("b", AccessMode::ExclusiveWithFencing);
        assert_eq!(
            p.admit((2, 1), b, request(1, None)).unwrap(),
            Admitted::Ready { epoch: Some(1) }
        );
        // a was told to close.
        let frame = a_rx.try_recv().expect("CLOSE_PRODUCER");
        assert!(!frame.is_empty());
        assert!(p.counts_of((1, 1)).is_none());
        // a comes back with its epoch 0 while b holds epoch 1.
        p.remove((2, 1));
        let (a, _rx) = entry("a", AccessMode::Exclusive);
        let e = p.admit((1, 1), a, request(2, Some(0))).unwrap_err();
        assert!(
            matches!(e, BrokerError::ProducerFenced(m) if m.contains("Current epoch: 1, Producer epoch: 0"))
        );
    }

    #[test]
    fn a_waiting_producer_gets_exclusive_access_when_the_holder_leaves() {
        let mut p = Producers::default();
        let (a, _rx) = entry("a", AccessMode::Exclusive);
        p.admit((1, 1), a, request(1, None)).unwrap();
        let (w, mut w_rx) = entry("w", AccessMode::WaitForExclusive);
        assert_eq!(
            p.admit((2, 1), w, request(7, None)).unwrap(),
            Admitted::Queued
        );
        assert!(p.counts_of((2, 1)).is_none());
        assert!(w_rx.try_recv().is_err(), "nothing until the holder leaves");
        p.remove((1, 1));
        assert!(p.counts_of((2, 1)).is_some());
        assert!(
            w_rx.try_recv().is_ok(),
            "PRODUCER_SUCCESS with producer_ready"
        );
        assert_eq!(p.epoch, Some(1));
    }
}

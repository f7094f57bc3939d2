//! The Pulsar-compatible broker service: accepts binary-protocol connections on
//! `brokerServicePort`, maps topics onto managed ledgers, runs producers (SEND → durable append →
//! SEND_RECEIPT, in order) and subscriptions (cursors, flow-controlled dispatch, acks,
//! redelivery, seek). Entries are stored as received from the magic number on and relayed
//! unchanged, so what Pulsar wrote can be served and the other way round.
//!
//! Topic storage and namespace policies come from the embedding binary through [`TopicStore`].

pub mod admin;
mod backlog;
mod compaction;
mod connection;
mod dedup;
mod error;
mod non_persistent;
mod producers;
pub mod rates;
mod service;
pub mod stats;
mod subscription;
mod topic;

pub use backlog::{BacklogQuota, BacklogQuotaType, BacklogRules, QuotaPolicy};
pub use compaction::{CompactionState, CompactionStatus};
pub use dedup::DedupSnapshot;
pub use error::BrokerError;
pub use non_persistent::NonPersistentTopic;
pub use service::{BrokerService, BrokerServiceConfig, Listener, TopicStore};
pub use subscription::{DeliveryRules, SubType, UnackedLimits};
pub use topic::Topic;

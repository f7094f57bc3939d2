//! # policy — tenants, namespaces and topics as Pulsar's admin model has them
//!
//! The layer between the broker and storage on one side and the binary's HTTP handlers and CLI
//! on the other:
//!
//! - [`types`]: Pulsar's admin JSON as serde types, shared by the REST handlers and
//!   `tierlog admin`;
//! - [`offload_policies`]: Pulsar's `OffloadPolicies`, the one type of the broker, namespace and
//!   topic levels, their field-by-field merge, and their resolution into a topic's offload
//!   settings and location;
//! - [`config`]: the broker configuration (Pulsar's keys), the lowest policy level, parsed once;
//! - [`store`]: tenants, namespaces, topic policies, partitioned-topic metadata and schemas in
//!   the metadata store;
//! - [`service`]: the effective configuration of a topic, topic creation and deletion, and the
//!   [`broker::TopicStore`] the broker service opens topics through;
//! - [`stats`]: internal stats in Pulsar's JSON.
//!
//! Errors are [`PolicyError`]s that say what kind of failure they are; HTTP status codes are the
//! REST handlers' business.

pub mod access;
pub mod config;
pub mod error;
pub mod offload_policies;
pub mod schema;
pub mod service;
pub mod stats;
pub mod store;
pub mod types;

pub use access::Access;
pub use config::{
    BrokerConfig, ClusterSettings, ConfigError, HotTierSettings, MetadataBackend, MetricsSettings,
    OffloadCacheSettings, OrphanGcSettings, Properties, SessionExpiredPolicy, WalSettings,
};
pub use error::{PolicyError, Result};
pub use offload_policies::{OffloadDefaults, OffloadPolicies};
pub use service::{PolicyService, TopicSettings};
pub use store::PolicyStore;

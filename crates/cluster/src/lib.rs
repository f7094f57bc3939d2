//! # cluster — brokers sharing topics through the metadata store
//!
//! Membership, namespace bundles, bundle ownership and placement, on the [`meta`] store (etcd
//! in a cluster) with Pulsar's key layout:
//!
//! - `/loadbalance/brokers/<advertisedAddress>:<webServicePort>`: a live broker, written with
//!   its session lease (gone within the lease TTL after the broker dies);
//! - `/namespace/<tenant>/<ns>/0x<low>_0x<high>`: the owner of a bundle, on the owner's lease.
//!
//! A bundle's *fencing token* is the version (store revision) of its ownership key when this
//! broker created it: every metadata write of its topics can check it in the same transaction,
//! so a broker that lost the bundle (paused past its lease) can change nothing any more.

mod bundles;
mod listeners;
mod ownership;

pub use bundles::{Bundle, boundaries, bundle_of, bundles, topic_hash};
pub use listeners::{
    AdvertisedListener, AdvertisedListeners, ListenerError, ListenerSettings, parse_listeners,
};
pub use ownership::{BrokerInfo, Cluster, Owner};

/// Errors of cluster coordination.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    #[error(transparent)]
    Meta(#[from] meta::MetaError),
    /// Another live broker is registered with this broker's id (same advertised address and
    /// web port), and its registration did not expire in time.
    #[error(
        "a broker registered as {id} is still alive (its registration did not expire within {waited_ms} ms)"
    )]
    AlreadyRegistered { id: String, waited_ms: u64 },
    /// The bundle is still owned under this broker's previous session (it restarted before
    /// that session's lease expired); it frees itself within the lease TTL.
    #[error(
        "bundle {bundle} is still owned by a previous run of this broker; retry after the lease expires"
    )]
    StaleOwnership { bundle: String },
    /// This broker's session ended: it owns nothing any more.
    #[error("this broker's metadata session was lost")]
    SessionLost,
    /// A stored value this code cannot read.
    #[error("unreadable cluster metadata at {key}: {detail}")]
    BadValue { key: String, detail: String },
}

pub type Result<T, E = ClusterError> = std::result::Result<T, E>;

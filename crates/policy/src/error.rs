//! Errors of the policy layer. Each variant says what kind of failure it is; the REST handlers
//! turn the kind into an HTTP status (and only they do), the broker service into a protocol
//! error code.

use protocol::NameError;

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("Cluster does not exist")]
    ClusterNotFound,
    #[error("Tenant does not exist")]
    TenantNotFound,
    #[error("Namespace does not exist")]
    NamespaceNotFound,
    #[error("Topic not found")]
    TopicNotFound,
    #[error("Partitioned topic does not exist")]
    PartitionedTopicNotFound,
    /// Creating what exists (the text is Pulsar's message).
    #[error("{0}")]
    AlreadyExists(&'static str),
    /// Deleting what still has content (the text is Pulsar's message).
    #[error("{0}")]
    NotEmpty(&'static str),
    /// Deleting a topic that producers or consumers are attached to, unforced.
    #[error("{0}")]
    Busy(String),
    /// A request Pulsar refuses as a failed precondition: bad policy values, bad names.
    #[error("{0}")]
    Invalid(String),
    /// A schema the topic's schema rules refuse (HTTP 409, `IncompatibleSchema`).
    #[error("{0}")]
    IncompatibleSchema(String),
    /// The request's role may not do this (HTTP 403, `AuthorizationError`).
    #[error("{0}")]
    NotAuthorized(String),
    #[error(transparent)]
    Name(#[from] NameError),
    /// Stored policy data could not be decoded.
    #[error("stored policy {key} is unreadable: {detail}")]
    Corrupt { key: String, detail: String },
    #[error(transparent)]
    Meta(#[from] meta::MetaError),
    #[error(transparent)]
    Ledger(#[from] ledger::LedgerError),
    #[error(transparent)]
    Offload(#[from] offload::OffloadError),
}

impl From<crate::offload_policies::ResolveError> for PolicyError {
    fn from(e: crate::offload_policies::ResolveError) -> Self {
        match e {
            crate::offload_policies::ResolveError::Offload(offload::OffloadError::Config(
                reason,
            )) => PolicyError::Invalid(reason),
            crate::offload_policies::ResolveError::Offload(other) => PolicyError::Offload(other),
            invalid @ crate::offload_policies::ResolveError::InvalidValue { .. } => {
                PolicyError::Invalid(invalid.to_string())
            }
        }
    }
}

impl PolicyError {
    /// How the binary protocol reports a failure about `topic`.
    pub fn for_broker(self, topic: &protocol::TopicName) -> broker::BrokerError {
        use broker::BrokerError as B;
        match self {
            PolicyError::TenantNotFound
            | PolicyError::NamespaceNotFound
            | PolicyError::TopicNotFound
            | PolicyError::PartitionedTopicNotFound => {
                B::TopicNotFound(format!("{topic} ({self})"))
            }
            PolicyError::Name(n) => B::InvalidName(n),
            PolicyError::Ledger(l) => B::Storage(l),
            PolicyError::Invalid(m) => B::NotAllowed(m),
            PolicyError::Busy(m) => B::TopicBusy(m),
            PolicyError::NotAuthorized(m) => B::NotAuthorized(m),
            PolicyError::IncompatibleSchema(m) => B::IncompatibleSchema(m),
            other => B::Metadata(other.to_string()),
        }
    }
}

pub type Result<T, E = PolicyError> = std::result::Result<T, E>;

use protocol::pb::ServerError;

/// A failed broker operation, with the Pulsar error code a client is told.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("{0}")]
    InvalidName(#[from] protocol::NameError),
    #[error("topic {0} not found")]
    TopicNotFound(String),
    #[error("{0}")]
    ConsumerBusy(String),
    #[error("{0}")]
    ProducerBusy(String),
    /// Exclusive access refused, or lost to a fencing producer (Pulsar's `ProducerFenced`).
    #[error("{0}")]
    ProducerFenced(String),
    #[error("{0}")]
    NotAllowed(String),
    /// The topic takes no messages now (its storage is full): as Pulsar's "backlog quota
    /// exceeded" refusal, clients fail the messages they hold instead of retrying them forever.
    #[error("{0}")]
    ProducerBlocked(String),
    /// A backlog quota with a producer policy is exceeded: `hold` (`producer_request_hold`)
    /// clients retry, the others (`producer_exception`) fail.
    #[error("Cannot create producer on topic with backlog quota exceeded")]
    BacklogQuotaExceeded { hold: bool },
    /// The topic is being deleted (or unloaded): clients retry, and find it gone or new.
    #[error("{0}")]
    TopicFenced(String),
    /// A deletion that is not forced found producers or consumers attached.
    #[error("{0}")]
    TopicBusy(String),
    /// In a cluster: the topic's bundle is owned by another broker (or by none yet); the
    /// client looks the topic up again.
    #[error("{0}")]
    NotOwned(String),
    /// The connection's role may not do this (Pulsar's `AuthorizationError`).
    #[error("{0}")]
    NotAuthorized(String),
    /// A producer's or consumer's schema is refused by the topic's schema rules.
    #[error("{0}")]
    IncompatibleSchema(String),
    #[error("consumer not found")]
    ConsumerNotFound,
    #[error("Subscription not found: {0}")]
    SubscriptionNotFound(String),
    /// The topic was terminated: no producer, no message, ever.
    #[error("Topic was already terminated: {0}")]
    TopicTerminated(String),
    /// An admin request creates a subscription that exists.
    #[error("Subscription already exists for topic")]
    SubscriptionExists(String),
    /// An admin request deletes a subscription that has consumers, without `force`.
    #[error("Subscription has active connected consumers")]
    SubscriptionBusy,
    /// A long-running operation (compaction) is already running.
    #[error("{0}")]
    AlreadyRunning(String),
    /// More lookups at once than `maxConcurrentLookupRequest`.
    #[error("Failed due to too many pending lookup requests")]
    TooManyRequests,
    #[error("storage error: {0}")]
    Storage(#[from] ledger::LedgerError),
    #[error("{0}")]
    Metadata(String),
}

impl BrokerError {
    pub fn server_error(&self) -> ServerError {
        match self {
            BrokerError::InvalidName(_) => ServerError::InvalidTopicName,
            BrokerError::TopicNotFound(_) => ServerError::TopicNotFound,
            BrokerError::ConsumerBusy(_) => ServerError::ConsumerBusy,
            BrokerError::ProducerBusy(_) => ServerError::ProducerBusy,
            BrokerError::ProducerFenced(_) => ServerError::ProducerFenced,
            BrokerError::NotAllowed(_) => ServerError::NotAllowedError,
            BrokerError::ProducerBlocked(_) => ServerError::ProducerBlockedQuotaExceededException,
            BrokerError::BacklogQuotaExceeded { hold: true } => {
                ServerError::ProducerBlockedQuotaExceededError
            }
            BrokerError::BacklogQuotaExceeded { hold: false } => {
                ServerError::ProducerBlockedQuotaExceededException
            }
            // Pulsar answers a fenced topic with ServiceNotReady: clients retry.
            BrokerError::TopicFenced(_) => ServerError::ServiceNotReady,
            BrokerError::TopicBusy(_) => ServerError::NotAllowedError,
            // Pulsar's answer to a topic served elsewhere: clients redo the lookup.
            BrokerError::NotOwned(_) => ServerError::ServiceNotReady,
            BrokerError::NotAuthorized(_) => ServerError::AuthorizationError,
            BrokerError::IncompatibleSchema(_) => ServerError::IncompatibleSchema,
            BrokerError::ConsumerNotFound => ServerError::MetadataError,
            BrokerError::SubscriptionNotFound(_) => ServerError::SubscriptionNotFound,
            BrokerError::TopicTerminated(_)
            | BrokerError::Storage(ledger::LedgerError::Terminated(_)) => {
                ServerError::TopicTerminatedError
            }
            BrokerError::AlreadyRunning(_)
            | BrokerError::SubscriptionExists(_)
            | BrokerError::SubscriptionBusy => ServerError::NotAllowedError,
            BrokerError::TooManyRequests => ServerError::TooManyRequests,
            BrokerError::Storage(ledger::LedgerError::InvalidPosition { .. }) => {
                ServerError::NotAllowedError
            }
            // Another broker owns the topic now: clients look it up again.
            BrokerError::Storage(ledger::LedgerError::Fenced { .. }) => {
                ServerError::ServiceNotReady
            }
            // Served again once its broker is back: clients retry.
            BrokerError::Storage(ledger::LedgerError::HotTierElsewhere { .. }) => {
                ServerError::ServiceNotReady
            }
            BrokerError::Storage(_) => ServerError::PersistenceError,
            BrokerError::Metadata(_) => ServerError::MetadataError,
        }
    }
}

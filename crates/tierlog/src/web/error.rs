//! Admin API errors: the HTTP status for each kind of failure, and Pulsar's `{"reason": …}`
//! body. The only place that knows HTTP status codes.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ledger::LedgerError;
use policy::PolicyError;
use policy::types::ErrorBody;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub reason: String,
}

impl ApiError {
    pub fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        ApiError {
            status,
            reason: reason.into(),
        }
    }

    /// A request body that is not what the endpoint takes.
    pub fn not_found(reason: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, reason)
    }

    pub fn bad_request(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, reason)
    }
}

fn ledger_status(e: &LedgerError) -> StatusCode {
    match e {
        LedgerError::OffloadInProgress => StatusCode::CONFLICT,
        LedgerError::OffloadNotConfigured => StatusCode::METHOD_NOT_ALLOWED,
        LedgerError::Deleting(_) => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<PolicyError> for ApiError {
    fn from(e: PolicyError) -> Self {
        let status = match &e {
            PolicyError::ClusterNotFound
            | PolicyError::TenantNotFound
            | PolicyError::NamespaceNotFound
            | PolicyError::TopicNotFound
            | PolicyError::PartitionedTopicNotFound => StatusCode::NOT_FOUND,
            PolicyError::AlreadyExists(_)
            | PolicyError::NotEmpty(_)
            | PolicyError::IncompatibleSchema(_) => StatusCode::CONFLICT,
            PolicyError::Invalid(_) | PolicyError::Name(_) | PolicyError::Busy(_) => {
                StatusCode::PRECONDITION_FAILED
            }
            PolicyError::NotAuthorized(_) => StatusCode::FORBIDDEN,
            PolicyError::Ledger(l) => ledger_status(l),
            PolicyError::Corrupt { .. } | PolicyError::Meta(_) | PolicyError::Offload(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<broker::BrokerError> for ApiError {
    fn from(e: broker::BrokerError) -> Self {
        use broker::BrokerError as B;
        let status = match &e {
            B::TopicNotFound(_) | B::SubscriptionNotFound(_) => StatusCode::NOT_FOUND,
            B::InvalidName(_)
            | B::NotAllowed(_)
            | B::TopicBusy(_)
            | B::SubscriptionBusy
            | B::TopicTerminated(_) => StatusCode::PRECONDITION_FAILED,
            B::TopicFenced(_) | B::NotOwned(_) => StatusCode::SERVICE_UNAVAILABLE,
            B::ConsumerBusy(_)
            | B::ProducerBusy(_)
            | B::IncompatibleSchema(_)
            | B::AlreadyRunning(_)
            | B::SubscriptionExists(_) => StatusCode::CONFLICT,
            B::NotAuthorized(_) => StatusCode::FORBIDDEN,
            B::Storage(l) => ledger_status(l),
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<cluster::ClusterError> for ApiError {
    fn from(e: cluster::ClusterError) -> Self {
        use cluster::ClusterError as C;
        let status = match &e {
            // Transient: the client retries.
            C::StaleOwnership { .. } | C::SessionLost => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<protocol::NameError> for ApiError {
    fn from(e: protocol::NameError) -> Self {
        ApiError::new(StatusCode::PRECONDITION_FAILED, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(ErrorBody {
                reason: self.reason,
            }),
        )
            .into_response()
    }
}

//! The web port: Pulsar's admin REST API (`/admin/v2/…`, paths, JSON bodies, status codes and
//! `{"reason": …}` errors), HTTP lookups (`/lookup/v2/…`), health and `/metrics`.
//!
//! Handlers are thin: they turn path segments into names, bodies into Pulsar's types, and call
//! the policy layer or the broker service.

mod cluster;
mod error;
mod namespaces;
mod topics;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, put};
use broker::BrokerService;
use policy::PolicyService;
use protocol::{Domain, NamespaceName, TopicName};

pub use error::ApiError;

/// What the handlers work with.
pub struct WebState {
    pub policy: Arc<PolicyService>,
    pub broker: Arc<BrokerService>,
    /// Request counters of every object store, for `/metrics`.
    pub object_stores: Arc<offload::ObjectStores>,
    /// `http://host:port` of this web service, for HTTP lookups.
    pub web_service_url: String,
    /// `advertisedAddress:webServicePort`, Pulsar's broker id.
    pub broker_id: String,
}

type S = State<Arc<WebState>>;
type ApiResult = Result<Response, ApiError>;

fn no_content() -> ApiResult {
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn json<T: serde::Serialize>(v: &T) -> ApiResult {
    Ok(axum::Json(v).into_response())
}

/// A request body in the type the endpoint takes (400 with the reason otherwise).
fn body<T: serde::de::DeserializeOwned>(raw: &Bytes, what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(raw).map_err(|e| ApiError::bad_request(format!("Invalid {what}: {e}")))
}

/// The `{t}/{ns}` of a path, as a namespace name (412 when invalid).
pub struct Ns(pub NamespaceName);

impl<St: Send + Sync> FromRequestParts<St> for Ns {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, ApiError> {
        let Path((t, ns)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok(Ns(NamespaceName::new(&t, &ns)?))
    }
}

/// The `{t}/{ns}/{topic}` of a `/persistent/…` path, as a topic name (412 when invalid).
pub struct Topic(pub TopicName);

impl<St: Send + Sync> FromRequestParts<St> for Topic {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, ApiError> {
        let Path((t, ns, local)) =
            Path::<(String, String, String)>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok(Topic(
            NamespaceName::new(&t, &ns)?.topic(Domain::Persistent, &local)?,
        ))
    }
}

async fn metrics(State(s): S) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(s.policy.factory(), s.object_stores.counters()).await,
    )
}

/// Any path no route takes (an empty or `/`-split name lands here too): Pulsar's JSON error
/// body, so clients always get a reason.
async fn not_found(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("No such admin endpoint: {method} {}", uri.path()),
    )
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not supported on {}", uri.path()),
    )
}

pub fn router(state: Arc<WebState>) -> Router {
    use cluster as c;
    use namespaces as n;
    use topics as t;
    Router::new()
        .route("/admin/v2/brokers/{cluster}", get(c::list_brokers))
        .route(
            "/admin/v2/brokers/{cluster}/{broker}/ownedNamespaces",
            get(c::owned_namespaces),
        )
        .route(
            "/admin/v2/namespaces/{t}/{ns}/unload",
            put(c::unload_namespace),
        )
        .route(
            "/admin/v2/namespaces/{t}/{ns}/{bundle}/unload",
            put(c::unload_bundle),
        )
        .route(
            "/admin/v2/persistent/{t}/{ns}/{topic}/unload",
            put(c::unload_topic),
        )
        .route("/metrics", get(metrics))
        .route("/admin/v2/brokers/health", get(|| async { "ok" }))
        .route("/admin/v2/tenants", get(n::list_tenants))
        .route(
            "/admin/v2/tenants/{t}",
            get(n::get_tenant)
                .put(n::create_tenant)
                .delete(n::delete_tenant),
        )
        .route("/admin/v2/namespaces/{t}", get(n::list_namespaces))
        .route(
            "/admin/v2/namespaces/{t}/{ns}",
            put(n::create_namespace)
                .delete(n::delete_namespace)
                .get(n::get_policies),
        )
        .route(
            "/admin/v2/namespaces/{t}/{ns}/retention",
            get(n::get_retention)
                .post(n::set_retention)
                .delete(n::remove_retention),
        )
        .route(
            "/admin/v2/namespaces/{t}/{ns}/offloadThreshold",
            get(n::get_threshold).put(n::set_threshold),
        )
        .route(
            "/admin/v2/namespaces/{t}/{ns}/offloadThresholdInSeconds",
            get(n::get_threshold_seconds).put(n::set_threshold_seconds),
        )
        .route(
            "/admin/v2/namespaces/{t}/{ns}/offloadDeletionLagMs",
            get(n::get_lag).put(n::set_lag).delete(n::clear_lag),
        )
        .route(
            "/admin/v2/namespaces/{t}/{ns}/hotTier",
            get(n::get_hot_tier)
                .post(n::set_hot_tier)
                .delete(n::remove_hot_tier),
        )
        .route(
            "/admin/v2/namespaces/{t}/{ns}/offloadPolicies",
            get(n::get_offload_policies).post(n::set_offload_policies),
        )
        .route(
            "/admin/v2/namespaces/{t}/{ns}/removeOffloadPolicies",
            delete(n::remove_offload_policies),
        )
        .route("/admin/v2/persistent/{t}/{ns}", get(t::list_topics))
        .route(
            "/admin/v2/persistent/{t}/{ns}/partitioned",
            get(t::list_partitioned),
        )
        .route(
            "/admin/v2/persistent/{t}/{ns}/{topic}",
            put(t::create_topic).delete(t::delete_topic),
        )
        .route(
            "/admin/v2/persistent/{t}/{ns}/{topic}/offload",
            put(t::trigger_offload).get(t::offload_status),
        )
        .route(
            "/admin/v2/persistent/{t}/{ns}/{topic}/offloadPolicies",
            get(t::get_offload_policies)
                .post(t::set_offload_policies)
                .delete(t::remove_offload_policies),
        )
        .route(
            "/admin/v2/persistent/{t}/{ns}/{topic}/retention",
            get(t::get_retention)
                .post(t::set_retention)
                .delete(t::remove_retention),
        )
        .route(
            "/admin/v2/persistent/{t}/{ns}/{topic}/partitions",
            get(t::get_partitions)
                .put(t::create_partitions)
                .delete(t::delete_partitions),
        )
        .route(
            "/admin/v2/persistent/{t}/{ns}/{topic}/internalStats",
            get(t::internal_stats),
        )
        .route("/admin/v2/persistent/{t}/{ns}/{topic}/stats", get(t::stats))
        .route("/lookup/v2/topic/{domain}/{t}/{ns}/{topic}", get(t::lookup))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            c::redirect_to_owner,
        ))
        .with_state(state)
}

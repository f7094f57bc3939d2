//! The web port: Pulsar's admin REST API (`/admin/v2/…`, paths, JSON bodies, status codes and
//! `{"reason": …}` errors), HTTP lookups (`/lookup/v2/…`), health and `/metrics`.
//!
//! Handlers are thin: they turn path segments into names, bodies into Pulsar's types, and call
//! the policy layer or the broker service.

#[cfg(test)]
mod access_test;
pub mod auth;
mod cluster;
mod error;
mod namespaces;
mod schemas;
mod subscriptions;
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
    /// The local hot tier, for its journal's counters on `/metrics`.
    pub hot_tier: hot_tier::LedgerStore,
    /// `http://host:port` of this web service, for HTTP lookups.
    pub web_service_url: String,
    /// `https://host:port` of this web service's TLS port, for HTTP lookups.
    pub web_service_url_tls: Option<String>,
    /// `advertisedAddress:webServicePort`, Pulsar's broker id.
    pub broker_id: String,
    /// Who requests come from.
    pub authenticator: Arc<security::Authenticator>,
    /// What `/metrics` exposes.
    pub metrics: policy::MetricsSettings,
    /// Where the metadata lives (`brokers get-internal-configuration`).
    pub metadata_store_url: String,
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

/// `?force=true` of a DELETE: close attached clients (or delete contents) instead of refusing.
fn force(q: &std::collections::HashMap<String, String>) -> Result<bool, ApiError> {
    match q.get("force").map(String::as_str) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(v) => Err(ApiError::bad_request(format!(
            "Invalid value {v:?} for query parameter force (true or false)"
        ))),
    }
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
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        crate::metrics::render(&s.broker, &s.object_stores, &s.hot_tier, &s.metrics).await,
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

/// Every endpoint with its access rule (see [`auth::Rule`]).
pub fn api() -> auth::Api {
    use auth::Rule as R;
    use axum::http::Method as M;
    use axum::routing::post;
    use cluster as c;
    use namespaces as n;
    use schemas as sc;
    use subscriptions as su;
    use topics as t;
    auth::Api::new()
        .route(
            M::GET,
            "/admin/v2/brokers/{cluster}",
            R::SuperUser,
            get(c::list_brokers),
        )
        .route(
            M::GET,
            "/admin/v2/brokers/{cluster}/{broker}/ownedNamespaces",
            R::SuperUser,
            get(c::owned_namespaces),
        )
        .route(
            M::PUT,
            "/admin/v2/namespaces/{t}/{ns}/unload",
            R::SuperUser,
            put(c::unload_namespace),
        )
        .route(
            M::PUT,
            "/admin/v2/namespaces/{t}/{ns}/{bundle}/unload",
            R::SuperUser,
            put(c::unload_bundle),
        )
        .route(
            M::PUT,
            "/admin/v2/persistent/{t}/{ns}/{topic}/unload",
            R::TOPIC_ADMIN,
            put(c::unload_topic),
        )
        .route(
            M::GET,
            "/admin/v2/clusters",
            R::Authenticated,
            get(c::list_clusters),
        )
        .route(
            M::GET,
            "/admin/v2/clusters/{cluster}",
            R::Authenticated,
            get(c::get_cluster),
        )
        .route(
            M::PUT,
            "/admin/v2/clusters/{cluster}",
            R::SuperUser,
            put(c::create_cluster),
        )
        .route(
            M::POST,
            "/admin/v2/clusters/{cluster}",
            R::SuperUser,
            post(c::update_cluster),
        )
        .route(
            M::DELETE,
            "/admin/v2/clusters/{cluster}",
            R::SuperUser,
            delete(c::delete_cluster),
        )
        .route(
            M::GET,
            "/admin/v2/brokers/leaderBroker",
            R::Authenticated,
            get(c::leader_broker),
        )
        .route(
            M::GET,
            "/admin/v2/brokers/internal-configuration",
            R::SuperUser,
            get(c::internal_configuration),
        )
        .route(
            M::GET,
            "/admin/v2/namespaces/{t}/{ns}/topics",
            R::NAMESPACE_TOPICS,
            get(n::list_topics),
        )
        .route(
            M::POST,
            "/admin/v2/persistent/{t}/{ns}/{topic}/partitions",
            R::TOPIC_ADMIN,
            post(t::update_partitions),
        )
        .route(
            M::GET,
            "/admin/v2/persistent/{t}/{ns}/{topic}/partitioned-stats",
            R::TOPIC_LOOKUP,
            get(t::partitioned_stats),
        )
        .route(M::GET, "/metrics", R::Authenticated, get(metrics))
        .route(
            M::GET,
            "/admin/v2/brokers/ready",
            R::Authenticated,
            get(|| async { "ok" }),
        )
        .route(
            M::GET,
            "/admin/v2/brokers/health",
            R::SuperUser,
            get(c::health),
        )
        .route(
            M::GET,
            "/admin/v2/tenants",
            R::SuperUser,
            get(n::list_tenants),
        )
        .route(
            M::GET,
            "/admin/v2/tenants/{t}",
            R::TenantAdmin,
            get(n::get_tenant),
        )
        .route(
            M::PUT,
            "/admin/v2/tenants/{t}",
            R::SuperUser,
            put(n::create_tenant),
        )
        .route(
            M::POST,
            "/admin/v2/tenants/{t}",
            R::SuperUser,
            post(n::update_tenant),
        )
        .route(
            M::DELETE,
            "/admin/v2/tenants/{t}",
            R::SuperUser,
            delete(n::delete_tenant),
        )
        .route(
            M::GET,
            "/admin/v2/namespaces/{t}",
            R::TenantAdmin,
            get(n::list_namespaces),
        )
        .route(
            M::PUT,
            "/admin/v2/namespaces/{t}/{ns}",
            R::NAMESPACE_ADMIN,
            put(n::create_namespace),
        )
        .route(
            M::DELETE,
            "/admin/v2/namespaces/{t}/{ns}",
            R::NAMESPACE_ADMIN,
            delete(n::delete_namespace),
        )
        .route(
            M::GET,
            "/admin/v2/namespaces/{t}/{ns}",
            R::NAMESPACE_ADMIN,
            get(n::get_policies),
        )
        .route(
            M::GET,
            "/admin/v2/namespaces/{t}/{ns}/permissions",
            R::NAMESPACE_ADMIN,
            get(n::get_permissions),
        )
        .route(
            M::POST,
            "/admin/v2/namespaces/{t}/{ns}/permissions/{role}",
            R::NAMESPACE_ADMIN,
            post(n::grant_permission),
        )
        .route(
            M::DELETE,
            "/admin/v2/namespaces/{t}/{ns}/permissions/{role}",
            R::NAMESPACE_ADMIN,
            delete(n::revoke_permission),
        )
        .route(
            M::GET,
            "/admin/v2/namespaces/{t}/{ns}/deduplication",
            R::NAMESPACE_ADMIN,
            get(n::get_deduplication),
        )
        .route(
            M::POST,
            "/admin/v2/namespaces/{t}/{ns}/deduplication",
            R::NAMESPACE_ADMIN,
            post(n::set_deduplication),
        )
        .route(
            M::DELETE,
            "/admin/v2/namespaces/{t}/{ns}/deduplication",
            R::NAMESPACE_ADMIN,
            delete(n::remove_deduplication),
        )
        .route(
            M::GET,
            "/admin/v2/namespaces/{t}/{ns}/compactionThreshold",
            R::NAMESPACE_ADMIN,
            get(n::get_compaction_threshold),
        )
        .route(
            M::PUT,
            "/admin/v2/namespaces/{t}/{ns}/compactionThreshold",
            R::NAMESPACE_ADMIN,
            put(n::set_compaction_threshold),
        )
        .route(
            M::DELETE,
            "/admin/v2/namespaces/{t}/{ns}/compactionThreshold",
            R::NAMESPACE_ADMIN,
            delete(n::remove_compaction_threshold),
        )
        .route(
            M::GET,
            "/admin/v2/namespaces/{t}/{ns}/messageTTL",
            R::NAMESPACE_ADMIN,
            get(n::get_message_ttl),
        )
        .route(
            M::POST,
            "/admin/v2/namespaces/{t}/{ns}/messageTTL",
            R::NAMESPACE_ADMIN,
            post(n::set_message_ttl),
        )
        .route(
            M::DELETE,
            "/admin/v2/namespaces/{t}/{ns}/messageTTL",
            R::NAMESPACE_ADMIN,
            delete(n::remove_message_ttl),
        )
        .route(
            M::GET,
            "/admin/v2/namespaces/{t}/{ns}/backlogQuotaMap",
            R::NAMESPACE_ADMIN,
            get(n::get_backlog_quotas),
        )
        .route(
            M::POST,
            "/admin/v2/namespaces/{t}/{ns}/backlogQuota",
            R::NAMESPACE_ADMIN,
            post(n::set_backlog_quota),
        )
        .route(
            M::DELETE,
            "/admin/v2/namespaces/{t}/{ns}/backlogQuota",
            R::NAMESPACE_ADMIN,
            delete(n::remove_backlog_quota),
        )
        .route(
            M::GET,
            "/admin/v2/namespaces/{t}/{ns}/retention",
            R::NAMESPACE_ADMIN,
            get(n::get_retention),
        )
        .route(
            M::POST,
            "/admin/v2/namespaces/{t}/{ns}/retention",
            R::NAMESPACE_ADMIN,
            post(n::set_retention),
        )
        .route(
            M::DELETE,
            "/admin/v2/namespaces/{t}/{ns}/retention",
            R::NAMESPACE_ADMIN,
            delete(n::remove_retention),
        )
        .route(
            M::GET,
            "/admin/v2/namespaces/{t}/{ns}/offloadThreshold",
            R::NAMESPACE_ADMIN,
            get(n::get_threshold),
        )
        .route(
            M::PUT,
            "/admin/v2/namespaces/{t}/{ns}/offloadThreshold",
            R::NAMESPACE_ADMIN,
            put(n::set_threshold),
        )
        .route(
            M::GET,
            "/admin/v2/namespaces/{t}/{ns}/offloadThresholdInSeconds",
            R::NAMESPACE_ADMIN,
            get(n::get_threshold_seconds),
        )
        .route(
            M::PUT,
            "/admin/v2/namespaces/{t}/{ns}/offloadThresholdInSeconds",
            R::NAMESPACE_ADMIN,
            put(n::set_threshold_seconds),
        )
        .route(
            M::GET,
            "/admin/v2/namespaces/{t}/{ns}/offloadDeletionLagMs",
            R::NAMESPACE_ADMIN,
            get(n::get_lag),
        )
        .route(
            M::PUT,
            "/admin/v2/namespaces/{t}/{ns}/offloadDeletionLagMs",
            R::NAMESPACE_ADMIN,
            put(n::set_lag),
        )
        .route(
            M::DELETE,
            "/admin/v2/namespaces/{t}/{ns}/offloadDeletionLagMs",
            R::NAMESPACE_ADMIN,
            delete(n::clear_lag),
        )
        .route(
            M::GET,
            "/admin/v2/namespaces/{t}/{ns}/hotTier",
            R::NAMESPACE_ADMIN,
            get(n::get_hot_tier),
        )
        .route(
            M::POST,
            "/admin/v2/namespaces/{t}/{ns}/hotTier",
            R::NAMESPACE_ADMIN,
            post(n::set_hot_tier),
        )
        .route(
            M::DELETE,
            "/admin/v2/namespaces/{t}/{ns}/hotTier",
            R::NAMESPACE_ADMIN,
            delete(n::remove_hot_tier),
        )
        .route(
            M::GET,
            "/admin/v2/namespaces/{t}/{ns}/offloadPolicies",
            R::NAMESPACE_ADMIN,
            get(n::get_offload_policies),
        )
        .route(
            M::POST,
            "/admin/v2/namespaces/{t}/{ns}/offloadPolicies",
            R::NAMESPACE_ADMIN,
            post(n::set_offload_policies),
        )
        .route(
            M::DELETE,
            "/admin/v2/namespaces/{t}/{ns}/removeOffloadPolicies",
            R::NAMESPACE_ADMIN,
            delete(n::remove_offload_policies),
        )
        .route(
            M::GET,
            "/admin/v2/persistent/{t}/{ns}",
            R::NAMESPACE_TOPICS,
            get(t::list_topics),
        )
        .route(
            M::GET,
            "/admin/v2/persistent/{t}/{ns}/partitioned",
            R::NAMESPACE_TOPICS,
            get(t::list_partitioned),
        )
        .route(
            M::PUT,
            "/admin/v2/persistent/{t}/{ns}/{topic}",
            R::TOPIC_ADMIN,
            put(t::create_topic),
        )
        .route(
            M::DELETE,
            "/admin/v2/persistent/{t}/{ns}/{topic}",
            R::TOPIC_ADMIN,
            delete(t::delete_topic),
        )
        .route(
            M::GET,
            "/admin/v2/persistent/{t}/{ns}/{topic}/permissions",
            R::TOPIC_ADMIN,
            get(t::get_permissions),
        )
        .route(
            M::POST,
            "/admin/v2/persistent/{t}/{ns}/{topic}/permissions/{role}",
            R::TOPIC_ADMIN,
            post(t::grant_permission),
        )
        .route(
            M::DELETE,
            "/admin/v2/persistent/{t}/{ns}/{topic}/permissions/{role}",
            R::TOPIC_ADMIN,
            delete(t::revoke_permission),
        )
        .route(
            M::GET,
            "/admin/v2/persistent/{t}/{ns}/{topic}/backlogQuotaMap",
            R::TOPIC_ADMIN,
            get(t::get_backlog_quotas),
        )
        .route(
            M::POST,
            "/admin/v2/persistent/{t}/{ns}/{topic}/backlogQuota",
            R::TOPIC_ADMIN,
            post(t::set_backlog_quota),
        )
        .route(
            M::DELETE,
            "/admin/v2/persistent/{t}/{ns}/{topic}/backlogQuota",
            R::TOPIC_ADMIN,
            delete(t::remove_backlog_quota),
        )
        .route(
            M::GET,
            "/admin/v2/persistent/{t}/{ns}/{topic}/deduplicationEnabled",
            R::TOPIC_ADMIN,
            get(t::get_deduplication),
        )
        .route(
            M::POST,
            "/admin/v2/persistent/{t}/{ns}/{topic}/deduplicationEnabled",
            R::TOPIC_ADMIN,
            post(t::set_deduplication),
        )
        .route(
            M::DELETE,
            "/admin/v2/persistent/{t}/{ns}/{topic}/deduplicationEnabled",
            R::TOPIC_ADMIN,
            delete(t::remove_deduplication),
        )
        .route(
            M::PUT,
            "/admin/v2/persistent/{t}/{ns}/{topic}/compaction",
            R::TOPIC_ADMIN,
            put(t::trigger_compaction),
        )
        .route(
            M::GET,
            "/admin/v2/persistent/{t}/{ns}/{topic}/compaction",
            R::TOPIC_ADMIN,
            get(t::compaction_status),
        )
        .route(
            M::GET,
            "/admin/v2/persistent/{t}/{ns}/{topic}/messageTTL",
            R::TOPIC_ADMIN,
            get(t::get_message_ttl),
        )
        .route(
            M::POST,
            "/admin/v2/persistent/{t}/{ns}/{topic}/messageTTL",
            R::TOPIC_ADMIN,
            post(t::set_message_ttl),
        )
        .route(
            M::DELETE,
            "/admin/v2/persistent/{t}/{ns}/{topic}/messageTTL",
            R::TOPIC_ADMIN,
            delete(t::remove_message_ttl),
        )
        .route(
            M::POST,
            "/admin/v2/persistent/{t}/{ns}/{topic}/subscription/{sub}/expireMessages/{seconds}",
            R::TOPIC_ADMIN,
            post(t::expire_messages),
        )
        .route(
            M::GET,
            "/admin/v2/persistent/{t}/{ns}/{topic}/subscriptions",
            R::TOPIC_LOOKUP,
            get(su::list),
        )
        .route(
            M::PUT,
            "/admin/v2/persistent/{t}/{ns}/{topic}/subscription/{sub}",
            R::TOPIC_ADMIN,
            put(su::create),
        )
        .route(
            M::DELETE,
            "/admin/v2/persistent/{t}/{ns}/{topic}/subscription/{sub}",
            R::TOPIC_ADMIN,
            delete(su::delete),
        )
        .route(
            M::POST,
            "/admin/v2/persistent/{t}/{ns}/{topic}/subscription/{sub}/skip/{n}",
            R::TOPIC_ADMIN,
            post(su::skip),
        )
        .route(
            M::POST,
            "/admin/v2/persistent/{t}/{ns}/{topic}/subscription/{sub}/skip_all",
            R::TOPIC_ADMIN,
            post(su::skip_all),
        )
        .route(
            M::POST,
            "/admin/v2/persistent/{t}/{ns}/{topic}/subscription/{sub}/resetcursor/{timestamp}",
            R::TOPIC_ADMIN,
            post(su::reset_to_time),
        )
        .route(
            M::POST,
            "/admin/v2/persistent/{t}/{ns}/{topic}/subscription/{sub}/resetcursor",
            R::TOPIC_ADMIN,
            post(su::reset_to_message),
        )
        .route(
            M::GET,
            "/admin/v2/persistent/{t}/{ns}/{topic}/subscription/{sub}/position/{n}",
            R::TOPIC_ADMIN,
            get(su::peek),
        )
        .route(
            M::GET,
            "/admin/v2/persistent/{t}/{ns}/{topic}/examinemessage",
            R::TOPIC_ADMIN,
            get(su::examine),
        )
        .route(
            M::GET,
            "/admin/v2/persistent/{t}/{ns}/{topic}/ledger/{ledger}/entry/{entry}",
            R::TOPIC_ADMIN,
            get(su::by_id),
        )
        .route(
            M::GET,
            "/admin/v2/persistent/{t}/{ns}/{topic}/compactionThreshold",
            R::TOPIC_ADMIN,
            get(t::get_compaction_threshold),
        )
        .route(
            M::POST,
            "/admin/v2/persistent/{t}/{ns}/{topic}/compactionThreshold",
            R::TOPIC_ADMIN,
            post(t::set_compaction_threshold),
        )
        .route(
            M::DELETE,
            "/admin/v2/persistent/{t}/{ns}/{topic}/compactionThreshold",
            R::TOPIC_ADMIN,
            delete(t::remove_compaction_threshold),
        )
        .route(
            M::POST,
            "/admin/v2/persistent/{t}/{ns}/{topic}/terminate",
            R::TOPIC_ADMIN,
            post(su::terminate),
        )
        .route(
            M::GET,
            "/admin/v2/persistent/{t}/{ns}/{topic}/lastMessageId",
            R::TOPIC_LOOKUP,
            get(su::last_message_id),
        )
        .route(
            M::POST,
            "/admin/v2/persistent/{t}/{ns}/{topic}/all_subscription/expireMessages/{seconds}",
            R::TOPIC_ADMIN,
            post(t::expire_messages),
        )
        .route(
            M::PUT,
            "/admin/v2/persistent/{t}/{ns}/{topic}/offload",
            R::TOPIC_ADMIN,
            put(t::trigger_offload),
        )
        .route(
            M::GET,
            "/admin/v2/persistent/{t}/{ns}/{topic}/offload",
            R::TOPIC_ADMIN,
            get(t::offload_status),
        )
        .route(
            M::GET,
            "/admin/v2/persistent/{t}/{ns}/{topic}/offloadPolicies",
            R::TOPIC_ADMIN,
            get(t::get_offload_policies),
        )
        .route(
            M::POST,
            "/admin/v2/persistent/{t}/{ns}/{topic}/offloadPolicies",
            R::TOPIC_ADMIN,
            post(t::set_offload_policies),
        )
        .route(
            M::DELETE,
            "/admin/v2/persistent/{t}/{ns}/{topic}/offloadPolicies",
            R::TOPIC_ADMIN,
            delete(t::remove_offload_policies),
        )
        .route(
            M::GET,
            "/admin/v2/persistent/{t}/{ns}/{topic}/schemaCompatibilityStrategy",
            R::TOPIC_ADMIN,
            get(sc::get_topic_compatibility_strategy),
        )
        .route(
            M::PUT,
            "/admin/v2/persistent/{t}/{ns}/{topic}/schemaCompatibilityStrategy",
            R::TOPIC_ADMIN,
            put(sc::set_topic_compatibility_strategy),
        )
        .route(
            M::DELETE,
            "/admin/v2/persistent/{t}/{ns}/{topic}/schemaCompatibilityStrategy",
            R::TOPIC_ADMIN,
            delete(sc::remove_topic_compatibility_strategy),
        )
        .route(
            M::GET,
            "/admin/v2/persistent/{t}/{ns}/{topic}/retention",
            R::TOPIC_ADMIN,
            get(t::get_retention),
        )
        .route(
            M::POST,
            "/admin/v2/persistent/{t}/{ns}/{topic}/retention",
            R::TOPIC_ADMIN,
            post(t::set_retention),
        )
        .route(
            M::DELETE,
            "/admin/v2/persistent/{t}/{ns}/{topic}/retention",
            R::TOPIC_ADMIN,
            delete(t::remove_retention),
        )
        .route(
            M::GET,
            "/admin/v2/persistent/{t}/{ns}/{topic}/partitions",
            R::TOPIC_LOOKUP,
            get(t::get_partitions),
        )
        .route(
            M::PUT,
            "/admin/v2/persistent/{t}/{ns}/{topic}/partitions",
            R::TOPIC_ADMIN,
            put(t::create_partitions),
        )
        .route(
            M::DELETE,
            "/admin/v2/persistent/{t}/{ns}/{topic}/partitions",
            R::TOPIC_ADMIN,
            delete(t::delete_partitions),
        )
        .route(
            M::GET,
            "/admin/v2/persistent/{t}/{ns}/{topic}/internalStats",
            R::TOPIC_LOOKUP,
            get(t::internal_stats),
        )
        .route(
            M::GET,
            "/admin/v2/persistent/{t}/{ns}/{topic}/stats",
            R::TOPIC_LOOKUP,
            get(t::stats),
        )
        .route(
            M::GET,
            "/lookup/v2/topic/{domain}/{t}/{ns}/{topic}",
            R::TOPIC_LOOKUP,
            get(t::lookup),
        )
        .route(
            M::GET,
            "/admin/v2/schemas/{t}/{ns}/{topic}/schema",
            R::TOPIC_LOOKUP,
            get(sc::get_schema),
        )
        .route(
            M::POST,
            "/admin/v2/schemas/{t}/{ns}/{topic}/schema",
            R::TOPIC_ADMIN,
            post(sc::post_schema),
        )
        .route(
            M::DELETE,
            "/admin/v2/schemas/{t}/{ns}/{topic}/schema",
            R::TOPIC_ADMIN,
            delete(sc::delete_schema),
        )
        .route(
            M::GET,
            "/admin/v2/schemas/{t}/{ns}/{topic}/schema/{version}",
            R::TOPIC_LOOKUP,
            get(sc::get_schema_version),
        )
        .route(
            M::GET,
            "/admin/v2/schemas/{t}/{ns}/{topic}/schemas",
            R::TOPIC_LOOKUP,
            get(sc::get_all_schemas),
        )
        .route(
            M::POST,
            "/admin/v2/schemas/{t}/{ns}/{topic}/compatibility",
            R::TOPIC_ADMIN,
            post(sc::test_compatibility),
        )
        .route(
            M::POST,
            "/admin/v2/schemas/{t}/{ns}/{topic}/version",
            R::TOPIC_LOOKUP,
            post(sc::version_of),
        )
        .route(
            M::GET,
            "/admin/v2/namespaces/{t}/{ns}/schemaCompatibilityStrategy",
            R::NAMESPACE_ADMIN,
            get(sc::get_compatibility_strategy),
        )
        .route(
            M::PUT,
            "/admin/v2/namespaces/{t}/{ns}/schemaCompatibilityStrategy",
            R::NAMESPACE_ADMIN,
            put(sc::set_compatibility_strategy),
        )
        .route(
            M::GET,
            "/admin/v2/namespaces/{t}/{ns}/isAllowAutoUpdateSchema",
            R::NAMESPACE_ADMIN,
            get(sc::get_allow_auto_update),
        )
        .route(
            M::POST,
            "/admin/v2/namespaces/{t}/{ns}/isAllowAutoUpdateSchema",
            R::NAMESPACE_ADMIN,
            post(sc::set_allow_auto_update),
        )
        .route(
            M::GET,
            "/admin/v2/namespaces/{t}/{ns}/schemaValidationEnforced",
            R::NAMESPACE_ADMIN,
            get(sc::get_validation_enforced),
        )
        .route(
            M::POST,
            "/admin/v2/namespaces/{t}/{ns}/schemaValidationEnforced",
            R::NAMESPACE_ADMIN,
            post(sc::set_validation_enforced),
        )
}

pub fn router(state: Arc<WebState>) -> Router {
    api()
        .into_router(&state)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            c_redirect,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            auth::authenticate,
        ))
        .with_state(state)
}

use cluster::redirect_to_owner as c_redirect;

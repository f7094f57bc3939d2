//! `/admin/v2/tenants/…` and `/admin/v2/namespaces/…`.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use policy::OffloadPolicies;
use policy::offload_policies::check_limit;
use policy::types::{Policies, RetentionPolicies, TenantInfo};
use security::AuthAction;
use std::collections::BTreeSet;

use super::{ApiError, ApiResult, Ns, S, body, json, no_content};

// ----- tenants -----

pub async fn list_tenants(State(s): S) -> ApiResult {
    json(&s.policy.store().tenants().await?)
}

pub async fn get_tenant(State(s): S, Path(t): Path<String>) -> ApiResult {
    json(&s.policy.store().tenant(&t).await?)
}

pub async fn create_tenant(State(s): S, Path(t): Path<String>, raw: Bytes) -> ApiResult {
    let info: TenantInfo = if raw.is_empty() {
        TenantInfo::default()
    } else {
        body(&raw, "tenant info")?
    };
    s.policy.store().create_tenant(&t, &info).await?;
    no_content()
}

/// `POST /admin/v2/tenants/{t}` with its new `TenantInfo`.
pub async fn update_tenant(State(s): S, Path(t): Path<String>, raw: Bytes) -> ApiResult {
    let info: TenantInfo = body(&raw, "tenant info")?;
    s.policy.store().update_tenant(&t, &info).await?;
    tracing::info!(tenant = t, "tenant updated");
    no_content()
}

pub async fn delete_tenant(State(s): S, Path(t): Path<String>) -> ApiResult {
    s.policy.store().delete_tenant(&t).await?;
    no_content()
}

// ----- namespaces -----

pub async fn list_namespaces(State(s): S, Path(t): Path<String>) -> ApiResult {
    if !s.policy.store().tenant_exists(&t).await? {
        return Err(policy::PolicyError::TenantNotFound.into());
    }
    let names: Vec<String> = s
        .policy
        .store()
        .namespaces(&t)
        .await?
        .iter()
        .map(ToString::to_string)
        .collect();
    json(&names)
}

/// `PUT /admin/v2/namespaces/{t}/{ns}` with an optional `Policies` body (its
/// `auth_policies`, retention, offload settings are kept).
pub async fn create_namespace(State(s): S, Ns(ns): Ns, raw: Bytes) -> ApiResult {
    let policies: Policies = if raw.iter().all(u8::is_ascii_whitespace) {
        Policies::default()
    } else {
        body(&raw, "namespace policies")?
    };
    s.policy.store().create_namespace(&ns, &policies).await?;
    no_content()
}

// ----- permissions -----

/// `GET …/namespaces/{t}/{ns}/permissions`: role → actions granted on the whole namespace.
pub async fn get_permissions(State(s): S, Ns(ns): Ns) -> ApiResult {
    json(
        &s.policy
            .store()
            .policies(&ns)
            .await?
            .auth_policies
            .namespace_auth,
    )
}

/// The actions of a grant body (`["produce", "consume"]`).
pub(super) fn actions(raw: &Bytes) -> Result<BTreeSet<AuthAction>, super::ApiError> {
    body(
        raw,
        "actions (a JSON array of produce, consume, functions, sources, sinks, packages)",
    )
}

/// `POST …/namespaces/{t}/{ns}/permissions/{role}` with the actions: replaces the role's
/// namespace-wide grant.
pub async fn grant_permission(
    State(s): S,
    Path((t, ns, role)): Path<(String, String, String)>,
    raw: Bytes,
) -> ApiResult {
    let ns = protocol::NamespaceName::new(&t, &ns)?;
    let actions = actions(&raw)?;
    s.policy
        .store()
        .update_policies(&ns, |p| {
            p.auth_policies
                .namespace_auth
                .insert(role.clone(), actions.clone());
        })
        .await?;
    tracing::info!(namespace = %ns, role, ?actions, "permissions granted");
    no_content()
}

/// `DELETE …/namespaces/{t}/{ns}/permissions/{role}`.
pub async fn revoke_permission(
    State(s): S,
    Path((t, ns, role)): Path<(String, String, String)>,
) -> ApiResult {
    let ns = protocol::NamespaceName::new(&t, &ns)?;
    s.policy
        .store()
        .update_policies(&ns, |p| {
            p.auth_policies.namespace_auth.remove(&role);
        })
        .await?;
    tracing::info!(namespace = %ns, role, "permissions revoked");
    no_content()
}

/// `DELETE /admin/v2/namespaces/{t}/{ns}[?force=true]`: refused while it has topics, unless
/// forced (its topics are deleted first).
pub async fn delete_namespace(
    State(s): S,
    Ns(ns): Ns,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> ApiResult {
    s.policy
        .delete_namespace(&ns, &s.broker, super::force(&q)?)
        .await?;
    no_content()
}

/// `GET /admin/v2/namespaces/{t}/{ns}/topics`: its topics, persistent and non-persistent
/// (partitions one by one).
pub async fn list_topics(State(s): S, Ns(ns): Ns) -> ApiResult {
    let mut names: Vec<String> = s
        .policy
        .list_topics(&ns, protocol::Domain::Persistent)
        .await?
        .iter()
        .map(ToString::to_string)
        .collect();
    names.extend(s.broker.np_topics_of(&ns).iter().map(ToString::to_string));
    json(&names)
}

pub async fn get_policies(State(s): S, Ns(ns): Ns) -> ApiResult {
    json(&s.policy.store().policies(&ns).await?)
}

pub async fn get_retention(State(s): S, Ns(ns): Ns) -> ApiResult {
    json(&s.policy.namespace_retention(&ns).await?)
}

pub async fn set_retention(State(s): S, Ns(ns): Ns, raw: Bytes) -> ApiResult {
    let r: RetentionPolicies = body(&raw, "retention policies")?;
    r.validate()
        .map_err(|why| policy::PolicyError::Invalid(why.into()))?;
    s.policy
        .update_namespace(&ns, move |p| p.retention_policies = Some(r))
        .await?;
    no_content()
}

pub async fn remove_retention(State(s): S, Ns(ns): Ns) -> ApiResult {
    s.policy
        .update_namespace(&ns, |p| p.retention_policies = None)
        .await?;
    no_content()
}

pub async fn get_threshold(State(s): S, Ns(ns): Ns) -> ApiResult {
    json(&s.policy.store().policies(&ns).await?.offload_threshold)
}

pub async fn set_threshold(State(s): S, Ns(ns): Ns, raw: Bytes) -> ApiResult {
    let v = check_limit("offloadThreshold", body(&raw, "offload threshold")?)?;
    s.policy
        .update_namespace(&ns, move |p| p.offload_threshold = v)
        .await?;
    no_content()
}

pub async fn get_threshold_seconds(State(s): S, Ns(ns): Ns) -> ApiResult {
    json(
        &s.policy
            .store()
            .policies(&ns)
            .await?
            .offload_threshold_in_seconds,
    )
}

pub async fn set_threshold_seconds(State(s): S, Ns(ns): Ns, raw: Bytes) -> ApiResult {
    let v = check_limit(
        "offloadThresholdInSeconds",
        body(&raw, "offload threshold in seconds")?,
    )?;
    s.policy
        .update_namespace(&ns, move |p| p.offload_threshold_in_seconds = v)
        .await?;
    no_content()
}

pub async fn get_lag(State(s): S, Ns(ns): Ns) -> ApiResult {
    match s
        .policy
        .store()
        .policies(&ns)
        .await?
        .offload_deletion_lag_ms
    {
        Some(v) => json(&v),
        None => no_content(),
    }
}

pub async fn set_lag(State(s): S, Ns(ns): Ns, raw: Bytes) -> ApiResult {
    let v = check_limit("offloadDeletionLagMs", body(&raw, "offload deletion lag")?)?;
    s.policy
        .update_namespace(&ns, move |p| p.offload_deletion_lag_ms = Some(v))
        .await?;
    no_content()
}

pub async fn clear_lag(State(s): S, Ns(ns): Ns) -> ApiResult {
    s.policy
        .update_namespace(&ns, |p| p.offload_deletion_lag_ms = None)
        .await?;
    no_content()
}

pub async fn get_hot_tier(State(s): S, Ns(ns): Ns) -> ApiResult {
    json(&s.policy.namespace_hot_tier(&ns).await?)
}

pub async fn set_hot_tier(State(s): S, Ns(ns): Ns, raw: Bytes) -> ApiResult {
    let tier: ledger::HotTier = body(&raw, "hot tier (\"local\" or \"object\")")?;
    s.policy.set_namespace_hot_tier(&ns, Some(tier)).await?;
    no_content()
}

pub async fn remove_hot_tier(State(s): S, Ns(ns): Ns) -> ApiResult {
    s.policy.set_namespace_hot_tier(&ns, None).await?;
    no_content()
}

pub async fn get_offload_policies(State(s): S, Ns(ns): Ns) -> ApiResult {
    let p = s.policy.store().policies(&ns).await?;
    json(&p.offload_policies.unwrap_or_default())
}

pub async fn set_offload_policies(State(s): S, Ns(ns): Ns, raw: Bytes) -> ApiResult {
    let op: OffloadPolicies = body(&raw, "offload policies")?;
    s.policy.validate_offload_policies(&op)?;
    s.policy
        .update_namespace(&ns, move |p| p.offload_policies = Some(op.clone()))
        .await?;
    no_content()
}

pub async fn remove_offload_policies(State(s): S, Ns(ns): Ns) -> ApiResult {
    s.policy
        .update_namespace(&ns, |p| p.offload_policies = None)
        .await?;
    no_content()
}

pub async fn get_deduplication(State(s): S, Ns(ns): Ns) -> ApiResult {
    json(&s.policy.store().policies(&ns).await?.deduplication_enabled)
}

pub async fn set_deduplication(State(s): S, Ns(ns): Ns, raw: Bytes) -> ApiResult {
    let on: bool = body(&raw, "boolean")?;
    s.policy
        .update_namespace(&ns, move |p| p.deduplication_enabled = Some(on))
        .await?;
    no_content()
}

pub async fn remove_deduplication(State(s): S, Ns(ns): Ns) -> ApiResult {
    s.policy
        .update_namespace(&ns, |p| p.deduplication_enabled = None)
        .await?;
    no_content()
}

pub async fn get_message_ttl(State(s): S, Ns(ns): Ns) -> ApiResult {
    json(&s.policy.store().policies(&ns).await?.message_ttl_in_seconds)
}

pub async fn set_message_ttl(State(s): S, Ns(ns): Ns, raw: Bytes) -> ApiResult {
    let ttl: i32 = body(&raw, "message TTL (seconds)")?;
    if ttl < 0 {
        // Pulsar's words.
        return Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "Invalid value for message TTL, message TTL must >= 0",
        ));
    }
    s.policy
        .update_namespace(&ns, move |p| p.message_ttl_in_seconds = Some(ttl))
        .await?;
    no_content()
}

pub async fn remove_message_ttl(State(s): S, Ns(ns): Ns) -> ApiResult {
    s.policy
        .update_namespace(&ns, |p| p.message_ttl_in_seconds = None)
        .await?;
    no_content()
}

#[derive(serde::Deserialize)]
pub struct QuotaTypeQuery {
    #[serde(rename = "backlogQuotaType")]
    kind: Option<String>,
}

impl QuotaTypeQuery {
    /// The quota type asked for (`destination_storage` when none is named).
    pub(super) fn kind(&self) -> Result<broker::BacklogQuotaType, ApiError> {
        match self.kind.as_deref() {
            None => Ok(broker::BacklogQuotaType::DestinationStorage),
            Some(k) => broker::BacklogQuotaType::parse(k).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Invalid backlogQuotaType {k:?}: destination_storage or message_age"
                ))
            }),
        }
    }
}

pub async fn get_backlog_quotas(State(s): S, Ns(ns): Ns) -> ApiResult {
    json(&s.policy.store().policies(&ns).await?.backlog_quota_map)
}

pub async fn set_backlog_quota(
    State(s): S,
    Ns(ns): Ns,
    Query(q): Query<QuotaTypeQuery>,
    raw: Bytes,
) -> ApiResult {
    let kind = q.kind()?;
    let quota: broker::BacklogQuota = body(&raw, "backlog quota")?;
    let policies = s.policy.store().policies(&ns).await?;
    check_quota_within_retention(&quota, policies.retention_policies.as_ref(), "namespace")?;
    s.policy
        .update_namespace(&ns, move |p| {
            p.backlog_quota_map.insert(kind, quota);
        })
        .await?;
    no_content()
}

pub async fn remove_backlog_quota(
    State(s): S,
    Ns(ns): Ns,
    Query(q): Query<QuotaTypeQuery>,
) -> ApiResult {
    let kind = q.kind()?;
    s.policy
        .update_namespace(&ns, move |p| {
            p.backlog_quota_map.remove(&kind);
        })
        .await?;
    no_content()
}

pub async fn get_compaction_threshold(State(s): S, Ns(ns): Ns) -> ApiResult {
    json(&s.policy.store().policies(&ns).await?.compaction_threshold)
}

/// A compaction threshold body (bytes; 0: never), for a namespace or a topic.
pub fn compaction_threshold(raw: &Bytes) -> Result<i64, ApiError> {
    let bytes: i64 = body(raw, "compaction threshold (bytes)")?;
    if bytes < 0 {
        return Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "compactionThreshold must be 0 or more",
        ));
    }
    Ok(bytes)
}

pub async fn set_compaction_threshold(State(s): S, Ns(ns): Ns, raw: Bytes) -> ApiResult {
    let bytes = compaction_threshold(&raw)?;
    s.policy
        .update_namespace(&ns, move |p| p.compaction_threshold = Some(bytes))
        .await?;
    no_content()
}

pub async fn remove_compaction_threshold(State(s): S, Ns(ns): Ns) -> ApiResult {
    s.policy
        .update_namespace(&ns, |p| p.compaction_threshold = None)
        .await?;
    no_content()
}

/// As Pulsar: a quota the retention would trim before it is reached is refused.
pub(super) fn check_quota_within_retention(
    quota: &broker::BacklogQuota,
    retention: Option<&RetentionPolicies>,
    level: &str,
) -> Result<(), ApiError> {
    let Some(r) = retention else {
        return Ok(());
    };
    let size_ok = r.retention_size_in_mb <= 0
        || quota.limit_size < r.retention_size_in_mb.saturating_mul(1 << 20);
    let time_ok =
        r.retention_time_in_minutes <= 0 || quota.limit_time < r.retention_time_in_minutes * 60;
    if size_ok && time_ok {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::PRECONDITION_FAILED,
        format!(
            "Backlog Quota exceeds configured retention quota for {level}. Please increase retention quota and retry"
        ),
    ))
}

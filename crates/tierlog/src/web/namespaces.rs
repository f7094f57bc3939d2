//! `/admin/v2/tenants/…` and `/admin/v2/namespaces/…`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use policy::OffloadPolicies;
use policy::offload_policies::check_limit;
use policy::types::{RetentionPolicies, TenantInfo};

use super::{ApiResult, Ns, S, body, json, no_content};

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

pub async fn create_namespace(State(s): S, Ns(ns): Ns) -> ApiResult {
    s.policy.store().create_namespace(&ns).await?;
    no_content()
}

pub async fn delete_namespace(State(s): S, Ns(ns): Ns) -> ApiResult {
    s.policy.delete_namespace(&ns).await?;
    no_content()
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

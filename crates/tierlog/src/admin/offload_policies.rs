//! Offload policies (Pulsar's `OffloadPoliciesImpl`) at namespace and topic level: their JSON,
//! validation, and how they combine with the legacy namespace fields and the broker settings into
//! what a topic uses. Every field merges on its own: topic value, else namespace value, else
//! (for threshold and lag) the legacy namespace field, else the broker setting. Location fields
//! (driver, bucket, region, endpoint, …) select a dedicated offloader for the topic.

use std::collections::HashMap;
use std::sync::Arc;

use offload::{BlobStoreOffloader, Driver, LedgerOffloader, OffloadConfig};
use serde::{Deserialize, Serialize};

use super::ApiError;
use super::policies::{Policies, TopicPolicies};

/// The fields of Pulsar's offload policies that tierlog applies; unknown fields are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OffloadPolicies {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub managed_ledger_offload_driver: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub managed_ledger_offload_threshold_in_bytes: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub managed_ledger_offload_threshold_in_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub managed_ledger_offload_deletion_lag_in_millis: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub managed_ledger_offloaded_read_priority: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_managed_ledger_offload_bucket: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_managed_ledger_offload_region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_managed_ledger_offload_service_endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_managed_ledger_offload_max_block_size_in_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_managed_ledger_offload_read_buffer_size_in_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_managed_ledger_offload_role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_managed_ledger_offload_role_session_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gcs_managed_ledger_offload_bucket: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gcs_managed_ledger_offload_region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gcs_managed_ledger_offload_service_account_key_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub managed_ledger_offload_bucket: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub managed_ledger_offload_region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub managed_ledger_offload_service_endpoint: Option<String>,
    #[serde(rename = "fileSystemURI", skip_serializing_if = "Option::is_none")]
    pub file_system_uri: Option<String>,
}

/// The location part of a policy: what selects an offloader.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
struct Location {
    driver: Option<String>,
    bucket: Option<String>,
    region: Option<String>,
    endpoint: Option<String>,
    max_block: Option<u64>,
    read_buffer: Option<u64>,
    role: Option<String>,
    role_session_name: Option<String>,
    gcs_key_file: Option<String>,
    file_system_uri: Option<String>,
}

impl Location {
    /// Field by field: this location's value where set, else `other`'s.
    fn or(self, other: Location) -> Location {
        Location {
            driver: self.driver.or(other.driver),
            bucket: self.bucket.or(other.bucket),
            region: self.region.or(other.region),
            endpoint: self.endpoint.or(other.endpoint),
            max_block: self.max_block.or(other.max_block),
            read_buffer: self.read_buffer.or(other.read_buffer),
            role: self.role.or(other.role),
            role_session_name: self.role_session_name.or(other.role_session_name),
            gcs_key_file: self.gcs_key_file.or(other.gcs_key_file),
            file_system_uri: self.file_system_uri.or(other.file_system_uri),
        }
    }
}

impl OffloadPolicies {
    fn location(&self) -> Location {
        let or = |a: &Option<String>, b: &Option<String>, c: &Option<String>| {
            a.clone().or_else(|| b.clone()).or_else(|| c.clone())
        };
        Location {
            driver: self.managed_ledger_offload_driver.clone(),
            bucket: or(
                &self.s3_managed_ledger_offload_bucket,
                &self.gcs_managed_ledger_offload_bucket,
                &self.managed_ledger_offload_bucket,
            ),
            region: or(
                &self.s3_managed_ledger_offload_region,
                &self.gcs_managed_ledger_offload_region,
                &self.managed_ledger_offload_region,
            ),
            endpoint: self
                .s3_managed_ledger_offload_service_endpoint
                .clone()
                .or_else(|| self.managed_ledger_offload_service_endpoint.clone()),
            max_block: self.s3_managed_ledger_offload_max_block_size_in_bytes,
            read_buffer: self.s3_managed_ledger_offload_read_buffer_size_in_bytes,
            role: self.s3_managed_ledger_offload_role.clone(),
            role_session_name: self.s3_managed_ledger_offload_role_session_name.clone(),
            gcs_key_file: self
                .gcs_managed_ledger_offload_service_account_key_file
                .clone(),
            file_system_uri: self.file_system_uri.clone(),
        }
    }

    /// Parses and validates a policy body (412 for what Pulsar refuses).
    pub fn parse(body: &[u8], base: Option<&OffloadConfig>) -> Result<OffloadPolicies, ApiError> {
        let p: OffloadPolicies = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid offload policies: {e}")))?;
        if p == OffloadPolicies::default() {
            return Err(ApiError::precondition("Offload policies must not be empty"));
        }
        if let Some(r) = &p.managed_ledger_offloaded_read_priority {
            read_tiered_first(r)?;
        }
        let loc = p.location();
        if loc != Location::default() {
            offload_config(base, &loc)?;
        }
        Ok(p)
    }
}

fn read_tiered_first(v: &str) -> Result<bool, ApiError> {
    match v.to_ascii_lowercase().replace('_', "-").as_str() {
        "tiered-storage-first" => Ok(true),
        "bookkeeper-first" => Ok(false),
        _ => Err(ApiError::precondition(format!(
            "Invalid managedLedgerOffloadedReadPriority {v:?}: tiered-storage-first or bookkeeper-first"
        ))),
    }
}

/// The offload configuration a policy location describes, on top of the broker's settings.
fn offload_config(base: Option<&OffloadConfig>, loc: &Location) -> Result<OffloadConfig, ApiError> {
    let driver = match &loc.driver {
        Some(d) => Driver::parse(d).map_err(|e| ApiError::precondition(e.to_string()))?,
        None => base.map(|b| b.driver).ok_or_else(|| {
            ApiError::precondition(
                "managedLedgerOffloadDriver must be set: the broker has no offload driver",
            )
        })?,
    };
    let mut c = match base {
        Some(b) if b.driver == driver => b.clone(),
        Some(b) => OffloadConfig {
            driver,
            bucket: String::new(),
            region: None,
            endpoint: None,
            role: None,
            ..b.clone()
        },
        None => OffloadConfig::new(driver, ""),
    };
    if let Some(v) = &loc.bucket {
        c.bucket = v.clone();
    }
    if let Some(v) = &loc.region {
        c.region = Some(v.clone());
    }
    if let Some(v) = &loc.endpoint {
        c.endpoint = Some(v.clone());
    }
    if let Some(v) = loc.max_block {
        c.max_block_size_bytes = v;
    }
    if let Some(v) = loc.read_buffer {
        c.read_buffer_size_bytes = v;
    }
    if let Some(v) = &loc.role {
        c.role = Some(v.clone());
    }
    if let Some(v) = &loc.role_session_name {
        c.role_session_name = v.clone();
    }
    if let Some(v) = &loc.gcs_key_file {
        c.gcs_service_account_key_file = Some(v.into());
    }
    if let Some(v) = &loc.file_system_uri {
        c.filesystem_path = v.trim_start_matches("file://").into();
    }
    c.validate()
        .map_err(|e| ApiError::precondition(e.to_string()))?;
    Ok(c)
}

/// One field, topic level first, then namespace level.
fn pick<T: Clone>(
    t: Option<&OffloadPolicies>,
    n: Option<&OffloadPolicies>,
    f: impl Fn(&OffloadPolicies) -> Option<T>,
) -> Option<T> {
    t.and_then(&f).or_else(|| n.and_then(&f))
}

/// Applies the merged offload policy and retention to a topic's managed-ledger settings.
pub fn apply_to_config(c: &mut ledger::ManagedLedgerConfig, p: &Policies, tp: &TopicPolicies) {
    let (t, n) = (tp.offload_policies.as_ref(), p.offload_policies.as_ref());
    if let Some(r) = tp.retention_policies.or(p.retention_policies) {
        c.retention_time_ms = if r.retention_time_in_minutes < 0 {
            -1
        } else {
            r.retention_time_in_minutes * 60_000
        };
        c.retention_size_bytes = if r.retention_size_in_mb < 0 {
            -1
        } else {
            r.retention_size_in_mb << 20
        };
    }
    let legacy = |v: i64| (v != -1).then_some(v);
    if let Some(v) = pick(t, n, |o| o.managed_ledger_offload_threshold_in_bytes)
        .or_else(|| legacy(p.offload_threshold))
    {
        c.offload_threshold_bytes = v;
    }
    if let Some(v) = pick(t, n, |o| o.managed_ledger_offload_threshold_in_seconds)
        .or_else(|| legacy(p.offload_threshold_in_seconds))
    {
        c.offload_threshold_seconds = v;
    }
    if let Some(v) = pick(t, n, |o| o.managed_ledger_offload_deletion_lag_in_millis)
        .or(p.offload_deletion_lag_ms)
    {
        c.offload_deletion_lag_ms = u64::try_from(v).ok();
    }
    if let Some(v) = pick(t, n, |o| o.managed_ledger_offloaded_read_priority.clone())
        && let Ok(first) = read_tiered_first(&v)
    {
        c.read_tiered_first = first;
    }
}

/// Offloaders selected by offload-policy locations, built once per distinct location.
#[derive(Default)]
pub struct PolicyOffloaders {
    built: tokio::sync::Mutex<HashMap<String, Arc<BlobStoreOffloader>>>,
}

impl PolicyOffloaders {
    /// The offloader for a topic: the policy's location if topic or namespace sets one, else the
    /// broker's.
    pub async fn resolve(
        &self,
        base: Option<&OffloadConfig>,
        broker: Option<&Arc<BlobStoreOffloader>>,
        p: &Policies,
        tp: &TopicPolicies,
    ) -> Result<Option<Arc<dyn LedgerOffloader>>, ApiError> {
        let (t, n) = (tp.offload_policies.as_ref(), p.offload_policies.as_ref());
        let merged = t
            .map(|o| o.location())
            .unwrap_or_default()
            .or(n.map(|o| o.location()).unwrap_or_default());
        if merged == Location::default() {
            return Ok(broker.map(|b| Arc::clone(b) as Arc<dyn LedgerOffloader>));
        }
        let key = serde_json::to_string(&merged).map_err(|e| ApiError::internal(e.to_string()))?;
        let mut built = self.built.lock().await;
        if let Some(o) = built.get(&key) {
            return Ok(Some(Arc::clone(o) as Arc<dyn LedgerOffloader>));
        }
        let config = offload_config(base, &merged)?;
        let o = Arc::new(
            BlobStoreOffloader::new(config)
                .await
                .map_err(|e| ApiError::precondition(format!("offload policy: {e}")))?,
        );
        built.insert(key, Arc::clone(&o));
        Ok(Some(o as Arc<dyn LedgerOffloader>))
    }
}

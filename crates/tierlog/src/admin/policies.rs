//! Tenants, namespaces and namespace policies, persisted in the metadata store with Pulsar's JSON
//! field names:
//! - `/admin/tenants/<tenant>` → `{"adminRoles":[],"allowedClusters":[...]}`
//! - `/admin/policies/<tenant>/<namespace>` → [`Policies`]
//! - `/admin/topic-policies/<tenant>/<namespace>/<topic>` → [`TopicPolicies`]
//! - `/admin/partitioned/<tenant>/<namespace>/<topic>` → `{"partitions":N}`

use std::sync::Arc;

use meta::{Expected, MetadataStore};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::offload_policies::OffloadPolicies;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantInfo {
    #[serde(default)]
    pub admin_roles: Vec<String>,
    #[serde(default)]
    pub allowed_clusters: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetentionPolicies {
    pub retention_time_in_minutes: i64,
    #[serde(rename = "retentionSizeInMB")]
    pub retention_size_in_mb: i64,
}

/// A namespace's policies (the fields tierlog applies), in Pulsar's field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policies {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_policies: Option<RetentionPolicies>,
    /// -1 = not set (broker default applies), other negatives = off, 0 = as soon as possible.
    #[serde(default = "minus_one")]
    pub offload_threshold: i64,
    #[serde(default = "minus_one")]
    pub offload_threshold_in_seconds: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offload_deletion_lag_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offload_policies: Option<OffloadPolicies>,
}

/// Topic-level policies (they win over the namespace's, field by field for offload policies).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicPolicies {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_policies: Option<RetentionPolicies>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offload_policies: Option<OffloadPolicies>,
}

fn minus_one() -> i64 {
    -1
}

impl Default for Policies {
    fn default() -> Self {
        Policies {
            retention_policies: None,
            offload_threshold: -1,
            offload_threshold_in_seconds: -1,
            offload_deletion_lag_ms: None,
            offload_policies: None,
        }
    }
}

pub struct PolicyStore {
    meta: Arc<dyn MetadataStore>,
}

fn tenant_key(t: &str) -> String {
    format!("/admin/tenants/{t}")
}

fn ns_key(t: &str, ns: &str) -> String {
    format!("/admin/policies/{t}/{ns}")
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=:.".contains(c))
}

impl PolicyStore {
    pub fn new(meta: Arc<dyn MetadataStore>) -> Self {
        PolicyStore { meta }
    }

    /// Creates `public` and `public/default` if missing, as Pulsar standalone does.
    pub async fn ensure_defaults(&self, cluster: &str) -> Result<(), ApiError> {
        if !self.tenant_exists("public").await? {
            let info = TenantInfo {
                admin_roles: vec![],
                allowed_clusters: vec![cluster.to_string()],
            };
            self.create_tenant("public", &info).await?;
        }
        if !self.namespace_exists("public", "default").await? {
            self.create_namespace("public", "default").await?;
        }
        Ok(())
    }

    pub async fn tenants(&self) -> Result<Vec<String>, ApiError> {
        let keys = self.meta.list("/admin/tenants/").await?;
        Ok(keys
            .into_iter()
            .map(|k| k["/admin/tenants/".len()..].to_string())
            .collect())
    }

    pub async fn tenant_exists(&self, t: &str) -> Result<bool, ApiError> {
        Ok(self.meta.get(&tenant_key(t)).await?.is_some())
    }

    pub async fn tenant(&self, t: &str) -> Result<TenantInfo, ApiError> {
        let v = self
            .meta
            .get(&tenant_key(t))
            .await?
            .ok_or_else(|| ApiError::not_found("Tenant does not exist"))?;
        serde_json::from_slice(&v.value).map_err(|e| ApiError::internal(e.to_string()))
    }

    pub async fn create_tenant(&self, t: &str, info: &TenantInfo) -> Result<(), ApiError> {
        if !valid_name(t) {
            return Err(ApiError::precondition(format!("Invalid tenant name {t}")));
        }
        let body = serde_json::to_vec(info).map_err(|e| ApiError::internal(e.to_string()))?;
        match self.meta.put(&tenant_key(t), body, Expected::Absent).await {
            Ok(_) => Ok(()),
            Err(meta::MetaError::Conflict { .. }) => {
                Err(ApiError::conflict("Tenant already exists"))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn delete_tenant(&self, t: &str) -> Result<(), ApiError> {
        if !self.tenant_exists(t).await? {
            return Err(ApiError::not_found("Tenant does not exist"));
        }
        if !self.namespaces(t).await?.is_empty() {
            return Err(ApiError::conflict("The tenant still has active namespaces"));
        }
        self.meta.delete(&tenant_key(t), Expected::Any).await?;
        Ok(())
    }

    pub async fn namespaces(&self, t: &str) -> Result<Vec<String>, ApiError> {
        let prefix = format!("/admin/policies/{t}/");
        let keys = self.meta.list(&prefix).await?;
        Ok(keys
            .into_iter()
            .map(|k| format!("{t}/{}", &k[prefix.len()..]))
            .collect())
    }

    pub async fn namespace_exists(&self, t: &str, ns: &str) -> Result<bool, ApiError> {
        Ok(self.meta.get(&ns_key(t, ns)).await?.is_some())
    }

    pub async fn create_namespace(&self, t: &str, ns: &str) -> Result<(), ApiError> {
        if !self.tenant_exists(t).await? {
            return Err(ApiError::not_found("Tenant does not exist"));
        }
        if !valid_name(ns) {
            return Err(ApiError::precondition(format!(
                "Invalid namespace name {t}/{ns}"
            )));
        }
        let body = serde_json::to_vec(&Policies::default())
            .map_err(|e| ApiError::internal(e.to_string()))?;
        match self.meta.put(&ns_key(t, ns), body, Expected::Absent).await {
            Ok(_) => Ok(()),
            Err(meta::MetaError::Conflict { .. }) => {
                Err(ApiError::conflict("Namespace already exists"))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn delete_namespace(&self, t: &str, ns: &str) -> Result<(), ApiError> {
        if !self.namespace_exists(t, ns).await? {
            return Err(ApiError::not_found("Namespace does not exist"));
        }
        self.meta.delete(&ns_key(t, ns), Expected::Any).await?;
        Ok(())
    }

    /// A namespace's policies with their version (404 for a missing tenant or namespace).
    async fn versioned(&self, t: &str, ns: &str) -> Result<(Policies, u64), ApiError> {
        if !self.tenant_exists(t).await? {
            return Err(ApiError::not_found("Tenant does not exist"));
        }
        let v = self
            .meta
            .get(&ns_key(t, ns))
            .await?
            .ok_or_else(|| ApiError::not_found("Namespace does not exist"))?;
        let p = serde_json::from_slice(&v.value).map_err(|e| ApiError::internal(e.to_string()))?;
        Ok((p, v.version))
    }

    pub async fn policies(&self, t: &str, ns: &str) -> Result<Policies, ApiError> {
        Ok(self.versioned(t, ns).await?.0)
    }

    /// Read-modify-write of a namespace's policies (compare-and-set on the version).
    pub async fn update(
        &self,
        t: &str,
        ns: &str,
        f: impl Fn(&mut Policies),
    ) -> Result<Policies, ApiError> {
        loop {
            let (mut p, version) = self.versioned(t, ns).await?;
            f(&mut p);
            let body = serde_json::to_vec(&p).map_err(|e| ApiError::internal(e.to_string()))?;
            match self
                .meta
                .put(&ns_key(t, ns), body, Expected::Version(version))
                .await
            {
                Ok(_) => return Ok(p),
                Err(meta::MetaError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Partition count of a partitioned topic, if `topic` is one.
    pub async fn partitions(
        &self,
        t: &str,
        ns: &str,
        topic: &str,
    ) -> Result<Option<u32>, ApiError> {
        let Some(v) = self.meta.get(&partitioned_key(t, ns, topic)).await? else {
            return Ok(None);
        };
        let m: PartitionedTopicMetadata =
            serde_json::from_slice(&v.value).map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(Some(m.partitions))
    }

    pub async fn create_partitioned(
        &self,
        t: &str,
        ns: &str,
        topic: &str,
        partitions: u32,
    ) -> Result<(), ApiError> {
        let body = serde_json::to_vec(&PartitionedTopicMetadata { partitions })
            .map_err(|e| ApiError::internal(e.to_string()))?;
        match self
            .meta
            .put(&partitioned_key(t, ns, topic), body, Expected::Absent)
            .await
        {
            Ok(_) => Ok(()),
            Err(meta::MetaError::Conflict { .. }) => {
                Err(ApiError::conflict("This topic already exists"))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn delete_partitioned(&self, t: &str, ns: &str, topic: &str) -> Result<(), ApiError> {
        self.meta
            .delete(&partitioned_key(t, ns, topic), Expected::Any)
            .await?;
        Ok(())
    }

    /// Local names of the namespace's partitioned topics.
    pub async fn partitioned_topics(&self, t: &str, ns: &str) -> Result<Vec<String>, ApiError> {
        let prefix = format!("/admin/partitioned/{t}/{ns}/");
        Ok(self
            .meta
            .list(&prefix)
            .await?
            .into_iter()
            .map(|k| k[prefix.len()..].to_string())
            .collect())
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct PartitionedTopicMetadata {
    pub partitions: u32,
}

impl PolicyStore {
    /// The schema stored for `tenant/ns/topic` (opaque bytes).
    pub async fn schema(&self, key: &str) -> Result<Option<Vec<u8>>, ApiError> {
        Ok(self
            .meta
            .get(&format!("/schemas/{key}"))
            .await?
            .map(|v| v.value))
    }

    /// Stores a schema unless one exists; returns the stored one.
    pub async fn put_schema_if_absent(
        &self,
        key: &str,
        schema: Vec<u8>,
    ) -> Result<Vec<u8>, ApiError> {
        let k = format!("/schemas/{key}");
        match self.meta.put(&k, schema.clone(), Expected::Absent).await {
            Ok(_) => Ok(schema),
            Err(meta::MetaError::Conflict { .. }) => {
                Ok(self.meta.get(&k).await?.map(|v| v.value).unwrap_or(schema))
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl PolicyStore {
    /// A topic's own policies (empty when none are set).
    pub async fn topic_policies(
        &self,
        t: &str,
        ns: &str,
        topic: &str,
    ) -> Result<TopicPolicies, ApiError> {
        match self.meta.get(&topic_policies_key(t, ns, topic)).await? {
            Some(v) => {
                serde_json::from_slice(&v.value).map_err(|e| ApiError::internal(e.to_string()))
            }
            None => Ok(TopicPolicies::default()),
        }
    }

    /// Read-modify-write of a topic's policies.
    pub async fn update_topic_policies(
        &self,
        t: &str,
        ns: &str,
        topic: &str,
        f: impl Fn(&mut TopicPolicies),
    ) -> Result<TopicPolicies, ApiError> {
        let key = topic_policies_key(t, ns, topic);
        loop {
            let (mut p, expected) = match self.meta.get(&key).await? {
                Some(v) => (
                    serde_json::from_slice(&v.value)
                        .map_err(|e| ApiError::internal(e.to_string()))?,
                    Expected::Version(v.version),
                ),
                None => (TopicPolicies::default(), Expected::Absent),
            };
            f(&mut p);
            let body = serde_json::to_vec(&p).map_err(|e| ApiError::internal(e.to_string()))?;
            match self.meta.put(&key, body, expected).await {
                Ok(_) => return Ok(p),
                Err(meta::MetaError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    pub async fn delete_topic_policies(
        &self,
        t: &str,
        ns: &str,
        topic: &str,
    ) -> Result<(), ApiError> {
        self.meta
            .delete(&topic_policies_key(t, ns, topic), Expected::Any)
            .await?;
        Ok(())
    }
}

fn topic_policies_key(t: &str, ns: &str, topic: &str) -> String {
    format!("/admin/topic-policies/{t}/{ns}/{topic}")
}

fn partitioned_key(t: &str, ns: &str, topic: &str) -> String {
    format!("/admin/partitioned/{t}/{ns}/{topic}")
}

//! Tenants, namespaces, topic policies, partitioned-topic metadata and schemas in the metadata
//! store. The keys (JSON values unless noted):
//!
//! | key | value |
//! |---|---|
//! | `/admin/clusters/<cluster>` | [`ClusterData`] |
//! | `/admin/tenants/<tenant>` | [`TenantInfo`] |
//! | `/admin/policies/<tenant>/<namespace>` | [`Policies`] |
//! | `/admin/topic-policies/<tenant>/<namespace>/<topic>` | [`TopicPolicies`] |
//! | `/admin/partitioned/<tenant>/<namespace>/<topic>` | [`PartitionedTopicMetadata`] |
//! | `/schemas/<tenant>/<namespace>/<topic>` | the schema of a topic and its partitions (prost `Schema`) |
//!
//! Keys are built here from [`NamespaceName`] and [`TopicName`] and nowhere else; a topic's local
//! name is one percent-encoded segment ([`meta::key_segment`]), so no two topics share a key.

use std::sync::Arc;

use meta::{Expected, MetaError, MetadataStore};
use protocol::{NamespaceName, TopicName};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{PolicyError, Result};
use crate::schema::SchemaHistory;
use crate::types::{ClusterData, PartitionedTopicMetadata, Policies, TenantInfo, TopicPolicies};

const CLUSTERS: &str = "/admin/clusters/";
const TENANTS: &str = "/admin/tenants/";
const NAMESPACES: &str = "/admin/policies/";
const TOPIC_POLICIES: &str = "/admin/topic-policies/";
const PARTITIONED: &str = "/admin/partitioned/";
const SCHEMAS: &str = "/schemas/";
const DEDUP: &str = "/dedup/";
const COMPACTION: &str = "/compaction/";

fn tenant_key(tenant: &str) -> String {
    format!("{TENANTS}{tenant}")
}

fn namespace_prefix(tenant: &str) -> String {
    format!("{NAMESPACES}{tenant}/")
}

fn namespace_key(ns: &NamespaceName) -> String {
    format!("{NAMESPACES}{ns}")
}

/// `<prefix><tenant>/<namespace>/<local name>`: per-topic keys (the domain is not part of them;
/// the local name is one encoded segment).
fn topic_key(prefix: &str, topic: &TopicName) -> String {
    format!(
        "{prefix}{}/{}",
        topic.namespace(),
        meta::key_segment(topic.local())
    )
}

fn decode<T: DeserializeOwned>(key: &str, raw: &[u8]) -> Result<T> {
    serde_json::from_slice(raw).map_err(|e| PolicyError::Corrupt {
        key: key.to_string(),
        detail: e.to_string(),
    })
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising these plain structs to JSON cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// Policy records over the metadata store.
pub struct PolicyStore {
    meta: Arc<dyn MetadataStore>,
}

impl PolicyStore {
    pub fn new(meta: Arc<dyn MetadataStore>) -> Self {
        PolicyStore { meta }
    }

    async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<(T, u64)>> {
        match self.meta.get(key).await? {
            Some(v) => Ok(Some((decode(key, &v.value)?, v.version))),
            None => Ok(None),
        }
    }

    async fn create<T: Serialize>(&self, key: &str, value: &T, exists: &'static str) -> Result<()> {
        match self.meta.put(key, encode(value), Expected::Absent).await {
            Ok(_) => Ok(()),
            Err(MetaError::Conflict { .. }) => Err(PolicyError::AlreadyExists(exists)),
            Err(e) => Err(e.into()),
        }
    }

    /// Read-modify-write of `key` with compare-and-set, retried on conflicts; `missing` is the
    /// value to start from when the key does not exist (`None`: the key must exist).
    async fn update<T, F>(&self, key: &str, missing: Option<T>, f: F) -> Result<T>
    where
        T: Serialize + DeserializeOwned + Clone,
        F: Fn(&mut T),
    {
        loop {
            let (mut value, expected) = match (self.get::<T>(key).await?, &missing) {
                (Some((v, version)), _) => (v, Expected::Version(version)),
                (None, Some(start)) => (start.clone(), Expected::Absent),
                (None, None) => return Err(PolicyError::NamespaceNotFound),
            };
            f(&mut value);
            match self.meta.put(key, encode(&value), expected).await {
                Ok(_) => return Ok(value),
                Err(MetaError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    // ----- clusters -----

    pub async fn clusters(&self) -> Result<Vec<String>> {
        Ok(self
            .meta
            .list(CLUSTERS)
            .await?
            .into_iter()
            .map(|k| k[CLUSTERS.len()..].to_string())
            .collect())
    }

    pub async fn cluster(&self, name: &str) -> Result<ClusterData> {
        self.get(&format!("{CLUSTERS}{name}"))
            .await?
            .map(|(c, _)| c)
            .ok_or(PolicyError::ClusterNotFound)
    }

    pub async fn create_cluster(&self, name: &str, data: &ClusterData) -> Result<()> {
        if !NamespaceName::valid_tenant(name) {
            return Err(PolicyError::Invalid(format!("Invalid cluster name {name}")));
        }
        self.create(&format!("{CLUSTERS}{name}"), data, "Cluster already exists")
            .await
    }

    pub async fn update_cluster(&self, name: &str, data: &ClusterData) -> Result<()> {
        let key = format!("{CLUSTERS}{name}");
        let Some((_, version)) = self.get::<ClusterData>(&key).await? else {
            return Err(PolicyError::ClusterNotFound);
        };
        self.meta
            .put(&key, encode(data), Expected::Version(version))
            .await?;
        Ok(())
    }

    pub async fn delete_cluster(&self, name: &str) -> Result<()> {
        let key = format!("{CLUSTERS}{name}");
        if self.meta.get(&key).await?.is_none() {
            return Err(PolicyError::ClusterNotFound);
        }
        self.meta.delete(&key, Expected::Any).await?;
        Ok(())
    }

    // ----- tenants -----

    pub async fn tenants(&self) -> Result<Vec<String>> {
        Ok(self
            .meta
            .list(TENANTS)
            .await?
            .into_iter()
            .map(|k| k[TENANTS.len()..].to_string())
            .collect())
    }

    pub async fn tenant(&self, tenant: &str) -> Result<TenantInfo> {
        self.get(&tenant_key(tenant))
            .await?
            .map(|(t, _)| t)
            .ok_or(PolicyError::TenantNotFound)
    }

    pub async fn tenant_exists(&self, tenant: &str) -> Result<bool> {
        Ok(self.meta.get(&tenant_key(tenant)).await?.is_some())
    }

    pub async fn create_tenant(&self, tenant: &str, info: &TenantInfo) -> Result<()> {
        if !NamespaceName::valid_tenant(tenant) {
            return Err(PolicyError::Invalid(format!(
                "Invalid tenant name {tenant}"
            )));
        }
        self.create(&tenant_key(tenant), info, "Tenant already exists")
            .await
    }

    /// Replaces a tenant's admin roles and allowed clusters.
    pub async fn update_tenant(&self, tenant: &str, info: &TenantInfo) -> Result<()> {
        let key = tenant_key(tenant);
        let Some((_, version)) = self.get::<TenantInfo>(&key).await? else {
            return Err(PolicyError::TenantNotFound);
        };
        self.meta
            .put(&key, encode(info), Expected::Version(version))
            .await?;
        Ok(())
    }

    pub async fn delete_tenant(&self, tenant: &str) -> Result<()> {
        if !self.tenant_exists(tenant).await? {
            return Err(PolicyError::TenantNotFound);
        }
        if !self.namespaces(tenant).await?.is_empty() {
            return Err(PolicyError::NotEmpty(
                "The tenant still has active namespaces",
            ));
        }
        self.meta.delete(&tenant_key(tenant), Expected::Any).await?;
        Ok(())
    }

    // ----- namespaces -----

    /// The namespaces of a tenant.
    pub async fn namespaces(&self, tenant: &str) -> Result<Vec<NamespaceName>> {
        let prefix = namespace_prefix(tenant);
        let mut out = Vec::new();
        for key in self.meta.list(&prefix).await? {
            out.push(NamespaceName::new(tenant, &key[prefix.len()..])?);
        }
        Ok(out)
    }

    /// Creates a namespace and its tenant (allowed in `cluster`) if missing. Brokers starting
    /// together may race: the loser finds them created.
    pub async fn ensure_namespace(&self, ns: &NamespaceName, cluster: &str) -> Result<()> {
        let already = |r: Result<()>| match r {
            Err(PolicyError::AlreadyExists(_)) => Ok(()),
            r => r,
        };
        if !self.tenant_exists(ns.tenant()).await? {
            let info = TenantInfo {
                admin_roles: vec![],
                allowed_clusters: vec![cluster.to_string()],
            };
            already(self.create_tenant(ns.tenant(), &info).await)?;
        }
        if !self.namespace_exists(ns).await? {
            already(self.create_namespace(ns, &Policies::default()).await)?;
        }
        Ok(())
    }

    pub async fn namespace_exists(&self, ns: &NamespaceName) -> Result<bool> {
        Ok(self.meta.get(&namespace_key(ns)).await?.is_some())
    }

    /// Creates a namespace with `policies` (Pulsar's create takes a `Policies` body).
    pub async fn create_namespace(&self, ns: &NamespaceName, policies: &Policies) -> Result<()> {
        if !self.tenant_exists(ns.tenant()).await? {
            return Err(PolicyError::TenantNotFound);
        }
        if let Some(r) = &policies.retention_policies {
            r.validate().map_err(|e| PolicyError::Invalid(e.into()))?;
        }
        self.create(&namespace_key(ns), policies, "Namespace already exists")
            .await
    }

    pub async fn delete_namespace(&self, ns: &NamespaceName) -> Result<()> {
        if !self.namespace_exists(ns).await? {
            return Err(PolicyError::NamespaceNotFound);
        }
        self.meta.delete(&namespace_key(ns), Expected::Any).await?;
        Ok(())
    }

    /// A namespace's policies (`TenantNotFound` / `NamespaceNotFound` when missing).
    pub async fn policies(&self, ns: &NamespaceName) -> Result<Policies> {
        match self.get(&namespace_key(ns)).await? {
            Some((p, _)) => Ok(p),
            None if !self.tenant_exists(ns.tenant()).await? => Err(PolicyError::TenantNotFound),
            None => Err(PolicyError::NamespaceNotFound),
        }
    }

    /// A namespace's policies, `None` when it does not exist.
    pub async fn policies_if_exists(&self, ns: &NamespaceName) -> Result<Option<Policies>> {
        Ok(self.get(&namespace_key(ns)).await?.map(|(p, _)| p))
    }

    /// Changes a namespace's policies (compare-and-set, retried); returns the new ones.
    pub async fn update_policies(
        &self,
        ns: &NamespaceName,
        f: impl Fn(&mut Policies),
    ) -> Result<Policies> {
        self.policies(ns).await?;
        self.update(&namespace_key(ns), None, f).await
    }

    // ----- topic policies -----

    /// A topic's own policies (empty when none are set).
    pub async fn topic_policies(&self, topic: &TopicName) -> Result<TopicPolicies> {
        Ok(self
            .get(&topic_key(TOPIC_POLICIES, topic))
            .await?
            .map(|(p, _)| p)
            .unwrap_or_default())
    }

    /// Changes a topic's policies (compare-and-set, retried).
    pub async fn update_topic_policies(
        &self,
        topic: &TopicName,
        f: impl Fn(&mut TopicPolicies),
    ) -> Result<TopicPolicies> {
        self.update(
            &topic_key(TOPIC_POLICIES, topic),
            Some(TopicPolicies::default()),
            f,
        )
        .await
    }

    pub async fn delete_topic_policies(&self, topic: &TopicName) -> Result<()> {
        self.meta
            .delete(&topic_key(TOPIC_POLICIES, topic), Expected::Any)
            .await?;
        Ok(())
    }

    // ----- partitioned topics -----

    /// Partition count of a partitioned topic, if `topic` is one.
    pub async fn partitions(&self, topic: &TopicName) -> Result<Option<u32>> {
        Ok(self
            .get::<PartitionedTopicMetadata>(&topic_key(PARTITIONED, topic))
            .await?
            .map(|(m, _)| m.partitions))
    }

    pub async fn create_partitioned(&self, topic: &TopicName, partitions: u32) -> Result<()> {
        self.create(
            &topic_key(PARTITIONED, topic),
            &PartitionedTopicMetadata { partitions },
            "This topic already exists",
        )
        .await
    }

    /// Raises a partitioned topic's partition count (refused unless `partitions` is more).
    pub async fn update_partitioned(&self, topic: &TopicName, partitions: u32) -> Result<()> {
        let key = topic_key(PARTITIONED, topic);
        let Some((m, version)) = self.get::<PartitionedTopicMetadata>(&key).await? else {
            return Err(PolicyError::PartitionedTopicNotFound);
        };
        if partitions <= m.partitions {
            return Err(PolicyError::Invalid(format!(
                "Number of new partitions must be greater than existing number of partitions ({} <= {})",
                partitions, m.partitions
            )));
        }
        match self
            .meta
            .put(
                &key,
                encode(&PartitionedTopicMetadata { partitions }),
                Expected::Version(version),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(MetaError::Conflict { .. }) => Err(PolicyError::Busy(
                "the partition count changed meanwhile: try again".into(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn delete_partitioned(&self, topic: &TopicName) -> Result<()> {
        self.meta
            .delete(&topic_key(PARTITIONED, topic), Expected::Any)
            .await?;
        Ok(())
    }

    /// The namespace's partitioned topics (persistent).
    pub async fn partitioned_topics(&self, ns: &NamespaceName) -> Result<Vec<TopicName>> {
        let prefix = format!("{PARTITIONED}{ns}/");
        let mut out = Vec::new();
        for key in self.meta.list(&prefix).await? {
            let local = meta::name_of_segment(&key[prefix.len()..]).ok_or_else(|| {
                PolicyError::Corrupt {
                    key: key.clone(),
                    detail: "not an encoded topic name".into(),
                }
            })?;
            out.push(ns.topic(protocol::Domain::Persistent, &local)?);
        }
        Ok(out)
    }

    // ----- schemas -----

    /// The schema history of `topic` (of its partitioned topic, for a partition); empty when it
    /// never had a schema.
    pub async fn schema_history(&self, topic: &TopicName) -> Result<SchemaHistory> {
        let key = topic_key(SCHEMAS, &topic.base());
        match self.meta.get(&key).await? {
            Some(v) => decode_history(&key, &v.value),
            None => Ok(SchemaHistory::default()),
        }
    }

    /// Runs `f` on the schema history and stores the history it returns, if any, unless the
    /// history changed meanwhile — then runs it again on the new one (versions are positions:
    /// two writers must never both append "version N").
    pub async fn update_schema_history<T>(
        &self,
        topic: &TopicName,
        f: impl Fn(&SchemaHistory) -> Result<(Option<SchemaHistory>, T)>,
    ) -> Result<T> {
        let key = topic_key(SCHEMAS, &topic.base());
        loop {
            let current = self.meta.get(&key).await?;
            let (history, expected) = match &current {
                Some(v) => (
                    decode_history(&key, &v.value)?,
                    Expected::Version(v.version),
                ),
                None => (SchemaHistory::default(), Expected::Absent),
            };
            let (changed, out) = f(&history)?;
            let Some(changed) = changed else {
                return Ok(out);
            };
            match self.meta.put(&key, changed.encode(), expected).await {
                Ok(_) => return Ok(out),
                Err(MetaError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    // ----- deduplication -----

    /// A topic's (a partition's) last deduplication snapshot.
    pub async fn dedup_snapshot(&self, topic: &TopicName) -> Result<Option<broker::DedupSnapshot>> {
        Ok(self.get(&topic_key(DEDUP, topic)).await?.map(|(s, _)| s))
    }

    pub async fn save_dedup_snapshot(
        &self,
        topic: &TopicName,
        snapshot: &broker::DedupSnapshot,
    ) -> Result<()> {
        self.meta
            .put(&topic_key(DEDUP, topic), encode(snapshot), Expected::Any)
            .await?;
        Ok(())
    }

    pub async fn delete_dedup_snapshot(&self, topic: &TopicName) -> Result<()> {
        self.meta
            .delete(&topic_key(DEDUP, topic), Expected::Any)
            .await?;
        Ok(())
    }

    // ----- compaction -----

    /// Where a topic's (a partition's) compacted view stands.
    pub async fn compaction_state(
        &self,
        topic: &TopicName,
    ) -> Result<Option<broker::CompactionState>> {
        Ok(self
            .get(&topic_key(COMPACTION, topic))
            .await?
            .map(|(s, _)| s))
    }

    pub async fn save_compaction_state(
        &self,
        topic: &TopicName,
        state: &broker::CompactionState,
    ) -> Result<()> {
        self.meta
            .put(&topic_key(COMPACTION, topic), encode(state), Expected::Any)
            .await?;
        Ok(())
    }

    pub async fn delete_compaction_state(&self, topic: &TopicName) -> Result<()> {
        self.meta
            .delete(&topic_key(COMPACTION, topic), Expected::Any)
            .await?;
        Ok(())
    }

    /// Deletes the schema of `topic` (of its partitioned topic, for a partition).
    pub async fn delete_schema(&self, topic: &TopicName) -> Result<()> {
        self.meta
            .delete(&topic_key(SCHEMAS, &topic.base()), Expected::Any)
            .await?;
        Ok(())
    }
}

fn decode_history(key: &str, raw: &[u8]) -> Result<SchemaHistory> {
    SchemaHistory::decode(raw).ok_or_else(|| PolicyError::Corrupt {
        key: key.to_string(),
        detail: "not a schema history".into(),
    })
}

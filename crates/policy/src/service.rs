//! The policy service: what the admin API and the broker service ask of namespaces and topics.
//! It turns a topic's policies (topic, then namespace, then broker) into its effective
//! configuration, opens its managed ledger with it, re-applies changed policies to open topics,
//! and implements [`broker::TopicStore`].

use std::sync::Arc;

use broker::{BrokerError, BrokerService, TopicStore};
use ledger::{ManagedLedger, ManagedLedgerConfig, ManagedLedgerFactory, OffloadStatus, Position};
use offload::{BlobStoreOffloader, LedgerOffloader, ObjectStores, OffloadConfig};
use protocol::{Domain, NamespaceName, TopicName};

use crate::config::BrokerConfig;
use crate::error::{PolicyError, Result};
use crate::offload_policies::{OffloadDefaults, OffloadPolicies};
use crate::schema::{Admission, SchemaEntry, SchemaHistory, SchemaRules, SchemaType};
use crate::store::PolicyStore;
use crate::types::{
    MessageIdJson, OffloadProcessStatus, OffloadProgressJson, PersistentTopicInternalStats,
    Policies, ProcessStatus, RetentionPolicies, TopicPolicies,
};

/// What a topic runs with.
#[derive(Debug, Clone)]
pub struct TopicSettings {
    pub managed_ledger: ManagedLedgerConfig,
    /// Where its ledgers are offloaded to; `None` when offload is off for it.
    pub offload: Option<OffloadConfig>,
}

/// The lowest policy level: the broker's configuration.
#[derive(Debug, Clone)]
struct BrokerLevel {
    managed_ledger: ManagedLedgerConfig,
    offload: OffloadPolicies,
    offload_defaults: OffloadDefaults,
    /// Whether this broker runs an object-storage WAL (it has a default offload location).
    object_tier: bool,
    schema: crate::schema::SchemaRules,
    deduplication: bool,
    backlog: crate::config::BacklogSettings,
}

pub struct PolicyService {
    store: PolicyStore,
    factory: Arc<ManagedLedgerFactory>,
    broker: BrokerLevel,
    /// The broker's one cache of object-store clients, shared by every topic's offloader.
    stores: Arc<ObjectStores>,
    /// `authorizationEnabled`, `superUserRoles`: what roles may do.
    authorizer: security::Authorizer,
}

impl PolicyService {
    pub fn new(
        meta: Arc<dyn meta::MetadataStore>,
        factory: Arc<ManagedLedgerFactory>,
        config: &BrokerConfig,
        stores: Arc<ObjectStores>,
    ) -> Self {
        PolicyService {
            store: PolicyStore::new(meta),
            factory,
            broker: BrokerLevel {
                managed_ledger: config.managed_ledger.clone(),
                offload: config.offload.clone(),
                offload_defaults: config.offload_defaults.clone(),
                object_tier: config.offload_target().is_some(),
                schema: config.schema,
                deduplication: config.deduplication_enabled,
                backlog: config.backlog.clone(),
            },
            stores,
            authorizer: config.security.authorization.clone(),
        }
    }

    pub fn authorizer(&self) -> &security::Authorizer {
        &self.authorizer
    }

    /// The policy records (tenants, namespaces, …) as stored.
    pub fn store(&self) -> &PolicyStore {
        &self.store
    }

    pub fn factory(&self) -> &Arc<ManagedLedgerFactory> {
        &self.factory
    }

    /// Creates this broker's cluster, `public` and `public/default` if missing, as Pulsar
    /// standalone does.
    pub async fn ensure_defaults(
        &self,
        cluster: &str,
        data: &crate::types::ClusterData,
    ) -> Result<()> {
        // Brokers of a cluster start together: one of them creates each, the others find it
        // created (AlreadyExists from the create-if-absent is success here).
        let already = |r: Result<()>| match r {
            Err(PolicyError::AlreadyExists(_)) => Ok(()),
            r => r,
        };
        if !self.store.clusters().await?.iter().any(|c| c == cluster) {
            already(self.store.create_cluster(cluster, data).await)?;
        }
        self.ensure_namespace(&NamespaceName::new("public", "default")?, cluster)
            .await
    }

    /// Creates a namespace and its tenant (allowed in `cluster`) if missing.
    pub async fn ensure_namespace(&self, ns: &NamespaceName, cluster: &str) -> Result<()> {
        self.store.ensure_namespace(ns, cluster).await
    }

    // ----- effective configuration -----

    /// What `name` runs with under these namespace and topic policies.
    fn settings(
        &self,
        name: &TopicName,
        ns: &Policies,
        topic: &TopicPolicies,
    ) -> Result<TopicSettings> {
        let mut base = self.broker.managed_ledger.clone();
        if let Some(tier) = ns.hot_tier {
            base.hot_tier = tier;
        }
        if let Some(r) = topic.retention_policies.or(ns.retention_policies) {
            (base.retention_time_ms, base.retention_size_bytes) = r.to_ms_and_bytes();
        }
        let ns_offload = ns
            .offload_policies
            .clone()
            .unwrap_or_default()
            .with_legacy_fields(ns);
        let merged = topic
            .offload_policies
            .clone()
            .unwrap_or_default()
            .or(&ns_offload)
            .or(&self.broker.offload);
        let (managed_ledger, mut offload) = merged.resolve(&self.broker.offload_defaults, &base)?;
        if let Some(config) = &mut offload {
            // The namespace's rates are shared by all its topics, the topic's are its own; both
            // come on top of the broker's.
            let topic_level = topic.offload_policies.clone().unwrap_or_default();
            for (upload, read) in [
                ns_offload.scoped_limits(&format!("namespace {}", name.namespace())),
                topic_level.scoped_limits(&format!("topic {name}")),
            ] {
                config.upload_limits.extend(upload);
                config.read_limits.extend(read);
            }
        }
        Ok(TopicSettings {
            managed_ledger,
            offload,
        })
    }

    /// The effective configuration of `topic` (its namespace must exist).
    pub async fn effective(&self, topic: &TopicName) -> Result<TopicSettings> {
        let ns = self.store.policies(topic.namespace()).await?;
        let tp = self.store.topic_policies(topic).await?;
        self.settings(topic, &ns, &tp)
    }

    async fn offloader(&self, s: &TopicSettings) -> Result<Option<Arc<dyn LedgerOffloader>>> {
        match &s.offload {
            None => Ok(None),
            Some(c) => {
                let o = BlobStoreOffloader::with_stores(c.clone(), Arc::clone(&self.stores))
                    .await
                    .map_err(|e| match e {
                        offload::OffloadError::Config(reason) => PolicyError::Invalid(reason),
                        other => PolicyError::Offload(other),
                    })?;
                Ok(Some(Arc::new(o)))
            }
        }
    }

    /// Opens (creating if needed) the topic's managed ledger with its effective configuration.
    pub async fn open_topic(&self, topic: &TopicName) -> Result<ManagedLedger> {
        let settings = self.effective(topic).await?;
        let offloader = self.offloader(&settings).await?;
        Ok(self
            .factory
            .open_with(
                &topic.managed_ledger_name(),
                settings.managed_ledger,
                offloader,
            )
            .await?)
    }

    /// Opens (creating it) generation `generation` of a topic's compacted ledger, with the
    /// topic's effective configuration and offloader.
    pub async fn open_compacted_ledger(
        &self,
        topic: &TopicName,
        generation: u64,
    ) -> Result<ManagedLedger> {
        let settings = self.effective(topic).await?;
        let offloader = self.offloader(&settings).await?;
        Ok(self
            .factory
            .open_with(
                &compacted_ledger_name(topic, generation),
                settings.managed_ledger,
                offloader,
            )
            .await?)
    }

    /// Deletes generation `generation` of a topic's compacted ledger, in every tier, if it
    /// exists.
    async fn delete_compacted_ledger(&self, topic: &TopicName, generation: u64) -> Result<()> {
        let name = compacted_ledger_name(topic, generation);
        if self.factory.exists(&name).await? {
            self.factory.delete(&name).await?;
        }
        Ok(())
    }

    /// Opens an existing topic (`TopicNotFound` if it was never created).
    pub async fn existing_topic(&self, topic: &TopicName) -> Result<ManagedLedger> {
        self.store.policies(topic.namespace()).await?;
        if !self.factory.exists(&topic.managed_ledger_name()).await? {
            return Err(PolicyError::TopicNotFound);
        }
        self.open_topic(topic).await
    }

    /// Applies the current policies to the open topics of `ns`.
    pub async fn apply(&self, ns: &NamespaceName) -> Result<()> {
        let policies = self.store.policies(ns).await?;
        for ml in self.factory.open_ledgers().await {
            let Some(topic) = TopicName::from_managed_ledger_name(ml.name()) else {
                continue;
            };
            if topic.namespace() != ns {
                continue;
            }
            let tp = self.store.topic_policies(&topic).await?;
            let settings = self.settings(&topic, &policies, &tp)?;
            let offloader = self.offloader(&settings).await?;
            ml.set_config(settings.managed_ledger);
            ml.set_offloader(offloader);
        }
        Ok(())
    }

    // ----- schemas -----

    /// The schema rules of `topic`: the topic's strategy, else its namespace's, else the
    /// broker's; auto-update from the namespace, else the broker; validation enforced if
    /// either says so.
    pub async fn schema_rules(&self, topic: &TopicName) -> Result<SchemaRules> {
        use crate::schema::CompatibilityStrategy as S;
        let ns = self.store.policies(topic.namespace()).await?;
        let tp = self.store.topic_policies(topic).await?;
        let broker = self.broker.schema;
        let strategy = tp
            .schema_compatibility_strategy
            .filter(|s| *s != S::Undefined)
            .or(Some(ns.schema_compatibility_strategy).filter(|s| *s != S::Undefined))
            .unwrap_or(broker.strategy);
        Ok(SchemaRules {
            strategy,
            allow_auto_update: ns
                .is_allow_auto_update_schema
                .unwrap_or(broker.allow_auto_update),
            validation_enforced: broker.validation_enforced || ns.schema_validation_enforced,
        })
    }

    /// The schema history of `topic` (of its partitioned topic, for a partition).
    pub async fn schema_history(&self, topic: &TopicName) -> Result<SchemaHistory> {
        self.store.schema_history(topic).await
    }

    /// The latest schema of `topic`, or `version`, with its version.
    pub async fn get_schema(
        &self,
        topic: &TopicName,
        version: Option<u64>,
    ) -> Result<Option<(u64, SchemaEntry)>> {
        let h = self.store.schema_history(topic).await?;
        Ok(match version {
            None => h.latest().map(|(v, e)| (v, e.clone())),
            Some(v) => h.version(v).map(|e| (v, e.clone())),
        })
    }

    /// The version of `schema` for `topic`: the one it already has, or a new one when `rules`
    /// allow it; `IncompatibleSchema` otherwise.
    pub async fn add_schema(
        &self,
        topic: &TopicName,
        schema: SchemaEntry,
        rules: SchemaRules,
    ) -> Result<u64> {
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.store
            .update_schema_history(topic, |h| match h.admit(&schema, rules) {
                Ok(Admission::Existing(v)) => Ok((None, v)),
                Ok(Admission::New) => {
                    let mut h = h.clone();
                    let version = h.entries.len() as u64;
                    h.entries.push(SchemaEntry {
                        timestamp,
                        deleted: false,
                        ..schema.clone()
                    });
                    Ok((Some(h), version))
                }
                Err(e) => Err(PolicyError::IncompatibleSchema(e.0)),
            })
            .await
    }

    /// Marks the schema of `topic` deleted (a new version; older versions still read, as
    /// messages carry them). `None` when there was no schema to delete.
    pub async fn delete_schema(&self, topic: &TopicName) -> Result<Option<u64>> {
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.store
            .update_schema_history(topic, |h| {
                if h.latest().is_none() {
                    return Ok((None, None));
                }
                let mut h = h.clone();
                let version = h.entries.len() as u64;
                h.entries.push(SchemaEntry {
                    timestamp,
                    deleted: true,
                    ..SchemaEntry::new(SchemaType::None, Vec::new())
                });
                Ok((Some(h), Some(version)))
            })
            .await
    }

    fn wire_schema(s: &protocol::pb::Schema) -> Result<Option<SchemaEntry>> {
        if s.r#type == protocol::pb::schema::Type::None as i32 {
            return Ok(None);
        }
        SchemaEntry::from_wire(s).map(Some).ok_or_else(|| {
            PolicyError::IncompatibleSchema(format!("unknown schema type {}", s.r#type))
        })
    }

    async fn admit_producer_schema(
        &self,
        topic: &TopicName,
        schema: Option<&protocol::pb::Schema>,
    ) -> Result<Option<u64>> {
        let rules = self.schema_rules(topic).await?;
        match schema.map(Self::wire_schema).transpose()?.flatten() {
            Some(entry) => Ok(Some(self.add_schema(topic, entry, rules).await?)),
            None if rules.validation_enforced
                && self.store.schema_history(topic).await?.latest().is_some() =>
            {
                Err(PolicyError::IncompatibleSchema(
                    "Producers cannot connect or send message without a schema to topics with a schema if SchemaValidationEnforced is enabled".into(),
                ))
            }
            None => Ok(None),
        }
    }

    async fn admit_consumer_schema(
        &self,
        topic: &TopicName,
        schema: &protocol::pb::Schema,
        active: bool,
    ) -> Result<()> {
        let Some(entry) = Self::wire_schema(schema)? else {
            return Ok(());
        };
        let rules = self.schema_rules(topic).await?;
        let history = self.store.schema_history(topic).await?;
        let has_schema = history.latest().is_some();
        if !has_schema && !active {
            self.add_schema(topic, entry, rules).await?;
            return Ok(());
        }
        history
            .check_consumer(&entry, rules.strategy)
            .map_err(|e| {
                PolicyError::IncompatibleSchema(if has_schema {
                    e.0
                } else {
                    format!(
                        "Failed to add schema to an active topic with empty(BYTES) schema: new schema type {}",
                        entry.schema_type.name()
                    )
                })
            })
    }

    // ----- namespaces -----

    /// Changes a namespace's policies and applies them to its open topics.
    pub async fn update_namespace(
        &self,
        ns: &NamespaceName,
        f: impl Fn(&mut Policies),
    ) -> Result<()> {
        self.store.update_policies(ns, f).await?;
        self.apply(ns).await
    }

    /// A namespace's hot tier: its policy, else the broker default.
    pub async fn namespace_hot_tier(&self, ns: &NamespaceName) -> Result<ledger::HotTier> {
        let p = self.store.policies(ns).await?;
        Ok(p.hot_tier.unwrap_or(self.broker.managed_ledger.hot_tier))
    }

    /// Sets (or with `None` removes) a namespace's hot tier. The object tier needs the
    /// broker's WAL, which writes to the broker's offload location.
    pub async fn set_namespace_hot_tier(
        &self,
        ns: &NamespaceName,
        tier: Option<ledger::HotTier>,
    ) -> Result<()> {
        if tier == Some(ledger::HotTier::Object) && !self.broker.object_tier {
            return Err(PolicyError::Invalid(
                "the object hot tier needs an offload location on the broker (managedLedgerOffloadDriver and its bucket): its WAL writes there".into(),
            ));
        }
        self.update_namespace(ns, move |p| p.hot_tier = tier).await
    }

    /// A namespace's retention: its policy, else the broker default.
    pub async fn namespace_retention(&self, ns: &NamespaceName) -> Result<RetentionPolicies> {
        let p = self.store.policies(ns).await?;
        Ok(p.retention_policies.unwrap_or_else(|| {
            RetentionPolicies::from_ms_and_bytes(
                self.broker.managed_ledger.retention_time_ms,
                self.broker.managed_ledger.retention_size_bytes,
            )
        }))
    }

    /// Deletes a namespace without topics.
    /// Deletes a namespace: refused while it has topics, unless `force`, which deletes them
    /// first (partitioned ones whole), closing their clients (`namespaces delete -f`).
    pub async fn delete_namespace(
        &self,
        ns: &NamespaceName,
        broker: &BrokerService,
        force: bool,
    ) -> Result<()> {
        if force {
            for t in self.store.partitioned_topics(ns).await? {
                self.delete_partitioned(&t, broker, true).await?;
            }
            for t in self.list_topics(ns, Domain::Persistent).await? {
                self.delete_topic(&t, broker, true).await?;
            }
        }
        if !self.list_topics(ns, Domain::Persistent).await?.is_empty() {
            return Err(PolicyError::NotEmpty("Cannot delete non empty namespace"));
        }
        self.store.delete_namespace(ns).await
    }

    /// Checks offload policies as Pulsar does before storing them: not empty, and usable on top
    /// of the broker's settings.
    pub fn validate_offload_policies(&self, p: &OffloadPolicies) -> Result<()> {
        if p.is_empty() {
            return Err(PolicyError::Invalid(
                "Offload policies must not be empty".into(),
            ));
        }
        p.or(&self.broker.offload)
            .resolve(&self.broker.offload_defaults, &self.broker.managed_ledger)?;
        Ok(())
    }

    // ----- topics -----

    /// The namespace's topics of one domain (partitions one by one).
    pub async fn list_topics(&self, ns: &NamespaceName, domain: Domain) -> Result<Vec<TopicName>> {
        self.store.policies(ns).await?;
        Ok(self
            .factory
            .names()
            .await?
            .iter()
            .filter(|n| TopicName::managed_ledger_in(n, ns, domain))
            .filter_map(|n| TopicName::from_managed_ledger_name(n))
            .collect())
    }

    /// Creates a non-partitioned topic.
    pub async fn create_topic(&self, topic: &TopicName) -> Result<()> {
        self.store.policies(topic.namespace()).await?;
        if self.factory.exists(&topic.managed_ledger_name()).await?
            || self.store.partitions(topic).await?.is_some()
        {
            return Err(PolicyError::AlreadyExists("This topic already exists"));
        }
        self.open_topic(topic).await?;
        Ok(())
    }

    /// Deletes a topic and everything stored for it: its managed ledger (hot files, offloaded
    /// objects, cursors, ledger list), its schema (unless it is one partition of a partitioned
    /// topic) and its policies. The records of this layer go first: an interrupted deletion
    /// leaves the topic in place for the next attempt, which then finishes the job.
    ///
    /// `broker` unloads the topic first (its producers and subscriptions stop).
    pub async fn delete_topic(
        &self,
        topic: &TopicName,
        broker: &BrokerService,
        force: bool,
    ) -> Result<()> {
        self.store.policies(topic.namespace()).await?;
        let ml = topic.managed_ledger_name();
        if !self.factory.exists(&ml).await? {
            return Err(PolicyError::TopicNotFound);
        }
        broker
            .unload_for_delete(topic, force)
            .await
            .map_err(|e| match e {
                broker::BrokerError::TopicBusy(m) => PolicyError::Busy(m),
                other => PolicyError::Invalid(other.to_string()),
            })?;
        self.store.delete_dedup_snapshot(topic).await?;
        if let Some(state) = self.store.compaction_state(topic).await? {
            self.delete_compacted_ledger(topic, state.generation)
                .await?;
            self.store.delete_compaction_state(topic).await?;
        }
        if topic.partition_index().is_none() {
            self.store.delete_schema(topic).await?;
        }
        self.store.delete_topic_policies(topic).await?;
        self.factory.delete(&ml).await?;
        Ok(())
    }

    /// Creates a partitioned topic of `partitions` partitions.
    pub async fn create_partitioned(&self, topic: &TopicName, partitions: u32) -> Result<()> {
        self.store.policies(topic.namespace()).await?;
        if partitions == 0 {
            return Err(PolicyError::Invalid(
                "Number of partitions should be more than 0".into(),
            ));
        }
        if self.factory.exists(&topic.managed_ledger_name()).await? {
            return Err(PolicyError::AlreadyExists("This topic already exists"));
        }
        self.store.create_partitioned(topic, partitions).await
    }

    /// Partition count of a partitioned topic (0 when `topic` is none; its namespace must exist).
    pub async fn partitions(&self, topic: &TopicName) -> Result<u32> {
        self.store.policies(topic.namespace()).await?;
        Ok(self.store.partitions(topic).await?.unwrap_or(0))
    }

    /// Deletes a partitioned topic: every partition (as [`delete_topic`](Self::delete_topic)),
    /// then its schema, policies and metadata.
    pub async fn delete_partitioned(
        &self,
        topic: &TopicName,
        broker: &BrokerService,
        force: bool,
    ) -> Result<()> {
        self.store.policies(topic.namespace()).await?;
        let Some(partitions) = self.store.partitions(topic).await? else {
            return Err(PolicyError::PartitionedTopicNotFound);
        };
        // Refuse before deleting any partition, not halfway through.
        if !force {
            for i in 0..partitions {
                if broker.attached_clients(&topic.partition(i)).await > 0 {
                    return Err(PolicyError::Busy(
                        "Topic has active producers/subscriptions".into(),
                    ));
                }
            }
        }
        for i in 0..partitions {
            match self.delete_topic(&topic.partition(i), broker, force).await {
                // A partition nobody used was never created.
                Ok(()) | Err(PolicyError::TopicNotFound) => {}
                Err(e) => return Err(e),
            }
        }
        self.store.delete_schema(topic).await?;
        self.store.delete_topic_policies(topic).await?;
        self.store.delete_partitioned(topic).await
    }

    /// Changes a topic's own policies (the topic need not exist yet) and applies them.
    pub async fn update_topic(
        &self,
        topic: &TopicName,
        f: impl Fn(&mut TopicPolicies),
    ) -> Result<()> {
        self.store.policies(topic.namespace()).await?;
        self.store.update_topic_policies(topic, f).await?;
        self.apply(topic.namespace()).await
    }

    /// A topic's own policies (its namespace must exist).
    pub async fn topic_policies(&self, topic: &TopicName) -> Result<TopicPolicies> {
        self.store.policies(topic.namespace()).await?;
        self.store.topic_policies(topic).await
    }

    // ----- offload and stats -----

    /// Starts offloading every ledger of `topic` before `limit` (Pulsar's `PUT …/offload`).
    pub async fn offload(&self, topic: &TopicName, limit: Position) -> Result<()> {
        let ml = self.existing_topic(topic).await?;
        ml.offload_in_background(limit)?;
        Ok(())
    }

    /// The outcome of the last offload started with [`offload`](Self::offload).
    pub async fn offload_status(&self, topic: &TopicName) -> Result<OffloadProcessStatus> {
        let ml = self.existing_topic(topic).await?;
        let earliest = MessageIdJson::new(-1, -1);
        let status = |status, last_error, first_unoffloaded_message| OffloadProcessStatus {
            status,
            last_error,
            first_unoffloaded_message,
            progress: None,
        };
        Ok(match ml.offload_status() {
            OffloadStatus::NotRun => status(ProcessStatus::NotRun, String::new(), earliest),
            OffloadStatus::Running(p) => OffloadProcessStatus {
                progress: Some(OffloadProgressJson {
                    ledgers_offloaded: p.ledgers_offloaded,
                    ledgers_failed: p.ledgers_failed,
                    ledgers_remaining: p.ledgers_remaining(),
                    current_ledger: p.current_ledger,
                }),
                ..status(
                    ProcessStatus::Running,
                    p.last_error.unwrap_or_default(),
                    earliest,
                )
            },
            OffloadStatus::Success(p) => status(
                ProcessStatus::Success,
                String::new(),
                MessageIdJson::new(p.ledger_id, p.entry_id),
            ),
            OffloadStatus::Error(e) => status(ProcessStatus::Error, e, earliest),
        })
    }

    /// Pulsar's internal stats of an existing topic.
    pub async fn internal_stats(&self, topic: &TopicName) -> Result<PersistentTopicInternalStats> {
        let ml = self.existing_topic(topic).await?;
        Ok(crate::stats::internal_stats(&ml).await)
    }
}

#[async_trait::async_trait]
impl TopicStore for PolicyService {
    async fn release(&self, topic: &TopicName, seal: bool) {
        // The topic's compacted views go with it (the next owner opens them afresh).
        let compacted = compacted_ledger_prefix(topic);
        let mut names = vec![topic.managed_ledger_name()];
        for ml in self.factory.open_ledgers().await {
            if ml.name().starts_with(&compacted) {
                names.push(ml.name().to_string());
            }
        }
        for name in names {
            if seal {
                self.factory.release(&name).await;
            } else {
                self.factory.forget(&name);
            }
        }
    }

    async fn authorize_topic(
        &self,
        role: Option<&security::Role>,
        topic: &TopicName,
        op: security::TopicOperation<'_>,
    ) -> Result<(), BrokerError> {
        self.check_access(role, crate::Access::Topic(topic, op))
            .await
            .map_err(|e| e.for_broker(topic))
    }

    async fn authorize_namespace(
        &self,
        role: Option<&security::Role>,
        namespace: &NamespaceName,
        op: security::NamespaceOperation,
    ) -> Result<(), BrokerError> {
        self.check_access(role, crate::Access::Namespace(namespace, op))
            .await
            .map_err(|e| match e {
                PolicyError::NotAuthorized(m) => BrokerError::NotAuthorized(m),
                other => BrokerError::Metadata(format!("{namespace}: {other}")),
            })
    }

    async fn open(&self, topic: &TopicName) -> Result<ManagedLedger, BrokerError> {
        self.open_topic(topic)
            .await
            .map_err(|e| e.for_broker(topic))
    }

    async fn partitions(&self, topic: &TopicName) -> Result<u32, BrokerError> {
        PolicyService::partitions(self, topic)
            .await
            .map_err(|e| e.for_broker(topic))
    }

    async fn list(&self, namespace: &NamespaceName) -> Result<Vec<TopicName>, BrokerError> {
        let mut out = Vec::new();
        for domain in [Domain::Persistent, Domain::NonPersistent] {
            out.extend(
                self.list_topics(namespace, domain)
                    .await
                    .map_err(|e| BrokerError::Metadata(format!("{namespace}: {e}")))?,
            );
        }
        Ok(out)
    }

    async fn schema(
        &self,
        topic: &TopicName,
        version: Option<u64>,
    ) -> Result<Option<(u64, protocol::pb::Schema)>, BrokerError> {
        let found = self
            .get_schema(topic, version)
            .await
            .map_err(|e| e.for_broker(topic))?;
        Ok(found.map(|(v, e)| (v, e.to_wire())))
    }

    async fn producer_schema(
        &self,
        topic: &TopicName,
        schema: Option<&protocol::pb::Schema>,
    ) -> Result<Option<u64>, BrokerError> {
        self.admit_producer_schema(topic, schema)
            .await
            .map_err(|e| e.for_broker(topic))
    }

    async fn consumer_schema(
        &self,
        topic: &TopicName,
        schema: &protocol::pb::Schema,
        active: bool,
    ) -> Result<(), BrokerError> {
        self.admit_consumer_schema(topic, schema, active)
            .await
            .map_err(|e| e.for_broker(topic))
    }

    async fn deduplication(&self, topic: &TopicName) -> Result<bool, BrokerError> {
        let ns = self
            .store
            .policies(topic.namespace())
            .await
            .map_err(|e| e.for_broker(topic))?;
        let tp = self
            .store
            .topic_policies(topic)
            .await
            .map_err(|e| e.for_broker(topic))?;
        Ok(tp
            .deduplication_enabled
            .or(ns.deduplication_enabled)
            .unwrap_or(self.broker.deduplication))
    }

    async fn backlog_rules(&self, topic: &TopicName) -> Result<broker::BacklogRules, BrokerError> {
        let ns = self
            .store
            .policies(topic.namespace())
            .await
            .map_err(|e| e.for_broker(topic))?;
        let tp = self
            .store
            .topic_policies(topic)
            .await
            .map_err(|e| e.for_broker(topic))?;
        Ok(self.broker.backlog.rules(&ns, &tp))
    }

    async fn compaction_state(
        &self,
        topic: &TopicName,
    ) -> Result<Option<broker::CompactionState>, BrokerError> {
        self.store
            .compaction_state(topic)
            .await
            .map_err(|e| e.for_broker(topic))
    }

    async fn save_compaction_state(
        &self,
        topic: &TopicName,
        state: &broker::CompactionState,
    ) -> Result<(), BrokerError> {
        self.store
            .save_compaction_state(topic, state)
            .await
            .map_err(|e| e.for_broker(topic))
    }

    async fn open_compacted(
        &self,
        topic: &TopicName,
        generation: u64,
    ) -> Result<ManagedLedger, BrokerError> {
        self.open_compacted_ledger(topic, generation)
            .await
            .map_err(|e| e.for_broker(topic))
    }

    async fn delete_compacted(
        &self,
        topic: &TopicName,
        generation: u64,
    ) -> Result<(), BrokerError> {
        self.delete_compacted_ledger(topic, generation)
            .await
            .map_err(|e| e.for_broker(topic))
    }

    async fn dedup_snapshot(
        &self,
        topic: &TopicName,
    ) -> Result<Option<broker::DedupSnapshot>, BrokerError> {
        self.store
            .dedup_snapshot(topic)
            .await
            .map_err(|e| e.for_broker(topic))
    }

    async fn save_dedup_snapshot(
        &self,
        topic: &TopicName,
        snapshot: &broker::DedupSnapshot,
    ) -> Result<(), BrokerError> {
        self.store
            .save_dedup_snapshot(topic, snapshot)
            .await
            .map_err(|e| e.for_broker(topic))
    }
}

/// The managed ledger of generation `generation` of a topic's compacted view:
/// `tenant/ns/compacted/<encoded local>/<generation>`, outside every topic domain, so it is
/// never listed as a topic.
pub fn compacted_ledger_name(topic: &TopicName, generation: u64) -> String {
    format!("{}{generation}", compacted_ledger_prefix(topic))
}

/// What the names of every generation of a topic's compacted ledger start with.
fn compacted_ledger_prefix(topic: &TopicName) -> String {
    format!(
        "{}/{}/compacted/{}/",
        topic.tenant(),
        topic.namespace().local(),
        topic.encoded_local()
    )
}

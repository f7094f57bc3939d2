//! The broker service: the listener, the table of loaded topics, producer naming and schemas.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use ledger::ManagedLedger;
use once_map::OnceMap;
use protocol::{NamespaceName, TopicName};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::error::BrokerError;
use crate::non_persistent::NonPersistentTopic;
use crate::topic::Topic;

/// Where topics live and how they are configured: implemented by the policy layer (namespace
/// policies, the managed-ledger factory, partitioned-topic metadata, schemas).
#[async_trait::async_trait]
pub trait TopicStore: Send + Sync {
    /// Opens, creating if needed, the managed ledger behind a (non-partitioned or partition) topic,
    /// with the topic's effective policies.
    async fn open(&self, topic: &TopicName) -> Result<ManagedLedger, BrokerError>;
    /// Partition count of a partitioned topic; 0 for anything else.
    async fn partitions(&self, topic: &TopicName) -> Result<u32, BrokerError>;
    /// Every topic of a namespace, partitions listed one by one.
    async fn list(&self, namespace: &NamespaceName) -> Result<Vec<TopicName>, BrokerError>;
    /// A topic's schema (shared by the partitions of a partitioned topic) with its version: the
    /// latest, or `version`. `None` when there is none, or that version is a deletion.
    async fn schema(
        &self,
        topic: &TopicName,
        version: Option<u64>,
    ) -> Result<Option<(u64, protocol::pb::Schema)>, BrokerError>;
    /// A producer's schema (Pulsar's `addSchema`): the version it is, existing or new, or
    /// `IncompatibleSchema`. A producer without a schema gets `None`, unless the topic has a
    /// schema and `schemaValidationEnforced` is set: then it is refused.
    async fn producer_schema(
        &self,
        topic: &TopicName,
        schema: Option<&protocol::pb::Schema>,
    ) -> Result<Option<u64>, BrokerError>;
    /// A consumer's schema (Pulsar's `addSchemaIfIdleOrCheckCompatible`): stored as the topic's
    /// first schema when the topic has none and is not `active` (no producers, consumers or
    /// messages), else checked against the topic's schemas.
    async fn consumer_schema(
        &self,
        topic: &TopicName,
        schema: &protocol::pb::Schema,
        active: bool,
    ) -> Result<(), BrokerError>;
    /// Whether message deduplication is on for the topic (its namespace's setting, else the
    /// broker's `brokerDeduplicationEnabled`).
    async fn deduplication(&self, topic: &TopicName) -> Result<bool, BrokerError>;
    /// The topic's message TTL and backlog quotas (its namespace's, else the broker's
    /// defaults).
    async fn backlog_rules(&self, topic: &TopicName) -> Result<crate::BacklogRules, BrokerError>;
    /// Where the topic's compacted view stands, if it was ever compacted.
    async fn compaction_state(
        &self,
        topic: &TopicName,
    ) -> Result<Option<crate::CompactionState>, BrokerError>;
    async fn save_compaction_state(
        &self,
        topic: &TopicName,
        state: &crate::CompactionState,
    ) -> Result<(), BrokerError>;
    /// Opens (creating it) generation `generation` of the topic's compacted ledger: a managed
    /// ledger of its own, with the topic's policies (so it is offloaded as the topic is).
    async fn open_compacted(
        &self,
        topic: &TopicName,
        generation: u64,
    ) -> Result<ManagedLedger, BrokerError>;
    /// Deletes generation `generation` of the topic's compacted ledger, in every tier, if it
    /// exists.
    async fn delete_compacted(&self, topic: &TopicName, generation: u64)
    -> Result<(), BrokerError>;
    /// The topic's last deduplication snapshot, if any.
    async fn dedup_snapshot(
        &self,
        topic: &TopicName,
    ) -> Result<Option<crate::DedupSnapshot>, BrokerError>;
    async fn save_dedup_snapshot(
        &self,
        topic: &TopicName,
        snapshot: &crate::DedupSnapshot,
    ) -> Result<(), BrokerError>;
    /// Refuses (`BrokerError::NotAuthorized`) what `role` may not do to `topic`; `role` is
    /// `None` when authentication is off.
    async fn authorize_topic(
        &self,
        role: Option<&security::Role>,
        topic: &TopicName,
        op: security::TopicOperation<'_>,
    ) -> Result<(), BrokerError>;
    /// As [`authorize_topic`](Self::authorize_topic), for a namespace.
    async fn authorize_namespace(
        &self,
        role: Option<&security::Role>,
        namespace: &NamespaceName,
        op: security::NamespaceOperation,
    ) -> Result<(), BrokerError>;
    /// This broker stops serving the topic (in a cluster: its bundle was unloaded or the
    /// session lost): whatever the store keeps of it is dropped, so the next load reads it
    /// afresh (another broker may have written it meanwhile). With `seal`, the ledger being
    /// written is sealed first (not when the session was lost: writes are not ours to make).
    async fn release(&self, topic: &TopicName, seal: bool);
}

#[derive(Debug, Clone)]
pub struct BrokerServiceConfig {
    /// Reported in CONNECTED.
    pub server_version: String,
    /// `pulsar://host:port` handed out by LOOKUP (`None` with the plain port off).
    pub service_url: Option<String>,
    /// `pulsar+ssl://host:port` handed out by LOOKUP (`None` without the TLS port).
    pub service_url_tls: Option<String>,
    /// `advertisedListeners`: the URLs a lookup naming a listener is answered with.
    pub listeners: cluster::AdvertisedListeners,
    pub max_message_size: u32,
    /// Prefix of generated producer names (`<cluster>-<n>`).
    pub cluster_name: String,
    /// Unacknowledged limits, delayed delivery, batch-index acks.
    pub delivery: crate::subscription::DeliveryRules,
    /// `maxMessagePublishBufferSizeInMB`, in bytes: frames being received, all connections
    /// together; a connection over it is not read until others complete theirs.
    pub receive_buffer_bytes: usize,
    /// `keepAliveIntervalSeconds`: silence before a PING (and as long again before closing);
    /// also how long a new connection has for its TLS handshake and CONNECT.
    pub keepalive: std::time::Duration,
    /// `maxConnectionsPerIp` (0 = no limit).
    pub max_connections_per_ip: u32,
    /// `maxConcurrentLookupRequest`.
    pub max_concurrent_lookups: u32,
    /// `brokerDeduplicationEntriesInterval`: durable entries between deduplication snapshots.
    pub dedup_snapshot_interval: u64,
}

/// One connection counted against its address's `maxConnectionsPerIp`, until dropped.
struct IpSlot {
    svc: Arc<BrokerService>,
    ip: std::net::IpAddr,
}

impl IpSlot {
    /// `None` when the address already has its maximum of connections.
    fn take(svc: &Arc<BrokerService>, ip: std::net::IpAddr) -> Option<IpSlot> {
        let limit = svc.config.max_connections_per_ip;
        if limit == 0 {
            return Some(IpSlot {
                svc: Arc::clone(svc),
                ip,
            });
        }
        let mut counts = svc
            .connections_per_ip
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(ip).or_default();
        if *n >= limit {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            svc: Arc::clone(svc),
            ip,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        if self.svc.config.max_connections_per_ip == 0 {
            return;
        }
        let mut counts = self
            .svc
            .connections_per_ip
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Tells a client over its address's connection limit why, and closes (Pulsar answers
/// NotAllowedError before any handshake; a TLS client only sees the connection close).
async fn refuse_connection(
    mut stream: tokio::net::TcpStream,
    addr: std::net::SocketAddr,
    limit: u32,
) {
    use tokio::io::AsyncWriteExt;
    tracing::info!(peer = %addr, limit, "connection refused: maxConnectionsPerIp reached");
    let err = protocol::commands::error(
        u64::MAX,
        protocol::pb::ServerError::NotAllowedError,
        format!("Reached the maximum number of connections from this address ({limit})"),
    );
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        let _ = stream.write_all(&protocol::encode_command(&err)).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// A port the broker service listens on, with TLS or without.
pub struct Listener {
    pub tcp: TcpListener,
    pub tls: Option<Arc<security::TlsServer>>,
}

/// Who is at the other end of a connection, as far as the transport tells.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    pub addr: std::net::SocketAddr,
    /// The verified TLS client certificate's common name.
    pub tls_common_name: Option<String>,
}

pub struct BrokerService {
    pub(crate) store: Arc<dyn TopicStore>,
    /// Who connections are (CONNECT's credentials, the TLS client certificate).
    pub(crate) authenticator: Arc<security::Authenticator>,
    pub(crate) config: BrokerServiceConfig,
    pub(crate) receive_budget: protocol::io::ReceiveBudget,
    /// Lookups being answered (`maxConcurrentLookupRequest`).
    pub(crate) lookups: Arc<tokio::sync::Semaphore>,
    /// Open connections per client address (`maxConnectionsPerIp`).
    connections_per_ip: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, u32>>,
    /// Loaded topics; loading one does I/O, which never holds up loading another.
    topics: OnceMap<TopicName, Arc<Topic>>,
    /// Non-persistent topics with producers or subscriptions (in memory only).
    np_topics: std::sync::Mutex<HashMap<TopicName, Arc<NonPersistentTopic>>>,
    producer_names: AtomicU64,
    connection_ids: AtomicU64,
    connections: tokio::sync::Mutex<tokio::task::JoinSet<()>>,
    /// In a cluster, which topics this broker may serve; `None` for standalone (all).
    cluster: Option<Arc<cluster::Cluster>>,
}

impl BrokerService {
    pub fn new(store: Arc<dyn TopicStore>, config: BrokerServiceConfig) -> Arc<Self> {
        Self::with_cluster(
            store,
            config,
            None,
            Arc::new(security::Authenticator::disabled()),
        )
    }

    /// A broker of a cluster: it serves only topics whose bundle it owns, and LOOKUP answers
    /// with the owner.
    pub fn with_cluster(
        store: Arc<dyn TopicStore>,
        config: BrokerServiceConfig,
        cluster: Option<Arc<cluster::Cluster>>,
        authenticator: Arc<security::Authenticator>,
    ) -> Arc<Self> {
        Arc::new(BrokerService {
            cluster,
            store,
            authenticator,
            receive_budget: protocol::io::ReceiveBudget::new(config.receive_buffer_bytes),
            lookups: Arc::new(tokio::sync::Semaphore::new(
                config.max_concurrent_lookups as usize,
            )),
            connections_per_ip: Default::default(),
            config,
            topics: Default::default(),
            np_topics: Default::default(),
            producer_names: AtomicU64::new(0),
            connection_ids: AtomicU64::new(0),
            connections: Default::default(),
        })
    }

    pub fn config(&self) -> &BrokerServiceConfig {
        &self.config
    }

    pub fn cluster(&self) -> Option<&Arc<cluster::Cluster>> {
        self.cluster.as_ref()
    }

    /// Whether a durable SEND of `topic` may be acknowledged: always standalone; in a cluster
    /// only while this broker owns the topic's bundle under a session it knows is live.
    pub(crate) fn may_acknowledge(&self, topic: &TopicName) -> bool {
        self.cluster
            .as_ref()
            .is_none_or(|c| c.owns(topic).is_some())
    }

    /// Refuses a topic this broker does not own (in a cluster).
    fn check_owned(&self, name: &TopicName) -> Result<(), BrokerError> {
        match &self.cluster {
            Some(c) if c.owns(name).is_none() => Err(BrokerError::NotOwned(format!(
                "Namespace bundle for topic ({name}) not served by this instance: {}. Please redo the lookup.",
                c.me().id
            ))),
            _ => Ok(()),
        }
    }

    /// Serves connections on every listener until `shutdown` turns true; then closes them all
    /// and flushes the subscriptions' pending acknowledgements.
    pub async fn serve(self: Arc<Self>, listeners: Vec<Listener>, shutdown: watch::Receiver<bool>) {
        let loops: Vec<_> = listeners
            .into_iter()
            .map(|l| tokio::spawn(Arc::clone(&self).accept_loop(l, shutdown.clone())))
            .collect();
        for l in loops {
            let _ = l.await;
        }
        let mut conns = std::mem::take(&mut *self.connections.lock().await);
        while conns.join_next().await.is_some() {}
        self.close().await;
    }

    async fn accept_loop(self: Arc<Self>, listener: Listener, shutdown: watch::Receiver<bool>) {
        let mut stopping = shutdown.clone();
        loop {
            tokio::select! {
                accepted = listener.tcp.accept() => match accepted {
                    Ok((stream, addr)) => {
                        let _ = stream.set_nodelay(true);
                        let id = self.connection_ids.fetch_add(1, Ordering::Relaxed);
                        let svc = Arc::clone(&self);
                        let stop = shutdown.clone();
                        let tls = listener.tls.clone();
                        let Some(slot) = IpSlot::take(&self, addr.ip()) else {
                            tokio::spawn(refuse_connection(stream, addr, self.config.max_connections_per_ip));
                            continue;
                        };
                        self.connections.lock().await.spawn(async move {
                            let _slot = slot;
                            let Some(tls) = tls else {
                                let (rd, wr) = stream.into_split();
                                let peer = Peer { addr, tls_common_name: None };
                                return crate::connection::run(svc, rd, wr, peer, id, stop).await;
                            };
                            match tls.accept(stream, svc.config.keepalive).await {
                                Ok(a) => {
                                    let (rd, wr) = tokio::io::split(a.stream);
                                    let peer = Peer { addr, tls_common_name: a.client_common_name };
                                    crate::connection::run(svc, rd, wr, peer, id, stop).await;
                                }
                                Err(e) => {
                                    tracing::debug!(peer = %addr, error = %e, "TLS handshake failed");
                                }
                            }
                        });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                },
                _ = until_true(&mut stopping) => break,
            }
        }
    }

    /// Stops every subscription's dispatcher and persists its pending acks.
    pub async fn close(&self) {
        for t in self.topics.drain() {
            t.close().await;
        }
    }

    /// The loaded topic, loading (and creating) it on first use.
    pub async fn topic(&self, name: &TopicName) -> Result<Arc<Topic>, BrokerError> {
        self.check_owned(name)?;
        self.topics
            .get_or_try_init(name.clone(), || async {
                let ml = self.store.open(name).await?;
                // Every metadata write of the topic checks that this broker still owns it.
                if let Some(c) = &self.cluster {
                    ml.set_fence(
                        c.fence(name)
                            .map(|(key, version)| ledger::Fence { key, version }),
                    );
                }
                Ok(Arc::new(Topic::new(
                    name.clone(),
                    ml,
                    self.config.delivery,
                    Arc::clone(&self.store),
                )))
            })
            .await
    }

    /// The non-persistent topic `name`, created in memory on first use.
    pub(crate) fn np_topic(
        &self,
        name: &TopicName,
    ) -> Result<Arc<NonPersistentTopic>, BrokerError> {
        self.check_owned(name)?;
        let mut topics = self.np_topics.lock().unwrap_or_else(|e| e.into_inner());
        Ok(Arc::clone(topics.entry(name.clone()).or_insert_with(
            || Arc::new(NonPersistentTopic::new(name.clone())),
        )))
    }

    /// Forgets a non-persistent topic left without producers and subscriptions.
    pub(crate) fn forget_np_topic_if_idle(&self, name: &TopicName) {
        let mut topics = self.np_topics.lock().unwrap_or_else(|e| e.into_inner());
        if topics.get(name).is_some_and(|t| t.is_idle()) {
            topics.remove(name);
        }
    }

    /// The non-persistent topics of a namespace this broker has now.
    pub fn np_topics_of(&self, namespace: &NamespaceName) -> Vec<TopicName> {
        let topics = self.np_topics.lock().unwrap_or_else(|e| e.into_inner());
        let mut names: Vec<TopicName> = topics
            .keys()
            .filter(|t| t.namespace() == namespace)
            .cloned()
            .collect();
        names.sort_by_key(|t| t.to_string());
        names
    }

    /// A loaded non-persistent topic.
    pub fn np_loaded(&self, name: &TopicName) -> Option<Arc<NonPersistentTopic>> {
        let topics = self.np_topics.lock().unwrap_or_else(|e| e.into_inner());
        topics.get(name).cloned()
    }

    /// Pulsar's `TopicStats` of a topic (loading it if needed).
    pub async fn topic_stats(
        &self,
        name: &TopicName,
    ) -> Result<crate::stats::TopicStats, BrokerError> {
        Ok(self.topic(name).await?.stats().await)
    }

    /// The topic if it is loaded.
    pub fn loaded(&self, name: &TopicName) -> Option<Arc<Topic>> {
        self.topics.get(name)
    }

    /// Unloads a topic: its subscriptions stop and persist their acknowledgements. In a
    /// cluster its clients are disconnected (to look it up again) and its managed ledger is
    /// released.
    pub async fn unload(&self, name: &TopicName) {
        if let Some(t) = self.topics.remove(name) {
            if self.cluster.is_some() {
                let _ = t.fence_for_delete(true).await;
            }
            t.close().await;
            if self.cluster.is_some() {
                self.store.release(name, true).await;
            }
        }
    }

    /// Drops every loaded topic, disconnecting its clients (the session was lost: this broker
    /// owns nothing any more; its ledgers are left for their next owner to seal). Pending
    /// acknowledgements are still persisted behind the fence: they land only if no other
    /// broker took the topic meanwhile.
    pub async fn drop_all(&self) -> usize {
        let mut n = 0;
        for t in self.topics.drain() {
            let _ = t.fence_for_delete(true).await;
            t.close().await;
            self.store.release(&t.name, false).await;
            n += 1;
        }
        n
    }

    /// Unloads every loaded topic of `bundle`, closing its producers and consumers so their
    /// clients look the topic up again (before the bundle is released or moved).
    pub async fn unload_bundle(&self, bundle: &cluster::Bundle) -> usize {
        let mut n = 0;
        for t in self.topics.values() {
            let in_bundle = self
                .cluster
                .as_ref()
                .is_some_and(|c| c.bundle_of(&t.name) == *bundle);
            if in_bundle {
                // Forced: cannot be refused.
                let _ = t.fence_for_delete(true).await;
                self.topics.remove(&t.name);
                t.close().await;
                self.store.release(&t.name, true).await;
                n += 1;
            }
        }
        n
    }

    /// Samples every loaded topic's counters for rates and closes its latency interval
    /// (Pulsar's stats update every `statsUpdateFrequencyInSecs`).
    pub async fn sample_stats(&self) {
        let now = std::time::Instant::now();
        for t in self.topics.values() {
            t.sample_stats(now).await;
        }
    }

    /// Every loaded topic's stats (for metrics).
    pub async fn all_topic_stats(&self) -> Vec<(TopicName, crate::stats::TopicStats)> {
        let mut out = Vec::new();
        for t in self.topics.values() {
            out.push((t.name.clone(), t.stats().await));
        }
        out.sort_by_key(|a| a.0.to_string());
        out
    }

    /// Expires the messages past their TTL on every loaded topic (Pulsar's check every
    /// `messageExpiryCheckIntervalInMinutes`).
    pub async fn check_message_expiry(&self) {
        for t in self.topics.values() {
            let ttl = match self.store.backlog_rules(&t.name).await {
                Ok(rules) => rules.ttl,
                Err(e) => {
                    tracing::debug!(topic = %t.name, error = %e, "message TTL unknown: not checked");
                    continue;
                }
            };
            if let Some(ttl) = ttl {
                match t.expire_messages(ttl, None).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(topic = %t.name, entries = n, ttl_s = ttl.as_secs(), "messages past their TTL expired")
                    }
                    Err(e) => {
                        tracing::warn!(topic = %t.name, error = %e, "expiring messages failed")
                    }
                }
            }
        }
    }

    /// Enforces the backlog quotas of every loaded topic (Pulsar's check every
    /// `backlogQuotaCheckIntervalInSeconds`).
    pub async fn check_backlog_quotas(&self) {
        for t in self.topics.values() {
            let rules = match self.store.backlog_rules(&t.name).await {
                Ok(rules) => rules,
                Err(e) => {
                    tracing::debug!(topic = %t.name, error = %e, "backlog quotas unknown: not checked");
                    continue;
                }
            };
            if let Err(e) = t.enforce_quota(&rules).await {
                tracing::warn!(topic = %t.name, error = %e, "enforcing the backlog quota failed");
            }
        }
    }

    /// The messages published more than `age` ago on a topic are acknowledged for
    /// subscription `only` (every subscription if `None`); returns how many entries.
    pub async fn expire_messages(
        &self,
        name: &TopicName,
        age: std::time::Duration,
        only: Option<&str>,
    ) -> Result<u64, BrokerError> {
        let t = self.topic(name).await?;
        if let Some(sub) = only
            && t.ml.cursor(sub).await.is_none()
        {
            return Err(BrokerError::SubscriptionNotFound(sub.to_string()));
        }
        t.expire_messages(age, only).await
    }

    /// Compacts the loaded topics with more uncompacted bytes than their compaction threshold
    /// (Pulsar's check every `brokerServiceCompactionMonitorIntervalInSeconds`).
    pub async fn check_compaction(&self) {
        for t in self.topics.values() {
            let Ok(rules) = self.store.backlog_rules(&t.name).await else {
                continue;
            };
            let Some(threshold) = rules.compaction_threshold else {
                continue;
            };
            let pending = t.uncompacted_bytes().await;
            if pending > threshold as i64 {
                match t.trigger_compaction() {
                    Ok(()) => {
                        tracing::info!(topic = %t.name, pending, threshold, "compaction threshold reached: compacting")
                    }
                    Err(BrokerError::AlreadyRunning(_)) => {}
                    Err(e) => {
                        tracing::warn!(topic = %t.name, error = %e, "starting compaction failed")
                    }
                }
            }
        }
    }

    /// Starts compacting a topic (loading it if needed).
    pub async fn compact(&self, name: &TopicName) -> Result<(), BrokerError> {
        self.topic(name).await?.trigger_compaction()
    }

    /// A topic's compaction status since it was loaded.
    pub async fn compaction_status(
        &self,
        name: &TopicName,
    ) -> Result<crate::CompactionStatus, BrokerError> {
        Ok(self.topic(name).await?.compaction_status())
    }

    /// Producers and consumers attached to a loaded topic (0 when it is not loaded).
    pub async fn attached_clients(&self, name: &TopicName) -> usize {
        match self.topics.get(name) {
            Some(t) => t.attached_clients().await,
            None => 0,
        }
    }

    /// Unloads a topic about to be deleted. As Pulsar: refused with [`BrokerError::TopicBusy`]
    /// while producers or consumers are attached, unless `force`, which closes them first.
    /// Once this returns Ok the topic takes no client until it is deleted (and a new one is
    /// loaded only after).
    pub async fn unload_for_delete(
        &self,
        name: &TopicName,
        force: bool,
    ) -> Result<(), BrokerError> {
        if let Some(t) = self.topics.get(name) {
            t.fence_for_delete(force).await?;
            self.topics.remove(name);
            t.close().await;
        }
        Ok(())
    }

    pub(crate) fn generate_producer_name(&self) -> String {
        let n = self.producer_names.fetch_add(1, Ordering::Relaxed);
        format!("{}-{}-{n}", self.config.cluster_name, boot_id())
    }
}

/// Distinguishes producer names generated by different runs of the broker.
fn boot_id() -> u64 {
    static ID: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *ID.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() % 1_000_000)
            .unwrap_or(0)
    })
}

/// Schema versions travel as 8-byte big-endian numbers (Pulsar's `LongSchemaVersion`).
pub(crate) fn schema_version_bytes(v: u64) -> Bytes {
    Bytes::copy_from_slice(&v.to_be_bytes())
}

/// A schema version from the wire; `None` (the latest) for anything but 8 bytes.
pub(crate) fn schema_version_from_bytes(b: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(b).ok().map(u64::from_be_bytes)
}

/// Resolves once the flag turns true (never, if its sender is gone while false). Unlike
/// `wait_for`, holds no guard across the await, so the future stays `Send`.
pub(crate) async fn until_true(rx: &mut watch::Receiver<bool>) {
    loop {
        let done = *rx.borrow_and_update();
        if done {
            return;
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

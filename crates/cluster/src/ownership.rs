//! Registration, ownership and placement (see the crate documentation for the keys).
//!
//! Placement: a lookup of a topic whose bundle nobody owns picks the broker that owned it last
//! if that one is live (bundles are sticky: local-tier topics keep their data on their
//! broker's disk, so an unload or a restart brings them back there), else the live broker
//! owning the fewest bundles (ties: the smallest id); if that is this broker it takes the bundle
//! (create-if-absent on its lease), otherwise the client is redirected there with
//! `authoritative` set, and that broker takes it. Two brokers racing for one bundle: the
//! create-if-absent lets exactly one win, the other answers with the winner.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meta::{Expected, LeaseId, MetaError, MetadataStore, Op, Session, key_segment};
use protocol::{NamespaceName, TopicName};
use serde::{Deserialize, Serialize};

use crate::bundles::{Bundle, bundle_of};
use crate::listeners::AdvertisedListeners;
use crate::{ClusterError, Result};

const BROKERS: &str = "/loadbalance/brokers/";
const OWNERS: &str = "/namespace/";
/// The last owner of each bundle (persistent), for sticky placement.
const LAST_OWNERS: &str = "/tierlog/bundle-last-owner/";

/// A broker as the others reach it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerInfo {
    /// `advertisedAddress:webServicePort`, Pulsar's broker id.
    #[serde(rename = "brokerId")]
    pub id: String,
    /// `pulsar://host:port`
    #[serde(rename = "pulsarServiceUrl")]
    pub broker_url: String,
    /// `http://host:port`
    #[serde(rename = "webServiceUrl")]
    pub web_url: String,
    /// `pulsar+ssl://host:port` when the broker has a TLS port.
    #[serde(
        rename = "pulsarServiceUrlTls",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub broker_url_tls: Option<String>,
    /// `https://host:port` when the broker has a TLS web port.
    #[serde(
        rename = "webServiceUrlTls",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub web_url_tls: Option<String>,
    /// Its `advertisedListeners`, by name.
    #[serde(
        rename = "advertisedListeners",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub advertised_listeners: AdvertisedListeners,
}

/// The value of an ownership key (Pulsar's `NamespaceEphemeralData` fields, plus the lease
/// it was written on, which tells this broker's own keys from a previous run's).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct OwnerRecord {
    #[serde(rename = "nativeUrl")]
    native_url: String,
    #[serde(rename = "httpUrl")]
    http_url: String,
    #[serde(
        rename = "nativeUrlTls",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    native_url_tls: Option<String>,
    #[serde(
        rename = "httpUrlTls",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    http_url_tls: Option<String>,
    #[serde(
        rename = "advertisedListeners",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    advertised_listeners: AdvertisedListeners,
    #[serde(rename = "brokerId")]
    broker_id: String,
    #[serde(default)]
    disabled: bool,
    lease: i64,
}

/// Who serves a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// This broker (it owns, or has just taken, the topic's bundle).
    This,
    /// Another broker: redirect the client there.
    Other(BrokerInfo),
}

/// This broker's membership of the cluster and the bundles it owns.
pub struct Cluster {
    meta: Arc<dyn MetadataStore>,
    /// The current session: replaced by [`Cluster::rejoin`] after one was lost.
    session: std::sync::RwLock<Arc<Session>>,
    ttl: Duration,
    me: BrokerInfo,
    /// The split of every namespace (`defaultNumberOfNamespaceBundles`).
    boundaries: Vec<u32>,
    /// Owned bundles and their fencing tokens. Never held across I/O.
    owned: Mutex<HashMap<Bundle, u64>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("me", &self.me)
            .field("session", &self.session())
            .finish_non_exhaustive()
    }
}

/// Starts a session of `ttl` and registers `me` on it. If a registration of the same id is
/// still there (this broker restarted, or rejoins, before its old lease expired), waits up to
/// the TTL plus a margin for it to go.
async fn register(
    meta: &Arc<dyn MetadataStore>,
    me: &BrokerInfo,
    ttl: Duration,
) -> Result<Session> {
    let session = Session::start(Arc::clone(meta), ttl).await?;
    let key = broker_key(&me.id);
    let started = std::time::Instant::now();
    let patience = ttl + Duration::from_secs(5);
    loop {
        let put = meta
            .commit(vec![Op::put_leased(
                key.clone(),
                encode(me),
                Expected::Absent,
                session.lease(),
            )])
            .await;
        match put {
            Ok(_) => break,
            Err(MetaError::Conflict { .. }) if started.elapsed() < patience => {
                tracing::info!(id = %me.id, "waiting for the previous registration of this broker to expire");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(MetaError::Conflict { .. }) => {
                return Err(ClusterError::AlreadyRegistered {
                    id: me.id.clone(),
                    waited_ms: started.elapsed().as_millis() as u64,
                });
            }
            Err(e) => return Err(e.into()),
        }
    }
    tracing::info!(id = %me.id, lease = %session.lease(), "joined the cluster");
    Ok(session)
}

fn broker_key(id: &str) -> String {
    format!("{BROKERS}{}", key_segment(id))
}

/// `<prefix><tenant>/<ns>/<range>`
fn bundle_key(prefix: &str, b: &Bundle) -> String {
    format!(
        "{prefix}{}/{}/{}",
        key_segment(b.namespace.tenant()),
        key_segment(b.namespace.local()),
        b.range()
    )
}

fn owner_key(b: &Bundle) -> String {
    bundle_key(OWNERS, b)
}

fn last_owner_key(b: &Bundle) -> String {
    bundle_key(LAST_OWNERS, b)
}

fn decode<T: serde::de::DeserializeOwned>(key: &str, raw: &[u8]) -> Result<T> {
    serde_json::from_slice(raw).map_err(|e| ClusterError::BadValue {
        key: key.to_string(),
        detail: e.to_string(),
    })
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    // Plain structs of strings and numbers always serialise.
    serde_json::to_vec(v).unwrap_or_default()
}

impl Cluster {
    /// Starts a session of `ttl` and registers `me` on it. If a registration of the same id is
    /// still there (this broker restarted before its old lease expired), waits up to the TTL
    /// plus a margin for it to go.
    pub async fn join(
        meta: Arc<dyn MetadataStore>,
        me: BrokerInfo,
        ttl: Duration,
        bundles_per_namespace: u32,
    ) -> Result<Cluster> {
        let session = register(&meta, &me, ttl).await?;
        Ok(Cluster {
            meta,
            session: std::sync::RwLock::new(Arc::new(session)),
            ttl,
            me,
            boundaries: crate::bundles::boundaries(bundles_per_namespace),
            owned: Mutex::new(HashMap::new()),
        })
    }

    /// After the session was lost: starts a new one and registers again (waiting, as
    /// [`join`](Self::join), for the old registration to expire). This broker owns nothing
    /// until lookups give it bundles again.
    pub async fn rejoin(&self) -> Result<()> {
        self.owned().clear();
        let session = register(&self.meta, &self.me, self.ttl).await?;
        *self.session.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(session);
        Ok(())
    }

    fn session(&self) -> Arc<Session> {
        Arc::clone(&self.session.read().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn me(&self) -> &BrokerInfo {
        &self.me
    }

    pub fn lease(&self) -> LeaseId {
        self.session().lease()
    }

    /// Resolves when this broker's session is lost: it owns nothing from then on.
    pub async fn session_lost(&self) {
        self.session().lost().await
    }

    fn owned(&self) -> std::sync::MutexGuard<'_, HashMap<Bundle, u64>> {
        self.owned.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The bundle of `topic`.
    pub fn bundle_of(&self, topic: &TopicName) -> Bundle {
        bundle_of(topic, &self.boundaries)
    }

    /// The bundles of `namespace`.
    pub fn bundles(&self, namespace: &NamespaceName) -> Vec<Bundle> {
        crate::bundles::bundles(namespace, &self.boundaries)
    }

    /// The fencing token of `topic`'s bundle if this broker owns it (and its session lives).
    pub fn owns(&self, topic: &TopicName) -> Option<u64> {
        if !self.session().is_alive() {
            return None;
        }
        self.owned().get(&self.bundle_of(topic)).copied()
    }

    /// The ownership key of `topic`'s bundle and its token, for fencing checks.
    pub fn fence(&self, topic: &TopicName) -> Option<(String, u64)> {
        let b = self.bundle_of(topic);
        self.owns(topic).map(|t| (owner_key(&b), t))
    }

    /// The bundles this broker owns, in order.
    pub fn owned_bundles(&self) -> Vec<Bundle> {
        let mut v: Vec<_> = self.owned().keys().cloned().collect();
        v.sort();
        v
    }

    /// Live brokers, by id.
    pub async fn brokers(&self) -> Result<Vec<BrokerInfo>> {
        let mut out = Vec::new();
        for (key, v) in self.meta.scan(BROKERS).await? {
            out.push(decode::<BrokerInfo>(&key, &v.value)?);
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Every owned bundle in the cluster and its owner's id.
    pub async fn ownerships(&self) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for (key, v) in self.meta.scan(OWNERS).await? {
            let r: OwnerRecord = decode(&key, &v.value)?;
            out.push((key, r.broker_id));
        }
        Ok(out)
    }

    /// The owner of `b` and the version of its ownership key.
    async fn owner_record(&self, b: &Bundle) -> Result<Option<(OwnerRecord, u64)>> {
        let key = owner_key(b);
        match self.meta.get(&key).await? {
            Some(v) => Ok(Some((decode(&key, &v.value)?, v.version))),
            None => Ok(None),
        }
    }

    /// Where an unowned `bundle` goes: its last owner if live, else the live broker owning the
    /// fewest bundles (ties: the smallest id).
    async fn place(&self, bundle: &Bundle) -> Result<BrokerInfo> {
        let brokers = self.brokers().await?;
        let key = last_owner_key(bundle);
        if let Some(v) = self.meta.get(&key).await? {
            let last: String = decode(&key, &v.value)?;
            if let Some(b) = brokers.iter().find(|b| b.id == last) {
                return Ok(b.clone());
            }
        }
        let mut load: HashMap<String, usize> = HashMap::new();
        for (_, owner) in self.ownerships().await? {
            *load.entry(owner).or_default() += 1;
        }
        Ok(brokers
            .into_iter()
            .min_by_key(|b| (load.get(&b.id).copied().unwrap_or(0), b.id.clone()))
            .unwrap_or_else(|| self.me.clone()))
    }

    /// Who serves `topic`; takes its bundle if nobody owns it and this broker is the one to
    /// (it is the least loaded, or the lookup is authoritative: another broker chose it).
    pub async fn lookup(&self, topic: &TopicName, authoritative: bool) -> Result<Owner> {
        if !self.session().is_alive() {
            return Err(ClusterError::SessionLost);
        }
        let bundle = self.bundle_of(topic);
        if self.owned().contains_key(&bundle) {
            return Ok(Owner::This);
        }
        // Twice at most: a lost race for the bundle is answered with the winner.
        for _ in 0..2 {
            match self.owner_record(&bundle).await? {
                // Ours, though not recorded: an acquisition whose answer was lost (unknown
                // outcome). Its version is the token.
                Some((r, version)) if r.lease == self.lease().0 => {
                    self.owned().insert(bundle.clone(), version);
                    return Ok(Owner::This);
                }
                Some((r, _)) if r.broker_id == self.me.id => {
                    return Err(ClusterError::StaleOwnership {
                        bundle: bundle.to_string(),
                    });
                }
                Some((r, _)) => {
                    return Ok(Owner::Other(BrokerInfo {
                        id: r.broker_id,
                        broker_url: r.native_url,
                        web_url: r.http_url,
                        broker_url_tls: r.native_url_tls,
                        web_url_tls: r.http_url_tls,
                        advertised_listeners: r.advertised_listeners,
                    }));
                }
                None => {
                    let target = if authoritative {
                        self.me.clone()
                    } else {
                        self.place(&bundle).await?
                    };
                    if target.id != self.me.id {
                        return Ok(Owner::Other(target));
                    }
                    if self.acquire(&bundle).await? {
                        return Ok(Owner::This);
                    }
                }
            }
        }
        Err(ClusterError::Meta(MetaError::Conflict {
            key: owner_key(&bundle),
            expected: Expected::Absent,
            found: None,
        }))
    }

    /// Takes `bundle` if nobody owns it; false if another broker got there first.
    async fn acquire(&self, bundle: &Bundle) -> Result<bool> {
        let record = OwnerRecord {
            native_url: self.me.broker_url.clone(),
            http_url: self.me.web_url.clone(),
            native_url_tls: self.me.broker_url_tls.clone(),
            http_url_tls: self.me.web_url_tls.clone(),
            advertised_listeners: self.me.advertised_listeners.clone(),
            broker_id: self.me.id.clone(),
            disabled: false,
            lease: self.lease().0,
        };
        let put = self
            .meta
            .commit(vec![
                Op::put_leased(
                    owner_key(bundle),
                    encode(&record),
                    Expected::Absent,
                    self.lease(),
                ),
                Op::put(last_owner_key(bundle), encode(&self.me.id), Expected::Any),
            ])
            .await;
        match put {
            Ok(token) => {
                tracing::info!(%bundle, token, "took ownership of bundle");
                self.owned().insert(bundle.clone(), token);
                Ok(true)
            }
            Err(MetaError::Conflict { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Gives up `bundle` (its topics must be closed first): the next lookup places it anew.
    pub async fn release(&self, bundle: &Bundle) -> Result<()> {
        let Some(token) = self.owned().remove(bundle) else {
            return Ok(());
        };
        match self
            .meta
            .delete(&owner_key(bundle), Expected::Version(token))
            .await
        {
            // Already gone (or someone else's now): nothing of ours to delete.
            Ok(()) | Err(MetaError::Conflict { .. }) => {
                tracing::info!(%bundle, "released bundle");
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Leaves the cluster: deletes the registration and every ownership now (revoking the
    /// lease), instead of letting them expire.
    pub async fn leave(&self) -> Result<()> {
        self.owned().clear();
        self.meta.revoke_lease(self.lease()).await?;
        tracing::info!(id = %self.me.id, "left the cluster");
        Ok(())
    }
}

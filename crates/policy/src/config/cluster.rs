//! The keys of a cluster broker (`tierlog broker`): where the metadata lives
//! (`metadataStoreUrl`), its session and bundles, the object-storage WAL's batching, and the
//! advertised listeners.

use super::{ConfigError, Properties, SecuritySettings};

/// Where the broker's metadata lives (`metadataStoreUrl`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataBackend {
    /// Unset: the embedded redb store under the data directory (`metadata.redb`).
    Embedded,
    /// `etcd:http://host:2379[,http://host2:2379]`: an etcd cluster's members.
    Etcd(Vec<String>),
}

impl MetadataBackend {
    const ALLOWED: &'static str = "unset (embedded) or etcd:http://host:port[,http://host:port…]";

    fn parse(key: &str, v: &str) -> Result<MetadataBackend, ConfigError> {
        let bad = |why: &str| ConfigError::InvalidValue {
            key: key.into(),
            value: v.into(),
            allowed: format!("{} ({why})", Self::ALLOWED),
        };
        let Some(list) = v.strip_prefix("etcd:") else {
            return Err(bad("only etcd is supported"));
        };
        let endpoints: Vec<String> = list
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_string)
            .collect();
        if endpoints.is_empty() {
            return Err(bad("no endpoint"));
        }
        for e in &endpoints {
            let Some(rest) = e.strip_prefix("http://") else {
                return Err(bad(
                    "endpoints are http://host:port; TLS to etcd is not supported yet",
                ));
            };
            if rest.is_empty() || rest.starts_with(['/', ':']) {
                return Err(bad("an endpoint has no host"));
            }
        }
        Ok(MetadataBackend::Etcd(endpoints))
    }
}

/// The object-storage WAL's batching (tierlog's keys, in Pulsar's style).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalSettings {
    /// `objectStorageWalFlushIntervalMs` (250): the longest an entry waits for its flush.
    pub flush_interval: std::time::Duration,
    /// `objectStorageWalFlushMaxBytes` (8 MiB): a flush starts once this much is buffered.
    pub flush_max_bytes: usize,
    /// `objectStorageWalMaxExtentsPerLedger` (2000): an object-tier ledger rolls over at this
    /// many flushes, which bounds its keys in the metadata store until its rewrite.
    pub max_extents_per_ledger: usize,
}

/// A cluster broker's coordination settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// `metadataStoreSessionTimeoutMillis`: the TTL of the broker's session lease; its
    /// registration and bundles are taken over this long after it dies (tierlog default 10 s).
    pub session_timeout: std::time::Duration,
    /// `defaultNumberOfNamespaceBundles` (4): the bundles every namespace is split into.
    pub bundles_per_namespace: u32,
    /// `zookeeperSessionExpiredPolicy` (Pulsar's key and default, `reconnect`): what a broker
    /// does when its session is lost.
    pub session_expired: SessionExpiredPolicy,
    /// `etcdCompactionIntervalSeconds` (tierlog's key, 300 as Kubernetes' API server; 0: off,
    /// for an etcd run with `--auto-compaction-retention`): how often a broker on etcd compacts
    /// its history, to the revision it read one interval earlier.
    pub etcd_compaction_interval: Option<std::time::Duration>,
}

/// What a broker does when its metadata session is lost (it owns nothing from then on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionExpiredPolicy {
    /// Drop every topic (clients look them up again) and register anew once the metadata
    /// store answers; lookups give bundles back from then on.
    Reconnect,
    /// Exit (non-zero), for a supervisor to restart.
    Shutdown,
}

/// `metadataStoreUrl` (unset: embedded), and `configurationMetadataStoreUrl`, which may only
/// name the same store.
pub(super) fn parse_metadata_store(raw: &mut Properties) -> Result<MetadataBackend, ConfigError> {
    let metadata_store = match raw.take("metadataStoreUrl") {
        None => MetadataBackend::Embedded,
        Some(v) => MetadataBackend::parse("metadataStoreUrl", &v)?,
    };
    if let Some(v) = raw.take("configurationMetadataStoreUrl") {
        let config_store = MetadataBackend::parse("configurationMetadataStoreUrl", &v)?;
        if config_store != metadata_store {
            return Err(ConfigError::InvalidValue {
                key: "configurationMetadataStoreUrl".into(),
                value: v,
                allowed: "unset, or the same store as metadataStoreUrl".into(),
            });
        }
    }
    Ok(metadata_store)
}

/// The session lease, bundles and session-loss policy of a cluster broker.
pub(super) fn parse_settings(raw: &mut Properties) -> Result<ClusterSettings, ConfigError> {
    Ok(ClusterSettings {
        session_timeout: std::time::Duration::from_millis(raw.unsigned(
            "metadataStoreSessionTimeoutMillis",
            10_000,
            1_000,
            600_000,
        )?),
        bundles_per_namespace: raw.unsigned("defaultNumberOfNamespaceBundles", 4, 1, 1024)? as u32,
        session_expired: raw.choice(
            "zookeeperSessionExpiredPolicy",
            SessionExpiredPolicy::Reconnect,
            |v| match v {
                "reconnect" => Some(SessionExpiredPolicy::Reconnect),
                "shutdown" => Some(SessionExpiredPolicy::Shutdown),
                _ => None,
            },
            "reconnect or shutdown",
        )?,
        etcd_compaction_interval: match raw.unsigned(
            "etcdCompactionIntervalSeconds",
            300,
            0,
            86_400,
        )? {
            0 => None,
            s => Some(std::time::Duration::from_secs(s)),
        },
    })
}

/// The object-storage WAL's flush triggers and its extents per ledger.
pub(super) fn parse_wal(raw: &mut Properties) -> Result<WalSettings, ConfigError> {
    Ok(WalSettings {
        flush_interval: std::time::Duration::from_millis(raw.unsigned(
            "objectStorageWalFlushIntervalMs",
            250,
            1,
            60_000,
        )?),
        flush_max_bytes: raw.unsigned("objectStorageWalFlushMaxBytes", 8 << 20, 1 << 10, 1 << 30)?
            as usize,
        max_extents_per_ledger: raw.unsigned(
            "objectStorageWalMaxExtentsPerLedger",
            2000,
            1,
            1_000_000,
        )? as usize,
    })
}

/// `advertisedListeners` and `internalListenerName`, checked against the ports that are on.
pub(super) fn parse_listeners(
    raw: &mut Properties,
    explicit_address: bool,
    security: &SecuritySettings,
) -> Result<cluster::ListenerSettings, ConfigError> {
    let internal = raw.take("internalListenerName");
    let Some(value) = raw.take("advertisedListeners") else {
        return Ok(cluster::ListenerSettings::default());
    };
    let invalid = |allowed: String| ConfigError::InvalidValue {
        key: "advertisedListeners".into(),
        value: value.clone(),
        allowed,
    };
    if explicit_address {
        return Err(invalid(
            "not together with advertisedAddress (the internal listener's host is the advertised address)".into(),
        ));
    }
    cluster::parse_listeners(
        &value,
        internal.as_deref(),
        security.broker_port.is_some(),
        security.broker_port_tls.is_some(),
    )
    .map_err(|e| match e {
        cluster::ListenerError::UnknownInternal { name } => ConfigError::InvalidValue {
            key: "internalListenerName".into(),
            value: name,
            allowed: "one of the names in advertisedListeners".into(),
        },
        e => invalid(e.to_string()),
    })
}

//! Broker configuration: the lowest policy level, parsed once from Pulsar's `key=value`
//! properties with Pulsar's key names. Validation names the key, the value and what is allowed.
//!
//! The binary reads the file and the environment into [`Properties`]; everything from there on
//! happens here. Offload keys (`managedLedgerOffload*`, `s3ManagedLedgerOffload*`,
//! `gcsManagedLedgerOffload*`, `fileSystem*`) become the broker's [`OffloadPolicies`], the same
//! type namespace and topic policies use, and are resolved by the same code.

use std::path::PathBuf;

use ::offload::ClientSettings;
use ledger::ManagedLedgerConfig;

use crate::offload_policies::{OffloadDefaults, OffloadPolicies};

mod backlog;
mod cluster;
mod hot_tier;
mod ledger_metadata;
mod metrics;
mod offload;
mod properties;
mod security;
pub use backlog::BacklogSettings;
pub use cluster::{ClusterSettings, MetadataBackend, SessionExpiredPolicy, WalSettings};
pub use hot_tier::HotTierSettings;
pub use metrics::MetricsSettings;
pub use offload::{OffloadCacheSettings, OrphanGcSettings};
pub use properties::{Properties, PropertyValue};
pub use security::SecuritySettings;

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid value for {key}: {value:?} (allowed: {allowed})")]
    InvalidValue {
        key: String,
        value: String,
        allowed: String,
    },
    #[error("{path}:{line}: expected key=value, found {text:?}")]
    Syntax {
        path: String,
        line: usize,
        text: String,
    },
    /// A key holding key material is unusable (its value is not shown: it may be the key).
    #[error("invalid value for {key}: {reason}")]
    Secret { key: String, reason: String },
    /// The offload settings describe no usable offload location.
    #[error("offload configuration refused: {0}")]
    Offload(#[source] ::offload::OffloadError),
}

/// Every setting of the broker, typed and validated.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub cluster_name: String,
    pub bind_address: String,
    pub advertised_address: String,
    /// `advertisedListeners` and `internalListenerName`: the broker's service URLs by listener
    /// name (empty: the one pair of URLs from `advertisedAddress` and the ports).
    pub listeners: ::cluster::ListenerSettings,
    /// Ports, TLS, authentication and authorization.
    pub security: SecuritySettings,
    /// Root of everything the broker stores locally (hot tier, metadata).
    pub data_directory: PathBuf,
    /// The local hot tier's journal and read-ahead (BookKeeper's keys).
    pub hot_tier: HotTierSettings,
    pub max_message_size: u64,
    /// How ledger lists (`managedLedgerInfoCompression*`) and cursors
    /// (`managedCursorInfoCompression*`) are stored in the metadata store.
    pub ledger_info_compression: ledger::Compression,
    pub cursor_info_compression: ledger::Compression,
    /// How often idle ledgers are checked for time-based rollover and retention.
    pub retention_check_interval_in_seconds: u64,
    /// `maxUnackedMessagesPerConsumer` (50 000) and `maxUnackedMessagesPerSubscription`
    /// (200 000): what a Shared subscription's consumers may hold unacknowledged; 0 = no limit.
    pub max_unacked_messages_per_consumer: u64,
    pub max_unacked_messages_per_subscription: u64,
    /// `maxMessagePublishBufferSizeInMB` (default 256): memory for messages being received
    /// from producers, all connections together; beyond it connections are not read.
    pub max_message_publish_buffer_size_bytes: u64,
    /// `keepAliveIntervalSeconds` (30): silence before a PING, and the time a new connection
    /// has to complete its TLS handshake and CONNECT.
    pub keep_alive_interval: std::time::Duration,
    /// `maxConnectionsPerIp` (0 = no limit).
    pub max_connections_per_ip: u32,
    /// `maxConcurrentLookupRequest` (50 000): lookups and partition-metadata requests being
    /// answered at once; beyond it they are refused with TooManyRequests.
    pub max_concurrent_lookup_requests: u32,
    /// The broker level of the schema rules: `schemaCompatibilityStrategy` (FULL),
    /// `isAllowAutoUpdateSchemaEnabled` (true), `isSchemaValidationEnforced` (false).
    pub schema: crate::schema::SchemaRules,
    /// `brokerDeduplicationEnabled` (false): drop messages a producer re-sends (by producer
    /// name and sequence id); namespaces may override it.
    pub deduplication_enabled: bool,
    /// `brokerDeduplicationEntriesInterval` (1000): entries between two snapshots of the
    /// producers' sequence ids (recovery replays the entries after the last one).
    pub deduplication_entries_interval: u64,
    /// `delayedDeliveryEnabled` (true).
    pub delayed_delivery_enabled: bool,
    /// Message TTL and backlog quotas: defaults and check intervals.
    pub backlog: BacklogSettings,
    /// How often stats are sampled, and what `/metrics` exposes.
    pub metrics: MetricsSettings,
    /// `acknowledgmentAtBatchIndexLevelEnabled` (true, Pulsar's default since 4.1).
    pub acknowledgment_at_batch_index_level_enabled: bool,
    /// Rollover limits and the default retention of every topic.
    pub managed_ledger: ManagedLedgerConfig,
    /// The broker level of the offload policies (`managedLedgerOffloadDriver=none`: no driver).
    pub offload: OffloadPolicies,
    /// What the offload policies do not set (filesystem directory, parallelism, read-ahead).
    pub offload_defaults: OffloadDefaults,
    /// The local disk cache of data read from the tier (`None`: off).
    pub offload_cache: Option<OffloadCacheSettings>,
    /// Where the metadata lives (`metadataStoreUrl`; `configurationMetadataStoreUrl` may only
    /// name the same store: tierlog keeps both kinds of metadata in one).
    pub metadata_store: MetadataBackend,
    /// How every object-store client of the broker times out and retries
    /// (`managedLedgerOffloadRequestTimeoutMs`, `managedLedgerOffloadOperationTimeoutMs`,
    /// `managedLedgerOffloadMaxRetries`; tierlog's keys: Pulsar leaves these to jclouds).
    pub object_store_client: ClientSettings,
    /// How a broker of a cluster (`tierlog broker`) takes part in it.
    pub cluster: ClusterSettings,
    /// How the object-storage WAL (the hot tier of object-tier topics) batches.
    pub wal: WalSettings,
    /// Orphan collection in the broker's offload location.
    pub orphan_gc: OrphanGcSettings,
}

impl BrokerConfig {
    /// The configuration `props` describe; returns it with the warnings to log (unknown keys).
    pub fn from_properties(
        mut props: Properties,
    ) -> Result<(BrokerConfig, Vec<String>), ConfigError> {
        let raw = &mut props;
        let cluster_name = raw.string("clusterName", "standalone");
        let data_directory = PathBuf::from(raw.string("dataDirectory", "data"));
        let min_rollover_minutes = raw.unsigned(
            "managedLedgerMinLedgerRolloverTimeMinutes",
            10,
            0,
            u64::MAX / 60_000,
        )?;
        let max_rollover_minutes = raw.unsigned(
            "managedLedgerMaxLedgerRolloverTimeMinutes",
            240,
            1,
            u64::MAX / 60_000,
        )?;
        if min_rollover_minutes > max_rollover_minutes {
            return Err(ConfigError::InvalidValue {
                key: "managedLedgerMinLedgerRolloverTimeMinutes".into(),
                value: min_rollover_minutes.to_string(),
                allowed: format!(
                    "at most managedLedgerMaxLedgerRolloverTimeMinutes ({max_rollover_minutes})"
                ),
            });
        }
        let retention = crate::types::RetentionPolicies {
            retention_time_in_minutes: raw.signed("defaultRetentionTimeInMinutes", 0, -1)?,
            retention_size_in_mb: raw.signed("defaultRetentionSizeInMB", 0, -1)?,
        };
        let (retention_time_ms, retention_size_bytes) = retention.to_ms_and_bytes();
        let managed_ledger = ManagedLedgerConfig {
            max_entries_per_ledger: raw.unsigned(
                "managedLedgerMaxEntriesPerLedger",
                50_000,
                1,
                u64::MAX,
            )?,
            max_size_per_ledger_bytes: raw.unsigned(
                "managedLedgerMaxSizePerLedgerMbytes",
                2048,
                1,
                1 << 30,
            )? << 20,
            min_rollover_ms: min_rollover_minutes * 60_000,
            max_rollover_ms: max_rollover_minutes * 60_000,
            retention_time_ms,
            retention_size_bytes,
            hot_tier: raw.choice(
                "managedLedgerHotTier",
                ledger::HotTier::Local,
                ledger::HotTier::parse,
                "local or object",
            )?,
            ..ManagedLedgerConfig::default()
        };
        let offload_defaults = offload::parse_defaults(raw, &data_directory, &cluster_name)?;
        let offload_cache = offload::parse_cache(raw, &data_directory)?;
        let metadata_store = cluster::parse_metadata_store(raw)?;
        let object_store_client = offload::parse_client(raw)?;
        let offload = offload::parse_policies(raw, &offload_defaults)?;
        let security = security::parse(raw)?;
        let explicit_address = raw.take("advertisedAddress");
        let listeners = cluster::parse_listeners(raw, explicit_address.is_some(), &security)?;
        let config = BrokerConfig {
            bind_address: raw.string("bindAddress", "0.0.0.0"),
            advertised_address: explicit_address
                .or_else(|| listeners.internal_host())
                .unwrap_or_else(|| "127.0.0.1".into()),
            listeners,
            security,
            hot_tier: hot_tier::parse(raw)?,
            max_message_size: raw.unsigned("maxMessageSize", 5 * 1024 * 1024, 1024, 1 << 30)?,
            ledger_info_compression: ledger_metadata::parse(raw, "managedLedgerInfo")?,
            cursor_info_compression: ledger_metadata::parse(raw, "managedCursorInfo")?,
            retention_check_interval_in_seconds: raw.unsigned(
                "retentionCheckIntervalInSeconds",
                120,
                1,
                86_400,
            )?,
            max_unacked_messages_per_consumer: raw.unsigned(
                "maxUnackedMessagesPerConsumer",
                50_000,
                0,
                u64::MAX,
            )?,
            max_unacked_messages_per_subscription: raw.unsigned(
                "maxUnackedMessagesPerSubscription",
                200_000,
                0,
                u64::MAX,
            )?,
            max_message_publish_buffer_size_bytes: raw.unsigned(
                "maxMessagePublishBufferSizeInMB",
                256,
                1,
                1 << 20,
            )? << 20,
            keep_alive_interval: std::time::Duration::from_secs(raw.unsigned(
                "keepAliveIntervalSeconds",
                30,
                1,
                3600,
            )?),
            max_connections_per_ip: raw.unsigned("maxConnectionsPerIp", 0, 0, u32::MAX as u64)?
                as u32,
            max_concurrent_lookup_requests: raw.unsigned(
                "maxConcurrentLookupRequest",
                50_000,
                1,
                u32::MAX as u64,
            )? as u32,
            deduplication_enabled: raw.boolean("brokerDeduplicationEnabled", false)?,
            delayed_delivery_enabled: raw.boolean("delayedDeliveryEnabled", true)?,
            backlog: backlog::parse(raw)?,
            metrics: metrics::parse(raw)?,
            acknowledgment_at_batch_index_level_enabled: raw
                .boolean("acknowledgmentAtBatchIndexLevelEnabled", true)?,
            deduplication_entries_interval: raw.unsigned(
                "brokerDeduplicationEntriesInterval",
                1000,
                1,
                1 << 30,
            )?,
            schema: {
                let name = raw.string("schemaCompatibilityStrategy", "FULL");
                let strategy = crate::schema::CompatibilityStrategy::from_name(&name)
                    .filter(|s| *s != crate::schema::CompatibilityStrategy::Undefined)
                    .ok_or_else(|| ConfigError::InvalidValue {
                        key: "schemaCompatibilityStrategy".into(),
                        value: name.clone(),
                        allowed: "ALWAYS_INCOMPATIBLE, ALWAYS_COMPATIBLE, BACKWARD, FORWARD, FULL, BACKWARD_TRANSITIVE, FORWARD_TRANSITIVE or FULL_TRANSITIVE".into(),
                    })?;
                crate::schema::SchemaRules {
                    strategy,
                    allow_auto_update: raw.boolean("isAllowAutoUpdateSchemaEnabled", true)?,
                    validation_enforced: raw.boolean("isSchemaValidationEnforced", false)?,
                }
            },
            cluster_name,
            data_directory,
            managed_ledger,
            offload,
            offload_defaults,
            offload_cache,
            object_store_client,
            metadata_store,
            cluster: cluster::parse_settings(raw)?,
            orphan_gc: offload::parse_orphan_gc(raw)?,
            wal: cluster::parse_wal(raw)?,
        };
        if config.managed_ledger.hot_tier == ledger::HotTier::Object
            && config.offload_target().is_none()
        {
            return Err(ConfigError::InvalidValue {
                key: "managedLedgerHotTier".into(),
                value: "object".into(),
                allowed: "local, unless managedLedgerOffloadDriver names the bucket the object tier writes to".into(),
            });
        }
        let warnings = props
            .remaining()
            .map(|k| format!("unknown or unsupported configuration key {k:?} is ignored"))
            .collect();
        Ok((config, warnings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(
        text: &str,
        overrides: &[(&str, &str)],
    ) -> Result<(BrokerConfig, Vec<String>), ConfigError> {
        let mut p = Properties::parse("test.conf", text)?;
        for (k, v) in overrides {
            p.set(k, v);
        }
        BrokerConfig::from_properties(p)
    }

    #[test]
    fn defaults_match_pulsar() {
        let (c, warnings) = load("", &[]).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(c.security.broker_port, Some(6650));
        assert_eq!(c.security.web_port, Some(8080));
        assert_eq!(c.security.broker_port_tls, None);
        assert!(c.security.tls.is_none());
        assert!(!c.security.authentication.enabled);
        assert_eq!(c.data_directory, PathBuf::from("data"));
        let ml = &c.managed_ledger;
        assert_eq!(ml.max_entries_per_ledger, 50_000);
        assert_eq!(ml.max_size_per_ledger_bytes, 2048 << 20);
        assert_eq!(
            (ml.min_rollover_ms, ml.max_rollover_ms),
            (600_000, 14_400_000)
        );
        assert_eq!((ml.retention_time_ms, ml.retention_size_bytes), (0, 0));
        assert_eq!(c.object_store_client, ClientSettings::default());
        let (c, _) = load(
            "defaultRetentionTimeInMinutes=-1\ndefaultRetentionSizeInMB=10\n",
            &[],
        )
        .unwrap();
        assert_eq!(
            (
                c.managed_ledger.retention_time_ms,
                c.managed_ledger.retention_size_bytes
            ),
            (-1, 10 << 20)
        );
    }

    #[test]
    fn security_keys_as_in_pulsars_standalone_ssl_conf() {
        let text = "brokerServicePort=\nbrokerServicePortTls=6651\nwebServicePortTls=8443\n\
            tlsCertificateFilePath=/c.pem\ntlsKeyFilePath=/k.pem\ntlsTrustCertsFilePath=/ca.pem\n\
            tlsProtocols=TLSv1.3,TLSv1.2\ntlsCiphers=TLS_AES_128_GCM_SHA256\n\
            authenticationEnabled=true\nauthorizationEnabled=true\nsuperUserRoles=admin, ops\n\
            authenticationProviders=org.apache.pulsar.broker.authentication.AuthenticationProviderToken,\
            org.apache.pulsar.broker.authentication.AuthenticationProviderTls\n\
            tokenSecretKey=data:;base64,c2VjcmV0\nanonymousUserRole=anonymous\n";
        let (c, warnings) = load(text, &[]).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let s = &c.security;
        assert_eq!(
            (s.broker_port, s.broker_port_tls, s.web_port, s.web_port_tls),
            (None, Some(6651), Some(8080), Some(8443))
        );
        let tls = s.tls.as_ref().unwrap();
        assert_eq!(
            tls.trust_certs_file.as_deref(),
            Some(std::path::Path::new("/ca.pem"))
        );
        assert_eq!(tls.protocols.len(), 2);
        assert!(s.authentication.enabled);
        assert_eq!(s.authentication.providers.len(), 2);
        assert_eq!(
            s.authentication.token.as_ref().unwrap().key,
            ::security::token::TokenKey::Secret(b"secret".to_vec())
        );
        assert_eq!(
            s.authentication.anonymous_role.as_ref().unwrap().as_str(),
            "anonymous"
        );
        assert!(s.authorization.enabled);
        assert_eq!(s.authorization.super_users.len(), 2);

        // The deprecated tlsEnabled turns both TLS ports on, and they need the files.
        let e = load("tlsEnabled=true\n", &[]).unwrap_err();
        assert!(e.to_string().contains("tlsCertificateFilePath"), "{e}");
        // No way in at all.
        let e = load("brokerServicePort=\n", &[]).unwrap_err();
        assert!(e.to_string().contains("brokerServicePort"), "{e}");
        // Authorization needs roles.
        let e = load("authorizationEnabled=true\n", &[]).unwrap_err();
        assert!(e.to_string().contains("authenticationEnabled"), "{e}");
        // An unusable key is named, and its value is not shown.
        let e = load("tokenSecretKey=not-a-key-but-a-secret!\n", &[]).unwrap_err();
        assert!(e.to_string().contains("tokenSecretKey"), "{e}");
        assert!(!e.to_string().contains("not-a-key-but-a-secret"), "{e}");
        let e = load("authenticationProviders=org.example.MyProvider\n", &[]).unwrap_err();
        assert!(e.to_string().contains("org.example.MyProvider"), "{e}");

        // basicAuthConf in the base64 form Pulsar takes; a hash tierlog cannot verify stops the
        // start, naming the key and the user but not the hash.
        let basic = "authenticationEnabled=true\n\
            authenticationProviders=org.apache.pulsar.broker.authentication.AuthenticationProviderBasic\n";
        // superuser:$apr1$GBIYZYFZ$MzLcPrvoUky16mLcK6UtX/ (Pulsar's documentation example)
        let conf = "c3VwZXJ1c2VyOiRhcHIxJEdCSVlaWUZaJE16TGNQcnZvVWt5MTZtTGNLNlV0WC8K";
        let (c, _) = load(&format!("{basic}basicAuthConf={conf}\n"), &[]).unwrap();
        let users = c.security.authentication.basic.as_ref().unwrap();
        assert_eq!(
            users.authenticate(b"superuser:admin").unwrap().as_str(),
            "superuser"
        );
        // sha1user:{SHA}fEqNCco3Yq9h5ZUglD3CZJT4lBs=
        let sha1 = "c2hhMXVzZXI6e1NIQX1mRXFOQ2NvM1lxOWg1WlVnbEQzQ1pKVDRsQnM9Cg==";
        let e = load(&format!("{basic}basicAuthConf={sha1}\n"), &[]).unwrap_err();
        let e = e.to_string();
        assert!(e.contains("basicAuthConf") && e.contains("sha1user"), "{e}");
        assert!(!e.contains("fEqN"), "{e}");
        let e = load(basic, &[]).unwrap_err();
        assert!(e.to_string().contains("basicAuthConf"), "{e}");
    }

    #[test]
    fn file_values_comments_and_overrides() {
        let text =
            "# comment\n\nmanagedLedgerMaxEntriesPerLedger = 5000\nclusterName=c1\nbindAddress=\n";
        let (c, _) = load(text, &[("clusterName", "from-env")]).unwrap();
        assert_eq!(c.managed_ledger.max_entries_per_ledger, 5000);
        assert_eq!(c.cluster_name, "from-env");
        assert_eq!(
            c.bind_address, "0.0.0.0",
            "an empty value means the default"
        );
    }

    #[test]
    fn offload_defaults_to_the_filesystem_under_the_data_directory() {
        let (c, _) = load("dataDirectory=/srv/tl\n", &[]).unwrap();
        let o = c.offload_target().unwrap();
        assert_eq!(
            o.location,
            ::offload::Location::filesystem("/srv/tl/offloaded")
        );
        let (c, _) = load("managedLedgerOffloadDriver=none\n", &[]).unwrap();
        assert!(c.offload_target().is_none());
        let (c, _) = load("fileSystemURI=file:///mnt/tier\n", &[]).unwrap();
        assert_eq!(
            c.offload_target().unwrap().location,
            ::offload::Location::filesystem("/mnt/tier")
        );
    }

    #[test]
    fn s3_keys_resolve_specific_before_generic() {
        let text = "managedLedgerOffloadDriver=S3\ns3ManagedLedgerOffloadBucket=bucket1\nmanagedLedgerOffloadBucket=generic\n\
                    s3ManagedLedgerOffloadServiceEndpoint=http://127.0.0.1:9000\ns3ManagedLedgerOffloadRole=arn:r\n";
        let (c, warnings) = load(text, &[]).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let o = c.offload_target().unwrap();
        assert_eq!(
            o.location,
            ::offload::Location::s3_compatible("bucket1", "http://127.0.0.1:9000")
        );
        assert_eq!(o.location.region_or_default(), "us-east-1");
        assert_eq!(o.credentials.role.as_deref(), Some("arn:r"));
        assert_eq!(o.credentials.role_session_name(), "pulsar-s3-offload");
        assert_eq!(o.max_block_size_bytes, 64 << 20);
        let (c, _) = load(
            "managedLedgerOffloadDriver=azureblob\nmanagedLedgerOffloadBucket=container\n",
            &[],
        )
        .unwrap();
        assert_eq!(
            c.offload_target().unwrap().location.to_string(),
            "container"
        );
    }

    #[test]
    fn bad_offload_settings_are_refused() {
        let err = |text: &str| load(text, &[]).unwrap_err().to_string();
        let e = err("managedLedgerOffloadDriver=tape\n");
        assert!(e.contains("managedLedgerOffloadDriver: \"tape\""), "{e}");
        let e = err(
            "managedLedgerOffloadDriver=aws-s3\ns3ManagedLedgerOffloadBucket=bucket\ns3ManagedLedgerOffloadMaxBlockSizeInBytes=1048576\n",
        );
        assert!(
            e.contains("s3ManagedLedgerOffloadMaxBlockSizeInBytes cannot be less than 5MB"),
            "{e}"
        );
        let e = err("managedLedgerOffloadDriver=S3\ns3ManagedLedgerOffloadBucket=bucket\n");
        assert!(
            e.contains("requires s3ManagedLedgerOffloadServiceEndpoint"),
            "{e}"
        );
        let e = err("managedLedgerOffloadDriver=aws-s3\n");
        assert!(
            e.contains("s3ManagedLedgerOffloadBucket is required"),
            "{e}"
        );
        let e =
            err("managedLedgerOffloadDriver=S3\ns3ManagedLedgerOffloadReadBufferSizeInBytes=big\n");
        assert!(
            e.contains("s3ManagedLedgerOffloadReadBufferSizeInBytes: \"big\""),
            "{e}"
        );
        let e = err("managedLedgerDataReadPriority=fastest\n");
        assert!(
            e.contains("managedLedgerDataReadPriority: \"fastest\""),
            "{e}"
        );
    }

    #[test]
    fn object_store_timeouts_and_retries_are_configurable() {
        let text = "managedLedgerOffloadRequestTimeoutMs=1500\nmanagedLedgerOffloadOperationTimeoutMs=4000\n\
                    managedLedgerOffloadMaxRetries=1\ns3ManagedLedgerOffloadPayloadChecksum=crc64nvme\n";
        let (c, warnings) = load(text, &[]).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let s = &c.object_store_client;
        assert_eq!(s.request_timeout, std::time::Duration::from_millis(1500));
        assert_eq!(s.operation_timeout, std::time::Duration::from_secs(4));
        assert_eq!(s.max_retries, 1);
        assert_eq!(
            s.s3_payload_checksum,
            ::offload::S3PayloadChecksum::Crc64Nvme
        );
        let (c, _) = load("", &[]).unwrap();
        assert_eq!(
            c.object_store_client.s3_payload_checksum,
            ::offload::S3PayloadChecksum::Crc32c
        );
        let e = load("s3ManagedLedgerOffloadPayloadChecksum=md5\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                "s3ManagedLedgerOffloadPayloadChecksum: \"md5\" (allowed: crc32c, sha256 or crc64nvme)"
            ),
            "{e}"
        );
        let e = load("managedLedgerOffloadRequestTimeoutMs=0\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("managedLedgerOffloadRequestTimeoutMs: \"0\" (allowed: an integer from 100"),
            "{e}"
        );
    }

    #[test]
    fn the_metadata_store_is_embedded_unless_etcd_is_named() {
        let (c, _) = load("", &[]).unwrap();
        assert_eq!(c.metadata_store, MetadataBackend::Embedded);
        let (c, w) = load(
            "metadataStoreUrl=etcd:http://e1:2379, http://e2:2379\nconfigurationMetadataStoreUrl=etcd:http://e1:2379,http://e2:2379\n",
            &[],
        )
        .unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(
            c.metadata_store,
            MetadataBackend::Etcd(vec!["http://e1:2379".into(), "http://e2:2379".into()])
        );
        // Its history is compacted every 5 minutes unless told otherwise; 0 leaves it to etcd.
        assert_eq!(
            c.cluster.etcd_compaction_interval,
            Some(std::time::Duration::from_secs(300))
        );
        let (c, _) = load("etcdCompactionIntervalSeconds=0\n", &[]).unwrap();
        assert_eq!(c.cluster.etcd_compaction_interval, None);
        let (c, _) = load("etcdCompactionIntervalSeconds=60\n", &[]).unwrap();
        assert_eq!(
            c.cluster.etcd_compaction_interval,
            Some(std::time::Duration::from_secs(60))
        );
        for (text, why) in [
            ("metadataStoreUrl=zk:localhost:2181\n", "only etcd"),
            ("metadataStoreUrl=etcd:\n", "no endpoint"),
            ("metadataStoreUrl=etcd:https://e1:2379\n", "TLS"),
            ("metadataStoreUrl=etcd:http://\n", "no host"),
            (
                "metadataStoreUrl=etcd:http://a:1\nconfigurationMetadataStoreUrl=etcd:http://b:1\n",
                "same store",
            ),
        ] {
            let e = load(text, &[]).unwrap_err().to_string();
            assert!(e.contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn unknown_keys_are_warnings() {
        let (_, warnings) = load("zookeeperServers=localhost:2181\n", &[]).unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("zookeeperServers"));
    }

    #[test]
    fn bad_values_name_the_key_the_value_and_what_is_allowed() {
        let err = load("managedLedgerMaxEntriesPerLedger=-5\n", &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value for managedLedgerMaxEntriesPerLedger: \"-5\" (allowed: an integer >= 1)"
        );
        let err = load("brokerServicePort=lots\n", &[]).unwrap_err();
        assert!(
            err.to_string().contains("brokerServicePort: \"lots\""),
            "{err}"
        );
        let err = load("", &[("defaultRetentionTimeInMinutes", "-2")]).unwrap_err();
        assert!(
            err.to_string().contains("defaultRetentionTimeInMinutes"),
            "{err}"
        );
        let err = load("managedLedgerMinLedgerRolloverTimeMinutes=500\n", &[]).unwrap_err();
        assert!(
            err.to_string()
                .contains("managedLedgerMinLedgerRolloverTimeMinutes"),
            "{err}"
        );
        let err = load("just a line\n", &[]).unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { line: 1, .. }));
    }

    #[test]
    fn advertised_listeners_set_the_service_urls_and_are_checked_against_the_ports() {
        let (c, _) = load(
            "advertisedListeners=int:pulsar://10.1.2.3:6650,ext:pulsar://pulsar.example.com:6650\n",
            &[],
        )
        .unwrap();
        assert_eq!(c.listeners.internal.as_deref(), Some("int"));
        assert_eq!(c.advertised_address, "10.1.2.3");
        let err = load(
            "advertisedListeners=a:pulsar://h:1\nadvertisedAddress=h\n",
            &[],
        )
        .unwrap_err();
        assert!(err.to_string().contains("advertisedListeners"), "{err}");
        let err = load(
            "advertisedListeners=a:pulsar://h:1\ninternalListenerName=b\n",
            &[],
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid value for internalListenerName: \"b\""),
            "{err}"
        );
        // No TLS port: a pulsar+ssl:// address would be one nobody listens on.
        let err = load(
            "advertisedListeners=a:pulsar://h:1,a:pulsar+ssl://h:2\n",
            &[],
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("brokerServicePortTls is off"),
            "{err}"
        );
    }
}

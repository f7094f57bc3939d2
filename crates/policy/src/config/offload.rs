//! The broker's offload keys: the broker level of the offload policies (Pulsar's
//! `managedLedgerOffload*`, `s3ManagedLedgerOffload*`, `gcsManagedLedgerOffload*`,
//! `fileSystem*`), what those policies leave to the broker (parallelism, read sizes, rate
//! limits), the object-store clients' timeouts, the cold tier's disk cache and orphan
//! collection.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ledger::ManagedLedgerConfig;
use offload::{BlobStoreReader, ClientSettings, ObjectStores};

use super::{BrokerConfig, ConfigError, Properties};
use crate::offload_policies::{OffloadDefaults, OffloadPolicies};

/// Orphan collection (tierlog's keys, in Pulsar's style).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrphanGcSettings {
    /// `managedLedgerOffloadOrphanGcIntervalSeconds` (21 600; 0 = never): how often a broker
    /// collects orphans in its offload location.
    pub interval: Option<std::time::Duration>,
    /// `managedLedgerOffloadOrphanGracePeriodSeconds` (86 400): nothing younger is touched.
    pub grace: std::time::Duration,
    /// `managedLedgerOffloadOrphanDeletesPerSecond` (10).
    pub deletes_per_second: u32,
}

/// The disk cache of the cold tier (tierlog's keys, in Pulsar's style).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffloadCacheSettings {
    /// `managedLedgerOffloadCacheDirectory` (`<dataDirectory>/offload-cache`).
    pub directory: PathBuf,
    /// `managedLedgerOffloadCacheSizeMB` (1024; 0 turns the cache off).
    pub size_bytes: u64,
}

/// What the offload policies do not set: the filesystem driver's directory, parallelism, rate
/// limits and the tier reader's read sizes.
pub(super) fn parse_defaults(
    raw: &mut Properties,
    data_directory: &Path,
    cluster_name: &str,
) -> Result<OffloadDefaults, ConfigError> {
    Ok(OffloadDefaults {
        filesystem_path: data_directory.join("offloaded"),
        parallel_parts: raw.unsigned("managedLedgerOffloadUploadParallelism", 4, 1, 64)? as usize,
        max_parallel_ledgers: raw.unsigned("managedLedgerOffloadMaxThreads", 2, 1, 256)? as usize,
        // Pulsar's convention: a value <= 0 means no limit.
        upload_bytes_per_second: u64::try_from(raw.signed(
            "managedLedgerOffloadFlowPermitsPerSecond",
            -1,
            i64::MIN,
        )?)
        .ok()
        .filter(|r| *r > 0),
        read_bytes_per_second: u64::try_from(raw.signed(
            "managedLedgerOffloadReadFlowPermitsPerSecond",
            -1,
            i64::MIN,
        )?)
        .ok()
        .filter(|r| *r > 0),
        read_ahead_requests: raw.unsigned("managedLedgerOffloadReadAheadRequests", 16, 1, 256)?
            as usize,
        max_read_range_bytes: raw.unsigned(
            "managedLedgerOffloadMaxReadRangeSizeInBytes",
            offload::ReadSizes::default().max_read_range_bytes,
            1,
            1 << 30,
        )?,
        cluster_name: cluster_name.to_string(),
    })
}

/// `managedLedgerOffloadCacheDirectory` and `managedLedgerOffloadCacheSizeMB` (0: no cache).
pub(super) fn parse_cache(
    raw: &mut Properties,
    data_directory: &Path,
) -> Result<Option<OffloadCacheSettings>, ConfigError> {
    let directory = raw
        .take("managedLedgerOffloadCacheDirectory")
        .map(PathBuf::from)
        .unwrap_or_else(|| data_directory.join("offload-cache"));
    let size_mb = raw.unsigned("managedLedgerOffloadCacheSizeMB", 1024, 0, 1 << 30)?;
    Ok((size_mb > 0).then_some(OffloadCacheSettings {
        directory,
        size_bytes: size_mb << 20,
    }))
}

/// How every object-store client of the broker times out, retries and checksums its uploads.
pub(super) fn parse_client(raw: &mut Properties) -> Result<ClientSettings, ConfigError> {
    let millis = |raw: &mut Properties, key: &str, default: std::time::Duration| {
        raw.unsigned(key, default.as_millis() as u64, 100, 3_600_000)
            .map(std::time::Duration::from_millis)
    };
    Ok(ClientSettings {
        request_timeout: millis(
            raw,
            "managedLedgerOffloadRequestTimeoutMs",
            ClientSettings::DEFAULT_REQUEST_TIMEOUT,
        )?,
        operation_timeout: millis(
            raw,
            "managedLedgerOffloadOperationTimeoutMs",
            ClientSettings::DEFAULT_OPERATION_TIMEOUT,
        )?,
        max_retries: raw.unsigned(
            "managedLedgerOffloadMaxRetries",
            ClientSettings::DEFAULT_MAX_RETRIES as u64,
            0,
            100,
        )? as usize,
        s3_payload_checksum: raw.choice(
            "s3ManagedLedgerOffloadPayloadChecksum",
            offload::S3PayloadChecksum::default(),
            offload::S3PayloadChecksum::parse,
            "crc32c, sha256 or crc64nvme",
        )?,
        ..ClientSettings::default()
    })
}

/// The broker level of the offload policies, refused now if it cannot work (not at the first
/// offload).
pub(super) fn parse_policies(
    raw: &mut Properties,
    defaults: &OffloadDefaults,
) -> Result<OffloadPolicies, ConfigError> {
    let mut offload = OffloadPolicies::from_properties(raw)?;
    if offload.managed_ledger_offload_driver.is_none() {
        // tierlog offloads to a local directory unless told otherwise.
        offload.managed_ledger_offload_driver = Some("filesystem".into());
    }
    // Refuse a broker-level offload setting that cannot work now, not at the first offload.
    offload
        .resolve(defaults, &ManagedLedgerConfig::default())
        .map_err(|e| match e {
            crate::offload_policies::ResolveError::Offload(e) => ConfigError::Offload(e),
            crate::offload_policies::ResolveError::InvalidValue {
                key,
                value,
                allowed,
            } => ConfigError::InvalidValue {
                key: key.into(),
                value,
                allowed: allowed.into(),
            },
        })?;
    Ok(offload)
}

/// Orphan collection: how often, what it leaves alone by age, how fast it deletes.
pub(super) fn parse_orphan_gc(raw: &mut Properties) -> Result<OrphanGcSettings, ConfigError> {
    Ok(OrphanGcSettings {
        interval: match raw.unsigned(
            "managedLedgerOffloadOrphanGcIntervalSeconds",
            21_600,
            0,
            30 * 86_400,
        )? {
            0 => None,
            s => Some(std::time::Duration::from_secs(s)),
        },
        grace: std::time::Duration::from_secs(raw.unsigned(
            "managedLedgerOffloadOrphanGracePeriodSeconds",
            86_400,
            1,
            365 * 86_400,
        )?),
        deletes_per_second: raw.unsigned(
            "managedLedgerOffloadOrphanDeletesPerSecond",
            10,
            1,
            10_000,
        )? as u32,
    })
}

impl BrokerConfig {
    /// How topics that offload nowhere now still read and delete what they offloaded before:
    /// the broker's credentials and read sizes, through the broker's store cache.
    pub fn tier_reader(&self, stores: Arc<ObjectStores>) -> BlobStoreReader {
        let (credentials, read_buffer) = match self.offload_target() {
            Some(t) => (t.credentials, t.read_buffer_size_bytes),
            None => (
                self.offload.credentials(),
                offload::ReadSizes::default().read_buffer_size_bytes,
            ),
        };
        let sizes = offload::ReadSizes {
            read_buffer_size_bytes: read_buffer,
            max_read_range_bytes: self.offload_defaults.max_read_range_bytes,
            read_ahead_requests: self.offload_defaults.read_ahead_requests,
        };
        BlobStoreReader::new(credentials, sizes, stores)
    }

    /// The broker's offload settings resolved: the managed-ledger settings of a topic without
    /// policies of its own, and where its ledgers go (`None`: offload is off).
    pub fn offload_target(&self) -> Option<offload::OffloadConfig> {
        self.offload
            .resolve(&self.offload_defaults, &self.managed_ledger)
            .ok()
            .and_then(|(_, target)| target)
    }
}

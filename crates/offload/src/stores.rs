//! The one cache of object-store clients of a broker, keyed by [`Location`] and the
//! [`Credentials`] used to reach it, and how each family's client is built.
//!
//! Every storage family goes through `object_store`: `aws-s3` and `S3` (any S3-compatible
//! endpoint, path-style addressing) over its S3 client, `google-cloud-storage`, `azureblob`, and
//! `filesystem` (a local directory; no user metadata is stored there). Requests to every store
//! are counted into one set of [`RequestCounters`].
//!
//! Retries happen in one layer only, object_store's own [`object_store::RetryConfig`]: it
//! retries server errors, timeouts and broken connections (re-requesting the rest of a body that
//! broke off), never a 4xx answer. How long a store that does not answer can hold an operation
//! is bounded by [`ClientSettings`]: no retry starts once `operation_timeout` has passed since
//! the first attempt, and each attempt ends after `request_timeout`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use once_map::OnceMap;

use crate::budget::OffloadBudget;
use crate::cache::ChunkCache;
use crate::config::Credentials;
use crate::counting::{CountingStore, RequestCounters};
use crate::credentials;
use crate::error::{OffloadError, Result};
use crate::location::{Location, S3Flavor};
use crate::paced_upload::PacedStore;
use crate::s3_multipart::ChecksummedS3;
use crate::s3_signing::S3Target;
use crate::throttle::{ByteRate, Rates, ScopedLimit};

/// HTTP client behaviour shared by every store of a broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    /// Retries of a failed request beyond the first attempt.
    pub max_retries: usize,
    pub retry_init_backoff: Duration,
    pub retry_max_backoff: Duration,
    /// One HTTP request, connecting included, from sending to the end of the answer's body.
    pub request_timeout: Duration,
    /// One operation with its retries: none starts after this long. An operation therefore ends
    /// within `operation_timeout + request_timeout`.
    pub operation_timeout: Duration,
    /// How S3 uploads protect their bodies (`s3ManagedLedgerOffloadPayloadChecksum`).
    pub s3_payload_checksum: S3PayloadChecksum,
}

/// How an S3 upload's body is protected on its way to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum S3PayloadChecksum {
    /// Every part of a data object's multipart upload carries `x-amz-checksum-crc32c`, which
    /// the store checks before it accepts the part (AWS S3 does; s3s-fs 0.17 does), and the
    /// upload is completed with each part's checksum; bodies go `UNSIGNED-PAYLOAD`
    /// (`s3_multipart`). Other writes (index objects) are signed with their SHA-256. The
    /// default: what the S3 API offers for end-to-end checks, at a fraction of SHA-256's cost.
    #[default]
    Crc32c,
    /// SigV4 signs the body's SHA-256 (`x-amz-content-sha256`): every S3-compatible store
    /// checks it, also one that ignores checksum headers, at the cost of a SHA-256 pass over
    /// every byte uploaded.
    Sha256,
    /// `UNSIGNED-PAYLOAD` plus `x-amz-checksum-crc64nvme`, which the store checks before it
    /// accepts the body (AWS S3 does on PUTs and part uploads; s3s-fs on PUTs only; a store
    /// that ignores the header stores a corrupted body unnoticed, so choose this only for a
    /// store that checks it). Far cheaper than SHA-256; it catches corruption, not tampering:
    /// over plain HTTP a man in the middle could rewrite a body and its checksum (TLS protects
    /// both).
    Crc64Nvme,
}

impl S3PayloadChecksum {
    /// `crc32c`, `sha256` or `crc64nvme`.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "crc32c" => Some(Self::Crc32c),
            "sha256" => Some(Self::Sha256),
            "crc64nvme" => Some(Self::Crc64Nvme),
            _ => None,
        }
    }

    /// `builder` with this protection.
    pub fn apply(
        self,
        builder: object_store::aws::AmazonS3Builder,
    ) -> object_store::aws::AmazonS3Builder {
        match self {
            // Multipart uploads are made by `s3_multipart`; the client's other writes are
            // signed with their SHA-256.
            S3PayloadChecksum::Crc32c | S3PayloadChecksum::Sha256 => builder,
            S3PayloadChecksum::Crc64Nvme => builder
                .with_unsigned_payload(true)
                .with_checksum_algorithm(object_store::aws::Checksum::CRC64NVME),
        }
    }
}

impl ClientSettings {
    /// Defaults of `managedLedgerOffloadRequestTimeoutMs`, `managedLedgerOffloadOperationTimeoutMs`
    /// and `managedLedgerOffloadMaxRetries`.
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
    pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(30);
    pub const DEFAULT_MAX_RETRIES: usize = 3;
    /// Connecting never waits longer than this (nor longer than a request may take).
    const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            max_retries: Self::DEFAULT_MAX_RETRIES,
            retry_init_backoff: Duration::from_millis(50),
            retry_max_backoff: Duration::from_secs(2),
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
            operation_timeout: Self::DEFAULT_OPERATION_TIMEOUT,
            s3_payload_checksum: S3PayloadChecksum::Crc32c,
        }
    }
}

type StoreKey = (Location, Credentials);

/// Object-store clients, built once per location and credentials and shared by every offloader
/// and reader of the broker.
pub struct ObjectStores {
    settings: ClientSettings,
    counters: Arc<RequestCounters>,
    stores: OnceMap<StoreKey, Arc<dyn ObjectStore>>,
    /// The disk cache every read through these clients shares, if the broker has one.
    chunk_cache: Option<Arc<ChunkCache>>,
    /// How many ledgers and blocks every offload through these clients may use at once.
    offload_budget: OffloadBudget,
    /// Bytes per second all tier reads through these clients share (cache hits are free).
    read_rate: Option<Arc<ByteRate>>,
    /// The rates of namespaces and topics whose offload policies set one, by direction and
    /// scope.
    scoped_rates: std::sync::Mutex<HashMap<(Direction, String), Arc<ByteRate>>>,
}

/// Which traffic a rate limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// An offload's parts on their way to the store.
    Upload,
    /// Tier reads (ranged GETs).
    Read,
    /// An offload's reads of the ledgers it uploads: under the upload limits again, in buckets
    /// of their own that keep no burst ([`ByteRate::smooth`]), so the disk and the CPUs see
    /// the offload's reading spread out (`upload::read_pace`).
    SourceRead,
}

impl Direction {
    fn bucket(self, bytes_per_second: u64) -> ByteRate {
        match self {
            Direction::Upload | Direction::Read => ByteRate::per_second(bytes_per_second),
            Direction::SourceRead => ByteRate::smooth(bytes_per_second),
        }
    }
}

impl std::fmt::Debug for ObjectStores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStores")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Default for ObjectStores {
    fn default() -> Self {
        Self::new(ClientSettings::default())
    }
}

impl ObjectStores {
    pub fn new(settings: ClientSettings) -> Self {
        ObjectStores {
            settings,
            counters: Arc::default(),
            stores: OnceMap::new(),
            chunk_cache: None,
            offload_budget: OffloadBudget::default(),
            read_rate: None,
            scoped_rates: Default::default(),
        }
    }

    /// Tier reads through these clients fetch at most `bytes_per_second` together.
    pub fn with_read_rate(mut self, bytes_per_second: u64) -> Self {
        self.read_rate = Some(Arc::new(ByteRate::per_second(bytes_per_second)));
        self
    }

    pub fn read_rate(&self) -> Option<&Arc<ByteRate>> {
        self.read_rate.as_ref()
    }

    /// The rates a transfer in `direction` under `limits` (its namespace's, its topic's) is
    /// under, the broker's first. A scope's rate is shared by every transfer under it and made
    /// anew when its policy changes the rate.
    pub fn rates(&self, direction: Direction, limits: &[ScopedLimit]) -> Rates {
        let broker = match direction {
            Direction::Upload => self.offload_budget.upload_rate(),
            Direction::Read => self.read_rate.as_ref(),
            Direction::SourceRead => self.offload_budget.source_read_rate(),
        };
        let mut rates: Vec<Arc<ByteRate>> = broker.cloned().into_iter().collect();
        if !limits.is_empty() {
            let mut scoped = self
                .scoped_rates
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            for limit in limits {
                let rate = scoped
                    .entry((direction, limit.scope.clone()))
                    .or_insert_with(|| Arc::new(direction.bucket(limit.bytes_per_second)));
                if rate.bytes_per_second() != limit.bytes_per_second {
                    *rate = Arc::new(direction.bucket(limit.bytes_per_second));
                }
                rates.push(Arc::clone(rate));
            }
        }
        Rates::new(rates)
    }

    /// Offloads through these clients share `budget`.
    pub fn with_offload_budget(mut self, budget: OffloadBudget) -> Self {
        self.offload_budget = budget;
        self
    }

    pub fn offload_budget(&self) -> &OffloadBudget {
        &self.offload_budget
    }

    /// Reads through these clients keep what they fetch in `cache` and look there first.
    pub fn with_chunk_cache(mut self, cache: Arc<ChunkCache>) -> Self {
        self.chunk_cache = Some(cache);
        self
    }

    pub fn chunk_cache(&self) -> Option<&Arc<ChunkCache>> {
        self.chunk_cache.as_ref()
    }

    /// Request counters of every store (metrics; "GETs per GiB" in benchmarks).
    pub fn counters(&self) -> &Arc<RequestCounters> {
        &self.counters
    }

    /// The client for `location` reached with `credentials`, built on first use.
    pub async fn get(
        &self,
        location: &Location,
        credentials: &Credentials,
    ) -> Result<Arc<dyn ObjectStore>> {
        let key = (location.clone(), credentials.clone());
        self.stores
            .get_or_try_init(key, || async {
                let store = build(location, credentials, &self.settings).await?;
                Ok(
                    Arc::new(CountingStore::new(store, Arc::clone(&self.counters)))
                        as Arc<dyn ObjectStore>,
                )
            })
            .await
    }

    /// Uses `store` for `location` and `credentials` (tests wrap stores with fault injection).
    pub fn insert(
        &self,
        location: Location,
        credentials: Credentials,
        store: Arc<dyn ObjectStore>,
    ) {
        let counted = Arc::new(CountingStore::new(store, Arc::clone(&self.counters)));
        self.stores.insert((location, credentials), counted);
    }
}

fn client_options(location: &Location, settings: &ClientSettings) -> object_store::ClientOptions {
    // Note: ClientOptions replaces any earlier allow_http setting on a builder, so HTTP is
    // allowed here, in the one place the client options are made.
    let allow_http = location
        .endpoint()
        .is_some_and(|e| e.starts_with("http://"));
    object_store::ClientOptions::new()
        .with_allow_http(allow_http)
        .with_timeout(settings.request_timeout)
        .with_connect_timeout(
            settings
                .request_timeout
                .min(ClientSettings::MAX_CONNECT_TIMEOUT),
        )
}

fn retry(settings: &ClientSettings) -> object_store::RetryConfig {
    object_store::RetryConfig {
        backoff: object_store::BackoffConfig {
            init_backoff: settings.retry_init_backoff,
            max_backoff: settings.retry_max_backoff,
            base: 2.0,
        },
        max_retries: settings.max_retries,
        retry_timeout: settings.operation_timeout,
    }
}

/// Server-side encryption headers on the S3 client's writes (and SSE-C reads).
fn encryption(
    b: object_store::aws::AmazonS3Builder,
    e: &crate::config::S3Encryption,
) -> Result<object_store::aws::AmazonS3Builder> {
    use crate::config::S3Encryption as E;
    use object_store::aws::AmazonS3ConfigKey;
    // object_store names its encryption settings by these configuration keys.
    let set = |b: object_store::aws::AmazonS3Builder, key: &str, v: &str| -> Result<_> {
        let key: AmazonS3ConfigKey = key
            .parse()
            .map_err(|e| OffloadError::Config(format!("S3 encryption setting {key}: {e}")))?;
        Ok(b.with_config(key, v))
    };
    Ok(match e {
        E::None => b,
        E::SseS3 => set(b, "aws_server_side_encryption", "AES256")?,
        E::SseKms { key_id, dual } => {
            let kind = if *dual { "aws:kms:dsse" } else { "aws:kms" };
            let b = set(b, "aws_server_side_encryption", kind)?;
            match key_id {
                Some(id) => set(b, "aws_sse_kms_key_id", id)?,
                None => b,
            }
        }
        E::SseC { key_file } => {
            b.with_ssec_encryption(crate::config::S3Encryption::customer_key_base64(key_file)?)
        }
    })
}

/// Builds the client `location` needs, its multipart uploads paced by the [`Rates`] their
/// options carry.
async fn build(
    location: &Location,
    credentials: &Credentials,
    settings: &ClientSettings,
) -> Result<Arc<dyn ObjectStore>> {
    location.validate()?;
    let driver = location.driver();
    let err = |e: object_store::Error| OffloadError::Config(format!("{driver} driver: {e}"));
    let options = client_options(location, settings);
    let store: Arc<dyn ObjectStore> = match location {
        Location::S3 {
            flavor,
            bucket,
            endpoint,
            ..
        } => {
            let mut b = object_store::aws::AmazonS3Builder::new()
                .with_bucket_name(bucket)
                .with_region(location.region_or_default())
                .with_client_options(options)
                .with_retry(retry(settings));
            b = settings.s3_payload_checksum.apply(b);
            if let Some(endpoint) = endpoint {
                // A configured endpoint means path-style addressing, as Pulsar does.
                b = b
                    .with_endpoint(endpoint)
                    .with_virtual_hosted_style_request(false);
            } else if *flavor == S3Flavor::Compatible {
                return Err(OffloadError::Config(
                    "the S3 offload driver requires s3ManagedLedgerOffloadServiceEndpoint".into(),
                ));
            }
            b = encryption(b, &credentials.s3_encryption)?;
            let creds = credentials::aws_provider(location, credentials).await?;
            let store: Arc<dyn ObjectStore> = Arc::new(
                b.with_credentials(Arc::clone(&creds))
                    .build()
                    .map_err(err)?,
            );
            if settings.s3_payload_checksum == S3PayloadChecksum::Crc32c
                && let Some(target) = S3Target::new(location, credentials, Some(creds)).await?
            {
                // Multipart uploads with CRC32C parts, paced while streaming.
                let s3 = ChecksummedS3::wrap(store, target, credentials, settings)?;
                return Ok(Arc::new(s3));
            }
            store
        }
        Location::Gcs {
            bucket, endpoint, ..
        } => {
            let mut b = object_store::gcp::GoogleCloudStorageBuilder::new()
                .with_bucket_name(bucket)
                .with_client_options(options)
                .with_retry(retry(settings));
            if let Some(endpoint) = endpoint {
                b = b.with_base_url(endpoint);
            }
            if let Some(key) = &credentials.gcs_service_account_key_file {
                if !key.is_file() {
                    return Err(OffloadError::Config(format!(
                        "gcsManagedLedgerOffloadServiceAccountKeyFile {} is not a readable file",
                        key.display()
                    )));
                }
                b = b.with_service_account_path(key.display().to_string());
            }
            Arc::new(b.build().map_err(err)?)
        }
        Location::Azure {
            container,
            endpoint,
        } => {
            // Pulsar's variables are AZURE_STORAGE_ACCOUNT / AZURE_STORAGE_ACCESS_KEY.
            let mut b = object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_container_name(container)
                .with_client_options(options)
                .with_retry(retry(settings));
            if let Ok(account) = std::env::var("AZURE_STORAGE_ACCOUNT") {
                b = b.with_account(account);
            }
            if let Ok(key) = std::env::var("AZURE_STORAGE_ACCESS_KEY") {
                b = b.with_access_key(key);
            }
            if let Some(endpoint) = endpoint {
                b = b.with_endpoint(endpoint.clone());
            }
            Arc::new(b.build().map_err(err)?)
        }
        Location::Filesystem { path } => {
            std::fs::create_dir_all(path).map_err(|e| {
                OffloadError::Config(format!(
                    "filesystem offload directory {}: {e}",
                    path.display()
                ))
            })?;
            Arc::new(object_store::local::LocalFileSystem::new_with_prefix(path).map_err(err)?)
        }
    };
    Ok(Arc::new(PacedStore::new(store)))
}

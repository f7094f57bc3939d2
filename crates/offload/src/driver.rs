//! Offload drivers and their configuration: which object store, which bucket, which limits.
//!
//! Every storage family goes through `object_store`: `aws-s3` and `S3` (any S3-compatible
//! endpoint, path-style addressing) over its S3 client, `google-cloud-storage`, `azureblob`, and
//! `filesystem` (a local directory; no user metadata is stored there).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;

use crate::credentials;
use crate::error::{OffloadError, Result};
use crate::format::block::MIN_BLOCK_SIZE;

/// A storage family, selected by `managedLedgerOffloadDriver` (case-insensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    AwsS3,
    S3,
    GoogleCloudStorage,
    AzureBlob,
    Filesystem,
}

impl Driver {
    pub const NAMES: [&'static str; 5] = [
        "aws-s3",
        "S3",
        "google-cloud-storage",
        "azureblob",
        "filesystem",
    ];

    pub fn parse(name: &str) -> Result<Driver> {
        match name.to_ascii_lowercase().as_str() {
            "aws-s3" => Ok(Driver::AwsS3),
            "s3" => Ok(Driver::S3),
            "google-cloud-storage" => Ok(Driver::GoogleCloudStorage),
            "azureblob" => Ok(Driver::AzureBlob),
            "filesystem" => Ok(Driver::Filesystem),
            _ => Err(OffloadError::Config(format!(
                "unknown managedLedgerOffloadDriver {name:?} (supported: {})",
                Driver::NAMES.join(", ")
            ))),
        }
    }

    /// The driver name as Pulsar records it in the offload context.
    pub fn name(self) -> &'static str {
        match self {
            Driver::AwsS3 => "aws-s3",
            Driver::S3 => "S3",
            Driver::GoogleCloudStorage => "google-cloud-storage",
            Driver::AzureBlob => "azureblob",
            Driver::Filesystem => "filesystem",
        }
    }

    /// Pulsar's provider identifier stored as `managedLedgerOffloadDriver` in driver metadata.
    pub fn provider_id(self) -> &'static str {
        match self {
            Driver::AwsS3 => "AWS_S3",
            Driver::S3 => "S3",
            Driver::GoogleCloudStorage => "GOOGLE_CLOUD_STORAGE",
            Driver::AzureBlob => "AZURE_BLOB",
            Driver::Filesystem => "FILESYSTEM",
        }
    }
}

/// Where an offloaded ledger lives, stored with the ledger so it can be read (and deleted) with
/// the same bucket, region and endpoint after the broker's configuration changes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DriverMetadata {
    pub driver_name: String,
    /// `managedLedgerOffloadDriver`, `bucket`, `region`, `serviceEndpoint` (object stores) or
    /// `storageBasePath` (filesystem).
    pub properties: BTreeMap<String, String>,
}

/// Settings of one offloader. Units are in the names.
#[derive(Clone)]
pub struct OffloadConfig {
    pub driver: Driver,
    pub bucket: String,
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub max_block_size_bytes: u64,
    pub read_buffer_size_bytes: u64,
    /// Multipart parts uploaded at once (memory ≈ (this + 1) × block size).
    pub parallel_parts: usize,
    /// Ranged GETs kept in flight ahead of a sequential reader.
    pub read_ahead_requests: usize,
    pub credential_id: Option<String>,
    pub credential_secret: Option<String>,
    pub role: Option<String>,
    pub role_session_name: String,
    pub gcs_service_account_key_file: Option<PathBuf>,
    /// Root directory of the filesystem driver.
    pub filesystem_path: PathBuf,
    pub cluster_name: String,
    /// Retry policy of every object store request: attempts beyond the first.
    pub max_retries: usize,
    pub retry_init_backoff: Duration,
    pub retry_max_backoff: Duration,
    pub request_timeout: Duration,
}

impl std::fmt::Debug for OffloadConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets are never printed.
        f.debug_struct("OffloadConfig")
            .field("driver", &self.driver)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("max_block_size_bytes", &self.max_block_size_bytes)
            .field("read_buffer_size_bytes", &self.read_buffer_size_bytes)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl OffloadConfig {
    /// A configuration with Pulsar's defaults for everything but the driver and bucket.
    pub fn new(driver: Driver, bucket: impl Into<String>) -> Self {
        OffloadConfig {
            driver,
            bucket: bucket.into(),
            region: None,
            endpoint: None,
            max_block_size_bytes: 64 << 20,
            read_buffer_size_bytes: 1 << 20,
            parallel_parts: 4,
            read_ahead_requests: 16,
            credential_id: None,
            credential_secret: None,
            role: None,
            role_session_name: "pulsar-s3-offload".into(),
            gcs_service_account_key_file: None,
            filesystem_path: PathBuf::from("data/offloaded"),
            cluster_name: "standalone".into(),
            max_retries: 5,
            retry_init_backoff: Duration::from_millis(50),
            retry_max_backoff: Duration::from_secs(2),
            request_timeout: Duration::from_secs(30),
        }
    }

    /// Checks what Pulsar checks, with messages that name the setting.
    pub fn validate(&self) -> Result<()> {
        let key_prefix = match self.driver {
            Driver::GoogleCloudStorage => "gcsManagedLedgerOffload",
            _ => "s3ManagedLedgerOffload",
        };
        if self.driver != Driver::Filesystem {
            if self.bucket.is_empty() {
                return Err(OffloadError::Config(format!(
                    "{key_prefix}Bucket is required for the {} offload driver",
                    self.driver.name()
                )));
            }
            if self.max_block_size_bytes < MIN_BLOCK_SIZE {
                return Err(OffloadError::Config(format!(
                    "{key_prefix}MaxBlockSizeInBytes cannot be less than 5MB for {} offload (got {} bytes, minimum {MIN_BLOCK_SIZE})",
                    self.driver.name(),
                    self.max_block_size_bytes
                )));
            }
        } else if self.max_block_size_bytes < MIN_BLOCK_SIZE {
            return Err(OffloadError::Config(format!(
                "managedLedgerOffloadMaxBlockSizeInBytes cannot be less than 5MB (got {})",
                self.max_block_size_bytes
            )));
        }
        if self.driver == Driver::S3 && self.endpoint.as_deref().unwrap_or("").is_empty() {
            return Err(OffloadError::Config(
                "the S3 offload driver requires s3ManagedLedgerOffloadServiceEndpoint".into(),
            ));
        }
        if self.read_buffer_size_bytes == 0 || self.parallel_parts == 0 {
            return Err(OffloadError::Config(
                "s3ManagedLedgerOffloadReadBufferSizeInBytes and the parallel part count must be positive".into(),
            ));
        }
        Ok(())
    }

    pub fn region_or_default(&self) -> String {
        self.region
            .clone()
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "us-east-1".into())
    }

    /// Driver metadata for ledgers offloaded with this configuration.
    pub fn driver_metadata(&self) -> DriverMetadata {
        let mut properties = BTreeMap::new();
        match self.driver {
            Driver::Filesystem => {
                properties.insert(
                    "storageBasePath".into(),
                    self.filesystem_path.display().to_string(),
                );
            }
            d => {
                properties.insert("managedLedgerOffloadDriver".into(), d.provider_id().into());
                properties.insert("bucket".into(), self.bucket.clone());
                properties.insert("region".into(), self.region.clone().unwrap_or_default());
                properties.insert(
                    "serviceEndpoint".into(),
                    self.endpoint.clone().unwrap_or_default(),
                );
            }
        }
        DriverMetadata {
            driver_name: self.driver.name().into(),
            properties,
        }
    }

    /// This configuration pointed at the location recorded in `meta` (bucket, region, endpoint
    /// or base path), keeping the current credentials and limits.
    pub fn at_location(&self, meta: &DriverMetadata) -> OffloadConfig {
        let mut c = self.clone();
        let get = |k: &str| meta.properties.get(k).filter(|v| !v.is_empty()).cloned();
        if let Some(b) = get("bucket") {
            c.bucket = b;
        }
        if let Some(r) = get("region") {
            c.region = Some(r);
        }
        if let Some(e) = get("serviceEndpoint") {
            c.endpoint = Some(e);
        }
        if let Some(p) = get("storageBasePath") {
            c.filesystem_path = PathBuf::from(p);
        }
        c
    }

    /// A short name of the location, for error messages: the bucket or the directory.
    pub fn location(&self) -> String {
        match self.driver {
            Driver::Filesystem => self.filesystem_path.display().to_string(),
            _ => self.bucket.clone(),
        }
    }

    fn client_options(&self) -> object_store::ClientOptions {
        // Note: ClientOptions replaces any earlier allow_http setting on a builder, so HTTP is
        // allowed here, in the one place the client options are made.
        let allow_http = self
            .endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"));
        object_store::ClientOptions::new()
            .with_allow_http(allow_http)
            .with_timeout(self.request_timeout)
            .with_connect_timeout(Duration::from_secs(5))
    }

    fn retry(&self) -> object_store::RetryConfig {
        object_store::RetryConfig {
            backoff: object_store::BackoffConfig {
                init_backoff: self.retry_init_backoff,
                max_backoff: self.retry_max_backoff,
                base: 2.0,
            },
            max_retries: self.max_retries,
            retry_timeout: self.request_timeout * 2,
        }
    }

    /// Builds the object store this configuration describes.
    pub async fn build_store(&self) -> Result<Arc<dyn ObjectStore>> {
        self.validate()?;
        let err = |e: object_store::Error| {
            OffloadError::Config(format!("{} driver: {e}", self.driver.name()))
        };
        let store: Arc<dyn ObjectStore> = match self.driver {
            Driver::AwsS3 | Driver::S3 => {
                let mut b = object_store::aws::AmazonS3Builder::new()
                    .with_bucket_name(&self.bucket)
                    .with_region(self.region_or_default())
                    .with_client_options(self.client_options())
                    .with_retry(self.retry());
                if let Some(endpoint) = self.endpoint.as_deref().filter(|e| !e.is_empty()) {
                    // A configured endpoint means path-style addressing, as Pulsar does.
                    b = b
                        .with_endpoint(endpoint)
                        .with_virtual_hosted_style_request(false);
                }
                let creds = credentials::aws_provider(self).await?;
                Arc::new(b.with_credentials(creds).build().map_err(err)?)
            }
            Driver::GoogleCloudStorage => {
                let mut b = object_store::gcp::GoogleCloudStorageBuilder::new()
                    .with_bucket_name(&self.bucket)
                    .with_client_options(self.client_options())
                    .with_retry(self.retry());
                if let Some(key) = &self.gcs_service_account_key_file {
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
            Driver::AzureBlob => {
                // Pulsar's variables are AZURE_STORAGE_ACCOUNT / AZURE_STORAGE_ACCESS_KEY.
                let mut b = object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_container_name(&self.bucket)
                    .with_client_options(self.client_options())
                    .with_retry(self.retry());
                if let Ok(account) = std::env::var("AZURE_STORAGE_ACCOUNT") {
                    b = b.with_account(account);
                }
                if let Ok(key) = std::env::var("AZURE_STORAGE_ACCESS_KEY") {
                    b = b.with_access_key(key);
                }
                if let Some(endpoint) = self.endpoint.as_deref().filter(|e| !e.is_empty()) {
                    b = b.with_endpoint(endpoint.to_string());
                }
                Arc::new(b.build().map_err(err)?)
            }
            Driver::Filesystem => {
                let path = &self.filesystem_path;
                std::fs::create_dir_all(path).map_err(|e| {
                    OffloadError::Config(format!(
                        "filesystem offload directory {}: {e}",
                        path.display()
                    ))
                })?;
                let fs =
                    object_store::local::LocalFileSystem::new_with_prefix(path).map_err(err)?;
                Arc::new(fs)
            }
        };
        Ok(store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_names_are_case_insensitive_and_unknown_ones_listed() {
        assert_eq!(Driver::parse("AWS-S3").unwrap(), Driver::AwsS3);
        assert_eq!(Driver::parse("s3").unwrap(), Driver::S3);
        assert_eq!(Driver::parse("AzureBlob").unwrap(), Driver::AzureBlob);
        let e = Driver::parse("tape").unwrap_err().to_string();
        assert!(
            e.contains("unknown managedLedgerOffloadDriver \"tape\""),
            "{e}"
        );
        assert!(
            e.contains("aws-s3, S3, google-cloud-storage, azureblob, filesystem"),
            "{e}"
        );
    }

    #[test]
    fn validation_names_the_setting() {
        let mut c = OffloadConfig::new(Driver::AwsS3, "b");
        c.max_block_size_bytes = 1 << 20;
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.contains("s3ManagedLedgerOffloadMaxBlockSizeInBytes cannot be less than 5MB"),
            "{e}"
        );
        let c = OffloadConfig::new(Driver::AwsS3, "");
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("s3ManagedLedgerOffloadBucket is required")
        );
        let c = OffloadConfig::new(Driver::S3, "b");
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("requires s3ManagedLedgerOffloadServiceEndpoint")
        );
        let mut c = OffloadConfig::new(Driver::GoogleCloudStorage, "b");
        c.max_block_size_bytes = 0;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("gcsManagedLedgerOffloadMaxBlockSizeInBytes")
        );
        assert!(
            OffloadConfig::new(Driver::Filesystem, "")
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn driver_metadata_and_relocation() {
        let mut c = OffloadConfig::new(Driver::S3, "b1");
        c.endpoint = Some("http://127.0.0.1:9000".into());
        let m = c.driver_metadata();
        assert_eq!(m.driver_name, "S3");
        assert_eq!(m.properties["bucket"], "b1");
        assert_eq!(m.properties["serviceEndpoint"], "http://127.0.0.1:9000");
        assert_eq!(m.properties["region"], "");
        let mut now = c.clone();
        now.bucket = "b2".into();
        assert_eq!(now.at_location(&m).bucket, "b1");
        let dbg = format!(
            "{:?}",
            OffloadConfig {
                credential_secret: Some("hunter2".into()),
                ..c
            }
        );
        assert!(!dbg.contains("hunter2"));
    }
}

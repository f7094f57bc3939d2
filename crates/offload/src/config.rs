//! What one offloader needs besides the shared store cache: where new offloads go, how it
//! authenticates, and its limits. Units are in the names.

use std::path::PathBuf;

use crate::error::{OffloadError, Result};
use crate::format::block::MIN_BLOCK_SIZE;
use crate::location::Location;
use crate::read::ReadSizes;
use crate::throttle::ScopedLimit;

/// How an offloader authenticates to its store. Part of what identifies a cached store client:
/// two policies may reach one bucket under different roles.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Credentials {
    /// `s3ManagedLedgerOffloadCredentialId` / `…CredentialSecret`: static AWS keys; without them
    /// the standard AWS chain (environment, profile, web identity, metadata service) is used.
    pub credential_id: Option<String>,
    pub credential_secret: Option<String>,
    /// `s3ManagedLedgerOffloadRole`: assumed through STS on top of the base credentials.
    pub role: Option<String>,
    /// `s3ManagedLedgerOffloadRoleSessionName` (Pulsar's default `pulsar-s3-offload` if unset).
    pub role_session_name: Option<String>,
    /// `gcsManagedLedgerOffloadServiceAccountKeyFile`.
    pub gcs_service_account_key_file: Option<PathBuf>,
    /// Server-side encryption of what the S3 drivers write (and, for SSE-C, read).
    pub s3_encryption: S3Encryption,
}

/// Server-side encryption on every PUT, multipart upload and (SSE-C) GET of the S3 drivers:
/// tierlog's keys in Pulsar's style, `s3ManagedLedgerOffloadServerSideEncryption` (`AES256`,
/// `aws:kms`, `aws:kms:dsse`, `SSE-C`), `s3ManagedLedgerOffloadSseKmsKeyId`,
/// `s3ManagedLedgerOffloadSseCustomerKeyFile` (a file holding the 256-bit key, raw or base64).
/// The customer key is read when the client is built and never leaves the process otherwise.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum S3Encryption {
    #[default]
    None,
    /// SSE-S3 (`AES256`): keys managed by S3.
    SseS3,
    /// SSE-KMS (`aws:kms`), or dual-layer DSSE-KMS, with the bucket's default key unless named.
    SseKms { key_id: Option<String>, dual: bool },
    /// SSE-C: the customer's key, from a file.
    SseC { key_file: PathBuf },
}

impl S3Encryption {
    /// From the keys' values; the error names what is wrong.
    pub fn from_settings(
        kind: Option<&str>,
        kms_key_id: Option<&str>,
        customer_key_file: Option<&str>,
    ) -> std::result::Result<S3Encryption, String> {
        let key_id = kms_key_id.filter(|k| !k.is_empty()).map(str::to_string);
        let e = match kind.map(str::trim) {
            None | Some("") | Some("none") => S3Encryption::None,
            Some("AES256") => S3Encryption::SseS3,
            Some("aws:kms") => S3Encryption::SseKms {
                key_id,
                dual: false,
            },
            Some("aws:kms:dsse") => S3Encryption::SseKms { key_id, dual: true },
            Some("SSE-C") => match customer_key_file.filter(|f| !f.is_empty()) {
                Some(f) => S3Encryption::SseC {
                    key_file: PathBuf::from(f),
                },
                None => {
                    return Err(
                        "SSE-C needs s3ManagedLedgerOffloadSseCustomerKeyFile (a file holding the 256-bit key)"
                            .into(),
                    );
                }
            },
            Some(other) => {
                return Err(format!(
                    "s3ManagedLedgerOffloadServerSideEncryption {other:?} is not one of none, AES256, aws:kms, aws:kms:dsse, SSE-C"
                ));
            }
        };
        Ok(e)
    }

    /// The SSE-C key as S3 takes it (base64 of 32 bytes), read from its file.
    pub(crate) fn customer_key_base64(path: &std::path::Path) -> Result<String> {
        use base64::Engine;
        let shown = path.display();
        let raw = std::fs::read(path).map_err(|e| {
            OffloadError::Config(format!(
                "cannot read the SSE-C key file {shown} (s3ManagedLedgerOffloadSseCustomerKeyFile): {e}"
            ))
        })?;
        let b64 = base64::engine::general_purpose::STANDARD;
        let key = if raw.len() == 32 {
            raw
        } else {
            b64.decode(raw.trim_ascii()).unwrap_or_default()
        };
        if key.len() != 32 {
            return Err(OffloadError::Config(format!(
                "the SSE-C key file {shown} must hold a 256-bit key (32 bytes, raw or base64)"
            )));
        }
        Ok(b64.encode(key))
    }
}

impl Credentials {
    pub fn role_session_name(&self) -> &str {
        self.role_session_name
            .as_deref()
            .unwrap_or("pulsar-s3-offload")
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets are never printed.
        f.debug_struct("Credentials")
            .field("credential_id", &self.credential_id)
            .field(
                "credential_secret",
                &self.credential_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("role", &self.role)
            .field("role_session_name", &self.role_session_name)
            .field(
                "gcs_service_account_key_file",
                &self.gcs_service_account_key_file,
            )
            .field("s3_encryption", &self.s3_encryption)
            .finish()
    }
}

/// Settings of one offloader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffloadConfig {
    /// Where new offloads go.
    pub location: Location,
    pub credentials: Credentials,
    pub max_block_size_bytes: u64,
    /// Size of the ranged GETs of reads (and of the first read of a ledger).
    pub read_buffer_size_bytes: u64,
    /// Multipart parts uploaded at once (memory ≈ (this + 1) × block size).
    pub parallel_parts: usize,
    /// Ranged GETs kept in flight ahead of a sequential reader.
    pub read_ahead_requests: usize,
    /// What a sequential reader's ranged GETs grow to.
    pub max_read_range_bytes: u64,
    /// `pulsarclustername` in the objects' user metadata.
    pub cluster_name: String,
    /// Upload rates of the namespace and topic (their offload policies'
    /// `managedLedgerOffloadFlowPermitsPerSecond`), on top of the broker's.
    pub upload_limits: Vec<ScopedLimit>,
    /// Cold-read rates of the namespace and topic
    /// (`managedLedgerOffloadReadFlowPermitsPerSecond`), on top of the broker's.
    pub read_limits: Vec<ScopedLimit>,
}

impl OffloadConfig {
    /// A configuration with Pulsar's defaults for everything but the location.
    pub fn new(location: Location) -> Self {
        OffloadConfig {
            location,
            credentials: Credentials::default(),
            max_block_size_bytes: 64 << 20,
            read_buffer_size_bytes: 1 << 20,
            parallel_parts: 4,
            read_ahead_requests: 16,
            max_read_range_bytes: ReadSizes::default().max_read_range_bytes,
            cluster_name: "standalone".into(),
            upload_limits: Vec::new(),
            read_limits: Vec::new(),
        }
    }

    /// How reads of this offloader's ledgers size their GETs.
    pub fn read_sizes(&self) -> ReadSizes {
        ReadSizes {
            read_buffer_size_bytes: self.read_buffer_size_bytes,
            max_read_range_bytes: self.max_read_range_bytes,
            read_ahead_requests: self.read_ahead_requests,
        }
    }

    /// Checks what Pulsar checks, with messages that name the setting.
    pub fn validate(&self) -> Result<()> {
        self.location.validate_target()?;
        let driver = self.location.driver();
        if self.max_block_size_bytes < MIN_BLOCK_SIZE {
            return Err(OffloadError::Config(format!(
                "{}MaxBlockSizeInBytes cannot be less than 5MB for {driver} offload (got {} bytes, minimum {MIN_BLOCK_SIZE})",
                driver.key_prefix(),
                self.max_block_size_bytes
            )));
        }
        if self.read_buffer_size_bytes == 0 {
            return Err(OffloadError::Config(format!(
                "{}ReadBufferSizeInBytes must be positive",
                driver.key_prefix()
            )));
        }
        if self.parallel_parts == 0 || self.read_ahead_requests == 0 {
            return Err(OffloadError::Config(
                "managedLedgerOffloadUploadParallelism and managedLedgerOffloadReadAheadRequests must be positive".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::location::Driver;

    #[test]
    fn validation_names_the_setting_and_debug_hides_secrets() {
        let mut c = OffloadConfig::new(Location::new(
            Driver::AwsS3,
            Some("bucket".into()),
            None,
            None,
            PathBuf::new(),
        ));
        assert!(c.validate().is_ok());
        c.max_block_size_bytes = 1 << 20;
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.contains("s3ManagedLedgerOffloadMaxBlockSizeInBytes cannot be less than 5MB"),
            "{e}"
        );
        let mut g = OffloadConfig::new(Location::new(
            Driver::GoogleCloudStorage,
            Some("bucket".into()),
            None,
            None,
            PathBuf::new(),
        ));
        g.max_block_size_bytes = 0;
        assert!(
            g.validate()
                .unwrap_err()
                .to_string()
                .contains("gcsManagedLedgerOffloadMaxBlockSizeInBytes")
        );
        c.credentials.credential_secret = Some("hunter2".into());
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}

//! Pulsar's `OffloadPolicies`: one type for all three levels — the broker's configuration keys,
//! a namespace's `offloadPolicies` and a topic's — merged field by field (topic, then namespace,
//! then broker; Pulsar's `mergeConfiguration`), then resolved once into what a topic uses: its
//! automatic-offload thresholds, deletion lag and read priority, and where its ledgers go
//! ([`offload::OffloadConfig`], whose [`offload::Location`] is recorded with every ledger).
//!
//! The field list below is the single place that knows Pulsar's offload key names; the JSON
//! names, the configuration-file reader and the merge are all generated from it.

use std::path::PathBuf;

use ledger::ManagedLedgerConfig;
use offload::{Credentials, Driver, Location, OffloadConfig, OffloadError, ScopedLimit};
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, Properties};

/// Declares [`OffloadPolicies`] from `field: Type = "pulsarKey"` lines. `#[secret]` fields come
/// only from the broker's configuration: they are neither accepted nor shown in JSON, and
/// `Debug` hides them.
macro_rules! offload_policies {
    ($( $(#[$secret:ident])? $field:ident : $ty:ty = $key:literal, )*) => {
        /// Pulsar's `OffloadPolicies`, every field optional: unset fields fall through to the
        /// next level. Unknown JSON fields are ignored.
        #[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
        pub struct OffloadPolicies {
            $(
                #[serde(rename = $key, default, skip_serializing_if = "Option::is_none")]
                $( #[serde(skip) ] #[doc = stringify!($secret)] )?
                pub $field: Option<$ty>,
            )*
        }

        impl OffloadPolicies {
            /// This level's value where it has one, else `lower`'s: field by field.
            pub fn or(&self, lower: &OffloadPolicies) -> OffloadPolicies {
                OffloadPolicies {
                    $( $field: self.$field.clone().or_else(|| lower.$field.clone()), )*
                }
            }

            /// Takes every offload key present in `props`, each parsed as its field's type.
            fn take_keys(props: &mut Properties) -> Result<OffloadPolicies, ConfigError> {
                Ok(OffloadPolicies {
                    $( $field: props.take_parsed::<$ty>($key)?, )*
                })
            }
        }

        impl std::fmt::Debug for OffloadPolicies {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut d = f.debug_struct("OffloadPolicies");
                $(
                    if let Some(v) = &self.$field {
                        let secret = false $( || stringify!($secret) == "secret" )?;
                        if secret {
                            d.field(stringify!($field), &"<redacted>");
                        } else {
                            d.field(stringify!($field), v);
                        }
                    }
                )*
                d.finish()
            }
        }
    };
}

offload_policies! {
    managed_ledger_offload_driver: String = "managedLedgerOffloadDriver",
    managed_ledger_offload_threshold_in_bytes: i64 = "managedLedgerOffloadThresholdInBytes",
    managed_ledger_offload_threshold_in_seconds: i64 = "managedLedgerOffloadThresholdInSeconds",
    managed_ledger_offload_deletion_lag_in_millis: i64 = "managedLedgerOffloadDeletionLagInMillis",
    managed_ledger_offloaded_read_priority: String = "managedLedgerOffloadedReadPriority",
    s3_managed_ledger_offload_region: String = "s3ManagedLedgerOffloadRegion",
    s3_managed_ledger_offload_bucket: String = "s3ManagedLedgerOffloadBucket",
    s3_managed_ledger_offload_service_endpoint: String = "s3ManagedLedgerOffloadServiceEndpoint",
    s3_managed_ledger_offload_max_block_size_in_bytes: u64 = "s3ManagedLedgerOffloadMaxBlockSizeInBytes",
    s3_managed_ledger_offload_read_buffer_size_in_bytes: u64 = "s3ManagedLedgerOffloadReadBufferSizeInBytes",
    #[secret] s3_managed_ledger_offload_credential_id: String = "s3ManagedLedgerOffloadCredentialId",
    #[secret] s3_managed_ledger_offload_credential_secret: String = "s3ManagedLedgerOffloadCredentialSecret",
    s3_managed_ledger_offload_role: String = "s3ManagedLedgerOffloadRole",
    s3_managed_ledger_offload_server_side_encryption: String = "s3ManagedLedgerOffloadServerSideEncryption",
    s3_managed_ledger_offload_sse_kms_key_id: String = "s3ManagedLedgerOffloadSseKmsKeyId",
    s3_managed_ledger_offload_sse_customer_key_file: String = "s3ManagedLedgerOffloadSseCustomerKeyFile",
    s3_managed_ledger_offload_role_session_name: String = "s3ManagedLedgerOffloadRoleSessionName",
    gcs_managed_ledger_offload_region: String = "gcsManagedLedgerOffloadRegion",
    gcs_managed_ledger_offload_bucket: String = "gcsManagedLedgerOffloadBucket",
    gcs_managed_ledger_offload_max_block_size_in_bytes: u64 = "gcsManagedLedgerOffloadMaxBlockSizeInBytes",
    gcs_managed_ledger_offload_read_buffer_size_in_bytes: u64 = "gcsManagedLedgerOffloadReadBufferSizeInBytes",
    gcs_managed_ledger_offload_service_account_key_file: String = "gcsManagedLedgerOffloadServiceAccountKeyFile",
    file_system_uri: String = "fileSystemURI",
    managed_ledger_offload_bucket: String = "managedLedgerOffloadBucket",
    managed_ledger_offload_region: String = "managedLedgerOffloadRegion",
    managed_ledger_offload_service_endpoint: String = "managedLedgerOffloadServiceEndpoint",
    managed_ledger_offload_max_block_size_in_bytes: u64 = "managedLedgerOffloadMaxBlockSizeInBytes",
    managed_ledger_offload_read_buffer_size_in_bytes: u64 = "managedLedgerOffloadReadBufferSizeInBytes",
    // tierlog's: bytes per second that the offloads (the cold reads) of the namespace's topics
    // together, or of the topic, may take, on top of the broker-wide limit of the same keys
    // (which the broker's configuration sets, not this policy). <= 0: no limit.
    managed_ledger_offload_flow_permits_per_second: i64 = "managedLedgerOffloadFlowPermitsPerSecond",
    managed_ledger_offload_read_flow_permits_per_second: i64 = "managedLedgerOffloadReadFlowPermitsPerSecond",
}

/// What no offload policy sets: broker-wide settings (tierlog's own keys) and where the
/// filesystem driver writes without `fileSystemURI`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffloadDefaults {
    pub filesystem_path: PathBuf,
    pub parallel_parts: usize,
    /// `managedLedgerOffloadMaxThreads` (Pulsar's key and default, 2): ledgers offloading at
    /// once over the whole broker.
    pub max_parallel_ledgers: usize,
    /// `managedLedgerOffloadFlowPermitsPerSecond` (Pulsar's key): bytes per second all offloads
    /// of the broker upload together (`None`: no limit).
    pub upload_bytes_per_second: Option<u64>,
    /// `managedLedgerOffloadReadFlowPermitsPerSecond` (tierlog's key in its style): bytes per
    /// second all tier reads of the broker fetch together (`None`: no limit).
    pub read_bytes_per_second: Option<u64>,
    pub read_ahead_requests: usize,
    /// `managedLedgerOffloadMaxReadRangeSizeInBytes`: what a sequential reader's ranged GETs
    /// grow to.
    pub max_read_range_bytes: u64,
    pub cluster_name: String,
}

impl OffloadDefaults {
    /// The broker-wide budget of offloads: `max_parallel_ledgers` uploads, each with its parts
    /// in flight and one block being built.
    pub fn budget(&self) -> offload::OffloadBudget {
        let budget = offload::OffloadBudget::new(
            self.max_parallel_ledgers,
            self.max_parallel_ledgers * (self.parallel_parts + 1),
        );
        match self.upload_bytes_per_second {
            Some(rate) => budget.with_upload_rate(rate),
            None => budget,
        }
    }
}

impl Default for OffloadDefaults {
    fn default() -> Self {
        OffloadDefaults {
            filesystem_path: PathBuf::from("data/offloaded"),
            parallel_parts: 4,
            max_parallel_ledgers: 2,
            upload_bytes_per_second: None,
            read_bytes_per_second: None,
            read_ahead_requests: 16,
            max_read_range_bytes: offload::ReadSizes::default().max_read_range_bytes,
            cluster_name: "standalone".into(),
        }
    }
}

/// Why offload policies cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("invalid value for {key}: {value:?} (allowed: {allowed})")]
    InvalidValue {
        key: &'static str,
        value: String,
        allowed: &'static str,
    },
    #[error(transparent)]
    Offload(#[from] OffloadError),
}

/// What a threshold or lag may be: -1 (off/unset) or a non-negative amount.
pub const LIMIT_ALLOWED: &str = "-1 or a non-negative number";

/// A threshold or lag (`offloadThreshold`, `offloadThresholdInSeconds`, `offloadDeletionLagMs`
/// and their `managedLedgerOffload*` forms): -1 or at least 0.
pub fn check_limit(key: &'static str, v: i64) -> crate::Result<i64> {
    Ok(limit(key, v)?)
}

fn limit(key: &'static str, v: i64) -> Result<i64, ResolveError> {
    if v < -1 {
        return Err(ResolveError::InvalidValue {
            key,
            value: v.to_string(),
            allowed: LIMIT_ALLOWED,
        });
    }
    Ok(v)
}

/// Pulsar's default `managedLedgerOffloadDeletionLagMs`: 4 hours.
const DEFAULT_DELETION_LAG_MS: i64 = 4 * 3600 * 1000;

fn read_tiered_first(v: &str) -> Result<bool, ResolveError> {
    match v.to_ascii_lowercase().replace('_', "-").as_str() {
        "tiered-storage-first" => Ok(true),
        "bookkeeper-first" => Ok(false),
        _ => Err(ResolveError::InvalidValue {
            key: "managedLedgerOffloadedReadPriority",
            value: v.to_string(),
            allowed: "tiered-storage-first or bookkeeper-first",
        }),
    }
}

impl OffloadPolicies {
    /// The broker level: every offload key of the configuration, plus Pulsar's older spellings
    /// (`managedLedgerOffloadAutoTriggerSizeThresholdBytes`, `managedLedgerOffloadDeletionLagMs`,
    /// `managedLedgerDataReadPriority`) where the new key is absent.
    pub fn from_properties(props: &mut Properties) -> Result<OffloadPolicies, ConfigError> {
        let old_threshold =
            props.take_parsed::<i64>("managedLedgerOffloadAutoTriggerSizeThresholdBytes")?;
        let old_lag = props.take_parsed::<i64>("managedLedgerOffloadDeletionLagMs")?;
        let old_priority = props.take_parsed::<String>("managedLedgerDataReadPriority")?;
        if let Some(p) = &old_priority {
            read_tiered_first(p).map_err(|_| ConfigError::InvalidValue {
                key: "managedLedgerDataReadPriority".into(),
                value: p.clone(),
                allowed: "tiered-storage-first or bookkeeper-first".into(),
            })?;
        }
        let mut p = OffloadPolicies::take_keys(props)?;
        p.managed_ledger_offload_threshold_in_bytes = p
            .managed_ledger_offload_threshold_in_bytes
            .or(old_threshold);
        p.managed_ledger_offload_deletion_lag_in_millis =
            p.managed_ledger_offload_deletion_lag_in_millis.or(old_lag);
        p.managed_ledger_offloaded_read_priority =
            p.managed_ledger_offloaded_read_priority.or(old_priority);
        Ok(p)
    }

    /// A namespace's policy with its legacy fields (`offload_threshold`,
    /// `offload_threshold_in_seconds`, `offload_deletion_lag_ms`) filling what it leaves unset,
    /// as Pulsar's `oldPoliciesCompatible` does.
    pub fn with_legacy_fields(&self, policies: &crate::types::Policies) -> OffloadPolicies {
        let mut p = self.clone();
        let set = |v: i64| (v != -1).then_some(v);
        p.managed_ledger_offload_threshold_in_bytes = p
            .managed_ledger_offload_threshold_in_bytes
            .or(set(policies.offload_threshold));
        p.managed_ledger_offload_threshold_in_seconds = p
            .managed_ledger_offload_threshold_in_seconds
            .or(set(policies.offload_threshold_in_seconds));
        p.managed_ledger_offload_deletion_lag_in_millis = p
            .managed_ledger_offload_deletion_lag_in_millis
            .or(policies.offload_deletion_lag_ms);
        p
    }

    /// How stores are authenticated to (and objects encrypted) under these policies. An
    /// unusable encryption setting is refused by [`resolve`](Self::resolve); here it counts
    /// as none.
    pub fn credentials(&self) -> Credentials {
        Credentials {
            s3_encryption: self.s3_encryption().unwrap_or_default(),
            credential_id: self.s3_managed_ledger_offload_credential_id.clone(),
            credential_secret: self.s3_managed_ledger_offload_credential_secret.clone(),
            role: self.s3_managed_ledger_offload_role.clone(),
            role_session_name: self.s3_managed_ledger_offload_role_session_name.clone(),
            gcs_service_account_key_file: self
                .gcs_managed_ledger_offload_service_account_key_file
                .as_ref()
                .map(PathBuf::from),
        }
    }

    fn s3_encryption(&self) -> Result<offload::S3Encryption, ResolveError> {
        offload::S3Encryption::from_settings(
            self.s3_managed_ledger_offload_server_side_encryption
                .as_deref(),
            self.s3_managed_ledger_offload_sse_kms_key_id.as_deref(),
            self.s3_managed_ledger_offload_sse_customer_key_file
                .as_deref(),
        )
        .map_err(|reason| ResolveError::Offload(OffloadError::Config(reason)))
    }

    /// The upload and read limits this level of policy sets for `scope` (a namespace's topics
    /// together, or one topic): values <= 0 set none.
    pub fn scoped_limits(&self, scope: &str) -> (Option<ScopedLimit>, Option<ScopedLimit>) {
        let limit = |v: Option<i64>| {
            v.and_then(|v| u64::try_from(v).ok())
                .filter(|v| *v > 0)
                .map(|bytes_per_second| ScopedLimit {
                    scope: scope.to_string(),
                    bytes_per_second,
                })
        };
        (
            limit(self.managed_ledger_offload_flow_permits_per_second),
            limit(self.managed_ledger_offload_read_flow_permits_per_second),
        )
    }

    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        *self == OffloadPolicies::default()
    }

    /// Whether the policy names a location of its own (a driver or any location field), as
    /// opposed to thresholds only.
    fn driver(&self) -> Result<Option<Driver>, ResolveError> {
        match self.managed_ledger_offload_driver.as_deref() {
            None => Ok(None),
            Some(d) if d.is_empty() || d.eq_ignore_ascii_case("none") => Ok(None),
            Some(d) => Driver::parse(d)
                .map(Some)
                .map_err(|_| ResolveError::InvalidValue {
                    key: "managedLedgerOffloadDriver",
                    value: d.to_string(),
                    allowed: "one of aws-s3, S3, google-cloud-storage, azureblob, filesystem, or none",
                }),
        }
    }

    /// What these (merged) policies make of a topic: `base` with the offload thresholds,
    /// deletion lag and read priority applied, and where its ledgers go (`None`: offload off).
    pub fn resolve(
        &self,
        defaults: &OffloadDefaults,
        base: &ManagedLedgerConfig,
    ) -> Result<(ManagedLedgerConfig, Option<OffloadConfig>), ResolveError> {
        for (key, v) in [
            (
                "managedLedgerOffloadThresholdInBytes",
                self.managed_ledger_offload_threshold_in_bytes,
            ),
            (
                "managedLedgerOffloadThresholdInSeconds",
                self.managed_ledger_offload_threshold_in_seconds,
            ),
            (
                "managedLedgerOffloadDeletionLagInMillis",
                self.managed_ledger_offload_deletion_lag_in_millis,
            ),
        ] {
            if let Some(v) = v {
                limit(key, v)?;
            }
        }
        self.s3_encryption()?;
        let mut ml = base.clone();
        ml.offload_threshold_bytes = self.managed_ledger_offload_threshold_in_bytes.unwrap_or(-1);
        ml.offload_threshold_seconds = self
            .managed_ledger_offload_threshold_in_seconds
            .unwrap_or(-1);
        ml.offload_deletion_lag_ms = u64::try_from(
            self.managed_ledger_offload_deletion_lag_in_millis
                .unwrap_or(DEFAULT_DELETION_LAG_MS),
        )
        .ok();
        ml.read_tiered_first = match &self.managed_ledger_offloaded_read_priority {
            Some(p) => read_tiered_first(p)?,
            None => true,
        };
        let Some(driver) = self.driver()? else {
            return Ok((ml, None));
        };
        let s3 = matches!(driver, Driver::AwsS3 | Driver::S3);
        let gcs = driver == Driver::GoogleCloudStorage;
        // The driver's own key first, then the generic `managedLedgerOffload*` one.
        let pick =
            |s3_value: &Option<String>, gcs_value: &Option<String>, generic: &Option<String>| {
                let specific = if s3 {
                    s3_value.clone()
                } else if gcs {
                    gcs_value.clone()
                } else {
                    None
                };
                specific.or_else(|| generic.clone())
            };
        let pick_size = |s3_value: Option<u64>, gcs_value: Option<u64>, generic: Option<u64>| {
            let specific = if s3 {
                s3_value
            } else if gcs {
                gcs_value
            } else {
                None
            };
            specific.or(generic)
        };
        let bucket = pick(
            &self.s3_managed_ledger_offload_bucket,
            &self.gcs_managed_ledger_offload_bucket,
            &self.managed_ledger_offload_bucket,
        );
        let region = pick(
            &self.s3_managed_ledger_offload_region,
            &self.gcs_managed_ledger_offload_region,
            &self.managed_ledger_offload_region,
        );
        let endpoint = pick(
            &self.s3_managed_ledger_offload_service_endpoint,
            &None,
            &self.managed_ledger_offload_service_endpoint,
        );
        let path = match &self.file_system_uri {
            Some(uri) => PathBuf::from(uri.strip_prefix("file://").unwrap_or(uri)),
            None => defaults.filesystem_path.clone(),
        };
        let mut config = OffloadConfig::new(Location::new(driver, bucket, region, endpoint, path));
        if let Some(v) = pick_size(
            self.s3_managed_ledger_offload_max_block_size_in_bytes,
            self.gcs_managed_ledger_offload_max_block_size_in_bytes,
            self.managed_ledger_offload_max_block_size_in_bytes,
        ) {
            config.max_block_size_bytes = v;
        }
        if let Some(v) = pick_size(
            self.s3_managed_ledger_offload_read_buffer_size_in_bytes,
            self.gcs_managed_ledger_offload_read_buffer_size_in_bytes,
            self.managed_ledger_offload_read_buffer_size_in_bytes,
        ) {
            config.read_buffer_size_bytes = v;
        }
        config.credentials = self.credentials();
        config.parallel_parts = defaults.parallel_parts;
        config.read_ahead_requests = defaults.read_ahead_requests;
        config.max_read_range_bytes = defaults.max_read_range_bytes;
        config.cluster_name = defaults.cluster_name.clone();
        config.validate()?;
        Ok((ml, Some(config)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Policies;

    fn json(s: &str) -> OffloadPolicies {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn levels_merge_field_by_field_topic_first() {
        let topic = json(r#"{"managedLedgerOffloadThresholdInBytes": 0}"#);
        let ns = json(
            r#"{"managedLedgerOffloadThresholdInBytes": 100, "managedLedgerOffloadDeletionLagInMillis": 5}"#,
        );
        let legacy = Policies {
            offload_threshold_in_seconds: 60,
            offload_deletion_lag_ms: Some(9),
            ..Policies::default()
        };
        let mut props = Properties::parse(
            "b.conf",
            "managedLedgerOffloadDriver=filesystem\nmanagedLedgerOffloadDeletionLagMs=7\nmanagedLedgerOffloadThresholdInSeconds=30\n",
        )
        .unwrap();
        let broker = OffloadPolicies::from_properties(&mut props).unwrap();
        let merged = topic.or(&ns.with_legacy_fields(&legacy)).or(&broker);
        let (ml, target) = merged
            .resolve(&OffloadDefaults::default(), &ManagedLedgerConfig::default())
            .unwrap();
        assert_eq!(ml.offload_threshold_bytes, 0, "topic");
        assert_eq!(
            ml.offload_deletion_lag_ms,
            Some(5),
            "namespace policy over its legacy field"
        );
        assert_eq!(
            ml.offload_threshold_seconds, 60,
            "namespace legacy field over the broker"
        );
        assert_eq!(
            target.unwrap().location,
            Location::filesystem("data/offloaded")
        );
    }

    #[test]
    fn server_side_encryption_per_namespace_in_pulsars_key_style() {
        let ns = json(
            r#"{"managedLedgerOffloadDriver": "aws-s3", "s3ManagedLedgerOffloadBucket": "bkt",
                "s3ManagedLedgerOffloadServerSideEncryption": "aws:kms",
                "s3ManagedLedgerOffloadSseKmsKeyId": "alias/offload"}"#,
        );
        let (_, target) = ns
            .resolve(&OffloadDefaults::default(), &ManagedLedgerConfig::default())
            .unwrap();
        assert_eq!(
            target.unwrap().credentials.s3_encryption,
            offload::S3Encryption::SseKms {
                key_id: Some("alias/offload".into()),
                dual: false
            }
        );
        let bad = json(r#"{"s3ManagedLedgerOffloadServerSideEncryption": "rot13"}"#);
        let e = bad
            .resolve(&OffloadDefaults::default(), &ManagedLedgerConfig::default())
            .unwrap_err();
        assert!(e.to_string().contains("rot13"), "{e}");
    }

    #[test]
    fn json_uses_pulsars_names_and_never_carries_credentials() {
        let mut props = Properties::parse(
            "b.conf",
            "managedLedgerOffloadDriver=aws-s3\ns3ManagedLedgerOffloadBucket=b\ns3ManagedLedgerOffloadCredentialSecret=hunter2\n",
        )
        .unwrap();
        let p = OffloadPolicies::from_properties(&mut props).unwrap();
        let text = serde_json::to_string(&p).unwrap();
        assert_eq!(
            text,
            r#"{"managedLedgerOffloadDriver":"aws-s3","s3ManagedLedgerOffloadBucket":"b"}"#
        );
        assert!(!format!("{p:?}").contains("hunter2"));
        let from_json =
            json(r#"{"s3ManagedLedgerOffloadCredentialSecret": "x", "fileSystemURI": "/t"}"#);
        assert_eq!(from_json.s3_managed_ledger_offload_credential_secret, None);
        assert_eq!(from_json.file_system_uri.as_deref(), Some("/t"));
    }

    #[test]
    fn what_pulsar_refuses_is_refused_naming_the_key() {
        let e = |s: &str| {
            json(s)
                .resolve(&OffloadDefaults::default(), &ManagedLedgerConfig::default())
                .unwrap_err()
                .to_string()
        };
        assert!(e(r#"{"managedLedgerOffloadDriver":"tape"}"#).contains("\"tape\""));
        assert!(
            e(r#"{"managedLedgerOffloadDriver":"S3","s3ManagedLedgerOffloadRegion":"eu-west-1"}"#)
                .contains("s3ManagedLedgerOffloadBucket is required")
        );
        assert!(e(r#"{"managedLedgerOffloadedReadPriority":"fastest"}"#).contains("fastest"));
    }
}

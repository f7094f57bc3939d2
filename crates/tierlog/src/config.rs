//! Broker configuration: Pulsar's `key=value` file format and key names, environment overrides,
//! and validation that names the key, the value and what is allowed.
//!
//! Sources, later ones winning: built-in defaults → the config file → environment variables named
//! `TIERLOG_<key>` with the key spelled exactly as in the file (for example
//! `TIERLOG_managedLedgerMaxEntriesPerLedger=5000`). Unknown keys are warned about, not fatal, so a
//! Pulsar `standalone.conf` can be reused as is.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The prefix of environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "TIERLOG_";

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
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
    #[error("{0}")]
    Offload(String),
    #[error("cannot read configuration file {path}: {reason}")]
    Unreadable { path: String, reason: String },
}

/// Every setting the broker uses, typed and validated.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub cluster_name: String,
    pub bind_address: String,
    pub advertised_address: String,
    pub broker_service_port: u16,
    pub web_service_port: u16,
    /// Root of everything the broker stores locally (hot tier, metadata).
    pub data_directory: PathBuf,
    pub max_message_size: u64,
    pub managed_ledger_max_entries_per_ledger: u64,
    pub managed_ledger_max_size_per_ledger_mbytes: u64,
    pub managed_ledger_min_ledger_rollover_time_minutes: u64,
    pub managed_ledger_max_ledger_rollover_time_minutes: u64,
    /// Namespace default retention: -1 unlimited, 0 none.
    pub default_retention_time_in_minutes: i64,
    pub default_retention_size_in_mb: i64,
    /// How often idle ledgers are checked for time-based rollover and retention.
    pub retention_check_interval_in_seconds: u64,
    /// `managedLedgerOffloadDeletionLagMs` (default 4 h); negative: never delete hot copies.
    pub managed_ledger_offload_deletion_lag_ms: i64,
    /// `managedLedgerDataReadPriority`: `tiered-storage-first` (default) or `bookkeeper-first`.
    pub read_tiered_first: bool,
    /// `managedLedgerOffloadAutoTriggerSizeThresholdBytes` (-1: off).
    pub offload_threshold_bytes: i64,
    /// `managedLedgerOffloadThresholdInSeconds` (-1: off).
    pub offload_threshold_seconds: i64,
    /// Tiered storage; `None` when `managedLedgerOffloadDriver=none`.
    pub offload: Option<offload::OffloadConfig>,
}

/// Raw keys and values, with where each came from (for error messages and warnings).
struct Raw {
    values: BTreeMap<String, String>,
}

impl Raw {
    fn take(&mut self, key: &str) -> Option<String> {
        self.values.remove(key)
    }

    fn string(&mut self, key: &str, default: &str) -> String {
        self.take(key).unwrap_or_else(|| default.to_string())
    }

    fn unsigned(
        &mut self,
        key: &str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<u64, ConfigError> {
        let Some(v) = self.take(key) else {
            return Ok(default);
        };
        match v.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(ConfigError::InvalidValue {
                key: key.into(),
                value: v,
                allowed: if max == u64::MAX {
                    format!("an integer >= {min}")
                } else {
                    format!("an integer from {min} to {max}")
                },
            }),
        }
    }

    fn signed(&mut self, key: &str, default: i64, min: i64) -> Result<i64, ConfigError> {
        let Some(v) = self.take(key) else {
            return Ok(default);
        };
        match v.parse::<i64>() {
            Ok(n) if n >= min => Ok(n),
            _ => Err(ConfigError::InvalidValue {
                key: key.into(),
                value: v,
                allowed: format!("an integer >= {min}"),
            }),
        }
    }
}

/// Parses `key=value` lines: `#` starts a comment line, blank lines are skipped, whitespace around
/// keys and values is trimmed, an empty value means "use the default".
pub fn parse_properties(path: &str, text: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(ConfigError::Syntax {
                path: path.into(),
                line: i + 1,
                text: line.into(),
            });
        };
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() {
            return Err(ConfigError::Syntax {
                path: path.into(),
                line: i + 1,
                text: line.into(),
            });
        }
        if !v.is_empty() {
            out.insert(k.to_string(), v.to_string());
        }
    }
    Ok(out)
}

/// Loads the configuration. Returns it with the warnings to log (unknown keys).
pub fn load(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(BrokerConfig, Vec<String>), ConfigError> {
    let mut values = BTreeMap::new();
    if let Some(path) = file {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Unreadable {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        values = parse_properties(&shown, &text)?;
    }
    for (k, v) in env {
        if let Some(key) = k.strip_prefix(ENV_PREFIX)
            && !key.is_empty()
        {
            values.insert(key.to_string(), v.trim().to_string());
        }
    }
    from_values(values)
}

fn from_values(
    values: BTreeMap<String, String>,
) -> Result<(BrokerConfig, Vec<String>), ConfigError> {
    let mut raw = Raw { values };
    let port = |raw: &mut Raw, key: &str, default: u64| {
        raw.unsigned(key, default, 0, 65535).map(|p| p as u16)
    };
    let config = BrokerConfig {
        cluster_name: raw.string("clusterName", "standalone"),
        bind_address: raw.string("bindAddress", "0.0.0.0"),
        advertised_address: raw.string("advertisedAddress", "127.0.0.1"),
        broker_service_port: port(&mut raw, "brokerServicePort", 6650)?,
        web_service_port: port(&mut raw, "webServicePort", 8080)?,
        data_directory: PathBuf::from(raw.string("dataDirectory", "data")),
        max_message_size: raw.unsigned("maxMessageSize", 5 * 1024 * 1024, 1024, 1 << 30)?,
        managed_ledger_max_entries_per_ledger: raw.unsigned(
            "managedLedgerMaxEntriesPerLedger",
            50_000,
            1,
            u64::MAX,
        )?,
        managed_ledger_max_size_per_ledger_mbytes: raw.unsigned(
            "managedLedgerMaxSizePerLedgerMbytes",
            2048,
            1,
            1 << 30,
        )?,
        managed_ledger_min_ledger_rollover_time_minutes: raw.unsigned(
            "managedLedgerMinLedgerRolloverTimeMinutes",
            10,
            0,
            u64::MAX / 60_000,
        )?,
        managed_ledger_max_ledger_rollover_time_minutes: raw.unsigned(
            "managedLedgerMaxLedgerRolloverTimeMinutes",
            240,
            1,
            u64::MAX / 60_000,
        )?,
        default_retention_time_in_minutes: raw.signed("defaultRetentionTimeInMinutes", 0, -1)?,
        default_retention_size_in_mb: raw.signed("defaultRetentionSizeInMB", 0, -1)?,
        offload: None,
        offload_threshold_bytes: raw.signed(
            "managedLedgerOffloadAutoTriggerSizeThresholdBytes",
            -1,
            i64::MIN,
        )?,
        offload_threshold_seconds: raw.signed(
            "managedLedgerOffloadThresholdInSeconds",
            -1,
            i64::MIN,
        )?,
        managed_ledger_offload_deletion_lag_ms: raw.signed(
            "managedLedgerOffloadDeletionLagMs",
            14_400_000,
            i64::MIN,
        )?,
        read_tiered_first: match raw
            .string("managedLedgerDataReadPriority", "tiered-storage-first")
            .as_str()
        {
            "tiered-storage-first" => true,
            "bookkeeper-first" => false,
            other => {
                return Err(ConfigError::InvalidValue {
                    key: "managedLedgerDataReadPriority".into(),
                    value: other.into(),
                    allowed: "tiered-storage-first or bookkeeper-first".into(),
                });
            }
        },
        retention_check_interval_in_seconds: raw.unsigned(
            "retentionCheckIntervalInSeconds",
            120,
            1,
            86_400,
        )?,
    };
    if config.managed_ledger_min_ledger_rollover_time_minutes
        > config.managed_ledger_max_ledger_rollover_time_minutes
    {
        return Err(ConfigError::InvalidValue {
            key: "managedLedgerMinLedgerRolloverTimeMinutes".into(),
            value: config
                .managed_ledger_min_ledger_rollover_time_minutes
                .to_string(),
            allowed: format!(
                "at most managedLedgerMaxLedgerRolloverTimeMinutes ({})",
                config.managed_ledger_max_ledger_rollover_time_minutes
            ),
        });
    }
    let offload = offload_config(&mut raw, &config)?;
    let config = BrokerConfig { offload, ..config };
    let warnings = raw
        .values
        .keys()
        .map(|k| format!("unknown or unsupported configuration key {k:?} is ignored"))
        .collect();
    Ok((config, warnings))
}

impl BrokerConfig {
    /// Managed-ledger settings for topics of namespaces with default policies.
    pub fn managed_ledger_config(&self) -> ledger::ManagedLedgerConfig {
        let minutes_to_ms = |m: i64| if m < 0 { -1 } else { m * 60_000 };
        let mb_to_bytes = |m: i64| if m < 0 { -1 } else { m << 20 };
        ledger::ManagedLedgerConfig {
            max_entries_per_ledger: self.managed_ledger_max_entries_per_ledger,
            max_size_per_ledger_bytes: self.managed_ledger_max_size_per_ledger_mbytes << 20,
            min_rollover_ms: self.managed_ledger_min_ledger_rollover_time_minutes * 60_000,
            max_rollover_ms: self.managed_ledger_max_ledger_rollover_time_minutes * 60_000,
            retention_time_ms: minutes_to_ms(self.default_retention_time_in_minutes),
            retention_size_bytes: mb_to_bytes(self.default_retention_size_in_mb),
            offload_deletion_lag_ms: u64::try_from(self.managed_ledger_offload_deletion_lag_ms)
                .ok(),
            read_tiered_first: self.read_tiered_first,
            offload_threshold_bytes: self.offload_threshold_bytes,
            offload_threshold_seconds: self.offload_threshold_seconds,
        }
    }
}

/// The offload settings, resolved as Pulsar resolves them: the driver-specific key
/// (`s3ManagedLedgerOffload*` for `aws-s3`/`S3`, `gcsManagedLedgerOffload*` for
/// `google-cloud-storage`) first, then the generic `managedLedgerOffload*` key.
fn offload_config(
    raw: &mut Raw,
    broker: &BrokerConfig,
) -> Result<Option<offload::OffloadConfig>, ConfigError> {
    use offload::{Driver, OffloadConfig};
    let driver_name = raw.string("managedLedgerOffloadDriver", "filesystem");
    // Read every offload key, whichever driver is chosen, so none is reported as unknown.
    let s3 = |raw: &mut Raw, suffix: &str| raw.take(&format!("s3ManagedLedgerOffload{suffix}"));
    let s3_keys: Vec<(&str, Option<String>)> = [
        "Bucket",
        "Region",
        "ServiceEndpoint",
        "MaxBlockSizeInBytes",
        "ReadBufferSizeInBytes",
        "CredentialId",
        "CredentialSecret",
        "Role",
        "RoleSessionName",
    ]
    .into_iter()
    .map(|k| (k, s3(raw, k)))
    .collect();
    let gcs_keys: Vec<(&str, Option<String>)> = [
        "Bucket",
        "Region",
        "MaxBlockSizeInBytes",
        "ReadBufferSizeInBytes",
        "ServiceAccountKeyFile",
    ]
    .into_iter()
    .map(|k| (k, raw.take(&format!("gcsManagedLedgerOffload{k}"))))
    .collect();
    let generic_keys: Vec<(&str, Option<String>)> = [
        "Bucket",
        "Region",
        "ServiceEndpoint",
        "MaxBlockSizeInBytes",
        "ReadBufferSizeInBytes",
    ]
    .into_iter()
    .map(|k| (k, raw.take(&format!("managedLedgerOffload{k}"))))
    .collect();
    let fs_uri = raw.take("fileSystemURI");
    let parallel = raw.unsigned("managedLedgerOffloadUploadParallelism", 4, 1, 64)?;
    let read_ahead = raw.unsigned("managedLedgerOffloadReadAheadRequests", 16, 1, 256)?;
    if driver_name.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let driver = Driver::parse(&driver_name).map_err(|_| ConfigError::InvalidValue {
        key: "managedLedgerOffloadDriver".into(),
        value: driver_name.clone(),
        allowed: format!("one of {}, or none", Driver::NAMES.join(", ")),
    })?;
    let (prefix, specific) = match driver {
        Driver::AwsS3 | Driver::S3 => ("s3ManagedLedgerOffload", &s3_keys),
        Driver::GoogleCloudStorage => ("gcsManagedLedgerOffload", &gcs_keys),
        _ => ("managedLedgerOffload", &generic_keys),
    };
    let get = |name: &str| -> Option<(String, String)> {
        let find = |list: &Vec<(&str, Option<String>)>, p: &str| {
            list.iter()
                .find(|(k, _)| *k == name)
                .and_then(|(k, v)| v.clone().map(|v| (format!("{p}{k}"), v)))
        };
        find(specific, prefix).or_else(|| find(&generic_keys, "managedLedgerOffload"))
    };
    let number = |name: &str, default: u64| -> Result<u64, ConfigError> {
        match get(name) {
            None => Ok(default),
            Some((key, v)) => v.parse::<u64>().map_err(|_| ConfigError::InvalidValue {
                key,
                value: v,
                allowed: "a number of bytes".into(),
            }),
        }
    };
    let mut c = OffloadConfig::new(driver, get("Bucket").map(|(_, v)| v).unwrap_or_default());
    c.region = get("Region").map(|(_, v)| v);
    c.endpoint = get("ServiceEndpoint").map(|(_, v)| v);
    c.max_block_size_bytes = number("MaxBlockSizeInBytes", 64 << 20)?;
    c.read_buffer_size_bytes = number("ReadBufferSizeInBytes", 1 << 20)?;
    c.parallel_parts = parallel as usize;
    c.read_ahead_requests = read_ahead as usize;
    let s3_value = |k: &str| {
        s3_keys
            .iter()
            .find(|(n, _)| *n == k)
            .and_then(|(_, v)| v.clone())
    };
    c.credential_id = s3_value("CredentialId");
    c.credential_secret = s3_value("CredentialSecret");
    c.role = s3_value("Role");
    if let Some(name) = s3_value("RoleSessionName") {
        c.role_session_name = name;
    }
    c.gcs_service_account_key_file = gcs_keys
        .iter()
        .find(|(n, _)| *n == "ServiceAccountKeyFile")
        .and_then(|(_, v)| v.clone())
        .map(PathBuf::from);
    c.filesystem_path = match fs_uri {
        Some(uri) => PathBuf::from(uri.strip_prefix("file://").unwrap_or(&uri)),
        None => broker.data_directory.join("offloaded"),
    };
    c.cluster_name = broker.cluster_name.clone();
    c.validate()
        .map_err(|e| ConfigError::Offload(e.to_string()))?;
    Ok(Some(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(
        text: &str,
        env: &[(&str, &str)],
    ) -> Result<(BrokerConfig, Vec<String>), ConfigError> {
        let mut values = parse_properties("test.conf", text)?;
        for (k, v) in env {
            if let Some(key) = k.strip_prefix(ENV_PREFIX) {
                values.insert(key.into(), v.to_string());
            }
        }
        from_values(values)
    }

    #[test]
    fn defaults_match_pulsar() {
        let (c, warnings) = load_text("", &[]).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(c.broker_service_port, 6650);
        assert_eq!(c.web_service_port, 8080);
        assert_eq!(c.managed_ledger_max_entries_per_ledger, 50_000);
        assert_eq!(c.managed_ledger_max_size_per_ledger_mbytes, 2048);
        assert_eq!(c.managed_ledger_min_ledger_rollover_time_minutes, 10);
        assert_eq!(c.managed_ledger_max_ledger_rollover_time_minutes, 240);
        assert_eq!(c.data_directory, PathBuf::from("data"));
        let ml = c.managed_ledger_config();
        assert_eq!(ml.max_size_per_ledger_bytes, 2048 << 20);
        assert_eq!(
            (ml.min_rollover_ms, ml.max_rollover_ms),
            (600_000, 14_400_000)
        );
        assert_eq!((ml.retention_time_ms, ml.retention_size_bytes), (0, 0));
        let (c, _) = load_text(
            "defaultRetentionTimeInMinutes=-1\ndefaultRetentionSizeInMB=10\n",
            &[],
        )
        .unwrap();
        let ml = c.managed_ledger_config();
        assert_eq!(
            (ml.retention_time_ms, ml.retention_size_bytes),
            (-1, 10 << 20)
        );
    }

    #[test]
    fn file_values_comments_and_env_overrides() {
        let text =
            "# comment\n\nmanagedLedgerMaxEntriesPerLedger = 5000\nclusterName=c1\nbindAddress=\n";
        let (c, _) = load_text(
            text,
            &[("TIERLOG_clusterName", "from-env"), ("OTHER_x", "1")],
        )
        .unwrap();
        assert_eq!(c.managed_ledger_max_entries_per_ledger, 5000);
        assert_eq!(c.cluster_name, "from-env");
        assert_eq!(
            c.bind_address, "0.0.0.0",
            "an empty value means the default"
        );
    }

    #[test]
    fn offload_defaults_to_the_filesystem_under_the_data_directory() {
        let (c, _) = load_text("dataDirectory=/srv/tl\n", &[]).unwrap();
        let o = c.offload.unwrap();
        assert_eq!(o.driver, offload::Driver::Filesystem);
        assert_eq!(o.filesystem_path, PathBuf::from("/srv/tl/offloaded"));
        let (c, _) = load_text("managedLedgerOffloadDriver=none\n", &[]).unwrap();
        assert!(c.offload.is_none());
        let (c, _) = load_text("fileSystemURI=file:///mnt/tier\n", &[]).unwrap();
        assert_eq!(
            c.offload.unwrap().filesystem_path,
            PathBuf::from("/mnt/tier")
        );
    }

    #[test]
    fn s3_keys_resolve_specific_before_generic() {
        let text = "managedLedgerOffloadDriver=S3\ns3ManagedLedgerOffloadBucket=b1\nmanagedLedgerOffloadBucket=generic\n\
                    s3ManagedLedgerOffloadServiceEndpoint=http://127.0.0.1:9000\ns3ManagedLedgerOffloadRole=arn:r\n";
        let (c, warnings) = load_text(text, &[]).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let o = c.offload.unwrap();
        assert_eq!(o.bucket, "b1");
        assert_eq!(o.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(o.region_or_default(), "us-east-1");
        assert_eq!(o.role.as_deref(), Some("arn:r"));
        assert_eq!(o.role_session_name, "pulsar-s3-offload");
        assert_eq!(o.max_block_size_bytes, 64 << 20);
        let (c, _) = load_text(
            "managedLedgerOffloadDriver=azureblob\nmanagedLedgerOffloadBucket=c\n",
            &[],
        )
        .unwrap();
        assert_eq!(c.offload.unwrap().bucket, "c");
    }

    #[test]
    fn bad_offload_settings_are_refused() {
        let err = load_text("managedLedgerOffloadDriver=tape\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("managedLedgerOffloadDriver: \"tape\""),
            "{err}"
        );
        let err = load_text(
            "managedLedgerOffloadDriver=aws-s3\ns3ManagedLedgerOffloadBucket=b\ns3ManagedLedgerOffloadMaxBlockSizeInBytes=1048576\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("s3ManagedLedgerOffloadMaxBlockSizeInBytes cannot be less than 5MB"),
            "{err}"
        );
        let err = load_text(
            "managedLedgerOffloadDriver=S3\ns3ManagedLedgerOffloadBucket=b\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("requires s3ManagedLedgerOffloadServiceEndpoint"),
            "{err}"
        );
        let err = load_text("managedLedgerOffloadDriver=aws-s3\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("s3ManagedLedgerOffloadBucket is required"),
            "{err}"
        );
        let err = load_text(
            "managedLedgerOffloadDriver=S3\ns3ManagedLedgerOffloadReadBufferSizeInBytes=big\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("s3ManagedLedgerOffloadReadBufferSizeInBytes: \"big\""),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_are_warnings() {
        let (_, warnings) = load_text("zookeeperServers=localhost:2181\n", &[]).unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("zookeeperServers"));
    }

    #[test]
    fn bad_values_name_the_key_the_value_and_what_is_allowed() {
        let err = load_text("managedLedgerMaxEntriesPerLedger=-5\n", &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value for managedLedgerMaxEntriesPerLedger: \"-5\" (allowed: an integer >= 1)"
        );
        let err = load_text("brokerServicePort=lots\n", &[]).unwrap_err();
        assert!(
            err.to_string().contains("brokerServicePort: \"lots\""),
            "{err}"
        );
        let err = load_text("", &[("TIERLOG_defaultRetentionTimeInMinutes", "-2")]).unwrap_err();
        assert!(
            err.to_string().contains("defaultRetentionTimeInMinutes"),
            "{err}"
        );
        let err = load_text("managedLedgerMinLedgerRolloverTimeMinutes=500\n", &[]).unwrap_err();
        assert!(
            err.to_string()
                .contains("managedLedgerMinLedgerRolloverTimeMinutes"),
            "{err}"
        );
        let err = load_text("just a line\n", &[]).unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { line: 1, .. }));
    }
}

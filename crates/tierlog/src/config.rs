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
    #[error("cannot read configuration file {path}: {reason}")]
    Unreadable { path: String, reason: String },
}

/// Every setting the broker uses, typed and validated.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    let warnings = raw
        .values
        .keys()
        .map(|k| format!("unknown or unsupported configuration key {k:?} is ignored"))
        .collect();
    Ok((config, warnings))
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

//! Where the broker's configuration comes from: a Pulsar `key=value` file, then environment
//! variables named `TIERLOG_<key>` (the key spelled exactly as in the file, for example
//! `TIERLOG_managedLedgerMaxEntriesPerLedger=5000`), later sources winning. What the keys mean is
//! the policy layer's business ([`policy::BrokerConfig`]).

use std::path::Path;

use policy::{BrokerConfig, ConfigError, Properties};

/// The prefix of environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "TIERLOG_";

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read configuration file {path}: {source}")]
    Unreadable {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Invalid(#[from] ConfigError),
}

/// Loads the configuration; returns it with the warnings to log (unknown keys).
pub fn load(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(BrokerConfig, Vec<String>), LoadError> {
    let mut props = match file {
        Some(path) => {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|source| LoadError::Unreadable {
                path: shown.clone(),
                source,
            })?;
            Properties::parse(&shown, &text)?
        }
        None => Properties::default(),
    };
    for (k, v) in env {
        if let Some(key) = k.strip_prefix(ENV_PREFIX)
            && !key.is_empty()
        {
            props.set(key, &v);
        }
    }
    Ok(BrokerConfig::from_properties(props)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("b.conf");
        std::fs::write(&file, "clusterName=c1\nwebServicePort=8081\n").unwrap();
        let env = [
            ("TIERLOG_clusterName".to_string(), "from-env".to_string()),
            ("OTHER_clusterName".to_string(), "ignored".to_string()),
        ];
        let (c, _) = load(Some(&file), env).unwrap();
        assert_eq!(c.cluster_name, "from-env");
        assert_eq!(c.security.web_port, Some(8081));
        let e = load(Some(&dir.path().join("absent.conf")), []).unwrap_err();
        assert!(e.to_string().contains("absent.conf"), "{e}");
    }
}

//! Pulsar's `key=value` configuration format, and typed access to its keys.

use std::collections::BTreeMap;
use std::str::FromStr;

use super::ConfigError;

/// A value type a configuration key can have, with how to say what is allowed.
pub trait PropertyValue: FromStr {
    const ALLOWED: &'static str;
}

impl PropertyValue for String {
    const ALLOWED: &'static str = "any text";
}

impl PropertyValue for i64 {
    const ALLOWED: &'static str = "an integer";
}

impl PropertyValue for u64 {
    const ALLOWED: &'static str = "a non-negative integer";
}

/// Configuration keys and values. Keys are taken as they are read, so whatever is left at the
/// end is unknown (and warned about, not fatal: a Pulsar `standalone.conf` can be reused as is).
#[derive(Debug, Clone, Default)]
pub struct Properties {
    values: BTreeMap<String, String>,
}

impl Properties {
    /// Parses `key=value` lines: `#` and `!` start comment lines, blank lines are skipped,
    /// whitespace around keys and values is trimmed, an empty value means "use the default"
    /// (except for the keys that can be switched off by an empty value, such as ports: see
    /// [`take_optional_port`](Self::take_optional_port)).
    pub fn parse(path: &str, text: &str) -> Result<Properties, ConfigError> {
        let mut values = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let syntax = || ConfigError::Syntax {
                path: path.into(),
                line: i + 1,
                text: line.into(),
            };
            let (k, v) = line.split_once('=').ok_or_else(syntax)?;
            let (k, v) = (k.trim(), v.trim());
            if k.is_empty() {
                return Err(syntax());
            }
            values.insert(k.to_string(), v.to_string());
        }
        Ok(Properties { values })
    }

    /// Sets `key` (an override, e.g. from the environment); an empty value means what it
    /// means in the file.
    pub fn set(&mut self, key: &str, value: &str) {
        self.values
            .insert(key.to_string(), value.trim().to_string());
    }

    /// Removes and returns `key`'s raw value (`None` when absent or empty).
    pub fn take(&mut self, key: &str) -> Option<String> {
        self.values.remove(key).filter(|v| !v.is_empty())
    }

    /// A port that an empty value switches off, as Pulsar's optional ports
    /// (`brokerServicePort=` disables the plain port): absent → `default`, empty → `None`.
    pub fn take_optional_port(
        &mut self,
        key: &str,
        default: Option<u16>,
    ) -> Result<Option<u16>, ConfigError> {
        match self.values.remove(key) {
            None => Ok(default),
            Some(v) if v.is_empty() => Ok(None),
            Some(v) => match v.parse::<u16>() {
                Ok(p) => Ok(Some(p)),
                Err(_) => Err(ConfigError::InvalidValue {
                    key: key.into(),
                    value: v,
                    allowed: "a port from 0 to 65535, or empty to switch it off".into(),
                }),
            },
        }
    }

    /// `true` or `false` (Pulsar's boolean keys).
    pub fn boolean(&mut self, key: &str, default: bool) -> Result<bool, ConfigError> {
        self.choice(
            key,
            default,
            |v| match v.to_ascii_lowercase().as_str() {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            },
            "true or false",
        )
    }

    /// A comma-separated list (Pulsar's `Set<String>` keys); empty items are dropped.
    pub fn list(&mut self, key: &str) -> Vec<String> {
        self.take(key)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Removes `key` and parses it as `T`.
    pub fn take_parsed<T: PropertyValue>(&mut self, key: &str) -> Result<Option<T>, ConfigError> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| ConfigError::InvalidValue {
                key: key.into(),
                value: v,
                allowed: T::ALLOWED.into(),
            }),
        }
    }

    pub fn string(&mut self, key: &str, default: &str) -> String {
        self.take(key).unwrap_or_else(|| default.to_string())
    }

    /// A key whose value is one of a few words: `parse` maps a word to its value, `allowed`
    /// lists the words for the error.
    pub fn choice<T>(
        &mut self,
        key: &str,
        default: T,
        parse: impl FnOnce(&str) -> Option<T>,
        allowed: &str,
    ) -> Result<T, ConfigError> {
        let Some(v) = self.take(key) else {
            return Ok(default);
        };
        parse(&v).ok_or_else(|| ConfigError::InvalidValue {
            key: key.into(),
            value: v,
            allowed: allowed.into(),
        })
    }

    pub fn unsigned(
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

    pub(super) fn signed(&mut self, key: &str, default: i64, min: i64) -> Result<i64, ConfigError> {
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

    /// The keys nobody took.
    /// (Empty ones mean "the default" and are harmless, so they are not listed.)
    pub fn remaining(&self) -> impl Iterator<Item = &str> {
        self.values
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, _)| k.as_str())
    }
}

//! The broker keys of message TTL, backlog quotas and automatic compaction
//! (`ttlDurationDefaultInSeconds`, `messageExpiryCheckIntervalInMinutes`, `backlogQuota*`,
//! `brokerServiceCompaction*`), and how they combine with a namespace's and a topic's policies
//! into a topic's [`BacklogRules`].

use std::time::Duration;

use broker::{BacklogQuota, BacklogQuotaType, BacklogRules, QuotaPolicy};

use super::{ConfigError, Properties};
use crate::types::{Policies, TopicPolicies};

/// The broker level of message TTL and backlog quotas.
#[derive(Debug, Clone, PartialEq)]
pub struct BacklogSettings {
    /// `ttlDurationDefaultInSeconds` (0: none).
    pub ttl_default_seconds: u64,
    /// `messageExpiryCheckIntervalInMinutes` (5; fractions of a minute are taken too).
    pub expiry_check_interval: Duration,
    /// `backlogQuotaCheckIntervalInSeconds` (60), `None` with `backlogQuotaCheckEnabled=false`.
    pub quota_check_interval: Option<Duration>,
    /// `backlogQuotaDefaultLimitBytes` (or `backlogQuotaDefaultLimitGB` when > 0),
    /// `backlogQuotaDefaultLimitSecond`, `backlogQuotaDefaultRetentionPolicy`: the quota of
    /// each type a namespace does not set.
    pub default_quota: BacklogQuota,
    /// `brokerServiceCompactionThresholdInBytes` (0: no automatic compaction).
    pub compaction_threshold: u64,
    /// `brokerServiceCompactionMonitorIntervalInSeconds` (60).
    pub compaction_check_interval: Duration,
}

/// A decimal key (`backlogQuotaDefaultLimitGB`, fractional minutes).
fn decimal(raw: &mut Properties, key: &str, default: f64, min: f64) -> Result<f64, ConfigError> {
    let Some(v) = raw.take(key) else {
        return Ok(default);
    };
    match v.parse::<f64>() {
        Ok(n) if n.is_finite() && n >= min => Ok(n),
        _ => Err(ConfigError::InvalidValue {
            key: key.into(),
            value: v,
            allowed: format!("a number >= {min}"),
        }),
    }
}

pub(super) fn parse(raw: &mut Properties) -> Result<BacklogSettings, ConfigError> {
    let minutes = decimal(raw, "messageExpiryCheckIntervalInMinutes", 5.0, 0.001)?;
    let check_enabled = raw.boolean("backlogQuotaCheckEnabled", true)?;
    let check_seconds = raw.unsigned("backlogQuotaCheckIntervalInSeconds", 60, 1, 86_400)?;
    let limit_bytes = raw.signed("backlogQuotaDefaultLimitBytes", -1, -1)?;
    let limit_gb = decimal(raw, "backlogQuotaDefaultLimitGB", -1.0, -1.0)?;
    let policy = raw.take("backlogQuotaDefaultRetentionPolicy");
    let policy = match policy.as_deref() {
        None => QuotaPolicy::ProducerRequestHold,
        Some(v) => QuotaPolicy::parse(v).ok_or_else(|| ConfigError::InvalidValue {
            key: "backlogQuotaDefaultRetentionPolicy".into(),
            value: v.into(),
            allowed: QuotaPolicy::ALLOWED.into(),
        })?,
    };
    Ok(BacklogSettings {
        compaction_threshold: raw.unsigned(
            "brokerServiceCompactionThresholdInBytes",
            0,
            0,
            u64::MAX,
        )?,
        compaction_check_interval: Duration::from_secs(raw.unsigned(
            "brokerServiceCompactionMonitorIntervalInSeconds",
            60,
            1,
            86_400,
        )?),
        ttl_default_seconds: raw.unsigned("ttlDurationDefaultInSeconds", 0, 0, i32::MAX as u64)?,
        expiry_check_interval: Duration::from_secs_f64(minutes * 60.0),
        quota_check_interval: check_enabled.then(|| Duration::from_secs(check_seconds)),
        default_quota: BacklogQuota {
            // As Pulsar: the GB key, when set, wins.
            limit_size: if limit_gb > 0.0 {
                (limit_gb * (1u64 << 30) as f64) as i64
            } else {
                limit_bytes
            },
            limit_time: raw.signed("backlogQuotaDefaultLimitSecond", -1, -1)?,
            policy,
        },
    })
}

impl BacklogSettings {
    /// A topic's rules: its own TTL, quotas and compaction threshold, else its namespace's,
    /// else the broker's.
    pub fn rules(&self, ns: &Policies, topic: &TopicPolicies) -> BacklogRules {
        let ttl_seconds = match topic.message_ttl_in_seconds.or(ns.message_ttl_in_seconds) {
            Some(s) => u64::try_from(s).unwrap_or(0),
            None => self.ttl_default_seconds,
        };
        let compaction = match topic.compaction_threshold.or(ns.compaction_threshold) {
            Some(t) => u64::try_from(t).unwrap_or(0),
            None => self.compaction_threshold,
        };
        let mut rules = BacklogRules {
            ttl: (ttl_seconds > 0).then(|| Duration::from_secs(ttl_seconds)),
            compaction_threshold: (compaction > 0).then_some(compaction),
            ..Default::default()
        };
        for kind in [
            BacklogQuotaType::DestinationStorage,
            BacklogQuotaType::MessageAge,
        ] {
            let q = topic
                .backlog_quota_map
                .get(&kind)
                .or_else(|| ns.backlog_quota_map.get(&kind))
                .unwrap_or(&self.default_quota);
            rules.quota(kind, q);
        }
        rules
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(text: &str) -> Result<BacklogSettings, ConfigError> {
        parse(&mut Properties::parse("t.conf", text).unwrap())
    }

    #[test]
    fn pulsars_defaults_are_no_ttl_and_no_quota() {
        let s = settings("").unwrap();
        assert_eq!(s.expiry_check_interval, Duration::from_secs(300));
        assert_eq!(s.quota_check_interval, Some(Duration::from_secs(60)));
        assert_eq!(
            s.rules(&Policies::default(), &TopicPolicies::default()),
            BacklogRules::default()
        );
    }

    #[test]
    fn the_namespace_wins_per_quota_type_and_for_the_ttl() {
        let s = settings(
            "ttlDurationDefaultInSeconds=3600\nbacklogQuotaDefaultLimitGB=0.5\n\
             backlogQuotaDefaultLimitSecond=600\nbacklogQuotaDefaultRetentionPolicy=producer_exception\n",
        )
        .unwrap();
        let broker = s.rules(&Policies::default(), &TopicPolicies::default());
        assert_eq!(broker.ttl, Some(Duration::from_secs(3600)));
        assert_eq!(broker.size, Some((1 << 29, QuotaPolicy::ProducerException)));
        assert_eq!(
            broker.age,
            Some((Duration::from_secs(600), QuotaPolicy::ProducerException))
        );
        let mut ns = Policies {
            message_ttl_in_seconds: Some(0),
            ..Default::default()
        };
        ns.backlog_quota_map.insert(
            BacklogQuotaType::DestinationStorage,
            BacklogQuota {
                limit_size: 10,
                limit_time: -1,
                policy: QuotaPolicy::ConsumerBacklogEviction,
            },
        );
        let r = s.rules(&ns, &TopicPolicies::default());
        assert_eq!(r.ttl, None, "0 switches the broker's TTL off");
        let topic = TopicPolicies {
            message_ttl_in_seconds: Some(60),
            ..Default::default()
        };
        assert_eq!(s.rules(&ns, &topic).ttl, Some(Duration::from_secs(60)));
        let mut topic = topic;
        topic.backlog_quota_map.insert(
            BacklogQuotaType::DestinationStorage,
            BacklogQuota {
                limit_size: 99,
                limit_time: -1,
                policy: QuotaPolicy::ProducerException,
            },
        );
        assert_eq!(
            s.rules(&ns, &topic).size,
            Some((99, QuotaPolicy::ProducerException))
        );
        assert_eq!(r.size, Some((10, QuotaPolicy::ConsumerBacklogEviction)));
        assert_eq!(r.age, broker.age);
        // Compaction threshold: topic, else namespace, else broker; 0 turns it off.
        let ns = Policies {
            compaction_threshold: Some(1000),
            ..Default::default()
        };
        assert_eq!(
            s.rules(&ns, &TopicPolicies::default()).compaction_threshold,
            Some(1000)
        );
        let topic = TopicPolicies {
            compaction_threshold: Some(0),
            ..Default::default()
        };
        assert_eq!(s.rules(&ns, &topic).compaction_threshold, None);
        let topic = TopicPolicies {
            compaction_threshold: Some(5),
            ..Default::default()
        };
        assert_eq!(s.rules(&ns, &topic).compaction_threshold, Some(5));
    }

    #[test]
    fn bad_values_name_their_key() {
        let e = settings("backlogQuotaDefaultRetentionPolicy=drop\n").unwrap_err();
        assert!(
            e.to_string().contains("backlogQuotaDefaultRetentionPolicy"),
            "{e}"
        );
        let e = settings("messageExpiryCheckIntervalInMinutes=0\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("messageExpiryCheckIntervalInMinutes"),
            "{e}"
        );
    }
}

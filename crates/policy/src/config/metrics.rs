//! The broker keys of stats and Prometheus metrics: `statsUpdateFrequencyInSecs`,
//! `exposeTopicLevelMetricsInPrometheus`, `exposeManagedLedgerMetricsInPrometheus`.

use std::time::Duration;

use super::{ConfigError, Properties};

#[derive(Debug, Clone, PartialEq)]
pub struct MetricsSettings {
    /// `statsUpdateFrequencyInSecs` (60): rates (stats and metrics) are the change of their
    /// counters over the last such interval, and latency buckets count that interval.
    pub stats_update_interval: Duration,
    /// `exposeTopicLevelMetricsInPrometheus` (true): topic metrics carry a `topic` label;
    /// false: they are summed per namespace.
    pub topic_level: bool,
    /// `exposeManagedLedgerMetricsInPrometheus` (true): the `pulsar_ml_*` families.
    pub managed_ledger: bool,
}

pub(super) fn parse(raw: &mut Properties) -> Result<MetricsSettings, ConfigError> {
    Ok(MetricsSettings {
        stats_update_interval: Duration::from_secs(raw.unsigned(
            "statsUpdateFrequencyInSecs",
            60,
            1,
            86_400,
        )?),
        topic_level: raw.boolean("exposeTopicLevelMetricsInPrometheus", true)?,
        managed_ledger: raw.boolean("exposeManagedLedgerMetricsInPrometheus", true)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(text: &str) -> Result<MetricsSettings, ConfigError> {
        parse(&mut Properties::parse("t.conf", text).unwrap())
    }

    #[test]
    fn defaults_and_bad_values() {
        let d = settings("").unwrap();
        assert_eq!(d.stats_update_interval, Duration::from_secs(60));
        assert!(d.topic_level && d.managed_ledger);
        let s =
            settings("statsUpdateFrequencyInSecs=5\nexposeTopicLevelMetricsInPrometheus=false\n")
                .unwrap();
        assert_eq!(s.stats_update_interval, Duration::from_secs(5));
        assert!(!s.topic_level);
        let e = settings("statsUpdateFrequencyInSecs=0\n").unwrap_err();
        assert!(e.to_string().contains("statsUpdateFrequencyInSecs"), "{e}");
        let e = settings("exposeTopicLevelMetricsInPrometheus=yes please\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("exposeTopicLevelMetricsInPrometheus"),
            "{e}"
        );
    }
}

//! `/metrics`: Pulsar's Prometheus metric names and labels, built on request from live state
//! and written by `prometheus-client` (OpenMetrics text).
//!
//! - topic metrics (`pulsar_rate_in`, `pulsar_storage_size`, `pulsar_msg_backlog`, …, labels
//!   `cluster`, `namespace`, `topic`; summed per namespace, with `pulsar_topics_count`, when
//!   `exposeTopicLevelMetricsInPrometheus=false`), subscription metrics
//!   (`pulsar_subscription_*`), broker totals (`pulsar_broker_*`);
//! - managed-ledger metrics per namespace (`pulsar_ml_*`, namespace label `<tenant>/<ns>/persistent`
//!   as Pulsar writes it) when `exposeManagedLedgerMetricsInPrometheus`;
//! - the offloader's `brk_ledgeroffloader_*` (labels `namespace`, `topic`);
//! - tierlog's own, prefixed `tierlog_` (object-store requests of every offload location, the
//!   hot tier's group commits and their fsyncs).
//!
//! Rates are those of the last `statsUpdateFrequencyInSecs` (see `broker::rates`).

mod pulsar;
mod tierlog;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;

use broker::BrokerService;
use policy::MetricsSettings;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

/// A gauge family: its name, its help, and its value in a row of type `R`.
type GaugeDef<R> = (String, &'static str, fn(&R) -> f64);

/// The families of one scrape.
struct Scrape {
    registry: Registry,
}

impl Scrape {
    /// Registers a family. prometheus-client ends every help text with a period of its own, so
    /// the one the sentence has is dropped (else `# HELP … broker..`).
    fn register(
        &mut self,
        name: &str,
        help: &str,
        metric: impl prometheus_client::registry::Metric,
    ) {
        self.registry
            .register(name, help.trim_end_matches('.'), metric);
    }

    fn gauge(&mut self, name: &str, help: &str, rows: impl IntoIterator<Item = (Labels, f64)>) {
        let family = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        for (labels, v) in rows {
            family.get_or_create(&labels).set(v);
        }
        self.register(name, help, family);
    }

    /// A gauge family per `(name, help, value)` of `table`, with a sample per row.
    fn gauges<R>(&mut self, rows: &BTreeMap<Labels, R>, table: &[GaugeDef<R>]) {
        for (name, help, value) in table {
            self.gauge(name, help, column(rows, value));
        }
    }

    /// A counter family; the exposition names its samples `<name>_total`.
    fn counter(&mut self, name: &str, help: &str, rows: impl IntoIterator<Item = (Labels, u64)>) {
        let family = Family::<Labels, Counter<u64>>::default();
        for (labels, v) in rows {
            family.get_or_create(&labels).inc_by(v);
        }
        self.register(name, help, family);
    }
}

/// Latency histograms built from snapshots, one per label set (prometheus-client's own
/// histograms only take observations as they happen).
#[derive(Debug)]
struct Histograms(Vec<(Labels, ledger::LatencySnapshot)>);

impl prometheus_client::encoding::EncodeMetric for Histograms {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::MetricEncoder,
    ) -> Result<(), std::fmt::Error> {
        for (labels, h) in &self.0 {
            let mut buckets: Vec<(f64, u64)> = ledger::LATENCY_BOUNDS_US
                .iter()
                .zip(h.counts)
                .map(|(b, n)| (*b as f64, n))
                .collect();
            buckets.push((f64::INFINITY, h.counts[ledger::LATENCY_BOUNDS_US.len()]));
            encoder
                .encode_family(labels)?
                .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                    h.sum_us as f64,
                    h.count(),
                    &buckets,
                    None,
                )?;
        }
        Ok(())
    }

    fn metric_type(&self) -> prometheus_client::metrics::MetricType {
        prometheus_client::metrics::MetricType::Histogram
    }
}

/// One value per row of `rows`, under the row's labels.
fn column<R, T>(rows: &BTreeMap<Labels, R>, value: impl Fn(&R) -> T) -> Vec<(Labels, T)> {
    rows.iter().map(|(l, r)| (l.clone(), value(r))).collect()
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Renders every metric of the broker.
pub async fn render(
    broker: &BrokerService,
    object_stores: &offload::ObjectStores,
    hot_tier: &hot_tier::LedgerStore,
    settings: &MetricsSettings,
) -> String {
    let cluster = broker.config().cluster_name.clone();
    let topics = broker.all_topic_stats().await;
    let mut scrape = Scrape {
        registry: Registry::default(),
    };
    pulsar::topic_families(&mut scrape, &cluster, &topics, settings.topic_level);
    pulsar::broker_families(&mut scrape, &cluster, &topics);
    if settings.managed_ledger {
        pulsar::managed_ledger_families(&mut scrape, &cluster, &topics);
    }
    pulsar::offloader_families(&mut scrape, &topics, settings.topic_level);
    tierlog::request_families(&mut scrape, object_stores.counters());
    tierlog::hot_tier_families(&mut scrape, hot_tier.commit_stats());
    if let Some(cache) = object_stores.chunk_cache() {
        tierlog::cache_families(&mut scrape, cache);
    }
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &scrape.registry) {
        tracing::warn!(error = %e, "encoding metrics failed");
    }
    out
}

//! Pulsar's families, from the topics' stats: topic (`pulsar_*`), subscription, broker totals,
//! managed ledger (`pulsar_ml_*`) and offloader (`brk_ledgeroffloader_*`, with tierlog's
//! per-topic offload and tier-read totals beside them).

use std::collections::BTreeMap;

use broker::rates::WRITE_LATENCY_BOUNDS_MS;
use broker::stats::TopicStats;
use protocol::TopicName;

use super::{GaugeDef, Histograms, Labels, Scrape, column, labels};

/// One row of topic metrics: a topic, or a namespace's topics summed.
#[derive(Default, Clone)]
struct Row {
    topics: u64,
    subscriptions: u64,
    producers: u64,
    consumers: u64,
    rate_in: f64,
    rate_out: f64,
    throughput_in: f64,
    throughput_out: f64,
    storage_size: i64,
    offloaded_size: i64,
    backlog_size: i64,
    msg_backlog: i64,
    write_rate: f64,
    read_rate: f64,
    in_messages: u64,
    in_bytes: u64,
    out_messages: u64,
    out_bytes: u64,
    latency: [u64; 10],
    latency_sum_ms: f64,
}

impl Row {
    fn add(&mut self, s: &TopicStats) {
        self.topics += 1;
        self.subscriptions += s.subscriptions.len() as u64;
        self.producers += s.publishers.len() as u64;
        self.consumers += s
            .subscriptions
            .values()
            .map(|sub| sub.consumers.len() as u64)
            .sum::<u64>();
        self.rate_in += s.msg_rate_in;
        self.rate_out += s.msg_rate_out;
        self.throughput_in += s.msg_throughput_in;
        self.throughput_out += s.msg_throughput_out;
        self.storage_size += s.storage_size;
        self.offloaded_size += s.offloaded_storage_size;
        self.backlog_size += s.backlog_size;
        self.msg_backlog += s.subscriptions.values().map(|v| v.msg_backlog).sum::<i64>();
        self.write_rate += s.metrics.storage_write_rate;
        self.read_rate += s.metrics.storage_read_rate;
        self.in_messages += s.msg_in_counter;
        self.in_bytes += s.bytes_in_counter;
        self.out_messages += s.msg_out_counter;
        self.out_bytes += s.bytes_out_counter;
        for (total, n) in self.latency.iter_mut().zip(s.metrics.write_latency.counts) {
            *total += n;
        }
        self.latency_sum_ms += s.metrics.write_latency.sum_ms;
    }
}

/// `le_0_5`, `le_1`, …, `le_overflow`: Pulsar's write latency bucket suffixes.
fn latency_suffixes() -> Vec<String> {
    let mut out: Vec<String> = WRITE_LATENCY_BOUNDS_MS
        .iter()
        .map(|b| format!("le_{}", b.to_string().replace('.', "_")))
        .collect();
    out.push("le_overflow".into());
    out
}

type RowValue = fn(&Row) -> f64;

/// Gauges of a topic (or a namespace's topics summed), named `pulsar_<suffix>`; those marked
/// are also broker totals, `pulsar_broker_<suffix>`.
const ROW_GAUGES: [(&str, &str, RowValue, bool); 14] = [
    (
        "subscriptions_count",
        "Subscriptions served by this broker.",
        |r| r.subscriptions as f64,
        true,
    ),
    (
        "producers_count",
        "Producers connected to this broker.",
        |r| r.producers as f64,
        true,
    ),
    (
        "consumers_count",
        "Consumers connected to this broker.",
        |r| r.consumers as f64,
        true,
    ),
    (
        "rate_in",
        "Messages per second coming in.",
        |r| r.rate_in,
        true,
    ),
    (
        "rate_out",
        "Messages per second going out.",
        |r| r.rate_out,
        true,
    ),
    (
        "throughput_in",
        "Bytes per second coming in.",
        |r| r.throughput_in,
        true,
    ),
    (
        "throughput_out",
        "Bytes per second going out.",
        |r| r.throughput_out,
        true,
    ),
    (
        "storage_size",
        "Bytes stored, in either tier.",
        |r| r.storage_size as f64,
        true,
    ),
    (
        "storage_offloaded_size",
        "Bytes with a complete copy in tiered storage.",
        |r| r.offloaded_size as f64,
        true,
    ),
    (
        "storage_backlog_size",
        "Bytes after the slowest subscription's acknowledged position.",
        |r| r.backlog_size as f64,
        false,
    ),
    (
        "msg_backlog",
        "Entries not acknowledged, all subscriptions.",
        |r| r.msg_backlog as f64,
        true,
    ),
    (
        "storage_write_rate",
        "Entries per second written to storage.",
        |r| r.write_rate,
        false,
    ),
    (
        "storage_read_rate",
        "Entries per second read from storage.",
        |r| r.read_rate,
        false,
    ),
    (
        "storage_write_latency_count",
        "Entries written in the last stats interval.",
        |r| r.latency.iter().sum::<u64>() as f64,
        false,
    ),
];

pub(super) fn topic_families(
    s: &mut Scrape,
    cluster: &str,
    topics: &[(TopicName, TopicStats)],
    per_topic: bool,
) {
    // Rows keyed by their labels: one per topic, or one per namespace.
    let mut rows: BTreeMap<Labels, Row> = BTreeMap::new();
    for (name, stats) in topics {
        let ns = name.namespace().to_string();
        let key = if per_topic {
            labels(&[
                ("cluster", cluster),
                ("namespace", &ns),
                ("topic", &name.to_string()),
            ])
        } else {
            labels(&[("cluster", cluster), ("namespace", &ns)])
        };
        rows.entry(key).or_default().add(stats);
    }
    let c = |f: fn(&Row) -> u64| column(&rows, f);
    if !per_topic {
        s.gauges(
            &rows,
            &[(
                "pulsar_topics_count".into(),
                "Topics of the namespace served by this broker.",
                |r: &Row| r.topics as f64,
            )],
        );
    }
    let table: Vec<GaugeDef<Row>> = ROW_GAUGES
        .iter()
        .map(|(suffix, help, f, _)| (format!("pulsar_{suffix}"), *help, *f))
        .collect();
    s.gauges(&rows, &table);
    for (i, suffix) in latency_suffixes().iter().enumerate() {
        s.gauge(
            &format!("pulsar_storage_write_latency_{suffix}"),
            "Entries of the last stats interval that became durable within this latency.",
            column(&rows, |r| r.latency[i] as f64),
        );
    }
    s.gauges(
        &rows,
        &[(
            "pulsar_storage_write_latency_sum".into(),
            "Milliseconds the last stats interval's entries took to become durable, summed.",
            |r: &Row| r.latency_sum_ms,
        )],
    );
    s.counter(
        "pulsar_in_bytes",
        "Bytes received since the topic loaded.",
        c(|r| r.in_bytes),
    );
    s.counter(
        "pulsar_in_messages",
        "Messages received since the topic loaded.",
        c(|r| r.in_messages),
    );
    s.counter(
        "pulsar_out_bytes",
        "Bytes delivered since the topic loaded.",
        c(|r| r.out_bytes),
    );
    s.counter(
        "pulsar_out_messages",
        "Messages delivered since the topic loaded.",
        c(|r| r.out_messages),
    );
    if per_topic {
        subscription_families(s, cluster, topics);
    }
}

fn subscription_families(s: &mut Scrape, cluster: &str, topics: &[(TopicName, TopicStats)]) {
    let mut rows = BTreeMap::new();
    for (name, stats) in topics {
        for (sub, st) in &stats.subscriptions {
            let l = labels(&[
                ("cluster", cluster),
                ("namespace", &name.namespace().to_string()),
                ("topic", &name.to_string()),
                ("subscription", sub),
            ]);
            rows.insert(l, st.clone());
        }
    }
    type Sub = broker::stats::SubscriptionStats;
    let table: [GaugeDef<Sub>; 4] = [
        (
            "pulsar_subscription_back_log".into(),
            "Entries the subscription has not acknowledged.",
            |st| st.msg_backlog as f64,
        ),
        (
            "pulsar_subscription_unacked_messages".into(),
            "Messages delivered and not acknowledged.",
            |st| st.unacked_messages as f64,
        ),
        (
            "pulsar_subscription_msg_rate_out".into(),
            "Messages per second delivered.",
            |st| st.msg_rate_out,
        ),
        (
            "pulsar_subscription_msg_throughput_out".into(),
            "Bytes per second delivered.",
            |st| st.msg_throughput_out,
        ),
    ];
    s.gauges(&rows, &table);
}

pub(super) fn broker_families(s: &mut Scrape, cluster: &str, topics: &[(TopicName, TopicStats)]) {
    let mut total = Row::default();
    for (_, stats) in topics {
        total.add(stats);
    }
    let rows = BTreeMap::from([(labels(&[("cluster", cluster)]), total)]);
    let mut table: Vec<GaugeDef<Row>> = vec![(
        "pulsar_broker_topics_count".into(),
        "Topics served by this broker.",
        |r| r.topics as f64,
    )];
    table.extend(
        ROW_GAUGES
            .iter()
            .filter(|(.., broker_level)| *broker_level)
            .map(|(suffix, help, f, _)| (format!("pulsar_broker_{suffix}"), *help, *f)),
    );
    s.gauges(&rows, &table);
}

/// Pulsar's managed-ledger metrics, per namespace (`<tenant>/<ns>/persistent`).
pub(super) fn managed_ledger_families(
    s: &mut Scrape,
    cluster: &str,
    topics: &[(TopicName, TopicStats)],
) {
    #[derive(Default)]
    struct Ml {
        add_bytes_rate: f64,
        add_rate: f64,
        add_succeed: u64,
        add_errors: u64,
        read_rate: f64,
        read_bytes_rate: f64,
        read_succeeded: u64,
        read_errors: u64,
        stored: i64,
        backlog: i64,
    }
    let mut rows: BTreeMap<Labels, Ml> = BTreeMap::new();
    for (name, st) in topics {
        let ns = format!("{}/persistent", name.namespace());
        let r = rows
            .entry(labels(&[("cluster", cluster), ("namespace", &ns)]))
            .or_default();
        let m = &st.metrics;
        r.add_bytes_rate += st.msg_throughput_in;
        r.add_rate += m.storage_write_rate;
        r.add_succeed += m.write_latency.count();
        r.add_errors += m.interval_add_errors;
        r.read_rate += m.storage_read_rate;
        r.read_bytes_rate += m.storage_read_bytes_rate;
        r.read_succeeded += m.interval_read_entries;
        r.read_errors += m.interval_read_errors;
        r.stored += st.storage_size;
        r.backlog += st
            .subscriptions
            .values()
            .map(|v| v.msg_backlog)
            .sum::<i64>();
    }
    s.gauge(
        "pulsar_ml_count",
        "Managed ledgers open in this broker.",
        [(labels(&[("cluster", cluster)]), topics.len() as f64)],
    );
    let table: [GaugeDef<Ml>; 10] = [
        (
            "pulsar_ml_AddEntryBytesRate".into(),
            "Bytes per second added.",
            |r| r.add_bytes_rate,
        ),
        (
            "pulsar_ml_AddEntryMessagesRate".into(),
            "Entries per second added.",
            |r| r.add_rate,
        ),
        (
            "pulsar_ml_AddEntrySucceed".into(),
            "Entries added in the last stats interval.",
            |r| r.add_succeed as f64,
        ),
        (
            "pulsar_ml_AddEntryErrors".into(),
            "Appends refused in the last stats interval.",
            |r| r.add_errors as f64,
        ),
        (
            "pulsar_ml_ReadEntriesRate".into(),
            "Entries per second read.",
            |r| r.read_rate,
        ),
        (
            "pulsar_ml_ReadEntriesBytesRate".into(),
            "Bytes per second read.",
            |r| r.read_bytes_rate,
        ),
        (
            "pulsar_ml_ReadEntriesSucceeded".into(),
            "Entries read in the last stats interval.",
            |r| r.read_succeeded as f64,
        ),
        (
            "pulsar_ml_ReadEntriesErrors".into(),
            "Reads failed in the last stats interval.",
            |r| r.read_errors as f64,
        ),
        (
            "pulsar_ml_StoredMessagesSize".into(),
            "Bytes stored.",
            |r| r.stored as f64,
        ),
        (
            "pulsar_ml_NumberOfMessagesInBacklog".into(),
            "Entries not acknowledged, all subscriptions.",
            |r| r.backlog as f64,
        ),
    ];
    s.gauges(&rows, &table);
}

/// Pulsar's `brk_ledgeroffloader_*`, per topic (per namespace without topic-level metrics).
pub(super) fn offloader_families(
    s: &mut Scrape,
    topics: &[(TopicName, TopicStats)],
    per_topic: bool,
) {
    let mut rows: BTreeMap<Labels, (f64, f64, ledger::IoStats, u64)> = BTreeMap::new();
    for (name, st) in topics {
        let ns = name.namespace().to_string();
        let key = if per_topic {
            labels(&[("namespace", &ns), ("topic", &name.to_string())])
        } else {
            labels(&[("namespace", &ns)])
        };
        let r = rows.entry(key).or_default();
        let m = &st.metrics;
        r.0 += m.offload_rate;
        r.1 += m.read_offload_rate;
        r.2 += m.io;
        r.3 += m.tier_read_errors;
    }
    let with = |l: &Labels, k: &str, v: &str| {
        let mut l = l.clone();
        l.push((k.to_string(), v.to_string()));
        l
    };
    // Pulsar's offloader latencies are summaries in microseconds; here histograms, whose
    // `_sum` and `_count` are the same series.
    type Latency = fn(&ledger::IoStats) -> ledger::LatencySnapshot;
    let latencies: [(&str, &str, Latency); 4] = [
        (
            "brk_ledgeroffloader_read_offload_data_latency",
            "Microseconds a read of offloaded entries took.",
            |io| io.tier_read_latency,
        ),
        (
            "brk_ledgeroffloader_read_offload_index_latency",
            "Microseconds opening an offloaded ledger (reading its index) took.",
            |io| io.tier_open_latency,
        ),
        (
            "brk_ledgeroffloader_read_ledger_latency",
            "Microseconds a read of the hot copy took while offloading it.",
            |io| io.offload_source_read_latency,
        ),
        (
            "tierlog_offload_ledger_latency",
            "Microseconds offloading one ledger took.",
            |io| io.offload_latency,
        ),
    ];
    for (name, help, pick) in latencies {
        let h = Histograms(column(&rows, |r| pick(&r.2)));
        s.register(name, help, h);
    }
    s.gauge(
        "brk_ledgeroffloader_offload_rate",
        "Bytes per second offloaded over the last stats interval.",
        column(&rows, |r| r.0),
    );
    s.gauge(
        "brk_ledgeroffloader_read_offload_rate",
        "Bytes per second read from tiered storage over the last stats interval.",
        column(&rows, |r| r.1),
    );
    s.counter(
        "brk_ledgeroffloader_offload_error",
        "Offloads of a ledger that failed.",
        column(&rows, |r| r.2.offload_errors),
    );
    s.counter(
        "brk_ledgeroffloader_read_offload_error",
        "Reads of offloaded ledgers the tier failed (served from the hot copy or retried).",
        column(&rows, |r| r.3),
    );
    s.counter(
        "brk_ledgeroffloader_delete_offload_ops",
        "Deletions of offloaded objects, by status.",
        rows.iter()
            .flat_map(|(l, r)| {
                [
                    (with(l, "status", "succeed"), r.2.offload_deletes_ok),
                    (with(l, "status", "failed"), r.2.offload_deletes_failed),
                ]
            })
            .collect::<Vec<_>>(),
    );
    // tierlog's: the totals the rates above are computed from.
    s.counter(
        "tierlog_offloaded_bytes",
        "Bytes of ledgers offloaded since the topic loaded.",
        column(&rows, |r| r.2.offloaded_bytes),
    );
    s.counter(
        "tierlog_tier_read_entries",
        "Entries read from tiered storage since the topic loaded.",
        column(&rows, |r| r.2.tier_read_entries),
    );
    s.counter(
        "tierlog_tier_read_bytes",
        "Bytes read from tiered storage since the topic loaded.",
        column(&rows, |r| r.2.tier_read_bytes),
    );
}

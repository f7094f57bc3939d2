//! Stats rates and `/metrics` after a produce / offload / cold-read scenario: the exposition is
//! parsed by Prometheus's own Python library (OpenMetrics parser), carries Pulsar's names and
//! labels, and its numbers agree with what the test did — messages in and out, storage and
//! offloaded bytes, bytes read back from the tier, backlogs, producers, consumers — and
//! `topics stats` rates add up to the messages produced and consumed.

use crate::common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use pulsar::SubType;
use pulsar::consumer::InitialPosition;
use pulsar::producer::ProducerOptions;
use serde_json::Value;
use testkit::standalone::Standalone;

const ENV: [(&str, &str); 6] = [
    ("TIERLOG_retentionCheckIntervalInSeconds", "1"),
    ("TIERLOG_managedLedgerMaxEntriesPerLedger", "100"),
    ("TIERLOG_managedLedgerMinLedgerRolloverTimeMinutes", "0"),
    ("TIERLOG_defaultRetentionTimeInMinutes", "-1"),
    ("TIERLOG_defaultRetentionSizeInMB", "-1"),
    ("TIERLOG_statsUpdateFrequencyInSecs", "1"),
];
const TOPIC: &str = "persistent://public/default/metered";

/// One parsed sample.
#[derive(Debug, Clone)]
struct Sample {
    family: String,
    kind: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// `/metrics` as Prometheus's parser reads it: samples by name.
fn scrape(b: &Standalone) -> BTreeMap<String, Vec<Sample>> {
    let out = common::run_client_script("parse_metrics.py", &[&b.admin_url()]);
    let mut lines = out.lines();
    let head: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert!(
        head["content_type"]
            .as_str()
            .unwrap()
            .starts_with("application/openmetrics-text"),
        "{head}"
    );
    let mut samples: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
    for l in lines {
        let v: Value = serde_json::from_str(l).unwrap();
        samples
            .entry(v["name"].as_str().unwrap().to_string())
            .or_default()
            .push(Sample {
                family: v["family"].as_str().unwrap().to_string(),
                kind: v["type"].as_str().unwrap().to_string(),
                labels: serde_json::from_value(v["labels"].clone()).unwrap(),
                value: v["value"].as_f64().unwrap(),
            });
    }
    samples
}

/// The value of `name` for the sample whose labels include `with`.
fn value(m: &BTreeMap<String, Vec<Sample>>, name: &str, with: &[(&str, &str)]) -> f64 {
    let samples = m
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", m.keys().collect::<Vec<_>>()));
    let found: Vec<&Sample> = samples
        .iter()
        .filter(|s| {
            with.iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect();
    assert_eq!(found.len(), 1, "{name} {with:?}: {samples:?}");
    found[0].value
}

fn stats(b: &Standalone) -> Value {
    serde_json::from_str(&common::admin_ok(b, &["topics", "stats", TOPIC])).unwrap()
}

/// Polls the rate at `pointer` in the topic's stats for `wait` and sums the rates of the
/// distinct intervals seen (each interval is 1 s long, so a rate is that interval's count).
fn counted_by_rates(b: &Standalone, pointer: &str, wait: Duration) -> f64 {
    let deadline = Instant::now() + wait;
    let mut seen: Vec<f64> = Vec::new();
    while Instant::now() < deadline {
        let r = stats(b)
            .pointer(pointer)
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        if seen.last() != Some(&r) {
            seen.push(r);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    seen.iter().sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_rates_agree_with_a_produce_offload_and_cold_read() {
    let dir = tempfile::tempdir().unwrap();
    let b = common::start(dir.path(), &ENV);
    let admin = |args: &[&str]| common::admin_ok(&b, args);
    admin(&[
        "namespaces",
        "set-offload-deletion-lag",
        "public/default",
        "--lag",
        "0",
    ]);
    admin(&["topics", "create", TOPIC]);
    admin(&[
        "topics",
        "create-subscription",
        "-s",
        "held",
        "-m",
        "earliest",
        TOPIC,
    ]);

    // Produce 500 entries in one burst; the per-second rates add up to them. (Wait for the
    // just-loaded topic's first interval to close: that one is shorter than a second.)
    std::thread::sleep(Duration::from_millis(1500));
    let client = common::client(&b).await;
    common::produce(&client, TOPIC, 0..500, 100, ProducerOptions::default()).await;
    let produced = counted_by_rates(&b, "/msgRateIn", Duration::from_secs(4));
    assert!(
        (produced - 500.0).abs() <= 25.0,
        "msgRateIn added up to {produced}"
    );

    // Offload the sealed ledgers; their hot copies go; a consumer reads everything from the
    // tier (and the current ledger's hot copy).
    admin(&["topics", "offload", "-s", "0", TOPIC]);
    let status = admin(&["topics", "offload-status", "-w", TOPIC]);
    assert!(status.contains("Offload was a success"), "{status}");
    common::wait_for_no_hot_sealed_ledger(dir.path());
    let internal: Value =
        serde_json::from_str(&admin(&["topics", "stats-internal", TOPIC])).unwrap();
    let ledgers = internal["ledgers"].as_array().unwrap();
    let offloaded_entries: i64 = ledgers
        .iter()
        .filter(|l| l["offloaded"] == true)
        .map(|l| l["entries"].as_i64().unwrap())
        .sum();
    let offloaded_bytes: i64 = ledgers
        .iter()
        .filter(|l| l["offloaded"] == true)
        .map(|l| l["size"].as_i64().unwrap())
        .sum();
    assert!(
        ledgers.iter().filter(|l| l["offloaded"] == true).count() >= 4,
        "{internal}"
    );
    let mut cold = common::consumer(
        &client,
        TOPIC,
        "cold",
        SubType::Shared,
        InitialPosition::Earliest,
    )
    .await;
    let got = common::receive(&mut cold, 500, true, Duration::from_secs(30)).await;
    common::check(&got, 100);
    let consumed = counted_by_rates(&b, "/msgRateOut", Duration::from_secs(4));
    assert!(
        (consumed - 500.0).abs() <= 25.0,
        "msgRateOut added up to {consumed}"
    );

    // `topics stats`: backlogs and consumers.
    let s = stats(&b);
    assert_eq!(s["subscriptions"]["held"]["msgBacklog"], 500, "{s}");
    assert_eq!(s["subscriptions"]["cold"]["msgBacklog"], 0, "{s}");
    assert_eq!(
        s["subscriptions"]["cold"]["consumers"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(s["msgInCounter"], 500);
    assert_eq!(s["msgOutCounter"], 500);
    let storage = s["storageSize"].as_i64().unwrap();
    assert_eq!(s["offloadedStorageSize"], offloaded_bytes, "{s}");
    assert_eq!(s["backlogSize"], storage, "held has read nothing: {s}");

    // /metrics, parsed by Prometheus's parser, with Pulsar's names and labels.
    let m = scrape(&b);
    // Help texts end with one period (the encoder adds it).
    let (_, raw) = b.call("GET", "/metrics", None);
    let doubled: Vec<&str> = raw
        .lines()
        .filter(|l| l.starts_with("# HELP") && l.ends_with(".."))
        .collect();
    assert!(doubled.is_empty(), "{doubled:?}");
    let t = [
        ("cluster", "standalone"),
        ("namespace", "public/default"),
        ("topic", TOPIC),
    ];
    assert_eq!(value(&m, "pulsar_in_messages_total", &t), 500.0);
    // The hot tier's journal made those appends durable in group commits, each with an fsync
    // at least.
    let commits = value(&m, "tierlog_hot_tier_group_commits_total", &[]);
    let fsyncs = value(&m, "tierlog_hot_tier_fsyncs_total", &[]);
    assert!(commits >= 1.0, "{commits}");
    assert!(
        fsyncs >= commits,
        "{fsyncs} fsyncs for {commits} group commits"
    );
    assert_eq!(value(&m, "pulsar_out_messages_total", &t), 500.0);
    assert_eq!(value(&m, "pulsar_in_bytes_total", &t), storage as f64);
    assert_eq!(value(&m, "pulsar_storage_size", &t), storage as f64);
    assert_eq!(
        value(&m, "pulsar_storage_offloaded_size", &t),
        offloaded_bytes as f64
    );
    assert_eq!(value(&m, "pulsar_msg_backlog", &t), 500.0);
    assert_eq!(value(&m, "pulsar_subscriptions_count", &t), 2.0);
    assert_eq!(value(&m, "pulsar_producers_count", &t), 0.0);
    assert_eq!(value(&m, "pulsar_consumers_count", &t), 1.0);
    let held = [("topic", TOPIC), ("subscription", "held")];
    assert_eq!(value(&m, "pulsar_subscription_back_log", &held), 500.0);
    assert_eq!(
        value(
            &m,
            "pulsar_broker_topics_count",
            &[("cluster", "standalone")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "pulsar_broker_msg_backlog",
            &[("cluster", "standalone")]
        ),
        500.0
    );
    // The offloader: bytes offloaded and read back from the tier, per topic.
    let o = [("namespace", "public/default"), ("topic", TOPIC)];
    assert_eq!(
        value(&m, "tierlog_offloaded_bytes_total", &o),
        offloaded_bytes as f64
    );
    assert_eq!(
        value(&m, "tierlog_tier_read_bytes_total", &o),
        offloaded_bytes as f64
    );
    assert_eq!(
        value(&m, "tierlog_tier_read_entries_total", &o),
        offloaded_entries as f64
    );
    // Latencies (µs, as Pulsar's offloader summaries): one per ledger offloaded and per
    // offloaded ledger opened; reads of the tier and of the hot copies while offloading.
    let offloaded_ledgers = ledgers.iter().filter(|l| l["offloaded"] == true).count() as f64;
    assert_eq!(
        value(&m, "tierlog_offload_ledger_latency_count", &o),
        offloaded_ledgers
    );
    assert_eq!(
        value(
            &m,
            "brk_ledgeroffloader_read_offload_index_latency_count",
            &o
        ),
        offloaded_ledgers
    );
    assert!(
        value(
            &m,
            "brk_ledgeroffloader_read_offload_data_latency_count",
            &o
        ) >= offloaded_ledgers
    );
    assert!(value(&m, "brk_ledgeroffloader_read_offload_data_latency_sum", &o) > 0.0);
    assert!(value(&m, "brk_ledgeroffloader_read_ledger_latency_count", &o) >= offloaded_ledgers);
    let inf = [("topic", TOPIC), ("le", "+Inf")];
    assert_eq!(
        value(&m, "tierlog_offload_ledger_latency_bucket", &inf),
        offloaded_ledgers
    );
    assert_eq!(
        value(&m, "brk_ledgeroffloader_offload_error_total", &o),
        0.0
    );
    assert_eq!(
        value(&m, "brk_ledgeroffloader_read_offload_error_total", &o),
        0.0
    );
    let ok = [("topic", TOPIC), ("status", "succeed")];
    assert!(value(&m, "brk_ledgeroffloader_delete_offload_ops_total", &ok) >= 0.0);
    assert!(m.contains_key("brk_ledgeroffloader_offload_rate"));
    assert!(m.contains_key("brk_ledgeroffloader_read_offload_rate"));
    // Managed-ledger metrics per namespace, as Pulsar labels them.
    let ns = [
        ("cluster", "standalone"),
        ("namespace", "public/default/persistent"),
    ];
    assert_eq!(
        value(&m, "pulsar_ml_StoredMessagesSize", &ns),
        storage as f64
    );
    assert_eq!(value(&m, "pulsar_ml_NumberOfMessagesInBacklog", &ns), 500.0);
    // The write latency buckets counted entries (each interval's; all zero once idle).
    for suffix in [
        "0_5", "1", "5", "10", "20", "50", "100", "200", "1000", "overflow",
    ] {
        let name = format!("pulsar_storage_write_latency_le_{suffix}");
        assert_eq!(m[&name][0].kind, "gauge", "{name}");
    }
    // Every metric the Grafana dashboard (docs/grafana) queries is served.
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(
            testkit::workspace_root().join("docs/grafana/tierlog-offload.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut queried = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if ["pulsar_", "brk_", "tierlog_"]
                    .iter()
                    .any(|p| word.starts_with(p))
                {
                    queried.push(word.to_string());
                }
            }
        }
    }
    assert!(queried.len() >= 15, "{queried:?}");
    for name in &queried {
        assert!(
            m.contains_key(name),
            "the dashboard queries {name}, which /metrics lacks"
        );
    }
    // Types as Prometheus sees them.
    assert_eq!(m["pulsar_in_messages_total"][0].kind, "counter");
    assert_eq!(
        m["pulsar_in_messages_total"][0].family,
        "pulsar_in_messages"
    );
    assert_eq!(m["pulsar_rate_in"][0].kind, "gauge");

    // A subscription that consumes part: 200 acknowledged of what it was delivered.
    let mut part = common::consumer(
        &client,
        TOPIC,
        "part",
        SubType::Shared,
        InitialPosition::Earliest,
    )
    .await;
    common::receive(&mut part, 200, true, Duration::from_secs(30)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let s = loop {
        let s = stats(&b);
        if s["subscriptions"]["part"]["msgBacklog"] == 300 {
            break s;
        }
        assert!(Instant::now() < deadline, "{s}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let part = &s["subscriptions"]["part"];
    let delivered = part["msgOutCounter"].as_u64().unwrap();
    assert!(delivered >= 200, "{s}");
    assert_eq!(part["unackedMessages"], delivered - 200, "{s}");
    let consumer = &part["consumers"][0];
    assert_eq!(consumer["unackedMessages"], delivered - 200, "{s}");
    assert_eq!(consumer["msgOutCounter"], delivered, "{s}");
    assert!(consumer["availablePermits"].as_i64().unwrap() >= 0, "{s}");
    let m = scrape(&b);
    assert_eq!(
        value(
            &m,
            "pulsar_subscription_back_log",
            &[("subscription", "part")]
        ),
        300.0
    );
    assert_eq!(value(&m, "pulsar_msg_backlog", &t), 800.0);

    // Per publisher: a producer kept open, its 100 messages in its rates.
    let mut steady = client
        .producer()
        .with_topic(TOPIC)
        .with_name("steady")
        .build()
        .await
        .unwrap();
    // (Its first interval, shorter than a second, closes before it sends.)
    std::thread::sleep(Duration::from_millis(1500));
    let mut receipts = Vec::new();
    for i in 0..100 {
        receipts.push(
            steady
                .send_non_blocking(common::message(1000 + i, 50))
                .await
                .unwrap(),
        );
    }
    for r in receipts {
        r.await.unwrap();
    }
    let published = counted_by_rates(&b, "/publishers/0/msgRateIn", Duration::from_secs(4));
    assert!(
        (published - 100.0).abs() <= 5.0,
        "publisher msgRateIn added up to {published}"
    );
    let s = stats(&b);
    assert_eq!(s["publishers"][0]["producerName"], "steady", "{s}");
    assert!(s["publishers"][0]["averageMsgSize"].is_number(), "{s}");
    assert!(
        s["subscriptions"]["part"]["consumers"][0]["msgRateOut"].is_number(),
        "{s}"
    );
}

/// Without topic-level metrics, topics are summed per namespace (with `pulsar_topics_count`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_level_metrics_sum_the_topics() {
    let dir = tempfile::tempdir().unwrap();
    let b = common::start(
        dir.path(),
        &[("TIERLOG_exposeTopicLevelMetricsInPrometheus", "false")],
    );
    let client = common::client(&b).await;
    common::produce(&client, "a", 0..30, 10, ProducerOptions::default()).await;
    common::produce(&client, "b", 0..20, 10, ProducerOptions::default()).await;
    let m = scrape(&b);
    let ns = [("cluster", "standalone"), ("namespace", "public/default")];
    assert_eq!(value(&m, "pulsar_topics_count", &ns), 2.0);
    assert_eq!(value(&m, "pulsar_in_messages_total", &ns), 50.0);
    assert!(
        m["pulsar_in_messages_total"]
            .iter()
            .all(|s| !s.labels.contains_key("topic")),
        "{:?}",
        m["pulsar_in_messages_total"]
    );
    assert!(!m.contains_key("pulsar_subscription_back_log"));
}

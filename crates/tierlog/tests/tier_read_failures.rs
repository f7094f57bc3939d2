//! Reads of offloaded ledgers when the tier fails (its objects vanished), with reads going to
//! the tier first (Pulsar's default `tiered-storage-first`): while the hot copy exists, reads
//! fall back to it at once; once it is gone, reads wait and retry with back-off, the failure
//! shows in `stats-internal`, in `/metrics` and (once, not per retry) in the log, and the
//! consumer gets everything when the objects return.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use pulsar::SubType;
use pulsar::consumer::InitialPosition;
use pulsar::producer::ProducerOptions;
use serde_json::Value;
use testkit::standalone::Standalone;

const ENV: [(&str, &str); 4] = [
    ("TIERLOG_managedLedgerMaxEntriesPerLedger", "100"),
    ("TIERLOG_managedLedgerMinLedgerRolloverTimeMinutes", "0"),
    ("TIERLOG_defaultRetentionTimeInMinutes", "-1"),
    ("TIERLOG_defaultRetentionSizeInMB", "-1"),
];

fn internal_stats(b: &Standalone, topic: &str) -> Value {
    let (status, body) = b.call(
        "GET",
        &format!("/admin/v2/persistent/public/default/{topic}/internalStats"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Offloads every sealed ledger of `topic` (standalone's filesystem tier) and waits for it.
fn offload_all(b: &Standalone, topic: &str) {
    let out = common::admin(b, &["topics", "offload", "-s", "0", topic]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = common::admin(b, &["topics", "offload-status", "-w", topic]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stats = internal_stats(b, topic);
    let offloaded = stats["ledgers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["offloaded"] == true)
        .count();
    assert!(offloaded >= 4, "{stats}");
}

fn hide(dir: &Path) -> std::path::PathBuf {
    let from = dir.join("data/offloaded");
    let to = dir.join("data/offloaded.away");
    std::fs::rename(&from, &to).unwrap();
    to
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_tier_falls_back_to_the_hot_copy_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path(), &ENV);
    let client = common::client(&broker).await;
    common::produce(&client, "fallback", 0..500, 100, ProducerOptions::default()).await;
    offload_all(&broker, "fallback");
    // The tier's objects vanish; the hot copies are still there (deletion lag: 4 hours).
    hide(dir.path());

    let started = Instant::now();
    let mut c = common::consumer(
        &client,
        "fallback",
        "s",
        SubType::Exclusive,
        InitialPosition::Earliest,
    )
    .await;
    let got = common::receive(&mut c, 500, true, Duration::from_secs(10)).await;
    common::check(&got, 100);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "served from the hot copies without waiting: {:?}",
        started.elapsed()
    );
    let stats = internal_stats(&broker, "fallback");
    let failing = stats["ledgers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| {
            l["offloadReadError"]
                .as_str()
                .is_some_and(|e| e.contains("served from the hot copy"))
        })
        .count();
    assert!(failing >= 1, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_hot_copy_reads_retry_surface_the_failure_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = ENV.to_vec();
    // Hot copies go as soon as the offload completes (retention runs every second).
    env.push(("TIERLOG_managedLedgerOffloadDeletionLagMs", "0"));
    env.push(("TIERLOG_retentionCheckIntervalInSeconds", "1"));
    let broker = common::start(dir.path(), &env);
    let client = common::client(&broker).await;
    common::produce(&client, "nohot", 0..500, 100, ProducerOptions::default()).await;
    offload_all(&broker, "nohot");
    let ledgers = dir.path().join("data/ledgers");
    let deadline = Instant::now() + Duration::from_secs(20);
    let ledger_files = || {
        std::fs::read_dir(&ledgers)
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                let name = name.to_string_lossy();
                name.ends_with(".open") || name.ends_with(".sealed")
            })
            .count()
    };
    // The current ledger's file stays.
    while ledger_files() > 1 {
        assert!(
            Instant::now() < deadline,
            "hot copies deleted after the lag"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let away = hide(dir.path());

    let mut c = common::consumer(
        &client,
        "nohot",
        "s",
        SubType::Exclusive,
        InitialPosition::Earliest,
    )
    .await;
    common::assert_silent(&mut c, Duration::from_secs(4)).await;

    // The failure is visible: stats-internal names it, the metric counts it.
    let stats = internal_stats(&broker, "nohot");
    let error = stats["ledgers"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|l| l["offloadReadError"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("a ledger reports its read error: {stats}"));
    assert!(error.contains("no hot copy"), "{error}");
    let (_, metrics) = broker.call("GET", "/metrics", None);
    let failures: f64 = metrics
        .lines()
        .find(|l| {
            l.starts_with("brk_ledgeroffloader_read_offload_error_total{")
                && l.contains("topic=\"persistent://public/default/nohot\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("the metric is there:\n{metrics}"));
    assert!(failures >= 1.0, "{failures}");
    // Retried with back-off: a handful of attempts in 4 s, not one every few milliseconds.
    assert!(failures < 20.0, "{failures} tier reads in 4 s");

    // The objects return: the consumer gets everything without being recreated.
    std::fs::rename(&away, dir.path().join("data/offloaded")).unwrap();
    let got = common::receive(&mut c, 500, true, Duration::from_secs(40)).await;
    common::check(&got, 100);
    let mut idx: Vec<usize> = got.iter().map(|r| r.0).collect();
    idx.sort_unstable();
    assert_eq!(idx, (0..500).collect::<Vec<_>>());
    let stats = internal_stats(&broker, "nohot");
    assert!(
        stats["ledgers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l.get("offloadReadError").is_none()),
        "the error clears once the tier serves again: {stats}"
    );

    drop((c, client));
    let out = broker.stop("TERM");
    let log = String::from_utf8_lossy(&out.stderr);
    let warnings = log
        .lines()
        .filter(|l| l.contains("WARN") && !l.contains("configuration key"))
        .count();
    assert!(
        warnings <= 6,
        "the failure is logged once, not per retry:\n{log}"
    );
}

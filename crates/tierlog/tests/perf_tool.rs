//! `tierlog perf` against a real broker: pulsar-perf's stats lines and summaries, -m limits,
//! batching on and off, JSON summaries, and consume catching up from Earliest.

use crate::common;

use std::process::Command;

fn perf(args: &[&str]) -> String {
    let out = testkit::audit::output(
        Command::new(env!("CARGO_BIN_EXE_tierlog"))
            .arg("perf")
            .args(args),
    );
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn entries(b: &testkit::standalone::Standalone, topic: &str) -> i64 {
    let (_, body) = b.call(
        "GET",
        &format!("/admin/v2/persistent/public/default/{topic}/internalStats"),
        None,
    );
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["numberOfEntries"].as_i64().unwrap()
}

#[test]
fn perf_produce_and_consume_report_like_pulsar_perf() {
    let dir = tempfile::tempdir().unwrap();
    let b = common::start(dir.path(), &[]);
    let url = b.service_url();

    let out = perf(&[
        "produce",
        "-u",
        &url,
        "-r",
        "2000",
        "-s",
        "512",
        "-m",
        "3000",
        "--stats-interval",
        "1",
        "batched",
    ]);
    let stats = out
        .lines()
        .find(|l| l.starts_with("Throughput produced:"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        stats.contains(" msg/s --- ") && stats.contains(" Mbit/s --- failure "),
        "{stats}"
    );
    assert!(
        stats.contains("Latency: mean: ") && stats.contains(" - 99.9pct: "),
        "{stats}"
    );
    assert!(
        out.contains("Aggregated throughput stats --- 3000 records sent --- "),
        "{out}"
    );
    assert!(
        out.contains("Aggregated latency stats --- Latency: mean: "),
        "{out}"
    );
    // Batching (1 ms window) packs several messages per entry.
    assert!(entries(&b, "batched") < 3000, "{}", entries(&b, "batched"));

    let out = perf(&[
        "produce",
        "-u",
        &url,
        "-r",
        "0",
        "-s",
        "100",
        "-m",
        "2000",
        "--disable-batching",
        "--output",
        "json",
        "single",
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["messages"], 2000);
    assert_eq!(v["bytes"], 200_000);
    assert_eq!(v["failures"], 0);
    assert_eq!(entries(&b, "single"), 2000);

    // Eight producers (4 topics × 2) driven by 3 sending tasks: every message counted once,
    // every producer used (each task hands messages to its producers in turn).
    let out = perf(&[
        "produce",
        "-u",
        &url,
        "-r",
        "0",
        "-s",
        "100",
        "-m",
        "4000",
        "-t",
        "4",
        "-n",
        "2",
        "--num-test-threads",
        "3",
        "--max-pending",
        "50",
        "--disable-batching",
        "--output",
        "json",
        "spread",
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (v["messages"].as_u64(), v["failures"].as_u64()),
        (Some(4000), Some(0)),
        "{out}"
    );
    let per_topic: Vec<i64> = (0..4)
        .map(|i| entries(&b, &format!("spread-{i}")))
        .collect();
    assert_eq!(per_topic.iter().sum::<i64>(), 4000, "{per_topic:?}");
    assert!(per_topic.iter().all(|&n| n >= 100), "{per_topic:?}");

    let out = perf(&[
        "consume", "-u", &url, "-p", "Earliest", "-m", "3000", "--output", "json", "batched",
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["messages"], 3000, "{out}");
    assert!(v["latencyMs"]["samples"].as_u64().unwrap() >= 3000, "{out}");
    let out = perf(&[
        "consume", "-u", &url, "-p", "Earliest", "-s", "other", "-t", "Shared", "-m", "2000",
        "single",
    ]);
    assert!(
        out.contains("Aggregated throughput stats --- 2000 records received --- "),
        "{out}"
    );

    // Without -m: runs until --test-duration ends, or until Ctrl-C, then prints the summary.
    let out = perf(&[
        "produce",
        "-u",
        &url,
        "-r",
        "200",
        "--test-duration",
        "1",
        "timed",
    ]);
    assert!(out.contains("Aggregated throughput stats --- "), "{out}");
    let child = Command::new(env!("CARGO_BIN_EXE_tierlog"))
        .args(["perf", "produce", "-u", &url, "-r", "200", "interrupted"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let _ = Command::new("kill")
        .args(["-s", "INT", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("Aggregated latency stats --- Latency: mean: "),
        "{text}"
    );

    // A broker that is not there: a clear error, non-zero exit.
    let out = Command::new(env!("CARGO_BIN_EXE_tierlog"))
        .args([
            "perf",
            "produce",
            "-u",
            "pulsar://127.0.0.1:1",
            "-m",
            "1",
            "t",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("connecting to pulsar://127.0.0.1:1"));
}

//! A broker whose data directory fills up, with the official Python client sending into it: the
//! client gets a final error quickly (no hang, no endless resend), retries create no ledgers and
//! no flood of log lines, and once space returns the broker takes messages again by itself with
//! every acknowledged message readable.
//!
//! Needs root to mount a small tmpfs; without it the test says so and does nothing.

use crate::common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::tmpfs::Tmpfs;

/// Runs the client script; fails the test if it takes more than two minutes (a client that
/// hangs on a full disk is one of the defects this test is about).
fn run_script(args: &[&str]) -> Value {
    let script: PathBuf =
        testkit::workspace_root().join("crates/tierlog/tests/clients/python_disk_full.py");
    // Two files: one file opened twice would be two offsets writing over each other.
    let results = tempfile::NamedTempFile::new().unwrap();
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(common::python())
        .arg(&script)
        .args(args)
        .stdout(results.reopen().unwrap())
        .stderr(log.reopen().unwrap())
        .spawn()
        .expect("run the Python client (installed by scripts/test)");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = std::fs::read_to_string(results.path()).unwrap_or_default();
    let log = std::fs::read_to_string(log.path()).unwrap_or_default();
    let tail: String = log.lines().rev().take(15).collect::<Vec<_>>().join("\n");
    let Some(status) = status else {
        panic!("{args:?}: the client hung for two minutes:\n{tail}");
    };
    let line = output
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or("");
    let v: Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{args:?}: no result ({e}):\n{tail}"));
    assert!(status.success(), "{args:?}: {v}\n{tail}");
    v
}

fn indices(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_i64().unwrap())
        .collect()
}

#[test]
fn a_full_disk_fails_sends_quickly_creates_no_ledgers_and_recovers_by_itself() {
    let Some(fs) = Tmpfs::mount("6m") else {
        return;
    };
    // The data directory is the small file system; the broker's log is not (a log on the full
    // disk loses its lines, the out-of-space report among them: the broker drops a line it
    // cannot write rather than fail).
    let logs = tempfile::tempdir().unwrap();
    let data = fs.path().join("data");
    let broker = common::start(
        logs.path(),
        &[
            ("RUST_LOG", "warn"),
            ("TIERLOG_dataDirectory", data.to_str().unwrap()),
        ],
    );
    let url = broker.service_url();
    let topic = "persistent://public/default/full";

    let fill = run_script(&["fill", &url, topic]);
    let acked = indices(&fill["acked"]);
    assert!(
        acked.len() > 100,
        "some messages fit before the disk filled: {fill}"
    );
    let first_error = fill["first_error"].as_str().unwrap_or("");
    assert!(!first_error.is_empty(), "a send failed: {fill}");
    assert!(
        !first_error.contains("Timeout"),
        "the failing send got an error, not a timeout: {fill}"
    );
    let first_fail_s = fill["first_fail_s"].as_f64().unwrap();
    assert!(
        first_fail_s < 15.0,
        "the failing send fails quickly: {fill}"
    );
    let retry_s = fill["retry_s"].as_f64().unwrap();
    assert!(retry_s < 30.0, "200 retried sends fail quickly: {fill}");

    // Retries created no ledgers: the topic holds a handful, not one per retried send.
    let (status, body) = broker.call(
        "GET",
        "/admin/v2/persistent/public/default/full/internalStats",
        None,
    );
    assert_eq!(status, 200, "{body}");
    let stats: Value = serde_json::from_str(&body).unwrap();
    let ledgers = stats["ledgers"].as_array().unwrap();
    assert!(ledgers.len() <= 5, "ledgers while full: {body}");
    let last_id = ledgers.last().unwrap()["ledgerId"].as_i64().unwrap();
    assert!(last_id < 20, "ledger ids did not run away: {body}");

    // Space returns: the broker takes messages again without a restart.
    fs.remount("size=64m");
    let resumed = run_script(&["resume", &url, topic, "1000000", "50"]);
    assert_eq!(indices(&resumed["acked"]).len(), 50, "{resumed}");

    // Every acknowledged message is there, in order.
    let read = run_script(&["read", &url, topic]);
    let found = indices(&read["found"]);
    let mut expected = acked.clone();
    expected.extend(1_000_000..1_000_050);
    let found_acked: Vec<i64> = found
        .iter()
        .copied()
        .filter(|i| *i != -1 && expected.contains(i))
        .collect();
    assert_eq!(
        found_acked,
        expected
            .iter()
            .copied()
            .filter(|i| *i != -1)
            .collect::<Vec<_>>()
    );

    // The full disk was reported, not once per refused send.
    let out = broker.stop("TERM");
    let log = String::from_utf8_lossy(&out.stderr);
    let warnings = log.lines().filter(|l| l.contains("WARN")).count();
    assert!(warnings <= 20, "{warnings} WARN lines:\n{log}");
    assert!(
        log.contains("out of space"),
        "the full disk is reported:\n{log}"
    );
}

/// Runs `tierlog standalone` on `dir` expecting it to refuse to start; returns its stderr.
fn start_expecting_failure(dir: &std::path::Path) -> String {
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(common::bin())
        .args(["standalone", "--config", "/dev/null"])
        .env("TIERLOG_dataDirectory", dir.join("data"))
        .env("TIERLOG_bindAddress", "127.0.0.1")
        .env("TIERLOG_webServicePort", testkit::free_port().to_string())
        .env(
            "TIERLOG_brokerServicePort",
            testkit::free_port().to_string(),
        )
        .env("RUST_BACKTRACE", "0")
        .stdout(std::process::Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tierlog started on a disk it cannot write");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
    std::fs::read_to_string(log.path()).unwrap()
}

/// Writes zeros into `path` until the file system is full.
fn fill(path: &std::path::Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    // A last partial page, byte by byte, so not even a small write fits.
    while f.write_all(&[0]).is_ok() && f.flush().is_ok() {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_after_a_crash_on_a_full_or_read_only_disk_names_the_file_and_the_os_error() {
    let Some(fs) = Tmpfs::mount("64m") else {
        return;
    };
    let broker = common::start(fs.path(), &[]);
    let client = common::client(&broker).await;
    let topic = "persistent://public/default/crashed";
    // 4000 entries: sealing the recovered ledger needs a footer of several pages.
    let acked = common::produce(&client, topic, 0..4000, 100, Default::default()).await;
    assert_eq!(acked.len(), 4000);
    drop(client);
    broker.kill();

    // Full: the ledger left open cannot be sealed.
    let filler = fs.path().join("filler");
    fill(&filler);
    let err = start_expecting_failure(fs.path());
    assert!(
        err.contains("ledgers/00000000000000000001.open")
            && err.contains("No space left on device"),
        "the file and the OS error are named:\n{err}"
    );

    // Read-only: the same.
    std::fs::remove_file(&filler).unwrap();
    fs.remount("ro");
    let err = start_expecting_failure(fs.path());
    assert!(
        err.contains("ledgers/00000000000000000001.open") && err.contains("Read-only file system"),
        "the file and the OS error are named:\n{err}"
    );

    // Writable again: it starts and every acknowledged message is there.
    fs.remount("rw");
    let broker = common::start(fs.path(), &[]);
    let client = common::client(&broker).await;
    let mut consumer = common::consumer(
        &client,
        topic,
        "check",
        pulsar::SubType::Exclusive,
        pulsar::consumer::InitialPosition::Earliest,
    )
    .await;
    let got = common::receive(&mut consumer, 4000, true, Duration::from_secs(20)).await;
    common::check(&got, 100);
    let mut idx: Vec<usize> = got.iter().map(|r| r.0).collect();
    idx.sort_unstable();
    assert_eq!(idx, (0..4000).collect::<Vec<_>>());
}

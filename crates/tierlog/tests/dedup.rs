//! Message deduplication with the official Python client, across a SIGKILL of the broker and a
//! full offload of the ledgers that carried the sequence ids (their hot copies deleted).

use crate::common;

use std::time::{Duration, Instant};

use testkit::moto::MotoServer;

fn run_phase(broker: &testkit::standalone::Standalone, phase: &str) -> String {
    common::run_client_script(
        "python_dedup.py",
        &[
            &broker.service_url(),
            "persistent://public/default/dedup",
            phase,
        ],
    )
}

#[test]
fn resent_sequence_ids_are_dropped_across_a_kill_and_a_full_offload() {
    let moto = MotoServer::start();
    moto.create_bucket("dedup");
    let dir = tempfile::tempdir().unwrap();
    let endpoint = moto.endpoint();
    let env = [
        ("TIERLOG_managedLedgerOffloadDriver", "S3"),
        ("TIERLOG_s3ManagedLedgerOffloadBucket", "dedup"),
        ("TIERLOG_s3ManagedLedgerOffloadRegion", "us-east-1"),
        (
            "TIERLOG_s3ManagedLedgerOffloadServiceEndpoint",
            endpoint.as_str(),
        ),
        // Small ledgers: the sequence ids end up spread over several, all offloaded.
        ("TIERLOG_managedLedgerMaxEntriesPerLedger", "2"),
        ("TIERLOG_managedLedgerMinLedgerRolloverTimeMinutes", "0"),
        ("TIERLOG_managedLedgerOffloadDeletionLagMs", "0"),
        ("TIERLOG_retentionCheckIntervalInSeconds", "1"),
        // A snapshot every 2 durable entries: recovery starts from one and folds the rest.
        ("TIERLOG_brokerDeduplicationEntriesInterval", "2"),
        ("AWS_ACCESS_KEY_ID", "k"),
        ("AWS_SECRET_ACCESS_KEY", testkit::audit::s3_secret_key()),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let broker = common::start(dir.path(), &env);
    common::admin_ok(
        &broker,
        &[
            "namespaces",
            "set-deduplication",
            "public/default",
            "--enable",
        ],
    );
    assert_eq!(
        common::admin_ok(
            &broker,
            &["namespaces", "get-deduplication", "public/default"]
        )
        .trim(),
        "true"
    );
    // Everything stays readable (the deduplication cursor only holds back what its snapshots
    // have not covered).
    common::admin_ok(
        &broker,
        &[
            "namespaces",
            "set-retention",
            "public/default",
            "--size",
            "-1",
            "--time",
            "-1",
        ],
    );
    let first = run_phase(&broker, "first");
    assert_eq!(common::case_result(&first, "last-before"), "-1");
    // Snapshots were taken: the deduplication cursor moved past the first entries, and it is
    // not shown as a subscription.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, stats) = broker.call(
            "GET",
            "/admin/v2/persistent/public/default/dedup/internalStats",
            None,
        );
        let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
        let mark = stats["cursors"]["pulsar.dedup"]["markDeletePosition"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let entry: i64 = mark
            .split(':')
            .nth(1)
            .and_then(|e| e.parse().ok())
            .unwrap_or(-1);
        if entry >= 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no snapshot moved the cursor: {stats}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, stats) = broker.call(
        "GET",
        "/admin/v2/persistent/public/default/dedup/stats",
        None,
    );
    assert!(!stats.contains("pulsar.dedup"), "{stats}");
    // Killed: no snapshot was written (one every 1000 entries), recovery reads the log.
    drop(broker.stop("KILL"));

    let broker = common::start(dir.path(), &env);
    // Offload everything but the ledger being written, and wait for the hot copies to go.
    common::admin_ok(
        &broker,
        &["topics", "offload", "--size-threshold", "0", "dedup"],
    );
    let status = common::admin_ok(&broker, &["topics", "offload-status", "-w", "dedup"]);
    assert!(
        status.trim_end().ends_with("Offload was a success"),
        "{status}"
    );
    common::wait_for_no_hot_sealed_ledger(dir.path());
    drop(broker.stop("KILL"));

    // Recovery now reads the sequence ids from the bucket.
    let broker = common::start(dir.path(), &env);
    let again = run_phase(&broker, "again");
    assert_eq!(common::case_result(&again, "last-after-restart"), "4");
    let read = run_phase(&broker, "read");
    assert_eq!(common::case_result(&read, "log"), "m0,m1,m2,m3,m4,m5");
}

/// A topic's own setting wins over its namespace's: on for one topic of a namespace without
/// deduplication, off again when removed.
#[test]
fn a_topics_own_deduplication_setting_wins_over_its_namespaces() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path(), &[]);
    let topic = "persistent://public/default/own-dedup";
    common::admin_ok(&broker, &["topics", "set-deduplication", topic, "--enable"]);
    assert_eq!(
        common::admin_ok(&broker, &["topics", "get-deduplication", topic]).trim(),
        "true"
    );
    let run = |phase: &str| {
        common::run_client_script("python_dedup.py", &[&broker.service_url(), topic, phase])
    };
    run("first");
    // 0..4 stored once: the re-sent 2 and 3 were dropped.
    assert_eq!(common::case_result(&run("read"), "log"), "m0,m1,m2,m3,m4");

    let other = "persistent://public/default/no-dedup";
    common::run_client_script("python_dedup.py", &[&broker.service_url(), other, "first"]);
    let log = common::run_client_script("python_dedup.py", &[&broker.service_url(), other, "read"]);
    assert_eq!(
        common::case_result(&log, "log"),
        "m0,m1,m2,m3,m4,m2-again,m3-again"
    );
    common::admin_ok(&broker, &["topics", "remove-deduplication", topic]);
    assert_eq!(
        common::admin_ok(&broker, &["topics", "get-deduplication", topic]).trim(),
        "null"
    );
}

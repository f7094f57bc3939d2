//! Topic compaction through the tiers (Pulsar's #8282 fails once data is offloaded): a topic
//! whose older ledgers are offloaded and whose hot copies are deleted is compacted from object
//! storage; a read_compacted reader of the official Python client gets the latest value per key
//! (an empty value deletes its key, messages without a key are dropped), then continues on the
//! live log; the view survives a SIGKILL; a plain reader still reads every message.

use crate::common;

use std::time::{Duration, Instant};

use testkit::standalone::Standalone;

const TOPIC: &str = "persistent://public/default/compacted";

fn client(b: &Standalone, phase: &str) -> String {
    common::run_client_script("python_compaction.py", &[&b.service_url(), TOPIC, phase])
}

fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        // Small ledgers, offloaded to the filesystem tier with their hot copies deleted at once.
        ("TIERLOG_managedLedgerMaxEntriesPerLedger", "3"),
        ("TIERLOG_managedLedgerMinLedgerRolloverTimeMinutes", "0"),
        ("TIERLOG_managedLedgerOffloadDeletionLagMs", "0"),
        ("TIERLOG_retentionCheckIntervalInSeconds", "1"),
        ("TIERLOG_defaultRetentionTimeInMinutes", "-1"),
        ("TIERLOG_defaultRetentionSizeInMB", "-1"),
    ]
}

#[test]
fn compaction_reads_offloaded_ledgers_and_read_compacted_readers_get_the_latest_value_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let b = common::start(dir.path(), &env());
    client(&b, "produce");
    common::offload_now(&b, TOPIC);
    common::wait_for_no_hot_sealed_ledger(dir.path());
    // The compacted ledger is offloaded as the namespace's threshold says (0: at once).
    common::admin_ok(
        &b,
        &[
            "namespaces",
            "set-offload-threshold",
            "public/default",
            "--size",
            "0",
        ],
    );

    assert_eq!(
        common::admin_ok(&b, &["topics", "compaction-status", TOPIC]).trim(),
        format!("Compaction has not been run for {TOPIC} since broker startup")
    );
    let requested = common::admin_ok(&b, &["topics", "compact", TOPIC]);
    assert_eq!(
        requested.trim(),
        format!("Topic compaction requested for {TOPIC}")
    );
    let status = common::admin_ok(&b, &["topics", "compaction-status", "-w", TOPIC]);
    assert_eq!(status.trim(), "Compaction was a success");

    // No hot copy left but the ledger being written: the view is read from the tier too.
    common::wait_for_no_hot_sealed_ledger(dir.path());

    let latest = "k0=v2,k1=v2,k2=v2,k3=v2";
    assert_eq!(
        common::case_result(&client(&b, "read-compacted"), "read"),
        latest
    );
    assert_eq!(common::case_result(&client(&b, "read-all"), "all"), "12");
    // After the view, the live log.
    client(&b, "produce-more");
    let with_live = format!("{latest},k0=v3");
    assert_eq!(
        common::case_result(&client(&b, "read-compacted"), "read"),
        with_live
    );

    drop(b.stop("KILL"));
    let b = common::start(dir.path(), &env());
    assert_eq!(
        common::case_result(&client(&b, "read-compacted"), "read"),
        with_live
    );
    // Compacted again: k0's newest value replaces the older one in the view.
    common::admin_ok(&b, &["topics", "compact", TOPIC]);
    let status = common::admin_ok(&b, &["topics", "compaction-status", "-w", TOPIC]);
    assert_eq!(status.trim(), "Compaction was a success");
    assert_eq!(
        common::case_result(&client(&b, "read-compacted"), "read"),
        "k1=v2,k2=v2,k3=v2,k0=v3"
    );
}

#[test]
fn a_namespace_compaction_threshold_compacts_topics_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = env();
    env.push((
        "TIERLOG_brokerServiceCompactionMonitorIntervalInSeconds",
        "1",
    ));
    let b = common::start(dir.path(), &env);
    // Written first, so the one compaction the threshold starts covers all of it.
    client(&b, "produce");
    common::admin_ok(
        &b,
        &[
            "namespaces",
            "set-compaction-threshold",
            "public/default",
            "-t",
            "100",
        ],
    );
    assert_eq!(
        common::admin_ok(
            &b,
            &["namespaces", "get-compaction-threshold", "public/default"]
        )
        .trim(),
        "100"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = common::admin_ok(&b, &["topics", "compaction-status", TOPIC]);
        if status.trim() == "Compaction was a success" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not compacted by itself: {status}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(
        common::case_result(&client(&b, "read-compacted"), "read"),
        "k0=v2,k1=v2,k2=v2,k3=v2"
    );
}

#[test]
fn a_batch_keeps_only_its_newest_messages_in_the_view() {
    let dir = tempfile::tempdir().unwrap();
    let b = common::start(dir.path(), &env());
    client(&b, "produce-batch");
    common::admin_ok(&b, &["topics", "compact", TOPIC]);
    let status = common::admin_ok(&b, &["topics", "compaction-status", "-w", TOPIC]);
    assert_eq!(status.trim(), "Compaction was a success");
    // b0's first value is left out of the batch; the log itself keeps all four.
    assert_eq!(
        common::case_result(&client(&b, "read-compacted"), "read"),
        "b1=x1,b0=x2,b2=x1"
    );
    assert_eq!(common::case_result(&client(&b, "read-all"), "all"), "4");
    // A reader looping on has_message_available is told the view's last message, not the
    // log's (the batch there has fewer messages).
    assert_eq!(
        common::case_result(&client(&b, "read-available"), "available"),
        "b1=x1,b0=x2,b2=x1"
    );
}

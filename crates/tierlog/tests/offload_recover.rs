//! `tierlog offload recover`: a broker loses its whole data directory (hot tier and embedded
//! metadata); the ledger lists are rebuilt from the objects in the tier, and every offloaded
//! message is served again, byte-equal and in order, with new ledgers numbered after the
//! restored ones.

use crate::common;

use std::process::Command;
use std::time::Duration;

use pulsar::SubType;
use pulsar::consumer::InitialPosition;
use pulsar::producer::ProducerOptions;

const SIZE: usize = 1024;
const OWN: &str = "persistent://rec/ns/t";
const DEFAULT: &str = "persistent://public/default/u";

fn env(tier: &std::path::Path) -> Vec<(String, String)> {
    [
        (
            "TIERLOG_managedLedgerOffloadDriver",
            "filesystem".to_string(),
        ),
        (
            "TIERLOG_fileSystemURI",
            format!("file://{}", tier.display()),
        ),
        ("TIERLOG_managedLedgerMaxEntriesPerLedger", "50".into()),
        (
            "TIERLOG_managedLedgerMinLedgerRolloverTimeMinutes",
            "0".into(),
        ),
        ("TIERLOG_managedLedgerOffloadDeletionLagMs", "0".into()),
        ("TIERLOG_retentionCheckIntervalInSeconds", "1".into()),
        ("TIERLOG_defaultRetentionTimeInMinutes", "-1".into()),
        ("TIERLOG_defaultRetentionSizeInMB", "-1".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn recover(dir: &std::path::Path, env: &[(String, String)], extra: &[&str]) -> String {
    let out = testkit::audit::output(
        Command::new(common::bin())
            .args(["offload", "recover", "--config", "/dev/null"])
            .args(extra)
            .env("TIERLOG_dataDirectory", dir.join("data"))
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_whose_data_directory_is_gone_serves_every_offloaded_message_after_recover() {
    let dir = tempfile::tempdir().unwrap();
    let tier = tempfile::tempdir().unwrap();
    let env = env(tier.path());
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();

    let b = common::start(dir.path(), &env_ref);
    common::admin_ok(&b, &["tenants", "create", "rec", "-c", "standalone"]);
    common::admin_ok(&b, &["namespaces", "create", "rec/ns"]);
    let c = common::client(&b).await;
    let own = common::produce(&c, OWN, 0..390, SIZE, ProducerOptions::default()).await;
    common::produce(&c, DEFAULT, 0..110, SIZE, ProducerOptions::default()).await;
    drop(c);
    // A clean stop seals the ledgers being written; after the restart everything is sealed and
    // goes to the tier, hot copies deleted at once. (Counts that are no multiple of the ledger
    // size: a ledger rolled over at its last entry would leave an empty sealed ledger, which has
    // nothing to offload and keeps its hot file.)
    b.stop("TERM");
    let b = common::start(dir.path(), &env_ref);
    for topic in [OWN, DEFAULT] {
        common::offload_now(&b, topic);
    }
    common::wait_for_no_hot_sealed_ledger(dir.path());
    b.stop("TERM");

    // The disk is lost: hot tier, embedded metadata, everything.
    std::fs::remove_dir_all(dir.path().join("data")).unwrap();
    let text = recover(dir.path(), &env, &[]);
    assert!(
        text.contains(&format!("restored {OWN}: 8 ledgers, 390 entries")),
        "{text}"
    );
    assert!(
        text.contains(&format!("restored {DEFAULT}: 3 ledgers, 110 entries")),
        "{text}"
    );
    // Running it again changes nothing.
    let again = recover(dir.path(), &env, &["--topic", OWN]);
    assert!(
        again.contains(&format!("exists   {OWN}: it already has a ledger list")),
        "{again}"
    );

    let b = common::start(dir.path(), &env_ref);
    let c = common::client(&b).await;
    for (topic, n) in [(OWN, 390), (DEFAULT, 110)] {
        let mut consumer = common::consumer(
            &c,
            topic,
            "after-recover",
            SubType::Exclusive,
            InitialPosition::Earliest,
        )
        .await;
        let got = common::receive(&mut consumer, n, true, Duration::from_secs(20)).await;
        let order: Vec<usize> = got.iter().map(|r| r.0).collect();
        assert_eq!(order, (0..n).collect::<Vec<_>>(), "{topic}");
        common::check(&got, SIZE);
        common::assert_silent(&mut consumer, Duration::from_millis(300)).await;
    }
    // New messages go to a ledger numbered after every restored one.
    let restored_max = own.iter().map(|(l, _)| *l).max().unwrap();
    let new = common::produce(&c, OWN, 390..391, SIZE, ProducerOptions::default()).await;
    assert!(
        new[0].0 > restored_max,
        "{new:?} after ledgers up to {restored_max}"
    );
    drop(c);
    b.stop("TERM");

    // Scrub against the restored ledger list: it agrees; then one ledger's objects go missing.
    let tier_path = tier.path().display().to_string();
    let scrub = |output: &str| {
        testkit::audit::output(
            Command::new(common::bin())
                .args(["offload", "scrub", "--driver", "filesystem", "--path"])
                .args([tier_path.as_str(), "--topic", OWN, "--config", "/dev/null"])
                .args(["--output", output])
                .env("TIERLOG_dataDirectory", dir.path().join("data")),
        )
    };
    let out = scrub("json");
    let json = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{json}");
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["ledgers"].as_array().unwrap().len(), 8, "{json}");
    assert_eq!(report["ledgerList"].as_array().unwrap().len(), 0, "{json}");
    let victim = report["ledgers"][3]["dataKey"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::remove_file(tier.path().join(&victim)).unwrap();
    std::fs::remove_file(tier.path().join(format!("{victim}-index"))).unwrap();
    let out = scrub("text");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains(&format!(
            "offloaded as {victim} by the ledger list, but those objects are not there"
        )),
        "{text}"
    );
}

/// Objects as Pulsar writes them (the golden vector built from the format spec, not by tierlog):
/// recover finds the topic in their index metadata, and scrub passes them.
#[test]
fn objects_written_by_pulsar_are_recovered_and_scrubbed() {
    let dir = tempfile::tempdir().unwrap();
    let tier = tempfile::tempdir().unwrap();
    let golden = testkit::workspace_root().join("crates/offload/tests/golden");
    let uuid = uuid::Uuid::parse_str("6f1c2b9e-0d4a-4c2e-9b7a-3e5f8d1c2a40").unwrap();
    std::fs::copy(
        golden.join("ledger-3.data"),
        tier.path().join(offload::keys::data_key(&uuid, 3)),
    )
    .unwrap();
    std::fs::copy(
        golden.join("ledger-3.index"),
        tier.path().join(offload::keys::index_key(&uuid, 3)),
    )
    .unwrap();
    let path = tier.path().display().to_string();
    let store = ["--driver", "filesystem", "--path", path.as_str()];
    let text = recover(dir.path(), &[], &store);
    assert!(
        text.contains("restored persistent://public/default/golden: 1 ledgers, 3 entries"),
        "{text}"
    );
    let out = testkit::audit::output(
        Command::new(common::bin())
            .args(["offload", "scrub"])
            .args(store),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("OK       ledger        3"), "{stdout}");
}

//! The seed's tutorial end to end on a real S3-compatible server (moto): a standalone broker
//! offloading to `S3` with an endpoint, 5000 entries per ledger, 50 000 entries of 2 KiB written
//! by a real Pulsar client, `topics offload --size-threshold 10M`, `offload-status -w`, hot copies
//! gone with deletion lag 0, and after a restart every entry read back from the start, in order.

use crate::common;

use std::time::{Duration, Instant};

use pulsar::SubType;
use pulsar::consumer::InitialPosition;
use pulsar::producer::ProducerOptions;
use testkit::moto::MotoServer;
use testkit::standalone::Standalone;

const TOTAL: usize = 50_000;
const SIZE: usize = 2048;

fn internal_stats(b: &Standalone) -> serde_json::Value {
    let (status, body) = b.call(
        "GET",
        "/admin/v2/persistent/public/default/test-topic/internalStats",
        None,
    );
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_tutorial_offloads_to_s3_and_reads_everything_back_after_restart() {
    let moto = MotoServer::start();
    moto.create_bucket("tiered");
    let dir = tempfile::tempdir().unwrap();
    let endpoint = moto.endpoint();
    let env = [
        ("TIERLOG_managedLedgerOffloadDriver", "S3"),
        ("TIERLOG_s3ManagedLedgerOffloadBucket", "tiered"),
        ("TIERLOG_s3ManagedLedgerOffloadRegion", "us-east-1"),
        (
            "TIERLOG_s3ManagedLedgerOffloadServiceEndpoint",
            endpoint.as_str(),
        ),
        ("TIERLOG_managedLedgerMaxEntriesPerLedger", "5000"),
        ("TIERLOG_managedLedgerMinLedgerRolloverTimeMinutes", "0"),
        ("TIERLOG_retentionCheckIntervalInSeconds", "1"),
        ("AWS_ACCESS_KEY_ID", "tutorial"),
        ("AWS_SECRET_ACCESS_KEY", testkit::audit::s3_secret_key()),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let broker = common::start(dir.path(), &env);
    common::admin_ok(
        &broker,
        &[
            "namespaces",
            "set-retention",
            "public/default",
            "--size",
            "-1",
            "--time",
            "3d",
        ],
    );
    common::admin_ok(
        &broker,
        &[
            "namespaces",
            "set-offload-deletion-lag",
            "public/default",
            "--lag",
            "0",
        ],
    );

    let client = common::client(&broker).await;
    let ids = common::produce(
        &client,
        "test-topic",
        0..TOTAL,
        SIZE,
        ProducerOptions::default(),
    )
    .await;
    assert_eq!(ids.len(), TOTAL);
    drop(client);

    let out = common::admin_ok(
        &broker,
        &["topics", "offload", "--size-threshold", "10M", "test-topic"],
    );
    assert!(
        out.starts_with(
            "Offload triggered for persistent://public/default/test-topic for messages before "
        ),
        "{out}"
    );
    let status = common::admin_ok(&broker, &["topics", "offload-status", "-w", "test-topic"]);
    assert!(
        status.trim_end().ends_with("Offload was a success"),
        "{status}"
    );

    // 10 ledgers of ~10 MiB: all but the newest that fit in 10 MiB are offloaded.
    let stats = internal_stats(&broker);
    let ledgers = stats["ledgers"].as_array().unwrap().clone();
    assert!(ledgers.len() >= 10, "{stats}");
    let offloaded: Vec<i64> = ledgers
        .iter()
        .filter(|l| l["offloaded"] == true)
        .map(|l| l["ledgerId"].as_i64().unwrap())
        .collect();
    assert!(offloaded.len() >= 8, "{stats}");
    eprintln!("offloaded ledgers: {offloaded:?} of {}", ledgers.len());
    assert!(ledgers.last().unwrap()["offloaded"] == false);
    let keys = moto.list_keys("tiered");
    assert_eq!(keys.len(), 2 * offloaded.len(), "{keys:?}");

    // Deletion lag 0: the hot copies of offloaded ledgers disappear from disk.
    let hot = dir.path().join("data/ledgers");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left: Vec<i64> = offloaded
            .iter()
            .copied()
            .filter(|id| hot.join(format!("{id:020}.sealed")).exists())
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "hot copies still on disk: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let out = broker.stop("TERM");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let broker = common::start(dir.path(), &env);
    let client = common::client(&broker).await;
    let mut consumer = common::consumer(
        &client,
        "persistent://public/default/test-topic",
        "after-restart",
        SubType::Exclusive,
        InitialPosition::Earliest,
    )
    .await;
    let got = common::receive(&mut consumer, TOTAL, true, Duration::from_secs(30)).await;
    common::check(&got, SIZE);
    assert!(
        got.iter().enumerate().all(|(n, m)| m.0 == n),
        "entries read back in order"
    );
    // The reads of the offloaded ledgers came from the bucket.
    let (_, metrics) = broker.call("GET", "/metrics", None);
    let gets = metrics
        .lines()
        .find(|l| l.starts_with("tierlog_offload_requests_total{op=\"get\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(gets > 0.0, "{metrics}");
}

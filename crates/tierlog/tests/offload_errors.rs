//! An offload that fails at the REST level: a standalone broker offloading to a bucket that does
//! not exist yet. The status says ERROR with a reason naming the bucket, `offload-status` prints
//! Pulsar's strings and exits non-zero, the topic keeps serving producers and consumers, and an
//! offload after the bucket exists succeeds.

use crate::common;

use std::time::Duration;

use pulsar::SubType;
use pulsar::consumer::InitialPosition;
use pulsar::producer::ProducerOptions;
use testkit::moto::MotoServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offload_to_a_missing_bucket_reports_error_and_the_topic_keeps_working() {
    let moto = MotoServer::start();
    let dir = tempfile::tempdir().unwrap();
    let endpoint = moto.endpoint();
    let broker = common::start(
        dir.path(),
        &[
            ("TIERLOG_managedLedgerOffloadDriver", "S3"),
            ("TIERLOG_s3ManagedLedgerOffloadBucket", "later-bucket"),
            ("TIERLOG_s3ManagedLedgerOffloadRegion", "us-east-1"),
            (
                "TIERLOG_s3ManagedLedgerOffloadServiceEndpoint",
                endpoint.as_str(),
            ),
            ("TIERLOG_managedLedgerMaxEntriesPerLedger", "100"),
            ("TIERLOG_managedLedgerMinLedgerRolloverTimeMinutes", "0"),
            ("TIERLOG_defaultRetentionTimeInMinutes", "-1"),
            ("TIERLOG_defaultRetentionSizeInMB", "-1"),
            ("AWS_ACCESS_KEY_ID", "k"),
            ("AWS_SECRET_ACCESS_KEY", testkit::audit::s3_secret_key()),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
    );
    let client = common::client(&broker).await;
    common::produce(&client, "errs", 0..500, 200, ProducerOptions::default()).await;

    let out = common::admin(&broker, &["topics", "offload", "-s", "0", "errs"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = common::admin(&broker, &["topics", "offload-status", "-w", "errs"]);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("Error in offload"), "{text}");
    assert!(text.contains("Error offloading: "), "{text}");
    assert!(
        text.contains("later-bucket"),
        "the reason names the bucket: {text}"
    );
    let (status, body) = broker.call(
        "GET",
        "/admin/v2/persistent/public/default/errs/offload",
        None,
    );
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "ERROR", "{body}");
    assert!(
        v["lastError"].as_str().unwrap().contains("later-bucket"),
        "{body}"
    );

    // The topic keeps working, nothing is marked offloaded.
    common::produce(&client, "errs", 500..600, 200, ProducerOptions::default()).await;
    let mut c = common::consumer(
        &client,
        "errs",
        "all",
        SubType::Exclusive,
        InitialPosition::Earliest,
    )
    .await;
    let got = common::receive(&mut c, 600, true, Duration::from_secs(10)).await;
    common::check(&got, 200);
    let (_, body) = broker.call(
        "GET",
        "/admin/v2/persistent/public/default/errs/internalStats",
        None,
    );
    assert!(!body.contains("\"offloaded\":true"), "{body}");

    // Once the bucket exists, the same request succeeds.
    moto.create_bucket("later-bucket");
    let out = common::admin(&broker, &["topics", "offload", "-s", "0", "errs"]);
    assert!(out.status.success());
    let out = common::admin(&broker, &["topics", "offload-status", "-w", "errs"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .trim_end()
            .lines()
            .last(),
        Some("Offload was a success")
    );
    let (_, body) = broker.call(
        "GET",
        "/admin/v2/persistent/public/default/errs/internalStats",
        None,
    );
    assert!(body.contains("\"offloaded\":true"), "{body}");
    assert!(!moto.list_keys("later-bucket").is_empty());
}

/// An object store that accepts connections and never answers (a blackhole, here a proxy that
/// holds every request for an hour): with short configured timeouts each ledger's offload fails
/// within seconds, `offload-status` shows progress and the latest per-ledger error while the
/// offload still runs, the whole offload ends in ERROR well before Pulsar-like minutes, and once
/// the store answers again the same offload succeeds with every message readable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackholed_store_fails_the_offload_within_the_configured_timeouts_and_reports_progress()
{
    let moto = MotoServer::start();
    moto.create_bucket("slow-bucket");
    let moto_port: u16 = moto.endpoint().rsplit(':').next().unwrap().parse().unwrap();
    let proxy = testkit::proxy::HttpProxy::start(moto_port);
    let dir = tempfile::tempdir().unwrap();
    let endpoint = proxy.endpoint();
    let broker = common::start(
        dir.path(),
        &[
            ("TIERLOG_managedLedgerOffloadDriver", "S3"),
            ("TIERLOG_s3ManagedLedgerOffloadBucket", "slow-bucket"),
            ("TIERLOG_s3ManagedLedgerOffloadRegion", "us-east-1"),
            (
                "TIERLOG_s3ManagedLedgerOffloadServiceEndpoint",
                endpoint.as_str(),
            ),
            ("TIERLOG_managedLedgerOffloadRequestTimeoutMs", "1000"),
            ("TIERLOG_managedLedgerOffloadOperationTimeoutMs", "2000"),
            ("TIERLOG_managedLedgerOffloadMaxRetries", "2"),
            ("TIERLOG_managedLedgerMaxEntriesPerLedger", "100"),
            ("TIERLOG_managedLedgerMinLedgerRolloverTimeMinutes", "0"),
            ("TIERLOG_defaultRetentionTimeInMinutes", "-1"),
            ("TIERLOG_defaultRetentionSizeInMB", "-1"),
            ("AWS_ACCESS_KEY_ID", "k"),
            ("AWS_SECRET_ACCESS_KEY", testkit::audit::s3_secret_key()),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
    );
    let client = common::client(&broker).await;
    common::produce(&client, "hole", 0..400, 200, ProducerOptions::default()).await;

    proxy.set_delay(Duration::from_secs(3600));
    let started = std::time::Instant::now();
    let out = common::admin(&broker, &["topics", "offload", "-s", "0", "hole"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = "/admin/v2/persistent/public/default/hole/offload";
    let mut saw_progress = false;
    let mut saw_error_while_running = None;
    let last = loop {
        let (status, body) = broker.call("GET", path, None);
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        if v["status"] != "RUNNING" {
            break v;
        }
        let p = &v["progress"];
        assert!(
            p.is_object(),
            "a running offload shows its progress: {body}"
        );
        assert!(
            p["ledgersRemaining"].as_u64().unwrap() >= 1,
            "the ledger being uploaded is still to go: {body}"
        );
        saw_progress = true;
        if saw_error_while_running.is_none() && !v["lastError"].as_str().unwrap().is_empty() {
            // The CLI says the same, for a human.
            let text = common::admin_ok(&broker, &["topics", "offload-status", "hole"]);
            saw_error_while_running = Some((body.clone(), text));
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "the offload still runs after {:?}: {body}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let took = started.elapsed();
    assert!(saw_progress);
    assert_eq!(last["status"], "ERROR", "{last}");
    let error = last["lastError"].as_str().unwrap();
    assert!(error.contains("slow-bucket"), "{error}");
    let (body, text) = saw_error_while_running
        .expect("a per-ledger error shows while the offload goes on with the next ledger");
    assert!(body.contains("ledger "), "{body}");
    // Two ledgers upload at once (managedLedgerOffloadMaxThreads), so one or two have failed
    // by the time the first error shows.
    assert!(
        text.starts_with("Offload is currently running (")
            && text.contains("ledgers offloaded")
            && (text.contains(", 1 failed") || text.contains(", 2 failed"))
            && text.contains("last error: ledger "),
        "{text}"
    );
    // 4 sealed ledgers, each given up within operation + request timeout (3 s) plus the abort.
    assert!(took < Duration::from_secs(30), "offload took {took:?}");

    // The store answers again: the same offload succeeds and nothing was lost.
    proxy.set_delay(Duration::ZERO);
    let out = common::admin(&broker, &["topics", "offload", "-s", "0", "hole"]);
    assert!(out.status.success());
    let out = common::admin(&broker, &["topics", "offload-status", "-w", "hole"]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut c = common::consumer(
        &client,
        "hole",
        "all",
        SubType::Exclusive,
        InitialPosition::Earliest,
    )
    .await;
    let got = common::receive(&mut c, 400, true, Duration::from_secs(20)).await;
    common::check(&got, 200);
}

//! An offload that fails at the REST level: a standalone broker offloading to a bucket that does
//! not exist yet. The status says ERROR with a reason naming the bucket, `offload-status` prints
//! Pulsar's strings and exits non-zero, the topic keeps serving producers and consumers, and an
//! offload after the bucket exists succeeds.

mod common;

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
            ("AWS_SECRET_ACCESS_KEY", "s"),
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

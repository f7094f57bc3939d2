//! Offload policies and topic-level policies through the REST API and `tierlog admin`: the JSON
//! Pulsar uses, 412 for what Pulsar refuses, topic over namespace over broker, and a namespace
//! policy with its own S3 location sending that namespace's ledgers to its bucket.

mod common;

use std::time::{Duration, Instant};

use pulsar::producer::ProducerOptions;
use testkit::moto::MotoServer;
use testkit::standalone::Standalone;

fn offloaded_ledgers(b: &Standalone, topic: &str) -> usize {
    let (_, body) = b.call(
        "GET",
        &format!("/admin/v2/persistent/public/default/{topic}/internalStats"),
        None,
    );
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["ledgers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["offloaded"] == true)
        .count()
}

async fn wait_offloaded(b: &Standalone, topic: &str, at_least: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while offloaded_ledgers(b, topic) < at_least {
        assert!(Instant::now() < deadline, "{topic} was not offloaded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const ENV: [(&str, &str); 4] = [
    ("TIERLOG_managedLedgerMaxEntriesPerLedger", "50"),
    ("TIERLOG_managedLedgerMinLedgerRolloverTimeMinutes", "0"),
    ("TIERLOG_defaultRetentionTimeInMinutes", "-1"),
    ("TIERLOG_defaultRetentionSizeInMB", "-1"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_and_topic_offload_policies_and_topic_retention() {
    let dir = tempfile::tempdir().unwrap();
    let b = common::start(dir.path(), &ENV);
    let ns = "/admin/v2/namespaces/public/default";

    // What Pulsar refuses.
    for (body, why) in [
        ("{}", "must not be empty"),
        ("{\"managedLedgerOffloadDriver\":\"tape\"}", "tape"),
        (
            "{\"managedLedgerOffloadDriver\":\"S3\",\"s3ManagedLedgerOffloadRegion\":\"eu-west-1\"}",
            "ucket",
        ),
        (
            "{\"managedLedgerOffloadedReadPriority\":\"fastest\"}",
            "fastest",
        ),
    ] {
        let (status, reply) = b.call("POST", &format!("{ns}/offloadPolicies"), Some(body));
        assert_eq!(status, 412, "{body}: {reply}");
        assert!(reply.contains(why), "{body}: {reply}");
    }
    let (status, _) = b.call("POST", &format!("{ns}/offloadPolicies"), Some("not json"));
    assert_eq!(status, 400);

    // Namespace: automatic offload off; topic "eager" turns it on for itself only.
    let (status, reply) = b.call(
        "POST",
        &format!("{ns}/offloadPolicies"),
        Some("{\"managedLedgerOffloadThresholdInBytes\":-1,\"managedLedgerOffloadDeletionLagInMillis\":3600000,\"unknownField\":true}"),
    );
    assert_eq!(status, 204, "{reply}");
    let (_, got) = b.call("GET", &format!("{ns}/offloadPolicies"), None);
    let got: serde_json::Value = serde_json::from_str(&got).unwrap();
    assert_eq!(got["managedLedgerOffloadThresholdInBytes"], -1);
    assert_eq!(got["managedLedgerOffloadDeletionLagInMillis"], 3600000);
    common::admin_ok(
        &b,
        &[
            "topics",
            "set-offload-policies",
            "-d",
            "filesystem",
            "-oat",
            "0",
            "eager",
        ],
    );
    let got = common::admin_ok(&b, &["topics", "get-offload-policies", "eager"]);
    assert!(
        got.contains("\"managedLedgerOffloadThresholdInBytes\": 0"),
        "{got}"
    );

    let client = common::client(&b).await;
    common::produce(&client, "eager", 0..300, 100, ProducerOptions::default()).await;
    common::produce(&client, "lazy", 0..300, 100, ProducerOptions::default()).await;
    wait_offloaded(&b, "eager", 5).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        offloaded_ledgers(&b, "lazy"),
        0,
        "the namespace policy keeps auto offload off"
    );

    // Changing the namespace policy reaches open topics.
    common::admin_ok(
        &b,
        &[
            "namespaces",
            "set-offload-policies",
            "-d",
            "filesystem",
            "-oat",
            "0",
            "public/default",
        ],
    );
    common::produce(&client, "lazy", 300..360, 100, ProducerOptions::default()).await;
    wait_offloaded(&b, "lazy", 5).await;
    common::admin_ok(
        &b,
        &["namespaces", "remove-offload-policies", "public/default"],
    );
    let (_, got) = b.call("GET", &format!("{ns}/offloadPolicies"), None);
    assert_eq!(got, "{}");

    // Topic retention: 204 while unset, the policy once set, cleared again.
    let t = "/admin/v2/persistent/public/default/eager/retention";
    assert_eq!(b.call("GET", t, None).0, 204);
    common::admin_ok(
        &b,
        &["topics", "set-retention", "-s", "1G", "-t", "2h", "eager"],
    );
    let (status, got) = b.call("GET", t, None);
    assert_eq!(status, 200);
    assert_eq!(
        got,
        "{\"retentionTimeInMinutes\":120,\"retentionSizeInMB\":1024}"
    );
    let (status, got) = b.call(
        "POST",
        t,
        Some("{\"retentionTimeInMinutes\":0,\"retentionSizeInMB\":5}"),
    );
    assert_eq!(status, 412, "{got}");
    common::admin_ok(&b, &["topics", "remove-retention", "eager"]);
    assert_eq!(b.call("GET", t, None).0, 204);
    // Unknown namespace: 404.
    let (status, _) = b.call(
        "GET",
        "/admin/v2/persistent/public/nope/x/offloadPolicies",
        None,
    );
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_offload_policy_with_its_own_bucket_receives_that_namespaces_ledgers() {
    let moto = MotoServer::start();
    moto.create_bucket("ns-bucket");
    let dir = tempfile::tempdir().unwrap();
    let mut env = ENV.to_vec();
    env.extend([
        ("AWS_ACCESS_KEY_ID", "k"),
        ("AWS_SECRET_ACCESS_KEY", "s"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]);
    // The broker itself offloads to the filesystem (the default).
    let b = common::start(dir.path(), &env);
    let endpoint = moto.endpoint();
    common::admin_ok(
        &b,
        &[
            "namespaces",
            "set-offload-policies",
            "-d",
            "S3",
            "-b",
            "ns-bucket",
            "-e",
            &endpoint,
            "-r",
            "us-east-1",
            "-mbs",
            "5M",
            "-oat",
            "0",
            "-orp",
            "bookkeeper-first",
            "public/default",
        ],
    );
    let got = common::admin_ok(
        &b,
        &["namespaces", "get-offload-policies", "public/default"],
    );
    assert!(
        got.contains("\"s3ManagedLedgerOffloadBucket\": \"ns-bucket\""),
        "{got}"
    );
    assert!(
        got.contains("\"s3ManagedLedgerOffloadMaxBlockSizeInBytes\": 5242880"),
        "{got}"
    );
    let client = common::client(&b).await;
    common::produce(&client, "to-s3", 0..200, 100, ProducerOptions::default()).await;
    wait_offloaded(&b, "to-s3", 3).await;
    let keys = moto.list_keys("ns-bucket");
    assert!(keys.len() >= 6, "{keys:?}");
    assert!(keys.iter().all(|k| k.contains("-ledger-")), "{keys:?}");
    assert!(
        !dir.path()
            .join("data/offloaded")
            .read_dir()
            .map(|mut d| d.next().is_some())
            .unwrap_or(false),
        "nothing went to the broker's filesystem offloader"
    );
}

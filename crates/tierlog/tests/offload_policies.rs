//! Offload policies and topic-level policies through the REST API and `tierlog admin`: the JSON
//! Pulsar uses, 412 for what Pulsar refuses, topic over namespace over broker, and a namespace
//! policy with its own S3 location sending that namespace's ledgers to its bucket.

use crate::common;

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

/// The broker's environment for a namespace policy offloading to moto (any key is accepted).
fn s3_env(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut env = ENV.to_vec();
    env.extend([
        ("AWS_ACCESS_KEY_ID", "k"),
        ("AWS_SECRET_ACCESS_KEY", testkit::audit::s3_secret_key()),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]);
    env.extend_from_slice(extra);
    env
}

/// `namespaces set-offload-policies` to `bucket` on moto, 5 MiB blocks, offload at once.
fn set_s3_namespace_policy(b: &Standalone, moto: &MotoServer, bucket: &str, more: &[&str]) {
    let endpoint = moto.endpoint();
    let mut args = vec![
        "namespaces",
        "set-offload-policies",
        "-d",
        "S3",
        "-b",
        bucket,
        "-e",
        &endpoint,
        "-r",
        "us-east-1",
        "-mbs",
        "5M",
        "-oat",
        "0",
    ];
    args.extend_from_slice(more);
    args.push("public/default");
    common::admin_ok(b, &args);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_offload_policy_with_its_own_bucket_receives_that_namespaces_ledgers() {
    let moto = MotoServer::start();
    moto.create_bucket("ns-bucket");
    let dir = tempfile::tempdir().unwrap();
    // The broker itself offloads to the filesystem (the default).
    let b = common::start(dir.path(), &s3_env(&[]));
    set_s3_namespace_policy(&b, &moto, "ns-bucket", &["-orp", "bookkeeper-first"]);
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

fn sealed_hot_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("data/ledgers"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".sealed"))
        })
        .count()
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledgers_offloaded_under_a_removed_s3_policy_are_read_and_deleted_in_s3() {
    let moto = MotoServer::start();
    moto.create_bucket("was-s3");
    let dir = tempfile::tempdir().unwrap();
    // Trim (hot-copy deletion, retention) every second.
    let env = s3_env(&[("TIERLOG_retentionCheckIntervalInSeconds", "1")]);
    let b = common::start(dir.path(), &env);
    // Deletion lag 0 (-oae 0): offloaded ledgers lose their hot copies at once.
    set_s3_namespace_policy(&b, &moto, "was-s3", &["-oae", "0"]);
    let client = common::client(&b).await;
    common::produce(&client, "moved", 0..200, 100, ProducerOptions::default()).await;
    wait_offloaded(&b, "moved", 3).await;
    // Deletion lag 0: the hot copies go, so reads of those ledgers can only come from S3.
    wait_for("hot copies deleted", || sealed_hot_files(dir.path()) <= 1).await;
    assert!(moto.list_keys("was-s3").len() >= 6);

    // The policy goes; the broker's default is the filesystem.
    common::admin_ok(
        &b,
        &["namespaces", "remove-offload-policies", "public/default"],
    );
    drop(client);
    b.stop("TERM");
    let b = common::start(dir.path(), &env);
    let client = common::client(&b).await;
    let mut consumer = common::consumer(
        &client,
        "moved",
        "reader",
        pulsar::SubType::Exclusive,
        pulsar::consumer::InitialPosition::Earliest,
    )
    .await;
    let got = common::receive(&mut consumer, 200, true, Duration::from_secs(20)).await;
    common::check(&got, 100);
    assert_eq!(
        got.iter().map(|m| m.0).collect::<Vec<_>>(),
        (0..200).collect::<Vec<_>>()
    );

    // Retention removes the consumed ledgers, and their objects go from S3.
    common::admin_ok(
        &b,
        &[
            "namespaces",
            "set-retention",
            "public/default",
            "--size",
            "0",
            "--time",
            "0",
        ],
    );
    wait_for("S3 objects deleted by retention", || {
        moto.list_keys("was-s3").is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_topic_deletes_its_offloaded_objects() {
    let dir = tempfile::tempdir().unwrap();
    let b = common::start(dir.path(), &ENV);
    common::admin_ok(
        &b,
        &[
            "topics",
            "set-offload-policies",
            "-d",
            "filesystem",
            "-oat",
            "0",
            "doomed",
        ],
    );
    let client = common::client(&b).await;
    common::produce(&client, "doomed", 0..200, 100, ProducerOptions::default()).await;
    wait_offloaded(&b, "doomed", 3).await;
    let tier = dir.path().join("data/offloaded");
    let objects = || std::fs::read_dir(&tier).map(|d| d.count()).unwrap_or(0);
    assert!(objects() >= 6);
    drop(client);
    common::admin_ok(&b, &["topics", "delete", "doomed"]);
    assert_eq!(
        objects(),
        0,
        "the topic's offloaded objects are deleted with it"
    );
    assert_eq!(sealed_hot_files(dir.path()), 0);
    let (status, _) = b.call(
        "GET",
        "/admin/v2/persistent/public/default/doomed/offloadPolicies",
        None,
    );
    assert_eq!(status, 200);
    let (_, body) = b.call(
        "GET",
        "/admin/v2/persistent/public/default/doomed/offloadPolicies",
        None,
    );
    assert_eq!(body, "{}", "the topic's policies went with it");
}

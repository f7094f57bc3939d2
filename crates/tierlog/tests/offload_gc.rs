//! Orphan collection against a real S3 server (moto): `tierlog offload gc` and the broker's
//! periodic pass remove an unreferenced offload of this cluster and an incomplete multipart
//! upload once past the grace period, and keep everything a ledger list references, everything
//! younger, and another cluster's objects. The referenced messages still read back afterwards.

use crate::common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use object_store::{MultipartUpload, ObjectStoreExt, PutPayload};
use offload::{BlobStoreOffloader, LedgerOffloader, LedgerSource, Location, OffloadConfig};
use pulsar::SubType;
use pulsar::consumer::InitialPosition;
use pulsar::producer::ProducerOptions;
use testkit::moto::MotoServer;

const TOPIC: &str = "persistent://public/default/gc";
const SIZE: usize = 512;

struct Source(i64);

#[async_trait::async_trait]
impl LedgerSource for Source {
    fn ledger_id(&self) -> i64 {
        self.0
    }
    fn last_entry_id(&self) -> i64 {
        9
    }
    fn length(&self) -> u64 {
        100
    }
    fn created_ms(&self) -> u64 {
        1
    }
    async fn read(&self, first: i64, last: i64, _max: usize) -> Result<Vec<Bytes>, String> {
        Ok((first..=last)
            .map(|_| Bytes::from_static(b"0123456789"))
            .collect())
    }
}

fn config(endpoint: &str, cluster: &str) -> OffloadConfig {
    let mut c = OffloadConfig::new(Location::new(
        offload::Driver::S3,
        Some("orphans".into()),
        Some("us-east-1".into()),
        Some(endpoint.into()),
        Default::default(),
    ));
    c.credentials.credential_id = Some("k".into());
    c.credentials.credential_secret = Some(testkit::audit::s3_secret_key().into());
    c.cluster_name = cluster.into();
    c
}

/// Offloads a small ledger straight to the bucket, as `cluster` would: its data key.
async fn plant(endpoint: &str, cluster: &str, ledger: i64) -> String {
    let o = BlobStoreOffloader::new(config(endpoint, cluster))
        .await
        .unwrap();
    let r = o
        .offload(&Source(ledger), uuid::Uuid::new_v4(), &BTreeMap::new())
        .await
        .unwrap();
    r.data_key
}

fn gc(dir: &std::path::Path, env: &[(&str, &str)], extra: &[&str]) -> String {
    let out = testkit::audit::output(
        Command::new(common::bin())
            .args([
                "offload",
                "gc",
                "--config",
                "/dev/null",
                "--grace-seconds",
                "2",
            ])
            .args(extra)
            .env("TIERLOG_dataDirectory", dir.join("data"))
            .envs(env.iter().copied()),
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
async fn orphans_past_the_grace_period_go_and_everything_referenced_young_or_foreign_stays() {
    let moto = MotoServer::start();
    moto.create_bucket("orphans");
    let endpoint = moto.endpoint();
    let dir = tempfile::tempdir().unwrap();
    let mut env = vec![
        ("TIERLOG_managedLedgerOffloadDriver", "S3"),
        ("TIERLOG_s3ManagedLedgerOffloadBucket", "orphans"),
        ("TIERLOG_s3ManagedLedgerOffloadRegion", "us-east-1"),
        (
            "TIERLOG_s3ManagedLedgerOffloadServiceEndpoint",
            endpoint.as_str(),
        ),
        ("TIERLOG_managedLedgerMaxEntriesPerLedger", "20"),
        ("TIERLOG_managedLedgerMinLedgerRolloverTimeMinutes", "0"),
        ("TIERLOG_managedLedgerOffloadDeletionLagMs", "0"),
        ("TIERLOG_retentionCheckIntervalInSeconds", "1"),
        ("TIERLOG_defaultRetentionTimeInMinutes", "-1"),
        ("TIERLOG_defaultRetentionSizeInMB", "-1"),
        ("TIERLOG_managedLedgerOffloadOrphanGcIntervalSeconds", "0"),
        ("AWS_ACCESS_KEY_ID", "k"),
        ("AWS_SECRET_ACCESS_KEY", testkit::audit::s3_secret_key()),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];

    // The topic's ledgers, all offloaded: what the ledger list references.
    let b = common::start(dir.path(), &env);
    let c = common::client(&b).await;
    common::produce(&c, TOPIC, 0..45, SIZE, ProducerOptions::default()).await;
    drop(c);
    b.stop("TERM");
    let b = common::start(dir.path(), &env);
    common::offload_now(&b, TOPIC);
    common::wait_for_no_hot_sealed_ledger(dir.path());
    b.stop("TERM");
    let referenced = moto.list_keys("orphans");
    assert_eq!(referenced.len(), 6, "{referenced:?}");

    // Orphans: an offload of this cluster nobody references, one of another cluster, and an
    // upload that was never completed.
    let ours = plant(&endpoint, "standalone", 900).await;
    let foreign = plant(&endpoint, "other-cluster", 901).await;
    let store = BlobStoreOffloader::new(config(&endpoint, "standalone"))
        .await
        .unwrap()
        .store()
        .await
        .unwrap();
    let stuck_key = offload::keys::data_key(&uuid::Uuid::new_v4(), 902);
    let mut stuck = store
        .put_multipart(&object_store::path::Path::from(stuck_key.as_str()))
        .await
        .unwrap();
    stuck
        .put_part(PutPayload::from(vec![7u8; 5 << 20]))
        .await
        .unwrap();
    assert_eq!(moto.multipart_uploads("orphans").len(), 1);
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Younger than the grace period.
    let young = plant(&endpoint, "standalone", 903).await;

    let dry = gc(dir.path(), &env, &["--dry-run"]);
    assert!(dry.contains(&format!("would delete {ours}")), "{dry}");
    assert!(
        dry.contains(&format!("would abort upload {stuck_key}")),
        "{dry}"
    );
    assert!(
        dry.contains("kept 3 referenced, 1 younger than 2 s, 1 of another cluster"),
        "{dry}"
    );
    assert_eq!(
        moto.list_keys("orphans").len(),
        6 + 6,
        "a dry run deleted something"
    );
    assert_eq!(moto.multipart_uploads("orphans").len(), 1);

    let done = gc(dir.path(), &env, &[]);
    assert!(done.contains(&format!("deleted {ours}-index")), "{done}");
    assert!(done.contains(&format!("deleted {ours}\n")), "{done}");
    assert!(
        done.contains("2 objects deleted, 1 uploads aborted"),
        "{done}"
    );
    let left = moto.list_keys("orphans");
    for key in referenced.iter().chain([&foreign, &young]) {
        assert!(left.contains(key), "{key} was deleted: {left:?}");
    }
    assert!(!left.iter().any(|k| k.starts_with(&ours)), "{left:?}");
    assert!(moto.multipart_uploads("orphans").is_empty());

    // The broker's periodic pass does the same, and counts it; the topic still reads back whole.
    env.retain(|(k, _)| *k != "TIERLOG_managedLedgerOffloadOrphanGcIntervalSeconds");
    env.push(("TIERLOG_managedLedgerOffloadOrphanGcIntervalSeconds", "1"));
    env.push(("TIERLOG_managedLedgerOffloadOrphanGracePeriodSeconds", "2"));
    let again = plant(&endpoint, "standalone", 904).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let b = common::start(dir.path(), &env);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while moto
        .list_keys("orphans")
        .iter()
        .any(|k| k.starts_with(&again))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the periodic pass never removed {again}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (_, metrics) = b.call("GET", "/metrics", None);
    assert!(
        metrics.lines().any(|l| l
            .starts_with("tierlog_offload_orphans_removed_total{kind=\"object\"} ")
            && !l.ends_with(" 0")),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("orphans"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let c = common::client(&b).await;
    let mut consumer = common::consumer(
        &c,
        TOPIC,
        "after-gc",
        SubType::Exclusive,
        InitialPosition::Earliest,
    )
    .await;
    let got = common::receive(&mut consumer, 45, true, Duration::from_secs(20)).await;
    common::check(&got, SIZE);
    drop(consumer);
    drop(c);
    b.stop("TERM");
}

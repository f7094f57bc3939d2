//! `tierlog standalone` with `metadataStoreUrl=etcd:…`: ledger lists, cursors and policies live
//! in a real etcd (no `metadata.redb` is created), survive a restart of the broker, and an
//! unreachable etcd stops start-up with a message naming it.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use meta::{EtcdStore, MetadataStore};
use pulsar::SubType;
use pulsar::consumer::InitialPosition;
use pulsar::producer::ProducerOptions;
use testkit::etcd::EtcdServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledgers_cursors_and_policies_live_in_etcd_and_survive_a_restart() {
    let etcd = EtcdServer::start();
    let url = format!("etcd:{}", etcd.endpoint());
    let env = [
        ("TIERLOG_metadataStoreUrl", url.as_str()),
        ("TIERLOG_managedLedgerMaxEntriesPerLedger", "100"),
        ("TIERLOG_managedLedgerMinLedgerRolloverTimeMinutes", "0"),
        // Produced before any subscription exists: kept by retention, not trimmed.
        ("TIERLOG_defaultRetentionTimeInMinutes", "-1"),
        ("TIERLOG_defaultRetentionSizeInMB", "-1"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path(), &env);
    let client = common::client(&broker).await;
    common::produce(&client, "on-etcd", 0..300, 100, ProducerOptions::default()).await;
    let mut c = common::consumer(
        &client,
        "on-etcd",
        "s",
        SubType::Exclusive,
        InitialPosition::Earliest,
    )
    .await;
    let first = common::receive(&mut c, 100, true, Duration::from_secs(10)).await;
    assert_eq!(
        first.iter().map(|r| r.0).collect::<Vec<_>>(),
        (0..100).collect::<Vec<_>>()
    );
    c.close().await.unwrap();
    drop(c);
    common::admin_ok(
        &broker,
        &["topics", "set-retention", "on-etcd", "-s", "-1", "-t", "1h"],
    );
    drop(client);
    assert!(broker.stop("TERM").status.success());
    assert!(!dir.path().join("data/metadata.redb").exists());

    let store = EtcdStore::connect(&[etcd.endpoint()]).await.unwrap();
    let ml = store.list("/ml/").await.unwrap();
    assert_eq!(ml, vec!["/ml/public/default/persistent/on-etcd"], "{ml:?}");
    let lists = store.get(&ml[0]).await.unwrap().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&lists.value).unwrap();
    assert!(v["ledgers"].as_array().unwrap().len() >= 3, "{v}");
    assert!(!store.list("/cursors/").await.unwrap().is_empty());
    assert!(
        !store
            .list("/admin/topic-policies/")
            .await
            .unwrap()
            .is_empty()
    );

    let broker = common::start(dir.path(), &env);
    let client = common::client(&broker).await;
    let mut c = common::consumer(
        &client,
        "on-etcd",
        "s",
        SubType::Exclusive,
        InitialPosition::Earliest,
    )
    .await;
    let rest = common::receive(&mut c, 200, true, Duration::from_secs(10)).await;
    assert_eq!(
        rest.iter().map(|r| r.0).collect::<Vec<_>>(),
        (100..300).collect::<Vec<_>>()
    );
    common::check(&rest, 100);
    let r = common::admin_ok(&broker, &["topics", "get-retention", "on-etcd"]);
    assert!(r.contains("\"retentionTimeInMinutes\": 60"), "{r}");
}

#[test]
fn an_unreachable_etcd_stops_start_up_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = testkit::free_port();
    let started = Instant::now();
    let out = Command::new(common::bin())
        .args(["standalone", "--config", "/dev/null"])
        .env("TIERLOG_dataDirectory", dir.path().join("data"))
        .env(
            "TIERLOG_metadataStoreUrl",
            format!("etcd:http://127.0.0.1:{port}"),
        )
        .env("TIERLOG_webServicePort", testkit::free_port().to_string())
        .env(
            "TIERLOG_brokerServicePort",
            testkit::free_port().to_string(),
        )
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("metadataStoreUrl") && err.contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

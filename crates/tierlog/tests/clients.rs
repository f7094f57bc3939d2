//! Unmodified Pulsar clients against `tierlog standalone`: the official Python client (C++ core,
//! protocol v20) and pulsar-rs (protocol v12), producing and consuming over real sockets.

use crate::common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use pulsar::SubType;
use pulsar::compression::{Compression, CompressionLz4};
use pulsar::consumer::InitialPosition;
use pulsar::producer::ProducerOptions;

#[test]
fn python_client_round_trip_with_every_subscription_type() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(
        dir.path(),
        &[
            ("TIERLOG_managedLedgerMaxEntriesPerLedger", "2000"),
            ("TIERLOG_managedLedgerMinLedgerRolloverTimeMinutes", "0"),
        ],
    );
    let script = testkit::workspace_root().join("crates/tierlog/tests/clients/python_roundtrip.py");
    let out = Command::new(common::python())
        .arg(&script)
        .arg(broker.service_url())
        .arg("persistent://public/default/py-roundtrip")
        .arg("20000")
        .output()
        .expect("run the Python client (installed by scripts/test)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: String = stderr.lines().rev().take(20).collect::<Vec<_>>().join("\n");
    assert!(out.status.success(), "{stdout}\n{tail}");
    for sub in ["exclusive", "failover", "shared", "key_shared"] {
        assert!(
            stdout.contains(&format!("{sub}: 20000 messages verified")),
            "{stdout}"
        );
    }
    // The topic really spans several ledgers.
    let (status, body) = broker.call(
        "GET",
        "/admin/v2/persistent/public/default/py-roundtrip/internalStats",
        None,
    );
    assert_eq!(status, 200);
    let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(stats["ledgers"].as_array().unwrap().len() >= 2, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulsar_rs_round_trip_batched_and_compressed() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path(), &[]);
    let client = common::client(&broker).await;
    let topic = "rs-roundtrip"; // a short name: pulsar-rs sends it as written
    let mut exclusive = common::consumer(
        &client,
        topic,
        "ex",
        SubType::Exclusive,
        InitialPosition::Earliest,
    )
    .await;
    let mut shared_a = common::consumer(
        &client,
        topic,
        "sh",
        SubType::Shared,
        InitialPosition::Earliest,
    )
    .await;
    let mut shared_b = common::consumer(
        &client,
        topic,
        "sh",
        SubType::Shared,
        InitialPosition::Earliest,
    )
    .await;
    let sub = |name: &'static str, ty: SubType| {
        common::consumer(&client, topic, name, ty, InitialPosition::Earliest)
    };
    let mut failover_a = sub("fo", SubType::Failover).await;
    let mut failover_b = sub("fo", SubType::Failover).await;
    let mut key_a = sub("ks", SubType::KeyShared).await;
    let mut key_b = sub("ks", SubType::KeyShared).await;
    let size = 300;
    let plain = common::produce(&client, topic, 0..2000, size, ProducerOptions::default()).await;
    let batched = common::produce(
        &client,
        topic,
        2000..4000,
        size,
        ProducerOptions {
            batch_size: Some(50),
            compression: Some(Compression::Lz4(CompressionLz4::default())),
            ..Default::default()
        },
    )
    .await;
    // Ids grow in append order; a batch shares one entry.
    assert!(plain.windows(2).all(|w| w[0] < w[1]));
    assert!(batched.windows(2).all(|w| w[0] <= w[1]));
    assert!(plain.last() < batched.first());

    let got = common::receive(&mut exclusive, 4000, true, Duration::from_secs(20)).await;
    common::check(&got, size);
    let order: Vec<usize> = got.iter().map(|m| m.0).collect();
    assert_eq!(order, (0..4000).collect::<Vec<_>>(), "exclusive: log order");

    // Two shared consumers split the topic between them; per consumer, each key keeps its order.
    let (a, b) = tokio::join!(
        common::receive_until_quiet(&mut shared_a, Duration::from_secs(3)),
        common::receive_until_quiet(&mut shared_b, Duration::from_secs(3)),
    );
    assert!(
        !a.is_empty() && !b.is_empty(),
        "both shared consumers get messages"
    );
    let mut seen = BTreeMap::new();
    for (k, msgs) in [&a, &b].into_iter().enumerate() {
        common::check(msgs, size);
        let mut last_by_key: BTreeMap<Option<String>, usize> = BTreeMap::new();
        for (i, _, key, _) in msgs {
            assert!(seen.insert(*i, k).is_none(), "message {i} delivered twice");
            let last = last_by_key.entry(key.clone()).or_insert(*i);
            assert!(*last <= *i, "key {key:?} out of order on consumer {k}");
            *last = *i;
        }
    }
    assert_eq!(seen.len(), 4000);

    // Failover: one active consumer gets everything, in log order.
    let (a, b) = tokio::join!(
        common::receive_until_quiet(&mut failover_a, Duration::from_secs(3)),
        common::receive_until_quiet(&mut failover_b, Duration::from_secs(3)),
    );
    let active = if a.is_empty() { &b } else { &a };
    assert!(a.is_empty() || b.is_empty(), "one active failover consumer");
    common::check(active, size);
    assert_eq!(
        active.iter().map(|m| m.0).collect::<Vec<_>>(),
        (0..4000).collect::<Vec<_>>()
    );

    // Key_Shared: every key on one consumer, in order. (pulsar-rs batches mix keys, and a batch
    // goes where its first key goes, so only the unbatched half is checked per key.)
    let (a, b) = tokio::join!(
        common::receive_until_quiet(&mut key_a, Duration::from_secs(3)),
        common::receive_until_quiet(&mut key_b, Duration::from_secs(3)),
    );
    assert_eq!(a.len() + b.len(), 4000);
    assert!(
        !a.is_empty() && !b.is_empty(),
        "keys spread over both consumers"
    );
    let mut owner: BTreeMap<Option<String>, usize> = BTreeMap::new();
    for (k, msgs) in [&a, &b].into_iter().enumerate() {
        common::check(msgs, size);
        let plain: Vec<&common::Received> = msgs.iter().filter(|m| m.0 < 2000).collect();
        for m in &plain {
            assert_eq!(
                *owner.entry(m.2.clone()).or_insert(k),
                k,
                "key {:?} on both",
                m.2
            );
        }
        assert!(
            plain.windows(2).all(|w| w[0].0 < w[1].0),
            "order on consumer {k}"
        );
    }
}

#[test]
fn python_client_features_partitions_nack_seek_readers_regex_http_schema() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path(), &[]);
    let out = Command::new(env!("CARGO_BIN_EXE_tierlog"))
        .args(["admin", "--admin-url", &broker.admin_url()])
        .args(["topics", "create-partitioned-topic", "-p", "3", "parts"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, body) = broker.call(
        "GET",
        "/admin/v2/persistent/public/default/parts/partitions",
        None,
    );
    assert_eq!((status, body.as_str()), (200, "{\"partitions\":3}"));
    let script = testkit::workspace_root().join("crates/tierlog/tests/clients/python_features.py");
    let out = Command::new(common::python())
        .arg(&script)
        .arg(broker.service_url())
        .arg(broker.admin_url())
        .output()
        .expect("run the Python client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: String = stderr.lines().rev().take(20).collect::<Vec<_>>().join("\n");
    assert!(out.status.success(), "{stdout}\n{tail}");
    assert!(stdout.ends_with("OK\n"), "{stdout}");
    eprintln!("{stdout}");
}

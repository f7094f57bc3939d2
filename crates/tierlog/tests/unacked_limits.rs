//! What a subscription holds for messages delivered and not acknowledged stays bounded, as in
//! Pulsar: a Shared consumer stops receiving at `maxUnackedMessagesPerConsumer` until its acks
//! bring it below half, a subscription at `maxUnackedMessagesPerSubscription`; Exclusive
//! subscriptions keep no per-message state at all; and what was held goes when the consumers go.

use crate::common;

use std::time::Duration;

use bytes::Bytes;
use protocol::pb::MessageIdData;
use serde_json::Value;
use testkit::standalone::Standalone;
use tokio::sync::mpsc::UnboundedReceiver;

const SHARED: i32 = 1;
const EXCLUSIVE: i32 = 0;
const EARLIEST: i32 = 1;

async fn produce(b: &Standalone, topic: &str, n: usize) {
    let conn = client::Connection::connect(&b.service_url()).await.unwrap();
    let (mut p, mut receipts) = conn.producer(topic).await.unwrap();
    for i in 0..n {
        p.send(&[Bytes::from(format!("m{i}"))]).unwrap();
    }
    for _ in 0..n {
        receipts.recv().await.unwrap().unwrap();
    }
}

/// Everything that arrives until `quiet` passes without a delivery.
async fn drain(
    rx: &mut UnboundedReceiver<client::Delivery>,
    quiet: Duration,
) -> Vec<MessageIdData> {
    let mut out = Vec::new();
    while let Ok(Some(d)) = tokio::time::timeout(quiet, rx.recv()).await {
        out.push(d.id);
    }
    out
}

fn sub_stats(b: &Standalone, topic: &str, sub: &str) -> Value {
    let (_, body) = b.call(
        "GET",
        &format!("/admin/v2/persistent/public/default/{topic}/stats"),
        None,
    );
    let s: Value = serde_json::from_str(&body).unwrap();
    s["subscriptions"][sub].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_consumer_that_does_not_ack_is_held_at_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let b = common::start(
        dir.path(),
        &[
            ("TIERLOG_maxUnackedMessagesPerConsumer", "100"),
            ("TIERLOG_maxUnackedMessagesPerSubscription", "1000"),
        ],
    );
    produce(&b, "held", 500).await;
    let conn = client::Connection::connect(&b.service_url()).await.unwrap();
    let (consumer, mut rx) = conn.subscribe("held", "s", SHARED, EARLIEST).await.unwrap();
    consumer.flow(1000).unwrap();
    let first = drain(&mut rx, Duration::from_millis(700)).await;
    assert_eq!(first.len(), 100, "held at maxUnackedMessagesPerConsumer");
    let s = sub_stats(&b, "held", "s");
    assert_eq!(s["unackedMessages"], 100, "{s}");

    // 50 acks leave 50: not below half yet. One more, and delivery resumes up to the limit.
    consumer.ack(first[..50].to_vec()).unwrap();
    assert!(drain(&mut rx, Duration::from_millis(500)).await.is_empty());
    consumer.ack(vec![first[50].clone()]).unwrap();
    let more = drain(&mut rx, Duration::from_millis(700)).await;
    assert_eq!(more.len(), 51, "back to 100 unacknowledged");

    // The consumer goes: nothing is held for it any more, and the next one gets the backlog.
    drop((consumer, rx, conn));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sub_stats(&b, "held", "s")["consumers"]
        .as_array()
        .is_some_and(|c| !c.is_empty())
    {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let s = sub_stats(&b, "held", "s");
    assert_eq!(s["unackedMessages"], 0, "{s}");
    assert_eq!(s["msgBacklog"], 449, "{s}");
    let conn = client::Connection::connect(&b.service_url()).await.unwrap();
    let (consumer, mut rx) = conn.subscribe("held", "s", SHARED, EARLIEST).await.unwrap();
    consumer.flow(1000).unwrap();
    let again = drain(&mut rx, Duration::from_millis(700)).await;
    assert_eq!(again.len(), 100);
    assert!(
        again.iter().all(|id| !first[..51].contains(id)),
        "acknowledged messages are not delivered again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscription_limit_holds_all_its_consumers() {
    let dir = tempfile::tempdir().unwrap();
    let b = common::start(
        dir.path(),
        &[
            ("TIERLOG_maxUnackedMessagesPerConsumer", "0"),
            ("TIERLOG_maxUnackedMessagesPerSubscription", "120"),
        ],
    );
    produce(&b, "shared-cap", 400).await;
    let conn = client::Connection::connect(&b.service_url()).await.unwrap();
    let (a, mut rx_a) = conn
        .subscribe("shared-cap", "s", SHARED, EARLIEST)
        .await
        .unwrap();
    let (c, mut rx_c) = conn
        .subscribe("shared-cap", "s", SHARED, EARLIEST)
        .await
        .unwrap();
    a.flow(1000).unwrap();
    c.flow(1000).unwrap();
    let got_a = drain(&mut rx_a, Duration::from_millis(700)).await;
    let got_c = drain(&mut rx_c, Duration::from_millis(100)).await;
    assert_eq!(got_a.len() + got_c.len(), 120);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exclusive_subscription_keeps_no_per_message_state() {
    let dir = tempfile::tempdir().unwrap();
    let b = common::start(
        dir.path(),
        &[("TIERLOG_maxUnackedMessagesPerConsumer", "100")],
    );
    produce(&b, "excl", 500).await;
    let conn = client::Connection::connect(&b.service_url()).await.unwrap();
    let (consumer, mut rx) = conn
        .subscribe("excl", "e", EXCLUSIVE, EARLIEST)
        .await
        .unwrap();
    consumer.flow(1000).unwrap();
    // As in Pulsar, the limit is for Shared subscriptions: an Exclusive one gets everything.
    let got = drain(&mut rx, Duration::from_millis(700)).await;
    assert_eq!(got.len(), 500);
    let s = sub_stats(&b, "excl", "e");
    assert_eq!(s["unackedMessages"], 0, "nothing tracked per message: {s}");
    assert_eq!(s["msgBacklog"], 500);
    // Acknowledge half, ask for redelivery: the other half comes again, from the cursor.
    consumer.ack(got[..250].to_vec()).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop((consumer, rx, conn));
    let conn = client::Connection::connect(&b.service_url()).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (consumer, mut rx) = loop {
        // The broker sees the old connection go a moment later.
        match conn.subscribe("excl", "e", EXCLUSIVE, EARLIEST).await {
            Ok(c) => break c,
            Err(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("{e}"),
        }
    };
    consumer.flow(1000).unwrap();
    let again = drain(&mut rx, Duration::from_millis(700)).await;
    assert_eq!(again, got[250..].to_vec());
}

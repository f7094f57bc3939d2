//! `topics stats` as Pulsar's `TopicStats` JSON, with a real client attached: the subscription's
//! real type, its backlog of unacknowledged entries, its consumers, and the producers.

use crate::common;

use std::time::{Duration, Instant};

use futures::TryStreamExt;
use pulsar::SubType;
use pulsar::consumer::InitialPosition;
use pulsar::producer::ProducerOptions;
use serde_json::Value;
use testkit::standalone::Standalone;

fn stats(b: &Standalone) -> Value {
    let out = common::admin_ok(b, &["topics", "stats", "watched"]);
    serde_json::from_str(&out).unwrap()
}

async fn wait_for_backlog(b: &Standalone, sub: &str, backlog: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = stats(b);
        if s["subscriptions"][sub]["msgBacklog"] == backlog {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "backlog never reached {backlog}: {s}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_show_the_subscription_type_backlog_consumers_and_producers() {
    let dir = tempfile::tempdir().unwrap();
    let b = common::start(dir.path(), &[]);
    let client = common::client(&b).await;
    let mut consumer = common::consumer(
        &client,
        "watched",
        "work",
        SubType::Shared,
        InitialPosition::Earliest,
    )
    .await;
    common::produce(&client, "watched", 0..50, 10, ProducerOptions::default()).await;
    let mut producer = client
        .producer()
        .with_topic("watched")
        .with_name("stats-producer")
        .build()
        .await
        .unwrap();
    producer
        .send_non_blocking(common::message(50, 10))
        .await
        .unwrap()
        .await
        .unwrap();

    // Everything delivered, nothing acknowledged.
    let mut received = Vec::new();
    while received.len() < 51 {
        let m = tokio::time::timeout(Duration::from_secs(10), consumer.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        received.push(m);
    }
    let s = wait_for_backlog(&b, "work", 51).await;
    assert_eq!(s["msgInCounter"], 51, "{s}");
    let sub = &s["subscriptions"]["work"];
    assert_eq!(sub["type"], "Shared", "{s}");
    assert_eq!(sub["isDurable"], true);
    assert_eq!(sub["unackedMessages"], 51, "{s}");
    let consumers = sub["consumers"].as_array().unwrap();
    assert_eq!(consumers.len(), 1, "{s}");
    assert_eq!(consumers[0]["unackedMessages"], 51);
    assert!(
        consumers[0]["address"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    let publishers = s["publishers"].as_array().unwrap();
    assert_eq!(publishers.len(), 1, "{s}");
    assert_eq!(publishers[0]["producerName"], "stats-producer");
    assert_eq!(publishers[0]["accessMode"], "Shared");

    // Acknowledging 20 leaves a backlog of 31.
    for m in &received[..20] {
        consumer.ack(m).await.unwrap();
    }
    let s = wait_for_backlog(&b, "work", 31).await;
    assert_eq!(s["subscriptions"]["work"]["unackedMessages"], 31, "{s}");
    assert!(
        s["subscriptions"]["work"]["msgOutCounter"]
            .as_u64()
            .unwrap()
            >= 51
    );

    // After a restart, a durable subscription nobody attached to yet is "None", backlog kept.
    drop((consumer, producer, client));
    b.stop("TERM");
    let b = common::start(dir.path(), &[]);
    let s = wait_for_backlog(&b, "work", 31).await;
    assert_eq!(s["subscriptions"]["work"]["type"], "None", "{s}");
    assert!(
        s["subscriptions"]["work"]["consumers"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(s["publishers"].as_array().unwrap().is_empty());
}

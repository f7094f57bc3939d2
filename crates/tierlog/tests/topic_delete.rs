//! Deleting a topic that clients are attached to, as Pulsar does: refused with 412 unless
//! forced, and nothing changes; forced, the broker first tells each producer and consumer to
//! close (CLOSE_PRODUCER, CLOSE_CONSUMER), then deletes, and a SEND arriving on the closed
//! producer neither is stored nor brings the topic back.

use crate::common;

use std::time::Duration;

use common::raw::Raw;
use protocol::pb::{MessageMetadata, base_command::Type};
use pulsar::SubType;
use pulsar::consumer::InitialPosition;
use pulsar::producer::ProducerOptions;
use serde_json::Value;
use testkit::standalone::Standalone;

fn stats(b: &Standalone, topic: &str) -> (u16, Value) {
    let (status, body) = b.call(
        "GET",
        &format!("/admin/v2/persistent/public/default/{topic}/stats"),
        None,
    );
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn topics(b: &Standalone) -> Vec<String> {
    let (status, body) = b.call("GET", "/admin/v2/persistent/public/default", None);
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_topic_with_clients_is_refused_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path(), &[]);
    let client = common::client(&broker).await;
    let mut consumer = common::consumer(
        &client,
        "busy",
        "s",
        SubType::Exclusive,
        InitialPosition::Earliest,
    )
    .await;
    let mut producer = client
        .producer()
        .with_topic("busy")
        .with_options(ProducerOptions::default())
        .build()
        .await
        .unwrap();
    for i in 0..10 {
        producer
            .send_non_blocking(common::message(i, 50))
            .await
            .unwrap()
            .await
            .unwrap();
    }

    let path = "/admin/v2/persistent/public/default/busy";
    for p in [path.to_string(), format!("{path}?force=false")] {
        let (status, body) = broker.call("DELETE", &p, None);
        assert_eq!(status, 412, "DELETE {p}: {body}");
        assert!(
            body.contains("Topic has active producers/subscriptions"),
            "{body}"
        );
    }
    let (status, body) = broker.call("DELETE", &format!("{path}?force=maybe"), None);
    assert_eq!(status, 400, "{body}");
    let out = common::admin(&broker, &["topics", "delete", "busy"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Topic has active producers/subscriptions")
    );

    // Nothing changed: the topic, its producer and consumer keep working.
    let (status, s) = stats(&broker, "busy");
    assert_eq!(status, 200);
    assert_eq!(s["publishers"].as_array().unwrap().len(), 1, "{s}");
    for i in 10..20 {
        producer
            .send_non_blocking(common::message(i, 50))
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let got = common::receive(&mut consumer, 20, true, Duration::from_secs(10)).await;
    common::check(&got, 50);

    // Once the clients are gone, an unforced delete goes through.
    producer.close().await.unwrap();
    consumer.close().await.unwrap();
    drop(consumer);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = broker.call("DELETE", path, None);
        if status == 204 {
            break;
        }
        assert_eq!(status, 412, "{body}");
        assert!(std::time::Instant::now() < deadline, "still busy: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!topics(&broker).iter().any(|t| t.ends_with("/busy")));
    // `tierlog admin topics delete -f` passes the flag on (here to a topic that is gone).
    let out = common::admin(&broker, &["topics", "delete", "-f", "busy"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("Topic not found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_delete_closes_producers_and_consumers_first() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path(), &[]);
    let topic = "persistent://public/default/forced";
    let mut raw = Raw::connect(broker.broker_port).await;
    raw.producer(topic).await;
    raw.subscribe(topic, "s", 7).await;
    let meta = |seq: u64| MessageMetadata {
        producer_name: "raw".into(),
        sequence_id: seq,
        publish_time: 1_700_000_000_000,
        ..Default::default()
    };
    let receipt = raw.send(0, None, &meta(0), b"before").await;
    assert!(receipt.send_receipt.is_some(), "{receipt:?}");

    let (status, body) = broker.call(
        "DELETE",
        "/admin/v2/persistent/public/default/forced?force=true",
        None,
    );
    assert_eq!(status, 204, "{body}");

    // Both clients were told to close before the topic went (the consumer may first get the
    // message it was waiting for, had it asked: it gave no permits, so nothing else comes).
    let mut closed_producer = false;
    let mut closed_consumer = false;
    while !(closed_producer && closed_consumer) {
        let cmd = raw.next().await;
        match Type::try_from(cmd.r#type) {
            Ok(Type::CloseProducer) => {
                assert_eq!(cmd.close_producer.unwrap().producer_id, 1);
                closed_producer = true;
            }
            Ok(Type::CloseConsumer) => {
                assert_eq!(cmd.close_consumer.unwrap().consumer_id, 7);
                closed_consumer = true;
            }
            _ => panic!("expected CLOSE_PRODUCER and CLOSE_CONSUMER, got {cmd:?}"),
        }
    }
    assert_eq!(stats(&broker, "forced").0, 404);
    assert!(!topics(&broker).iter().any(|t| t.ends_with("/forced")));

    // A SEND still in flight on the closed producer is neither stored nor acknowledged, and it
    // does not bring the topic back.
    raw.send_only(1, &meta(1), b"after").await;
    let answer = raw.next_within(Duration::from_secs(1)).await;
    assert!(
        answer.is_none(),
        "no answer to a closed producer: {answer:?}"
    );
    assert!(!topics(&broker).iter().any(|t| t.ends_with("/forced")));
}

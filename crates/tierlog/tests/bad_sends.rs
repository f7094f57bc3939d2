//! SENDs whose metadata would poison consumers are refused with a SEND_ERROR and nothing is
//! stored: required fields missing, batch counts the payload does not hold, counts that
//! disagree. The official Python client then reads the topic and finds only the good messages.

use crate::common;

use std::process::Command;

use common::raw::Raw;
use protocol::pb::{self, BaseCommand, CompressionType, MessageMetadata};
use protocol::send_check::MetadataPresence;

fn metadata(sequence_id: u64) -> MessageMetadata {
    MessageMetadata {
        producer_name: "raw".into(),
        sequence_id,
        publish_time: 1_700_000_000_000,
        ..Default::default()
    }
}

fn assert_refused(answer: &BaseCommand, sequence_id: u64, reason: &str) {
    let e = answer
        .send_error
        .as_ref()
        .unwrap_or_else(|| panic!("seq {sequence_id} refused with SEND_ERROR, got {answer:?}"));
    assert_eq!(e.sequence_id, sequence_id);
    assert_eq!(e.error, pb::ServerError::NotAllowedError as i32, "{e:?}");
    assert!(e.message.contains(reason), "{reason:?} in {:?}", e.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_that_would_poison_consumers_are_refused_and_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path(), &[]);
    let topic = "persistent://public/default/poison";
    let mut raw = Raw::connect(broker.broker_port).await;
    raw.producer(topic).await;

    // A good message first.
    let ok = raw.send(0, None, &metadata(0), b"good-0").await;
    assert!(ok.send_receipt.is_some(), "{ok:?}");

    // Required fields missing (the official consumer looped on the previous message).
    let no_seq = MetadataPresence {
        producer_name: Some("raw".into()),
        sequence_id: None,
        publish_time: Some(1),
    };
    let a = raw.send(1, None, &no_seq, b"bad").await;
    assert_refused(&a, 1, "sequence_id");
    let no_time = MetadataPresence {
        producer_name: Some("raw".into()),
        sequence_id: Some(2),
        publish_time: None,
    };
    let a = raw.send(2, None, &no_time, b"bad").await;
    assert_refused(&a, 2, "publish_time");

    // A million messages claimed in one byte (the official consumer crashed).
    let million = MessageMetadata {
        num_messages_in_batch: Some(1_000_000),
        ..metadata(3)
    };
    let a = raw.send(3, Some(1_000_000), &million, b"x").await;
    assert_refused(&a, 3, "1000000 messages");

    // A batch count of zero, a compressed batch denser than possible, an unknown codec, a
    // SEND whose count disagrees with its metadata.
    let zero = MessageMetadata {
        num_messages_in_batch: Some(0),
        ..metadata(4)
    };
    assert_refused(&raw.send(4, None, &zero, b"x").await, 4, "at least one");
    let dense = MessageMetadata {
        compression: Some(CompressionType::Lz4 as i32),
        uncompressed_size: Some(8),
        num_messages_in_batch: Some(500),
        ..metadata(5)
    };
    assert_refused(&raw.send(5, None, &dense, b"zz").await, 5, "500 messages");
    let unknown = MessageMetadata {
        compression: Some(42),
        ..metadata(6)
    };
    assert_refused(&raw.send(6, None, &unknown, b"zz").await, 6, "compression");
    assert_refused(
        &raw.send(7, Some(9), &metadata(7), b"x").await,
        7,
        "9 messages",
    );

    // The connection and producer still work.
    let ok = raw.send(8, None, &metadata(8), b"good-8").await;
    assert!(ok.send_receipt.is_some(), "{ok:?}");

    // Nothing refused was stored.
    let (status, body) = broker.call(
        "GET",
        "/admin/v2/persistent/public/default/poison/internalStats",
        None,
    );
    assert_eq!(status, 200);
    let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(stats["entriesAddedCounter"], 2, "{body}");

    // The official client reads the topic to its end: the two good messages, no loop, no crash.
    let script = r#"
import sys, pulsar
c = pulsar.Client(sys.argv[1], operation_timeout_seconds=10)
r = c.create_reader(sys.argv[2], pulsar.MessageId.earliest)
got = []
while True:
    try:
        got.append(r.read_next(timeout_millis=3000).data().decode())
    except pulsar.Timeout:
        break
print("RESULT", ",".join(got))
c.close()
"#;
    let out = Command::new(common::python())
        .args(["-c", script, &broker.service_url(), topic])
        .output()
        .expect("run the Python client (installed by scripts/test)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let result = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!(result, "good-0,good-8");
}

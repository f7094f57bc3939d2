//! Acknowledgements of positions that do not exist are refused: a cumulative ack past the last
//! entry (Pulsar's "Invalid mark deleted position") and individual acks of entries that were
//! never written must not make later messages look consumed.

use crate::common;

use std::time::Duration;

use bytes::Bytes;
use protocol::pb::MessageIdData;
use serde_json::Value;

async fn receive(rx: &mut tokio::sync::mpsc::UnboundedReceiver<client::Delivery>) -> MessageIdData {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a message arrives")
        .expect("consumer open")
        .id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_of_positions_that_do_not_exist_skip_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let b = common::start(dir.path(), &[]);
    let conn = client::Connection::connect(&b.service_url()).await.unwrap();
    let (consumer, mut deliveries) = conn.subscribe("acked", "s", 0, 1).await.unwrap();
    consumer.flow(1000).unwrap();
    let (mut producer, mut receipts) = conn.producer("acked").await.unwrap();
    type Receipts =
        tokio::sync::mpsc::UnboundedReceiver<Result<client::Receipt, client::ClientError>>;
    let produce = async |producer: &mut client::Producer, receipts: &mut Receipts, n: usize| {
        for i in 0..n {
            producer.send(&[Bytes::from(format!("m{i}"))]).unwrap();
        }
        for _ in 0..n {
            receipts.recv().await.unwrap().unwrap();
        }
    };
    produce(&mut producer, &mut receipts, 3).await;
    let mut last = MessageIdData::default();
    for _ in 0..3 {
        last = receive(&mut deliveries).await;
    }

    // A cumulative ack far past the end, and individual acks of entries never written.
    consumer
        .ack_cumulative(MessageIdData {
            ledger_id: last.ledger_id + 1000,
            entry_id: 5,
            ..Default::default()
        })
        .unwrap();
    consumer
        .ack(vec![
            MessageIdData {
                ledger_id: last.ledger_id,
                entry_id: last.entry_id + 1,
                ..Default::default()
            },
            MessageIdData {
                ledger_id: last.ledger_id + 7,
                entry_id: 0,
                ..Default::default()
            },
        ])
        .unwrap();
    // What comes next is delivered, and nothing counts as acknowledged.
    produce(&mut producer, &mut receipts, 2).await;
    for _ in 0..2 {
        receive(&mut deliveries).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, body) = b.call(
        "GET",
        "/admin/v2/persistent/public/default/acked/stats",
        None,
    );
    let s: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(s["subscriptions"]["s"]["msgBacklog"], 5, "{body}");
    drop((consumer, producer, conn));
    b.stop("TERM");

    // After a restart the cursor is where the real acks left it: nothing acknowledged.
    let b = common::start(dir.path(), &[]);
    let (_, body) = b.call(
        "GET",
        "/admin/v2/persistent/public/default/acked/internalStats",
        None,
    );
    let st: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        st["cursors"]["s"]["individuallyDeletedMessages"], "[]",
        "{body}"
    );
    let conn = client::Connection::connect(&b.service_url()).await.unwrap();
    let (consumer, mut deliveries) = conn.subscribe("acked", "s", 0, 1).await.unwrap();
    consumer.flow(1000).unwrap();
    for _ in 0..5 {
        receive(&mut deliveries).await;
    }
}

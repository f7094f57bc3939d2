//! What a consumer and producer can rely on across broker restarts, crashes, offload and bad
//! input on the wire: acked messages stay acked, acknowledged sends survive SIGKILL, offloaded
//! ledgers whose hot copy is gone serve new subscriptions, and malformed frames close only their
//! own connection.

use crate::common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use protocol::pb::base_command::Type;
use protocol::pb::{self, BaseCommand};
use protocol::{FrameDecoder, commands, encode_command, encode_send};
use pulsar::SubType;
use pulsar::consumer::InitialPosition;
use pulsar::producer::ProducerOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_messages_are_not_redelivered_after_restart_and_unacked_ones_are() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path(), &[]);
    let client = common::client(&broker).await;
    let mut c = common::consumer(
        &client,
        "acks",
        "s",
        SubType::Shared,
        InitialPosition::Earliest,
    )
    .await;
    common::produce(&client, "acks", 0..200, 100, ProducerOptions::default()).await;
    // Ack everything but 50..60 and 150..200.
    let got = common::receive(&mut c, 200, false, Duration::from_secs(10)).await;
    let mut unacked = BTreeSet::new();
    let mut by_index = std::collections::HashMap::new();
    for (i, ..) in &got {
        by_index.insert(*i, ());
    }
    assert_eq!(by_index.len(), 200);
    drop(c);
    let mut c = common::consumer(
        &client,
        "acks",
        "s",
        SubType::Shared,
        InitialPosition::Earliest,
    )
    .await;
    let again = common::receive_until_quiet_with(&mut c, Duration::from_secs(2), |i| {
        let keep = (50..60).contains(&i) || i >= 150;
        if keep {
            unacked.insert(i);
        }
        !keep
    })
    .await;
    assert_eq!(
        again.len(),
        200,
        "everything unacked comes back once the first consumer left"
    );
    drop(c);
    drop(client);
    let out = broker.stop("TERM");
    assert!(out.status.success());

    let broker = common::start(dir.path(), &[]);
    let client = common::client(&broker).await;
    let mut c = common::consumer(
        &client,
        "acks",
        "s",
        SubType::Shared,
        InitialPosition::Earliest,
    )
    .await;
    let after = common::receive_until_quiet(&mut c, Duration::from_secs(2)).await;
    let redelivered: BTreeSet<usize> = after.iter().map(|m| m.0).collect();
    assert_eq!(
        redelivered, unacked,
        "exactly the unacked messages are redelivered"
    );
    assert_eq!(after.len(), unacked.len(), "no duplicates");
    common::check(&after, 100);
    // All acked now: a restart delivers nothing.
    drop(c);
    drop(client);
    assert!(broker.stop("TERM").status.success());
    let broker = common::start(dir.path(), &[]);
    let client = common::client(&broker).await;
    let mut c = common::consumer(
        &client,
        "acks",
        "s",
        SubType::Shared,
        InitialPosition::Earliest,
    )
    .await;
    common::assert_silent(&mut c, Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_produce_loop_keeps_every_acknowledged_message() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("TIERLOG_managedLedgerMaxEntriesPerLedger", "300"),
        ("TIERLOG_managedLedgerMinLedgerRolloverTimeMinutes", "0"),
        // Without a subscription or retention, Pulsar drops sealed ledgers; keep them.
        ("TIERLOG_defaultRetentionTimeInMinutes", "-1"),
        ("TIERLOG_defaultRetentionSizeInMB", "-1"),
    ];
    let broker = common::start(dir.path(), &env);
    let client = common::client(&broker).await;
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let mut producer = client
        .producer()
        .with_topic("crash")
        .with_options(ProducerOptions {
            block_queue_if_full: true,
            ..Default::default()
        })
        .build()
        .await
        .unwrap();
    let acked_in_loop = Arc::clone(&acked);
    let producing = tokio::spawn(async move {
        let mut receipts = Vec::new();
        for i in 0..1_000_000usize {
            match producer.send_non_blocking(common::message(i, 512)).await {
                Ok(f) => {
                    let acked = Arc::clone(&acked_in_loop);
                    receipts.push(tokio::spawn(async move {
                        if f.await.is_ok() {
                            acked.lock().unwrap().insert(i);
                        }
                    }));
                }
                Err(_) => break,
            }
            if receipts.len() > 200 {
                let r: tokio::task::JoinHandle<()> = receipts.remove(0);
                let _ = tokio::time::timeout(Duration::from_secs(5), r).await;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.lock().unwrap().len() < 5000 {
        assert!(Instant::now() < deadline, "produce loop too slow");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    broker.kill(); // SIGKILL mid-loop
    tokio::time::sleep(Duration::from_millis(500)).await;
    producing.abort();
    drop(client);
    let acked: BTreeSet<usize> = acked.lock().unwrap().clone();

    let broker = common::start(dir.path(), &env);
    let client = common::client(&broker).await;
    let mut c = common::consumer(
        &client,
        "crash",
        "after",
        SubType::Exclusive,
        InitialPosition::Earliest,
    )
    .await;
    let got = common::receive_until_quiet(&mut c, Duration::from_secs(3)).await;
    common::check(&got, 512);
    let present: BTreeSet<usize> = got.iter().map(|m| m.0).collect();
    let lost: Vec<&usize> = acked.difference(&present).take(5).collect();
    assert!(
        lost.is_empty(),
        "acknowledged but lost: {lost:?} ({} acked)",
        acked.len()
    );
    // What is there is a prefix of the sends, in order, without duplicates.
    let order: Vec<usize> = got.iter().map(|m| m.0).collect();
    assert_eq!(order, (0..order.len()).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offloaded_ledgers_without_hot_copies_serve_a_new_subscription_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("TIERLOG_managedLedgerMaxEntriesPerLedger", "400"),
        ("TIERLOG_managedLedgerMinLedgerRolloverTimeMinutes", "0"),
        ("TIERLOG_managedLedgerOffloadDeletionLagMs", "0"),
        ("TIERLOG_retentionCheckIntervalInSeconds", "1"),
        ("TIERLOG_defaultRetentionTimeInMinutes", "-1"),
        ("TIERLOG_defaultRetentionSizeInMB", "-1"),
    ];
    let broker = common::start(dir.path(), &env);
    let client = common::client(&broker).await;
    common::produce(&client, "tiered", 0..1500, 1000, ProducerOptions::default()).await;
    common::produce(
        &client,
        "tiered",
        1500..3000,
        1000,
        ProducerOptions {
            batch_size: Some(20),
            ..Default::default()
        },
    )
    .await;
    drop(client);
    // Offload everything sealed (REST, with the current ledger's first position).
    let (_, body) = broker.call(
        "GET",
        "/admin/v2/persistent/public/default/tiered/internalStats",
        None,
    );
    let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
    let current = stats["ledgers"].as_array().unwrap().last().unwrap()["ledgerId"]
        .as_i64()
        .unwrap();
    let (status, body) = broker.call(
        "PUT",
        "/admin/v2/persistent/public/default/tiered/offload",
        Some(&format!("{{\"ledgerId\":{current},\"entryId\":0}}")),
    );
    assert!(status == 200 || status == 204, "{status} {body}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, body) = broker.call(
            "GET",
            "/admin/v2/persistent/public/default/tiered/offload",
            None,
        );
        if body.contains("SUCCESS") {
            break;
        }
        assert!(!body.contains("ERROR"), "{body}");
        assert!(Instant::now() < deadline, "offload did not finish: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Hot copies of the offloaded ledgers are deleted (lag 0).
    let hot = dir.path().join("data/ledgers");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_dir(&hot)
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().ends_with(".sealed"))
    {
        assert!(Instant::now() < deadline, "hot copies remain");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(broker.stop("TERM").status.success());

    let broker = common::start(dir.path(), &env);
    let client = common::client(&broker).await;
    let mut c = common::consumer(
        &client,
        "tiered",
        "from-start",
        SubType::Exclusive,
        InitialPosition::Earliest,
    )
    .await;
    let got = common::receive(&mut c, 3000, true, Duration::from_secs(20)).await;
    common::check(&got, 1000);
    assert_eq!(
        got.iter().map(|m| m.0).collect::<Vec<_>>(),
        (0..3000).collect::<Vec<_>>()
    );
}

/// A raw binary-protocol connection, for frames no client would send.
struct Raw {
    s: TcpStream,
    buf: BytesMut,
}

impl Raw {
    fn connect(port: u16) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut r = Raw {
            s,
            buf: BytesMut::new(),
        };
        r.send(&BaseCommand {
            connect: Some(Box::new(pb::CommandConnect {
                client_version: "raw-test".into(),
                protocol_version: Some(20),
                ..Default::default()
            })),
            ..commands::base(Type::Connect)
        });
        assert_eq!(r.recv().expect("CONNECTED").r#type, Type::Connected as i32);
        r
    }

    fn send(&mut self, cmd: &BaseCommand) {
        self.s.write_all(&encode_command(cmd)).unwrap();
    }

    /// The next command, or None when the broker closed the connection.
    fn recv(&mut self) -> Option<BaseCommand> {
        let dec = FrameDecoder::new(protocol::DEFAULT_MAX_MESSAGE_SIZE);
        loop {
            if let Some(f) = dec.decode(&mut self.buf).unwrap() {
                return Some(f.command);
            }
            let mut chunk = [0u8; 4096];
            match self.s.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    fn create_producer(&mut self, topic: &str) {
        self.send(&BaseCommand {
            producer: Some(Box::new(pb::CommandProducer {
                topic: topic.into(),
                producer_id: 1,
                request_id: 1,
                ..Default::default()
            })),
            ..commands::base(Type::Producer)
        });
        assert_eq!(self.recv().unwrap().r#type, Type::ProducerSuccess as i32);
    }

    fn assert_closed(&mut self) {
        while let Some(cmd) = self.recv() {
            assert_ne!(
                cmd.r#type,
                Type::SendReceipt as i32,
                "nothing is acknowledged"
            );
        }
    }
}

fn send_command(seq: u64) -> BaseCommand {
    BaseCommand {
        send: Some(Box::new(pb::CommandSend {
            producer_id: 1,
            sequence_id: seq,
            ..Default::default()
        })),
        ..commands::base(Type::Send)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_close_only_their_connection() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path(), &[]);
    let port = broker.broker_port;
    let client = common::client(&broker).await;
    let mut healthy = common::consumer(
        &client,
        "faults",
        "s",
        SubType::Exclusive,
        InitialPosition::Earliest,
    )
    .await;
    common::produce(&client, "faults", 0..10, 64, ProducerOptions::default()).await;

    let faults = tokio::task::spawn_blocking(move || {
        let meta = pb::MessageMetadata {
            producer_name: "raw".into(),
            sequence_id: 0,
            publish_time: 1,
            ..Default::default()
        };
        // 1. A payload whose checksum does not match: SEND_ERROR(ChecksumError), then closed.
        let mut raw = Raw::connect(port);
        raw.create_producer("faults");
        let mut frame = encode_send(&send_command(0), &meta, b"payload").to_vec();
        let last = frame.len() - 1;
        frame[last] ^= 0xff;
        raw.s.write_all(&frame).unwrap();
        let reply = raw.recv().expect("SEND_ERROR before closing");
        let err = reply.send_error.expect("send error");
        assert_eq!(err.error, pb::ServerError::ChecksumError as i32);
        raw.assert_closed();

        // 2. A frame above the maximum size: closed without reading it.
        let mut raw = Raw::connect(port);
        raw.create_producer("faults");
        raw.s.write_all(&(6u32 << 20).to_be_bytes()).unwrap();
        raw.s.write_all(&[0u8; 1024]).unwrap();
        raw.assert_closed();

        // 3. Random bytes after the handshake, and random bytes instead of CONNECT.
        let mut raw = Raw::connect(port);
        raw.s
            .write_all(&[0, 0, 0, 9, 0, 0, 0, 5, 0xde, 0xad, 0xbe, 0xef, 0x42])
            .unwrap();
        raw.assert_closed();
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    });
    faults.await.unwrap();

    // The other client never noticed.
    let got = common::receive(&mut healthy, 10, true, Duration::from_secs(10)).await;
    common::check(&got, 64);
    common::produce(&client, "faults", 10..20, 64, ProducerOptions::default()).await;
    let got = common::receive(&mut healthy, 10, true, Duration::from_secs(10)).await;
    assert_eq!(
        got.iter().map(|m| m.0).collect::<Vec<_>>(),
        (10..20).collect::<Vec<_>>()
    );
}

#[test]
fn schemas_are_stored_and_returned_by_get_schema_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path(), &[]);
    let schema = pb::Schema {
        name: "orders".into(),
        schema_data: bytes::Bytes::from_static(b"{\"type\":\"record\"}"),
        r#type: pb::schema::Type::Json as i32,
        properties: vec![pb::KeyValue {
            key: "k".into(),
            value: "v".into(),
        }],
    };
    let mut raw = Raw::connect(broker.broker_port);
    raw.send(&BaseCommand {
        producer: Some(Box::new(pb::CommandProducer {
            topic: "persistent://public/default/orders-partition-1".into(),
            producer_id: 1,
            request_id: 1,
            schema: Some(schema.clone()),
            ..Default::default()
        })),
        ..commands::base(Type::Producer)
    });
    let ok = raw
        .recv()
        .unwrap()
        .producer_success
        .expect("producer success");
    assert_eq!(ok.schema_version.as_deref(), Some(&[0u8; 8][..]));
    drop(raw);
    assert!(broker.stop("TERM").status.success());

    let broker = common::start(dir.path(), &[]);
    let mut raw = Raw::connect(broker.broker_port);
    let get = |topic: &str| BaseCommand {
        get_schema: Some(Box::new(pb::CommandGetSchema {
            request_id: 9,
            topic: topic.into(),
            schema_version: None,
        })),
        ..commands::base(Type::GetSchema)
    };
    // Partitions share their base topic's schema.
    raw.send(&get("orders"));
    let resp = raw
        .recv()
        .unwrap()
        .get_schema_response
        .expect("schema response");
    assert_eq!(resp.error_code, None, "{resp:?}");
    assert_eq!(resp.schema, Some(schema));
    raw.send(&get("no-such-schema"));
    let resp = raw
        .recv()
        .unwrap()
        .get_schema_response
        .expect("schema response");
    assert_eq!(resp.error_code, Some(pb::ServerError::TopicNotFound as i32));
}

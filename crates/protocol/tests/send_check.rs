//! The checks a SEND passes before it is stored: what real clients send passes, and metadata
//! that would stall or crash a consumer is refused with the reason.

use bytes::BytesMut;
use proptest::prelude::*;
use prost::Message;
use protocol::pb::base_command::Type;
use protocol::pb::{self, BaseCommand, CompressionType, MessageMetadata, SingleMessageMetadata};
use protocol::send_check::MetadataPresence;
use protocol::{FrameDecoder, InvalidMessage, Payload, check_send, commands, encode_send_parts};

const MAX: u32 = 5 * 1024 * 1024;

fn send_cmd(num_messages: Option<i32>) -> BaseCommand {
    BaseCommand {
        send: Some(Box::new(pb::CommandSend {
            producer_id: 1,
            sequence_id: 0,
            num_messages,
            ..Default::default()
        })),
        ..commands::base(Type::Send)
    }
}

fn metadata() -> MessageMetadata {
    MessageMetadata {
        producer_name: "p".into(),
        sequence_id: 0,
        publish_time: 1_700_000_000_000,
        ..Default::default()
    }
}

/// Encodes a SEND and decodes it as the broker does: the command and its payload.
fn roundtrip(
    cmd: &BaseCommand,
    meta: &impl Message,
    parts: &[&[u8]],
) -> (pb::CommandSend, Payload) {
    let bytes = encode_send_parts(cmd, meta, parts);
    let mut buf = BytesMut::from(&bytes[..]);
    let frame = FrameDecoder::new(MAX)
        .decode(&mut buf)
        .expect("decodes")
        .expect("whole frame");
    (
        *frame.command.send.expect("send"),
        frame.payload.expect("payload"),
    )
}

fn check(cmd: &BaseCommand, meta: &impl Message, parts: &[&[u8]]) -> Result<u32, InvalidMessage> {
    let (send, payload) = roundtrip(cmd, meta, parts);
    check_send(&send, &payload, MAX)
}

/// `[u32 size][SingleMessageMetadata][payload]` for each payload.
fn batch(payloads: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in payloads {
        let single = SingleMessageMetadata {
            payload_size: p.len() as i32,
            ..Default::default()
        };
        out.extend_from_slice(&(single.encoded_len() as u32).to_be_bytes());
        single.encode(&mut out).unwrap();
        out.extend_from_slice(p);
    }
    out
}

#[test]
fn a_plain_message_and_a_batch_pass() {
    assert_eq!(check(&send_cmd(None), &metadata(), &[b"hello"]), Ok(1));
    assert_eq!(check(&send_cmd(Some(1)), &metadata(), &[b""]), Ok(1));
    let body = batch(&[b"a".to_vec(), b"".to_vec(), b"ccc".to_vec()]);
    let meta = MessageMetadata {
        num_messages_in_batch: Some(3),
        ..metadata()
    };
    assert_eq!(check(&send_cmd(Some(3)), &meta, &[&body]), Ok(3));
}

#[test]
fn every_send_the_official_client_sent_passes() {
    let log = include_str!("data/t9_hex.log");
    let dec = FrameDecoder::new(MAX);
    let mut sends = 0;
    for line in log.lines().filter_map(|l| l.split("hex ").nth(1)) {
        let h = line.trim();
        let bytes: Vec<u8> = (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
            .collect();
        let frame = dec
            .decode(&mut BytesMut::from(&bytes[..]))
            .unwrap()
            .unwrap();
        if let (Some(send), Some(payload)) = (&frame.command.send, &frame.payload) {
            check_send(send, payload, MAX).unwrap();
            sends += 1;
        }
    }
    assert!(sends > 0, "the capture holds SENDs");
}

#[test]
fn missing_required_fields_are_named() {
    let only_name = MetadataPresence {
        producer_name: Some("p".into()),
        sequence_id: None,
        publish_time: Some(1),
    };
    assert_eq!(
        check(&send_cmd(None), &only_name, &[b"x"]),
        Err(InvalidMessage::MissingField("sequence_id"))
    );
    let no_time = MetadataPresence {
        publish_time: None,
        sequence_id: Some(3),
        ..only_name.clone()
    };
    assert_eq!(
        check(&send_cmd(None), &no_time, &[b"x"]),
        Err(InvalidMessage::MissingField("publish_time"))
    );
    let no_name = MetadataPresence {
        producer_name: None,
        sequence_id: Some(3),
        publish_time: Some(1),
    };
    assert_eq!(
        check(&send_cmd(None), &no_name, &[b"x"]),
        Err(InvalidMessage::MissingField("producer_name"))
    );
}

#[test]
fn batch_counts_must_match_what_the_payload_holds() {
    let million = MessageMetadata {
        num_messages_in_batch: Some(1_000_000),
        ..metadata()
    };
    assert!(matches!(
        check(&send_cmd(None), &million, &[b"x"]),
        Err(InvalidMessage::BatchTooDense {
            claimed: 1_000_000,
            bytes: 1
        })
    ));
    let body = batch(&[vec![1; 10], vec![2; 10]]);
    let three = MessageMetadata {
        num_messages_in_batch: Some(3),
        ..metadata()
    };
    assert_eq!(
        check(&send_cmd(None), &three, &[&body]),
        Err(InvalidMessage::BatchCount {
            claimed: 3,
            found: 2
        })
    );
    for n in [0, -1] {
        let empty = MessageMetadata {
            num_messages_in_batch: Some(n),
            ..metadata()
        };
        assert_eq!(
            check(&send_cmd(None), &empty, &[&body]),
            Err(InvalidMessage::EmptyBatch(n))
        );
    }
    // The SEND's own count must agree.
    let two = MessageMetadata {
        num_messages_in_batch: Some(2),
        ..metadata()
    };
    assert_eq!(
        check(&send_cmd(Some(5)), &two, &[&body]),
        Err(InvalidMessage::NumMessages {
            command: 5,
            metadata: 2
        })
    );
    // A single message that claims a payload beyond the batch.
    let mut lying = Vec::new();
    let single = SingleMessageMetadata {
        payload_size: 1000,
        ..Default::default()
    };
    lying.extend_from_slice(&(single.encoded_len() as u32).to_be_bytes());
    single.encode(&mut lying).unwrap();
    lying.extend_from_slice(b"short");
    let one = MessageMetadata {
        num_messages_in_batch: Some(1),
        ..metadata()
    };
    assert!(matches!(
        check(&send_cmd(None), &one, &[&lying]),
        Err(InvalidMessage::BatchedMessage { index: 0, .. })
    ));
}

#[test]
fn compressed_batches_are_bounded_by_their_uncompressed_size() {
    let lz4 = |n, size| MessageMetadata {
        compression: Some(CompressionType::Lz4 as i32),
        num_messages_in_batch: Some(n),
        uncompressed_size: size,
        ..metadata()
    };
    assert_eq!(check(&send_cmd(None), &lz4(10, Some(60)), &[b"zz"]), Ok(10));
    assert!(matches!(
        check(&send_cmd(None), &lz4(1000, Some(10)), &[b"zz"]),
        Err(InvalidMessage::BatchTooDense { .. })
    ));
    assert_eq!(
        check(&send_cmd(None), &lz4(1, None), &[b"zz"]),
        Err(InvalidMessage::NoUncompressedSize)
    );
    assert!(matches!(
        check(&send_cmd(None), &lz4(1, Some(MAX + 1)), &[b"zz"]),
        Err(InvalidMessage::UncompressedTooLarge { .. })
    ));
    let unknown = MessageMetadata {
        compression: Some(99),
        ..metadata()
    };
    assert_eq!(
        check(&send_cmd(None), &unknown, &[b"zz"]),
        Err(InvalidMessage::UnknownCompression(99))
    );
}

proptest! {
    /// A batch as clients build it passes with its count; claiming any other count fails.
    #[test]
    fn batches_pass_with_their_true_count_only(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..30),
        other in 1i32..60,
    ) {
        let body = batch(&payloads);
        let n = payloads.len() as i32;
        let meta = |claimed| MessageMetadata { num_messages_in_batch: Some(claimed), ..metadata() };
        prop_assert_eq!(check(&send_cmd(Some(n)), &meta(n), &[&body]), Ok(n as u32));
        if other > n {
            prop_assert!(check(&send_cmd(None), &meta(other), &[&body]).is_err());
        }
    }

    /// Arbitrary bytes after a valid header never panic the check.
    #[test]
    fn arbitrary_batch_bodies_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..300),
        claimed in -3i32..100,
    ) {
        let meta = MessageMetadata { num_messages_in_batch: Some(claimed), ..metadata() };
        let _ = check(&send_cmd(None), &meta, &[&body]);
    }
}

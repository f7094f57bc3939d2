//! The codec against real traffic (a Python/C++ client session captured frame by frame, in
//! tests/data/t9_hex.log) and against generated frames.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use protocol::pb::base_command::Type;
use protocol::pb::{self, BaseCommand};
use protocol::{FrameDecoder, FrameError, commands, encode_command, encode_message, encode_send};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn captured_frames() -> Vec<(String, Vec<u8>)> {
    let log = include_str!("data/t9_hex.log");
    let mut out = Vec::new();
    let mut last_cmd = String::new();
    for line in log.lines() {
        if let Some(i) = line.find(">>> ").or_else(|| line.find("<<< ")) {
            last_cmd = line[i..]
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ");
        } else if let Some(h) = line.split("hex ").nth(1) {
            out.push((last_cmd.clone(), hex(h.trim())));
        }
    }
    out
}

#[test]
fn every_captured_frame_decodes_and_re_encodes_byte_for_byte() {
    let frames = captured_frames();
    assert_eq!(frames.len(), 23);
    let dec = FrameDecoder::new(protocol::DEFAULT_MAX_MESSAGE_SIZE);
    for (what, bytes) in frames {
        // Fed one byte at a time: a partial frame is never mistaken for a whole one.
        let mut buf = BytesMut::new();
        let mut frame = None;
        for (i, b) in bytes.iter().enumerate() {
            buf.extend_from_slice(&[*b]);
            let got = dec
                .decode(&mut buf)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            if i + 1 < bytes.len() {
                assert!(got.is_none(), "{what}: frame ended early");
            } else {
                frame = got;
            }
        }
        let frame = frame.unwrap_or_else(|| panic!("{what}: no frame"));
        assert!(buf.is_empty());
        let again = match &frame.payload {
            None => encode_command(&frame.command),
            Some(p) => encode_message(&frame.command, &p.entry),
        };
        assert_eq!(again.as_ref(), bytes.as_slice(), "{what}");
    }
}

#[test]
fn the_captured_send_becomes_the_captured_message_entry() {
    let frames = captured_frames();
    let dec = FrameDecoder::new(protocol::DEFAULT_MAX_MESSAGE_SIZE);
    let decode = |what: &str| {
        let (_, b) = frames.iter().find(|(w, _)| w == what).unwrap();
        dec.decode(&mut BytesMut::from(&b[..])).unwrap().unwrap()
    };
    let send = decode(">>> SEND");
    let message = decode("<<< MESSAGE");
    let (sp, mp) = (send.payload.unwrap(), message.payload.unwrap());
    assert_eq!(sp.entry, mp.entry, "the broker relays the entry unchanged");
    assert_eq!(sp.metadata.producer_name, "p1");
    let (meta, at) = protocol::parse_entry(&sp.entry).unwrap();
    assert_eq!(meta, sp.metadata);
    assert_eq!(&sp.entry[at..], b"hello");
}

/// A SEND of producer 3, sequence id 7, and its metadata.
fn send_7() -> (BaseCommand, pb::MessageMetadata) {
    let meta = pb::MessageMetadata {
        producer_name: "p".into(),
        sequence_id: 7,
        publish_time: 1,
        ..Default::default()
    };
    let cmd = BaseCommand {
        send: Some(Box::new(pb::CommandSend {
            producer_id: 3,
            sequence_id: 7,
            ..Default::default()
        })),
        ..commands::base(Type::Send)
    };
    (cmd, meta)
}

#[test]
fn a_bad_checksum_is_reported_with_its_command() {
    let (cmd, meta) = send_7();
    let mut frame = encode_send(&cmd, &meta, b"data").to_vec();
    *frame.last_mut().unwrap() ^= 1;
    let dec = FrameDecoder::new(1024);
    match dec.decode(&mut BytesMut::from(&frame[..])) {
        Err(FrameError::Checksum { command, .. }) => {
            assert_eq!(command.send.unwrap().sequence_id, 7)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn oversized_frames_are_refused_before_they_are_buffered() {
    let dec = FrameDecoder::new(1000);
    let mut buf = BytesMut::from(&(1000u32 + 10 * 1024 + 1).to_be_bytes()[..]);
    assert!(matches!(
        dec.decode(&mut buf),
        Err(FrameError::TooLarge { .. })
    ));
}

#[test]
fn a_send_without_checksum_gets_one_in_its_entry() {
    let meta = pb::MessageMetadata {
        producer_name: "old".into(),
        sequence_id: 0,
        publish_time: 5,
        ..Default::default()
    };
    let with = encode_send(&commands::ping(), &meta, b"abc");
    // Drop magic + crc from the payload section and fix the sizes.
    let cmd_len = u32::from_be_bytes(with[4..8].try_into().unwrap()) as usize;
    let mut without = Vec::new();
    without.extend_from_slice(&((with.len() - 4 - 6) as u32).to_be_bytes());
    without.extend_from_slice(&with[4..8 + cmd_len]);
    without.extend_from_slice(&with[8 + cmd_len + 6..]);
    let dec = FrameDecoder::new(1024);
    let f = dec
        .decode(&mut BytesMut::from(&without[..]))
        .unwrap()
        .unwrap();
    let p = f.payload.unwrap();
    assert_eq!(p.entry.as_ref(), &with[8 + cmd_len..]);
}

proptest! {
    #[test]
    fn batch_payloads_split_into_what_was_batched(
        messages in proptest::collection::vec(
            (proptest::option::of("[a-z]{0,6}"), proptest::collection::vec(any::<u8>(), 0..64)),
            0..20,
        ),
        noise in proptest::collection::vec(any::<u8>(), 0..64),
        count in 0usize..40,
    ) {
        use prost::Message as _;
        let mut payload = Vec::new();
        for (key, value) in &messages {
            let single = pb::SingleMessageMetadata {
                partition_key: key.clone(),
                payload_size: value.len() as i32,
                ..Default::default()
            };
            payload.extend((single.encoded_len() as u32).to_be_bytes());
            payload.extend(single.encode_to_vec());
            payload.extend_from_slice(value);
        }
        let records = protocol::entry::split_batch(&payload, messages.len()).unwrap();
        prop_assert_eq!(records.len(), messages.len());
        for (r, (key, value)) in records.iter().zip(&messages) {
            prop_assert_eq!(&r.meta.partition_key, key);
            prop_assert_eq!(&payload[r.payload.clone()], &value[..]);
        }
        // Arbitrary bytes and counts are refused or split, never a panic.
        let _ = protocol::entry::split_batch(&noise, count);
        let mut cut = payload.clone();
        cut.truncate(payload.len().saturating_sub(1));
        if !messages.is_empty() && !payload.is_empty() {
            prop_assert!(protocol::entry::split_batch(&cut, messages.len()).is_none());
        }
    }

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let dec = FrameDecoder::new(4096);
        let mut buf = BytesMut::from(&data[..]);
        while let Ok(Some(_)) = dec.decode(&mut buf) {}
    }

    #[test]
    fn sends_round_trip(
        producer_id in any::<u64>(),
        sequence_id in any::<u64>(),
        key in proptest::option::of("[a-z]{0,8}"),
        batch in proptest::option::of(1i32..100),
        payload in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        let meta = pb::MessageMetadata {
            producer_name: "prop".into(),
            sequence_id,
            publish_time: 42,
            partition_key: key,
            num_messages_in_batch: batch,
            ..Default::default()
        };
        let cmd = BaseCommand {
            send: Some(Box::new(pb::CommandSend { producer_id, sequence_id, ..Default::default() })),
            ..commands::base(Type::Send)
        };
        let bytes: Bytes = encode_send(&cmd, &meta, &payload);
        let dec = FrameDecoder::new(protocol::DEFAULT_MAX_MESSAGE_SIZE);
        let f = dec.decode(&mut BytesMut::from(&bytes[..])).unwrap().unwrap();
        prop_assert_eq!(&f.command, &cmd);
        let p = f.payload.unwrap();
        prop_assert_eq!(&p.metadata, &meta);
        let (_, at) = protocol::parse_entry(&p.entry).unwrap();
        prop_assert_eq!(&p.entry[at..], &payload[..]);
        prop_assert_eq!(protocol::entry::message_count(&meta), batch.unwrap_or(1) as u32);
    }
}

/// A sender's scratch buffer gives the same frames as a fresh buffer does, and once a frame is
/// written and dropped the next one is encoded in the same memory (no fresh pages per frame).
#[test]
fn sends_encoded_into_a_kept_buffer_are_the_same_frames_in_reused_memory() {
    let (cmd, meta) = send_7();
    let payload = vec![5u8; 300_000];
    let parts: [&[u8]; 2] = [b"head", &payload];
    let mut scratch = BytesMut::new();
    let first = protocol::encode_send_parts_into(&mut scratch, &cmd, &meta, &parts);
    assert_eq!(first, protocol::encode_send_parts(&cmd, &meta, &parts));
    let while_first_lives = protocol::encode_send_parts_into(&mut scratch, &cmd, &meta, &parts);
    assert_eq!(
        while_first_lives, first,
        "a frame still queued is never overwritten"
    );
    assert_ne!(while_first_lives.as_ptr(), first.as_ptr());
    let at = while_first_lives.as_ptr();
    drop(first);
    drop(while_first_lives);
    let again = protocol::encode_send_parts_into(&mut scratch, &cmd, &meta, &parts);
    assert_eq!(again, protocol::encode_send_parts(&cmd, &meta, &parts));
    assert_eq!(again.as_ptr(), at, "the last frame's memory is used again");
}

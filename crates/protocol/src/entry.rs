//! Stored entries: a message as received from the magic onward,
//! `[0x0e01][crc32c][metadataSize u32][MessageMetadata][payload]`. The broker reads the metadata
//! (publish time, batch size, keys) for dispatch and seeks; it never rewrites an entry, but
//! compaction, which drops superseded messages from a copy of a batch ([`rebatch`]).

use prost::Message;

use crate::frame::MAGIC_CRC32C;
use crate::pb::MessageMetadata;

#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    #[error("entry of {0} bytes is too short for its header")]
    TooShort(usize),
    #[error("entry does not start with the checksum magic 0x0e01")]
    NoMagic,
    #[error("metadata size {size} exceeds the {left} bytes left in the entry")]
    MetadataSize { size: usize, left: usize },
    #[error("undecodable message metadata: {0}")]
    Metadata(#[from] prost::DecodeError),
}

/// Decodes `[metadataSize][MessageMetadata]…` (the part the checksum covers).
pub(crate) fn metadata_after_checksum(body: &[u8]) -> Result<MessageMetadata, EntryError> {
    if body.len() < 4 {
        return Err(EntryError::TooShort(body.len()));
    }
    let size = u32::from_be_bytes([body[0], body[1], body[2], body[3]]) as usize;
    let left = body.len() - 4;
    if size > left {
        return Err(EntryError::MetadataSize { size, left });
    }
    Ok(MessageMetadata::decode(&body[4..4 + size])?)
}

/// The metadata of a stored entry, plus the offset where its payload starts.
pub fn parse_entry(entry: &[u8]) -> Result<(MessageMetadata, usize), EntryError> {
    if entry.len() < 10 {
        return Err(EntryError::TooShort(entry.len()));
    }
    if entry[..2] != MAGIC_CRC32C.to_be_bytes() {
        return Err(EntryError::NoMagic);
    }
    let meta = metadata_after_checksum(&entry[6..])?;
    let size = u32::from_be_bytes([entry[6], entry[7], entry[8], entry[9]]) as usize;
    Ok((meta, 10 + size))
}

/// Number of messages an entry carries (a batch counts each message; permits are per message).
pub fn message_count(meta: &MessageMetadata) -> u32 {
    meta.num_messages_in_batch
        .map(|n| n.max(1) as u32)
        .unwrap_or(1)
}

/// The key Key_Shared dispatch routes by: ordering key if set, else partition key.
pub fn routing_key(meta: &MessageMetadata) -> Option<&[u8]> {
    meta.ordering_key
        .as_deref()
        .filter(|k| !k.is_empty())
        .or_else(|| meta.partition_key.as_deref().map(str::as_bytes))
}

/// One message of a batch entry, as compaction needs it: its partition key, whether its
/// payload is empty (a deletion), and where it sits in the batch payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchedMessage {
    pub key: Option<String>,
    pub empty: bool,
    /// `[u32 size][SingleMessageMetadata][payload]` of this message, in the entry.
    span: std::ops::Range<usize>,
}

/// The messages of a batch entry whose payload can be read as it is stored: not compressed,
/// not encrypted. `None` for anything else (a single message, a compressed or encrypted batch,
/// a malformed one).
pub fn batched_messages(entry: &[u8]) -> Option<Vec<BatchedMessage>> {
    let (meta, payload_at) = parse_entry(entry).ok()?;
    let count = meta.num_messages_in_batch?;
    let compressed = meta.compression.is_some_and(|c| c != 0);
    if compressed || !meta.encryption_keys.is_empty() || count < 0 {
        return None;
    }
    let records = split_batch(entry.get(payload_at..)?, count as usize)?;
    Some(
        records
            .into_iter()
            .map(|r| BatchedMessage {
                empty: r.payload.is_empty() || r.meta.null_value == Some(true),
                key: r.meta.partition_key.filter(|k| !k.is_empty()),
                span: payload_at + r.record.start..payload_at + r.record.end,
            })
            .collect(),
    )
}

/// One message of an uncompressed batch payload.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchRecord {
    pub meta: crate::pb::SingleMessageMetadata,
    /// `[u32 size][SingleMessageMetadata][payload]` of this message, in the batch payload.
    pub record: std::ops::Range<usize>,
    /// Its payload, in the batch payload.
    pub payload: std::ops::Range<usize>,
}

/// Splits an uncompressed batch payload of `count` messages (what follows a batch entry's
/// metadata, or what Pulsar's admin API answers for one); `None` if it is malformed.
pub fn split_batch(payload: &[u8], count: usize) -> Option<Vec<BatchRecord>> {
    let mut at = 0usize;
    let mut out = Vec::with_capacity(count.min(payload.len()));
    for _ in 0..count {
        let start = at;
        let size = u32::from_be_bytes(payload.get(at..at + 4)?.try_into().ok()?) as usize;
        at += 4;
        let meta =
            crate::pb::SingleMessageMetadata::decode(payload.get(at..at.checked_add(size)?)?)
                .ok()?;
        at += size;
        let len = usize::try_from(meta.payload_size).ok()?;
        payload.get(at..at.checked_add(len)?)?;
        out.push(BatchRecord {
            meta,
            record: start..at + len,
            payload: at..at + len,
        });
        at += len;
    }
    Some(out)
}

/// A batch entry with only `keep` of its messages (in their order), its metadata saying so and
/// its checksum recomputed. `keep` comes from [`batched_messages`] of the same entry.
pub fn rebatch(entry: &[u8], keep: &[&BatchedMessage]) -> Option<bytes::Bytes> {
    let (mut meta, _) = parse_entry(entry).ok()?;
    meta.num_messages_in_batch = Some(i32::try_from(keep.len()).ok()?);
    let mut payload = Vec::with_capacity(keep.iter().map(|m| m.span.len()).sum());
    for m in keep {
        payload.extend_from_slice(entry.get(m.span.clone())?);
    }
    Some(encode_entry(&meta, &payload))
}

/// An entry as a producer's SEND carries it and the broker stores it: magic, CRC32C of what
/// follows, metadata size and metadata, payload.
pub fn encode_entry(meta: &MessageMetadata, payload: &[u8]) -> bytes::Bytes {
    use bytes::BufMut;
    let meta_len = meta.encoded_len();
    let mut b = bytes::BytesMut::with_capacity(10 + meta_len + payload.len());
    b.put_u16(MAGIC_CRC32C);
    b.put_u32(0);
    b.put_u32(meta_len as u32);
    // Encoding into a buffer with the room reserved cannot fail.
    let _ = meta.encode(&mut b);
    b.extend_from_slice(payload);
    let crc = crc_fast::crc32_iscsi(&b[6..]);
    b[2..6].copy_from_slice(&crc.to_be_bytes());
    b.freeze()
}

#[cfg(test)]
mod batch_tests {
    use super::*;
    use crate::pb::SingleMessageMetadata;

    /// A batch entry as a client stores it.
    fn batch(messages: &[(&str, &[u8])]) -> Vec<u8> {
        let mut payload = Vec::new();
        for (key, value) in messages {
            let single = SingleMessageMetadata {
                partition_key: Some(key.to_string()),
                payload_size: value.len() as i32,
                ..Default::default()
            };
            payload.extend((single.encoded_len() as u32).to_be_bytes());
            payload.extend(single.encode_to_vec());
            payload.extend_from_slice(value);
        }
        let meta = MessageMetadata {
            producer_name: "p".into(),
            sequence_id: 1,
            publish_time: 1,
            num_messages_in_batch: Some(messages.len() as i32),
            ..Default::default()
        };
        let mut e = vec![0x0e, 0x01, 0, 0, 0, 0];
        e.extend((meta.encoded_len() as u32).to_be_bytes());
        e.extend(meta.encode_to_vec());
        e.extend(payload);
        let crc = crc_fast::crc32_iscsi(&e[6..]);
        e[2..6].copy_from_slice(&crc.to_be_bytes());
        e
    }

    #[test]
    fn a_batch_keeps_the_messages_asked_for_and_stays_a_valid_entry() {
        let e = batch(&[("a", b"1"), ("b", b""), ("a", b"2")]);
        let msgs = batched_messages(&e).unwrap();
        assert_eq!(
            msgs.iter()
                .map(|m| (m.key.as_deref(), m.empty))
                .collect::<Vec<_>>(),
            [(Some("a"), false), (Some("b"), true), (Some("a"), false)]
        );
        let kept = rebatch(&e, &[&msgs[2]]).unwrap();
        let again = batched_messages(&kept).unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].key.as_deref(), Some("a"));
        assert_eq!(&kept[kept.len() - 1..], b"2");
        // The checksum covers what follows it.
        let crc = u32::from_be_bytes(kept[2..6].try_into().unwrap());
        assert_eq!(crc, crc_fast::crc32_iscsi(&kept[6..]));
        let (meta, _) = parse_entry(&kept).unwrap();
        assert_eq!(meta.num_messages_in_batch, Some(1));
    }

    #[test]
    fn compressed_or_truncated_batches_are_not_read() {
        let e = batch(&[("a", b"1")]);
        assert!(batched_messages(&e[..e.len() - 1]).is_none());
        let single = MessageMetadata {
            producer_name: "p".into(),
            ..Default::default()
        };
        let mut s = vec![0x0e, 0x01, 0, 0, 0, 0];
        s.extend((single.encoded_len() as u32).to_be_bytes());
        s.extend(single.encode_to_vec());
        assert!(batched_messages(&s).is_none(), "not a batch");
    }
}

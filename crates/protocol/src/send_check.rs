//! What the broker checks in a SEND before it stores the entry: an entry is relayed to every
//! consumer unchanged, so one that a client library cannot parse (a required field missing, a
//! batch that claims more messages than it holds) would stall or crash each consumer reading it.
//!
//! prost decodes a missing proto2 `required` field as its default, so presence is read with
//! small messages of our own that declare those fields optional ([`MetadataPresence`],
//! [`SingleMessagePresence`]); they share the field numbers of Pulsar's messages and skip the
//! rest.

use prost::Message;

use crate::frame::Payload;
use crate::pb::{CommandSend, CompressionType, SingleMessageMetadata};

/// Bytes a message takes at least inside a batch: its 4-byte size and a metadata holding its
/// required `payload_size` (tag and one-byte varint).
const MIN_BATCHED_MESSAGE_BYTES: u64 = 6;

/// Why a SEND is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidMessage {
    #[error("the message metadata lacks its required field {0}")]
    MissingField(&'static str),
    #[error("num_messages_in_batch is {0}: a batch holds at least one message")]
    EmptyBatch(i32),
    #[error("the batch claims {claimed} messages but holds {found}")]
    BatchCount { claimed: u32, found: u32 },
    #[error("the batch claims {claimed} messages in {bytes} bytes: each needs at least 6")]
    BatchTooDense { claimed: u32, bytes: u64 },
    #[error("message {index} of the batch is malformed: {detail}")]
    BatchedMessage { index: u32, detail: String },
    #[error("the SEND says {command} messages, its metadata {metadata}")]
    NumMessages { command: i32, metadata: u32 },
    #[error("unknown compression type {0}")]
    UnknownCompression(i32),
    #[error("a compressed payload needs its uncompressed_size")]
    NoUncompressedSize,
    #[error("uncompressed size {size} exceeds the maximum message size {max}")]
    UncompressedTooLarge { size: u32, max: u32 },
    #[error("malformed message metadata: {0}")]
    Metadata(String),
}

/// The presence of `MessageMetadata`'s required fields.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetadataPresence {
    #[prost(string, optional, tag = "1")]
    pub producer_name: Option<String>,
    #[prost(uint64, optional, tag = "2")]
    pub sequence_id: Option<u64>,
    #[prost(uint64, optional, tag = "3")]
    pub publish_time: Option<u64>,
}

/// The presence of `SingleMessageMetadata`'s required field.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SingleMessagePresence {
    #[prost(int32, optional, tag = "3")]
    pub payload_size: Option<i32>,
}

/// Checks a SEND's metadata and batch structure; returns the number of messages the entry
/// carries (what permits and statistics count).
pub fn check_send(
    send: &CommandSend,
    payload: &Payload,
    max_message_size: u32,
) -> Result<u32, InvalidMessage> {
    let (meta_bytes, body) = split_entry(&payload.entry)?;
    let presence = MetadataPresence::decode(meta_bytes)
        .map_err(|e| InvalidMessage::Metadata(e.to_string()))?;
    if presence.producer_name.is_none() {
        return Err(InvalidMessage::MissingField("producer_name"));
    }
    if presence.sequence_id.is_none() {
        return Err(InvalidMessage::MissingField("sequence_id"));
    }
    if presence.publish_time.is_none() {
        return Err(InvalidMessage::MissingField("publish_time"));
    }
    let meta = &payload.metadata;
    let compression = meta.compression.unwrap_or(CompressionType::None as i32);
    let compression = CompressionType::try_from(compression)
        .map_err(|_| InvalidMessage::UnknownCompression(compression))?;
    let compressed = compression != CompressionType::None;
    if compressed {
        match meta.uncompressed_size {
            None => return Err(InvalidMessage::NoUncompressedSize),
            Some(size) if size > max_message_size => {
                return Err(InvalidMessage::UncompressedTooLarge {
                    size,
                    max: max_message_size,
                });
            }
            Some(_) => {}
        }
    }
    // A message is a batch exactly when num_messages_in_batch is present (as clients read it).
    let count = match meta.num_messages_in_batch {
        None => 1,
        Some(n) if n < 1 => return Err(InvalidMessage::EmptyBatch(n)),
        Some(n) => {
            let n = n as u32;
            if compressed || !meta.encryption_keys.is_empty() {
                // The batch is not readable here; its uncompressed size bounds the count.
                let bytes = meta.uncompressed_size.map_or(body.len() as u64, u64::from);
                if u64::from(n) * MIN_BATCHED_MESSAGE_BYTES > bytes {
                    return Err(InvalidMessage::BatchTooDense { claimed: n, bytes });
                }
            } else {
                check_batch(body, n)?;
            }
            n
        }
    };
    if let Some(command) = send.num_messages
        && u32::try_from(command) != Ok(count)
    {
        return Err(InvalidMessage::NumMessages {
            command,
            metadata: count,
        });
    }
    Ok(count)
}

/// Metadata bytes and payload of a stored entry (`[magic][crc][size][metadata][payload]`).
fn split_entry(entry: &[u8]) -> Result<(&[u8], &[u8]), InvalidMessage> {
    let short = || InvalidMessage::Metadata("the entry ends inside its header".into());
    let size = entry.get(6..10).ok_or_else(short)?;
    let size = u32::from_be_bytes([size[0], size[1], size[2], size[3]]) as usize;
    let end = 10usize.checked_add(size).ok_or_else(short)?;
    let meta = entry.get(10..end).ok_or_else(short)?;
    Ok((meta, &entry[end..]))
}

/// Walks an uncompressed batch: `claimed` times `[u32 size][SingleMessageMetadata][payload]`.
/// Bytes after the last message are left alone: clients read `claimed` messages and stop.
fn check_batch(mut body: &[u8], claimed: u32) -> Result<(), InvalidMessage> {
    if u64::from(claimed) * MIN_BATCHED_MESSAGE_BYTES > body.len() as u64 {
        return Err(InvalidMessage::BatchTooDense {
            claimed,
            bytes: body.len() as u64,
        });
    }
    for index in 0..claimed {
        let bad = |detail: String| InvalidMessage::BatchedMessage { index, detail };
        let Some((size, rest)) = body.split_first_chunk::<4>() else {
            return Err(InvalidMessage::BatchCount {
                claimed,
                found: index,
            });
        };
        let size = u32::from_be_bytes(*size) as usize;
        if size > rest.len() {
            return Err(bad(format!(
                "metadata size {size} exceeds the {} bytes left",
                rest.len()
            )));
        }
        let (single, rest) = rest.split_at(size);
        SingleMessageMetadata::decode(single).map_err(|e| bad(e.to_string()))?;
        let payload_size = SingleMessagePresence::decode(single)
            .map_err(|e| bad(e.to_string()))?
            .payload_size
            .ok_or_else(|| bad("it lacks its required field payload_size".into()))?;
        let payload_size = usize::try_from(payload_size)
            .map_err(|_| bad(format!("payload size {payload_size} is negative")))?;
        if payload_size > rest.len() {
            return Err(bad(format!(
                "payload size {payload_size} exceeds the {} bytes left",
                rest.len()
            )));
        }
        body = &rest[payload_size..];
    }
    Ok(())
}

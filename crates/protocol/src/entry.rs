//! Stored entries: a message as received from the magic onward,
//! `[0x0e01][crc32c][metadataSize u32][MessageMetadata][payload]`. The broker reads the metadata
//! (publish time, batch size, keys) for dispatch and seeks; it never rewrites an entry.

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

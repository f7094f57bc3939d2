//! Frames on the wire: `[totalSize u32][commandSize u32][BaseCommand]`, followed for payload
//! commands (SEND, MESSAGE) by `[magic 0x0e01][crc32c u32][metadataSize u32][MessageMetadata]
//! [payload]`. All integers are big-endian.
//!
//! A SEND's payload is kept as the bytes from the magic onward: that is what a managed-ledger
//! entry holds and what MESSAGE relays, unchanged, so the checksum stays valid end to end.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::Message;

use crate::pb::{BaseCommand, MessageMetadata};

/// Magic number in front of the checksum of a payload command.
pub const MAGIC_CRC32C: u16 = 0x0e01;
/// Magic number of broker entry metadata, which tierlog never sends (pulsar-rs cannot parse it).
pub const MAGIC_BROKER_ENTRY_METADATA: u16 = 0x0e02;
/// Pulsar's default `maxMessageSize`, advertised in CONNECTED.
pub const DEFAULT_MAX_MESSAGE_SIZE: u32 = 5 * 1024 * 1024;
/// Room for headers on top of the largest message, as Pulsar's frame decoder allows.
pub const FRAME_PADDING: u32 = 10 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {size} bytes exceeds the maximum frame size of {max} bytes")]
    TooLarge { size: u64, max: u64 },
    #[error("malformed frame: {0}")]
    Malformed(String),
    #[error("undecodable command: {0}")]
    BadCommand(#[from] prost::DecodeError),
    #[error("payload checksum mismatch: frame says {expected:#010x}, payload has {actual:#010x}")]
    Checksum {
        expected: u32,
        actual: u32,
        /// The command the payload came with, so a SEND can be answered with SEND_ERROR.
        command: Box<BaseCommand>,
    },
}

/// The payload of a SEND or MESSAGE.
#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    /// The bytes from the magic onward, with a valid checksum (added when the sender sent none).
    pub entry: Bytes,
    /// The decoded message metadata, for the broker's own decisions (never re-encoded).
    pub metadata: MessageMetadata,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub command: BaseCommand,
    pub payload: Option<Payload>,
}

/// Splits a byte stream into frames, enforcing the maximum frame size before buffering a frame.
#[derive(Debug, Clone, Copy)]
pub struct FrameDecoder {
    max_frame: u32,
}

impl FrameDecoder {
    /// A decoder that accepts frames of up to `max_message_size` + [`FRAME_PADDING`] bytes.
    pub fn new(max_message_size: u32) -> Self {
        FrameDecoder {
            max_frame: max_message_size.saturating_add(FRAME_PADDING),
        }
    }

    /// A decoder that accepts frames of up to `max_frame` bytes in all.
    pub fn with_max_frame(max_frame: u32) -> Self {
        FrameDecoder { max_frame }
    }

    /// The size the frame at the front of `buf` announces, including its size field, once
    /// its size field is there.
    pub fn announced(buf: &[u8]) -> Option<usize> {
        let size: [u8; 4] = buf.get(..4)?.try_into().ok()?;
        Some(4 + u32::from_be_bytes(size) as usize)
    }

    /// Takes one frame off the front of `buf`, or returns `None` when more bytes are needed. An
    /// error means the stream can no longer be trusted: the connection should be closed.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        self.decode_with_crc(buf, None)
    }

    /// [`FrameDecoder::decode`], with the CRC32C of the front frame's checksummed bytes already
    /// computed while they arrived (see [`PayloadCrc`]); used only if it covers exactly them.
    pub(crate) fn decode_with_crc(
        &self,
        buf: &mut BytesMut,
        crc: Option<PayloadCrc>,
    ) -> Result<Option<Frame>, FrameError> {
        if buf.len() < 4 {
            return Ok(None);
        }
        let total = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
        if total > self.max_frame {
            return Err(FrameError::TooLarge {
                size: u64::from(total),
                max: u64::from(self.max_frame),
            });
        }
        if buf.len() < 4 + total as usize {
            // Nothing is reserved for what is only announced: the buffer grows with what
            // arrives (the reader caps that), so a peer cannot claim memory it does not send.
            return Ok(None);
        }
        buf.advance(4);
        let frame = buf.split_to(total as usize).freeze();
        decode_frame_body_with(frame, crc).map(Some)
    }
}

/// The CRC32C of the bytes a payload's checksum covers (after the magic and the checksum, to the
/// frame's end), and how many there were.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PayloadCrc {
    pub(crate) crc: u32,
    pub(crate) len: usize,
}

/// Decodes `[commandSize][BaseCommand][payload section]` (everything after `totalSize`).
pub fn decode_frame_body(frame: Bytes) -> Result<Frame, FrameError> {
    decode_frame_body_with(frame, None)
}

fn decode_frame_body_with(mut frame: Bytes, crc: Option<PayloadCrc>) -> Result<Frame, FrameError> {
    if frame.len() < 4 {
        return Err(FrameError::Malformed(format!(
            "frame of {} bytes has no command size",
            frame.len()
        )));
    }
    let cmd_size = frame.get_u32() as usize;
    if cmd_size > frame.len() {
        return Err(FrameError::Malformed(format!(
            "command size {cmd_size} exceeds the {} bytes left in the frame",
            frame.len()
        )));
    }
    let command = BaseCommand::decode(frame.split_to(cmd_size))?;
    if frame.is_empty() {
        return Ok(Frame {
            command,
            payload: None,
        });
    }
    match split_payload(frame, crc) {
        Ok(payload) => Ok(Frame {
            command,
            payload: Some(payload),
        }),
        Err(PayloadError::Frame(e)) => Err(e),
        Err(PayloadError::Checksum { expected, actual }) => Err(FrameError::Checksum {
            expected,
            actual,
            command: Box::new(command),
        }),
    }
}

enum PayloadError {
    Frame(FrameError),
    Checksum { expected: u32, actual: u32 },
}

fn split_payload(payload: Bytes, crc: Option<PayloadCrc>) -> Result<Payload, PayloadError> {
    let malformed = |m: String| PayloadError::Frame(FrameError::Malformed(m));
    if payload.len() >= 2 && payload[..2] == MAGIC_BROKER_ENTRY_METADATA.to_be_bytes() {
        return Err(malformed(
            "broker entry metadata is not accepted from clients".into(),
        ));
    }
    let (entry, checked) = if payload.len() >= 2 && payload[..2] == MAGIC_CRC32C.to_be_bytes() {
        if payload.len() < 6 {
            return Err(malformed("payload ends inside its checksum".into()));
        }
        let expected = u32::from_be_bytes([payload[2], payload[3], payload[4], payload[5]]);
        let actual = match crc {
            Some(c) if c.len == payload.len() - 6 => c.crc,
            _ => crc_fast::crc32_iscsi(&payload[6..]),
        };
        if expected != actual {
            return Err(PayloadError::Checksum { expected, actual });
        }
        (payload, 6)
    } else {
        // No checksum section (protocol < v6): add one so the stored entry is self-checking.
        let mut with = BytesMut::with_capacity(payload.len() + 6);
        with.put_u16(MAGIC_CRC32C);
        with.put_u32(crc_fast::crc32_iscsi(&payload));
        with.extend_from_slice(&payload);
        (with.freeze(), 6)
    };
    let metadata = crate::entry::metadata_after_checksum(&entry[checked..])
        .map_err(|e| malformed(e.to_string()))?;
    Ok(Payload { entry, metadata })
}

/// `[total][cmdSize][command]`.
pub fn encode_command(cmd: &BaseCommand) -> Bytes {
    let len = cmd.encoded_len();
    let mut b = BytesMut::with_capacity(8 + len);
    b.put_u32(4 + len as u32);
    b.put_u32(len as u32);
    // Encoding into a buffer with enough capacity cannot fail.
    let _ = cmd.encode(&mut b);
    b.freeze()
}

/// A frame on its way out: its bytes in one piece, or a head followed by a body that stays
/// where it is (a MESSAGE's command and the stored entry it relays: an entry read from a ledger
/// goes to the socket from the buffer it was read into, never copied into a frame).
#[derive(Debug, Clone, PartialEq)]
pub enum OutFrame {
    Whole(Bytes),
    Parts { head: Bytes, body: Bytes },
}

impl OutFrame {
    /// Bytes on the wire.
    pub fn len(&self) -> usize {
        match self {
            OutFrame::Whole(b) => b.len(),
            OutFrame::Parts { head, body } => head.len() + body.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The frame in one buffer (a copy when it is in parts).
    pub fn to_bytes(&self) -> Bytes {
        match self {
            OutFrame::Whole(b) => b.clone(),
            OutFrame::Parts { head, body } => {
                let mut b = BytesMut::with_capacity(head.len() + body.len());
                b.extend_from_slice(head);
                b.extend_from_slice(body);
                b.freeze()
            }
        }
    }
}

impl From<Bytes> for OutFrame {
    fn from(b: Bytes) -> Self {
        OutFrame::Whole(b)
    }
}

/// A MESSAGE (or any payload command) carrying a stored entry unchanged, without copying it:
/// the frame's size fields and command, then the entry itself.
pub fn message_frame(cmd: &BaseCommand, entry: Bytes) -> OutFrame {
    let len = cmd.encoded_len();
    let mut head = BytesMut::with_capacity(8 + len);
    head.put_u32((4 + len + entry.len()) as u32);
    head.put_u32(len as u32);
    let _ = cmd.encode(&mut head);
    OutFrame::Parts {
        head: head.freeze(),
        body: entry,
    }
}

/// [`message_frame`] in one buffer.
pub fn encode_message(cmd: &BaseCommand, entry: &[u8]) -> Bytes {
    message_frame(cmd, Bytes::copy_from_slice(entry)).to_bytes()
}

/// A client's SEND: the command, then magic, checksum, metadata and payload.
pub fn encode_send(cmd: &BaseCommand, metadata: &MessageMetadata, payload: &[u8]) -> Bytes {
    encode_send_parts(cmd, metadata, &[payload])
}

/// A SEND whose payload is the concatenation of `parts` (e.g. a batch's message headers and
/// payloads), built in one buffer with one copy of each part. `metadata` is normally a
/// [`MessageMetadata`]; tests pass other messages to build metadata clients would not send.
pub fn encode_send_parts(cmd: &BaseCommand, metadata: &impl Message, parts: &[&[u8]]) -> Bytes {
    encode_send_parts_into(&mut BytesMut::new(), cmd, metadata, parts)
}

/// [`encode_send_parts`] into the free room of `scratch`, which a sender keeps from one frame
/// to the next: once the previous frame has been written and dropped, its memory is used again
/// instead of fresh pages for every frame.
pub fn encode_send_parts_into(
    scratch: &mut BytesMut,
    cmd: &BaseCommand,
    metadata: &impl Message,
    parts: &[&[u8]],
) -> Bytes {
    let cmd_len = cmd.encoded_len();
    let meta_len = metadata.encoded_len();
    let payload_len: usize = parts.iter().map(|p| p.len()).sum();
    let total = 4 + cmd_len + 2 + 4 + 4 + meta_len + payload_len;
    scratch.clear();
    scratch.reserve(4 + total);
    let b = scratch;
    b.put_u32(total as u32);
    b.put_u32(cmd_len as u32);
    let _ = cmd.encode(b);
    b.put_u16(MAGIC_CRC32C);
    let crc_at = b.len();
    b.put_u32(0);
    b.put_u32(meta_len as u32);
    let _ = metadata.encode(b);
    for p in parts {
        b.extend_from_slice(p);
    }
    let crc = crc_fast::crc32_iscsi(&b[crc_at + 4..]);
    b[crc_at..crc_at + 4].copy_from_slice(&crc.to_be_bytes());
    // What was written leaves; the buffer keeps its room (and its memory) for the next frame.
    b.split().freeze()
}

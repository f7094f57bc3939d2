//! Apache Pulsar's binary protocol as tierlog speaks it: the generated protobuf messages of the
//! vendored `PulsarApi.proto`, the frame codec (simple and payload commands, magic + CRC32C,
//! size limits), stored-entry parsing and topic-name normalisation. No I/O happens here; the
//! broker and the perf client drive sockets with these pieces.

pub mod commands;
pub mod entry;
pub mod frame;
pub mod topic;

/// Messages generated from `proto/PulsarApi.proto` (package `pulsar.proto`).
#[allow(clippy::all, missing_docs)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/pulsar.proto.rs"));
}

pub use entry::{EntryError, parse_entry};
pub use frame::{
    DEFAULT_MAX_MESSAGE_SIZE, FRAME_PADDING, Frame, FrameDecoder, FrameError, Payload,
    encode_command, encode_message, encode_send, encode_send_parts,
};
pub use topic::{Domain, TopicName, TopicNameError};

/// The newest protocol version this broker speaks (what Pulsar 4.x clients send).
pub const SERVER_PROTOCOL_VERSION: i32 = 20;

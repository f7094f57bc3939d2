//! Apache Pulsar's binary protocol as tierlog speaks it: the generated protobuf messages of the
//! vendored `PulsarApi.proto`, the frame codec (simple and payload commands, magic + CRC32C,
//! size limits), the checks a SEND passes before it is stored, stored-entry parsing, namespace and topic names with all their conversions, and
//! (in [`io`], the only module that touches a socket) the framed connection the broker and the
//! perf client both use.

pub mod commands;
pub mod entry;
pub mod frame;
pub mod io;
pub mod names;
pub mod send_check;

/// Messages generated from `proto/PulsarApi.proto` (package `pulsar.proto`).
#[allow(clippy::all, missing_docs)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/pulsar.proto.rs"));
}

pub use entry::{EntryError, parse_entry};
pub use frame::{
    DEFAULT_MAX_MESSAGE_SIZE, FRAME_PADDING, Frame, FrameDecoder, FrameError, OutFrame, Payload,
    encode_command, encode_message, encode_send, encode_send_parts, encode_send_parts_into,
    message_frame,
};
pub use names::{
    Domain, MAX_NAME_BYTES, NameError, NamespaceName, TopicName, TopicNameError, validate_producer,
    validate_subscription,
};
pub use send_check::{InvalidMessage, check_send};

/// The newest protocol version this broker speaks (what Pulsar 4.x clients send).
pub const SERVER_PROTOCOL_VERSION: i32 = 20;

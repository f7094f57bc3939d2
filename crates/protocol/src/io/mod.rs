//! Framed connections over any async byte stream, shared by the broker and the client: a reader
//! that yields whole frames (`read`), and a writer task that coalesces queued frames into large
//! writes (`write`).
//!
//! Everything else in this crate is pure encoding and decoding; this module is the only one that
//! touches a socket.

mod read;
mod write;

pub use read::{FrameReader, READ_CHUNK, ReadError, ReceiveBudget};
pub use write::{Outbox, WRITE_DIRECT_MIN, WeakOutbox, WriterGone, spawn_writer};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::FrameDecoder;
    use crate::pb::BaseCommand;
    use crate::{commands, encode_command};

    #[tokio::test]
    async fn frames_written_are_read_back_whole_and_in_order() {
        let (a, b) = tokio::io::duplex(64);
        let (outbox, writer) = spawn_writer(a, 1 << 20);
        let cmds: Vec<BaseCommand> = (0..50).map(commands::success).collect();
        for c in &cmds {
            outbox.send(encode_command(c)).unwrap();
        }
        drop(outbox);
        let mut reader = FrameReader::new(b, FrameDecoder::new(1024));
        let mut got = Vec::new();
        while let Some(f) = reader.next().await.unwrap() {
            got.push(f.command);
        }
        assert_eq!(got, cmds);
        writer.await.unwrap();
    }
}

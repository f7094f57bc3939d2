//! Framed connections over any async byte stream, shared by the broker and the client: a reader
//! that yields whole frames, and a writer task that coalesces queued frames into large writes.
//!
//! Everything else in this crate is pure encoding and decoding; this module is the only one that
//! touches a socket.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::frame::{Frame, FrameDecoder, FrameError};

/// Why reading the next frame failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("read error: {0}")]
    Io(#[from] std::io::Error),
    /// The stream can no longer be trusted (bad size, bad command, bad checksum).
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The peer closed the stream in the middle of a frame.
    #[error("connection closed inside a frame ({0} bytes buffered)")]
    Truncated(usize),
}

/// Reads whole frames off a byte stream, enforcing the decoder's size limit before buffering.
pub struct FrameReader<R> {
    inner: R,
    buf: BytesMut,
    decoder: FrameDecoder,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R, decoder: FrameDecoder) -> Self {
        FrameReader {
            inner,
            buf: BytesMut::with_capacity(64 * 1024),
            decoder,
        }
    }

    /// The next frame, or `None` once the peer has closed the stream between frames.
    ///
    /// Cancel-safe: bytes read before the future is dropped stay buffered for the next call,
    /// so it can be raced against timers and shutdown signals.
    pub async fn next(&mut self) -> Result<Option<Frame>, ReadError> {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buf)? {
                return Ok(Some(frame));
            }
            if self.inner.read_buf(&mut self.buf).await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(ReadError::Truncated(self.buf.len()))
                };
            }
        }
    }
}

/// Frames queued for one connection's writer task.
pub type Outbox = mpsc::UnboundedSender<Bytes>;

/// Starts the writer task of a connection. Frames sent on the returned [`Outbox`] are written in
/// order; whatever is queued when the socket is ready goes out in one write of up to
/// `coalesce_bytes`, so many small replies cost few system calls. The task ends (shutting the
/// write half down) when every sender is dropped, or when a write fails.
pub fn spawn_writer<W>(mut writer: W, coalesce_bytes: usize) -> (Outbox, JoinHandle<()>)
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (outbox, mut queued) = mpsc::unbounded_channel::<Bytes>();
    let task = tokio::spawn(async move {
        let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
        while let Some(first) = queued.recv().await {
            buf.clear();
            buf.extend_from_slice(&first);
            while buf.len() < coalesce_bytes {
                match queued.try_recv() {
                    Ok(more) => buf.extend_from_slice(&more),
                    Err(_) => break,
                }
            }
            if writer.write_all(&buf).await.is_err() {
                return;
            }
        }
        let _ = writer.shutdown().await;
    });
    (outbox, task)
}

#[cfg(test)]
mod tests {
    use super::*;
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

    #[tokio::test]
    async fn a_stream_closed_inside_a_frame_is_an_error() {
        let (mut a, b) = tokio::io::duplex(64);
        let frame = encode_command(&commands::ping());
        a.write_all(&frame[..frame.len() - 1]).await.unwrap();
        drop(a);
        let mut reader = FrameReader::new(b, FrameDecoder::new(1024));
        assert!(matches!(reader.next().await, Err(ReadError::Truncated(_))));
    }

    #[tokio::test]
    async fn an_oversized_frame_is_refused_before_it_is_buffered() {
        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(&(10u32 << 20).to_be_bytes()).await.unwrap();
        let mut reader = FrameReader::new(b, FrameDecoder::new(1024));
        assert!(matches!(
            reader.next().await,
            Err(ReadError::Frame(FrameError::TooLarge { .. }))
        ));
    }
}

//! The writing half: a connection's queue of frames and the task that writes them.

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::frame::OutFrame;

/// The queue of frames to one connection's writer task. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Outbox(mpsc::UnboundedSender<OutFrame>);

/// The writer task of the connection has ended (the connection is gone).
#[derive(Debug, thiserror::Error)]
#[error("the connection's writer has stopped")]
pub struct WriterGone;

impl Outbox {
    /// An outbox whose frames are taken off the returned receiver instead of a writer task
    /// (tests, in-process peers).
    pub fn unbounded() -> (Outbox, mpsc::UnboundedReceiver<OutFrame>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Outbox(tx), rx)
    }

    /// Queues a frame (whole bytes or an [`OutFrame`]) behind those queued before it.
    pub fn send(&self, frame: impl Into<OutFrame>) -> Result<(), WriterGone> {
        self.0.send(frame.into()).map_err(|_| WriterGone)
    }

    /// A handle that does not keep the writer running (the connection's reader answering
    /// pings holds one, so dropping every other sender still ends the writer).
    pub fn downgrade(&self) -> WeakOutbox {
        WeakOutbox(self.0.downgrade())
    }
}

/// See [`Outbox::downgrade`].
#[derive(Clone, Debug)]
pub struct WeakOutbox(mpsc::WeakUnboundedSender<OutFrame>);

impl WeakOutbox {
    /// The outbox, while the writer still has other senders.
    pub fn upgrade(&self) -> Option<Outbox> {
        self.0.upgrade().map(Outbox)
    }
}

/// Frames (or frame bodies) this large are written as they are, never copied into the
/// coalescing buffer: a copy costs more than the system call it would save (a producer's batch,
/// a consumer's entry).
pub const WRITE_DIRECT_MIN: usize = 64 * 1024;

/// Starts the writer task of a connection. Frames sent on the returned [`Outbox`] are written in
/// order; small frames queued when the socket is ready go out in one write of up to
/// `coalesce_bytes`, so many small replies cost few system calls, and frames or frame bodies of
/// [`WRITE_DIRECT_MIN`] or more are written from where they are. The task ends (shutting the
/// write half down) when every sender is dropped, or when a write fails.
pub fn spawn_writer<W>(mut writer: W, coalesce_bytes: usize) -> (Outbox, JoinHandle<()>)
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (outbox, mut queued) = mpsc::unbounded_channel::<OutFrame>();
    let task = tokio::spawn(async move {
        let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
        while let Some(first) = queued.recv().await {
            // Small frames are gathered into `buf` until a large one (written after them, from
            // where it is) or the coalescing limit or an empty queue.
            buf.clear();
            let mut large = None;
            let mut frame = Some(first);
            while let Some(f) = frame.take() {
                let body = match f {
                    OutFrame::Whole(b) => b,
                    OutFrame::Parts { head, body } => {
                        buf.extend_from_slice(&head);
                        body
                    }
                };
                if body.len() >= WRITE_DIRECT_MIN {
                    large = Some(body);
                    break;
                }
                buf.extend_from_slice(&body);
                if buf.len() < coalesce_bytes {
                    frame = queued.try_recv().ok();
                }
            }
            // One system call for both where the stream takes vectors: written on its own, a
            // large frame's head is a system call and a TCP segment of its own (and on
            // loopback a wake-up of the peer for 32 bytes).
            let large = large.unwrap_or_default();
            if write_all_vectored(&mut writer, [&buf[..], &large[..]])
                .await
                .is_err()
            {
                return;
            }
        }
        let _ = writer.shutdown().await;
    });
    (Outbox(outbox), task)
}

/// Writes both buffers in order, in as few writes as the stream allows.
async fn write_all_vectored<W: AsyncWrite + Unpin>(
    writer: &mut W,
    parts: [&[u8]; 2],
) -> std::io::Result<()> {
    let mut slices = [
        std::io::IoSlice::new(parts[0]),
        std::io::IoSlice::new(parts[1]),
    ];
    let mut slices = &mut slices[..];
    std::io::IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        let n = writer.write_vectored(slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        std::io::IoSlice::advance_slices(&mut slices, n);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[tokio::test]
    async fn large_and_small_frames_whole_or_in_parts_arrive_whole_and_in_order() {
        let (a, b) = tokio::io::duplex(4096);
        let (outbox, writer) = spawn_writer(a, 1 << 20);
        let sizes = [
            10,
            WRITE_DIRECT_MIN,
            3,
            5,
            WRITE_DIRECT_MIN * 3,
            WRITE_DIRECT_MIN - 1,
            7,
        ];
        let mut sent = Vec::new();
        for (i, size) in sizes.into_iter().enumerate() {
            let frame = vec![i as u8; size];
            sent.extend_from_slice(&frame);
            outbox.send(Bytes::from(frame)).unwrap();
            // The same size again in two parts: a small head and a body (large or small).
            let head = vec![100 + i as u8; 9];
            let body = vec![200 + i as u8; size];
            sent.extend_from_slice(&head);
            sent.extend_from_slice(&body);
            outbox
                .send(OutFrame::Parts {
                    head: head.into(),
                    body: body.into(),
                })
                .unwrap();
        }
        drop(outbox);
        let mut got = Vec::new();
        let mut b = b;
        tokio::io::AsyncReadExt::read_to_end(&mut b, &mut got)
            .await
            .unwrap();
        assert!(
            got == sent,
            "the bytes written are the frames sent, in order"
        );
        writer.await.unwrap();
    }

    /// Takes at most `per_call` bytes per write, across the buffers of a vectored one.
    struct Trickle {
        got: Vec<u8>,
        per_call: usize,
        calls: usize,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            self.poll_write_vectored(cx, &[std::io::IoSlice::new(buf)])
        }

        fn poll_write_vectored(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            bufs: &[std::io::IoSlice<'_>],
        ) -> std::task::Poll<std::io::Result<usize>> {
            self.calls += 1;
            let mut room = self.per_call;
            for b in bufs {
                let n = b.len().min(room);
                self.got.extend_from_slice(&b[..n]);
                room -= n;
            }
            std::task::Poll::Ready(Ok(self.per_call - room))
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_head_and_body_go_out_whole_in_order_in_one_write_or_in_pieces() {
        let head: Vec<u8> = (0..100u8).collect();
        let body: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        for (head, per_call) in [
            (&head[..], 1 << 20),
            (&head[..], 7),
            (&[][..], 64),
            (&head[..], 100),
        ] {
            let mut w = Trickle {
                got: Vec::new(),
                per_call,
                calls: 0,
            };
            write_all_vectored(&mut w, [head, &body]).await.unwrap();
            assert_eq!(
                w.got,
                [head, &body[..]].concat(),
                "{per_call} bytes per call"
            );
            let total = head.len() + body.len();
            assert_eq!(
                w.calls,
                total.div_ceil(per_call),
                "{per_call} bytes per call"
            );
        }
    }
}

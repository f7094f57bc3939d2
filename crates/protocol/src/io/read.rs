//! The reading half: whole frames off a byte stream, within a size limit and a budget.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::frame::{Frame, FrameDecoder, FrameError, MAGIC_CRC32C, PayloadCrc};

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
///
/// The buffer grows only with bytes received: per read, by at most [`READ_CHUNK`] or by as much
/// as it holds already, whichever is more (so a large frame is copied about once while its
/// buffer grows, not once per chunk, and still nothing is reserved that was not earned by
/// bytes that arrived). With a
/// [`ReceiveBudget`], the bytes of incomplete frames count against it: while it is used up the
/// reader does not read its socket (back-pressure) until other frames complete.
pub struct FrameReader<R> {
    inner: R,
    buf: BytesMut,
    decoder: FrameDecoder,
    budget: Option<ReceiveBudget>,
    /// Bytes of `buf` counted in the budget.
    held: usize,
    /// Whether a frame's whole announced size is reserved as soon as it is announced.
    reserve_announced: bool,
    /// The size of the frame read last.
    last_frame_len: usize,
    /// The checksum of the large frame being received, as far as it has arrived.
    running_crc: Option<RunningCrc>,
}

/// The CRC32C of a large frame's checksummed bytes (from `from` to the frame's end), computed as
/// they arrive: a reserving reader (a client's) checks a large frame's checksum piece by piece
/// while the rest is on its way, so that when the frame is complete only its last piece is
/// left to check. One CRC of a 1 MB entry is ~50 µs on this machine, and a catch-up consumer
/// asks for its next entry only once it holds the current one, checked.
struct RunningCrc {
    /// Offsets in the reader's buffer, whose front is the frame's first byte.
    from: usize,
    upto: usize,
    digest: crc_fast::Digest,
}

/// The most a reader adds to its buffer in one read.
pub const READ_CHUNK: usize = 256 * 1024;

/// Memory shared by every reader for frames still being received (Pulsar's
/// `maxMessagePublishBufferSizeInMB`). A reader waits for room before each read, so the total
/// stays below the limit plus one read per reader.
#[derive(Clone, Debug)]
pub struct ReceiveBudget(std::sync::Arc<BudgetState>);

#[derive(Debug)]
struct BudgetState {
    limit: usize,
    used: std::sync::atomic::AtomicUsize,
    freed: tokio::sync::Notify,
}

impl ReceiveBudget {
    pub fn new(limit_bytes: usize) -> Self {
        ReceiveBudget(std::sync::Arc::new(BudgetState {
            limit: limit_bytes,
            used: Default::default(),
            freed: tokio::sync::Notify::new(),
        }))
    }

    /// Bytes counted now.
    pub fn used(&self) -> usize {
        self.0.used.load(std::sync::atomic::Ordering::Acquire)
    }

    async fn room(&self) {
        loop {
            let freed = self.0.freed.notified();
            if self.used() < self.0.limit {
                return;
            }
            freed.await;
        }
    }

    fn add(&self, n: usize) {
        self.0
            .used
            .fetch_add(n, std::sync::atomic::Ordering::AcqRel);
    }

    fn sub(&self, n: usize) {
        if n > 0 {
            self.0
                .used
                .fetch_sub(n, std::sync::atomic::Ordering::AcqRel);
            self.0.freed.notify_waiters();
        }
    }
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R, decoder: FrameDecoder) -> Self {
        FrameReader {
            inner,
            buf: BytesMut::with_capacity(8 * 1024),
            decoder,
            budget: None,
            held: 0,
            reserve_announced: false,
            last_frame_len: 0,
            running_crc: None,
        }
    }

    /// Reserves room for each frame's announced size (up to the decoder's limit) when its size
    /// field arrives, and reads no further than its end, so a large frame is read into place
    /// without the buffer growing (and copying) on the way or after. For a peer trusted not to
    /// announce what it does not send: a client reading its broker, not a broker reading its
    /// clients.
    pub fn reserving_announced(mut self) -> Self {
        self.reserve_announced = true;
        self
    }

    /// Counts incomplete frames against `budget`.
    pub fn with_budget(mut self, budget: ReceiveBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Changes the largest frame accepted from now on (after a handshake, say).
    pub fn set_decoder(&mut self, decoder: FrameDecoder) {
        self.decoder = decoder;
    }

    /// Counts what is buffered now, no more, no less.
    fn account(&mut self) {
        let now = self.buf.len();
        if let Some(b) = &self.budget {
            if now > self.held {
                b.add(now - self.held);
            } else {
                b.sub(self.held - now);
            }
        }
        self.held = now;
    }

    /// The next frame, or `None` once the peer has closed the stream between frames.
    ///
    /// Cancel-safe: bytes read before the future is dropped stay buffered for the next call,
    /// so it can be raced against timers and shutdown signals.
    pub async fn next(&mut self) -> Result<Option<Frame>, ReadError> {
        loop {
            let before = self.buf.len();
            let crc = self.check_arrived();
            let decoded = self.decoder.decode_with_crc(&mut self.buf, crc);
            self.account();
            if let Some(frame) = decoded? {
                self.last_frame_len = before - self.buf.len();
                self.running_crc = None;
                return Ok(Some(frame));
            }
            if let Some(b) = &self.budget {
                b.room().await;
            }
            // Frames already taken off share the buffer's memory, so growing it copies what
            // it holds: growing geometrically keeps those copies to about one per byte.
            let announced = FrameDecoder::announced(&self.buf);
            // The decoder refused frames over its limit above, so what is missing is within it.
            let missing = announced.map_or(4, |total| total.saturating_sub(self.buf.len()));
            let read = if !self.reserve_announced {
                self.buf
                    .reserve(missing.clamp(1, READ_CHUNK.max(self.buf.len())));
                self.inner.read_buf(&mut self.buf).await
            } else {
                let limit = match announced {
                    // The rest of this frame and not a byte more, into room of its exact size:
                    // bytes of the next frame read into this frame's buffer would be copied out
                    // again when room is made for it, and so would the buffer's contents if it
                    // grew (with 1 MB frames, 12 % of a catch-up consumer's CPU was such copies).
                    Some(_) => {
                        let missing = missing.max(1);
                        if self.buf.capacity() - self.buf.len() < missing {
                            let mut room = BytesMut::with_capacity(self.buf.len() + missing);
                            room.extend_from_slice(&self.buf);
                            self.buf = room;
                        }
                        missing
                    }
                    // After a large frame, the next one's size field alone: it is likely large
                    // too, and is then read into room of its size from its first byte.
                    None if self.last_frame_len >= READ_CHUNK => {
                        let head = 4 - self.buf.len().min(3);
                        self.buf.reserve(head);
                        head
                    }
                    // Small frames: as many as a read brings.
                    None => {
                        self.buf.reserve(READ_CHUNK);
                        usize::MAX
                    }
                };
                let mut rest = (&mut self.inner).take(limit as u64);
                rest.read_buf(&mut self.buf).await
            };
            self.account();
            if read? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(ReadError::Truncated(self.buf.len()))
                };
            }
        }
    }
}

impl<R> FrameReader<R> {
    /// Adds what has arrived of the front frame, if it is large and has a checksum, to its
    /// running CRC; the CRC of all its checksummed bytes once the frame is complete.
    fn check_arrived(&mut self) -> Option<PayloadCrc> {
        if !self.reserve_announced {
            return None;
        }
        let total = FrameDecoder::announced(&self.buf)?;
        if total < READ_CHUNK {
            return None;
        }
        if self.running_crc.is_none() {
            // [totalSize][commandSize][command][magic][checksum][checksummed bytes…]
            let cmd_size: [u8; 4] = self.buf.get(4..8)?.try_into().ok()?;
            let at = 8usize.checked_add(u32::from_be_bytes(cmd_size) as usize)?;
            if self.buf.get(at..at.checked_add(2)?)? != MAGIC_CRC32C.to_be_bytes() {
                return None;
            }
            let from = at.checked_add(6)?;
            self.running_crc = Some(RunningCrc {
                from,
                upto: from,
                digest: crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi),
            });
        }
        let r = self.running_crc.as_mut()?;
        let arrived = self.buf.len().min(total);
        if let Some(new) = self.buf.get(r.upto..arrived) {
            r.digest.update(new);
            r.upto = arrived;
        }
        (r.upto == total).then(|| PayloadCrc {
            crc: r.digest.finalize() as u32,
            len: total - r.from,
        })
    }
}

impl<R> Drop for FrameReader<R> {
    fn drop(&mut self) {
        if let Some(b) = &self.budget {
            b.sub(self.held);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{commands, encode_command};
    use bytes::Bytes;
    use tokio::io::AsyncWriteExt;

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
    async fn incomplete_frames_are_held_to_the_budget() {
        let budget = ReceiveBudget::new(100_000);
        let (mut a, b) = tokio::io::duplex(1 << 20);
        // A frame announcing 1 MiB, of which 50 000 bytes arrive.
        a.write_all(&(1u32 << 20).to_be_bytes()).await.unwrap();
        a.write_all(&vec![0u8; 50_000]).await.unwrap();
        let mut reader =
            FrameReader::new(b, FrameDecoder::new(2 << 20)).with_budget(budget.clone());
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(200), reader.next()).await;
        assert!(waited.is_err(), "the frame is incomplete");
        assert_eq!(
            budget.used(),
            50_004,
            "what arrived counts against the budget"
        );
        assert!(
            reader.buf.capacity() < 1 << 20,
            "nothing reserved for the announced rest"
        );
        // With the budget used up, a second reader does not read at all.
        let other = ReceiveBudget::new(10_000);
        other.add(10_000);
        let (mut c, d) = tokio::io::duplex(1 << 20);
        c.write_all(&[0u8; 100]).await.unwrap();
        let mut blocked =
            FrameReader::new(d, FrameDecoder::new(2 << 20)).with_budget(other.clone());
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(100), blocked.next()).await;
        assert!(waited.is_err());
        assert!(
            blocked.buf.is_empty(),
            "nothing read while the budget is used up"
        );
        drop(reader);
        assert_eq!(budget.used(), 0, "given back when the reader goes");
    }

    /// A reserving reader (a client's) reads a large frame no further than its end, so the next
    /// frame's bytes are not in the buffer the frame was split from (they would be copied out
    /// when room is reserved for the next), whatever the stream holds already.
    #[tokio::test]
    async fn a_reserving_reader_stops_at_each_frames_end() {
        let (mut a, b) = tokio::io::duplex(8 << 20);
        let cmd = commands::ping();
        let frames: Vec<Bytes> = (0..3u8)
            .map(|i| {
                let entry = crate::entry::encode_entry(
                    &Default::default(),
                    &vec![i; (1 << 20) + usize::from(i)],
                );
                crate::frame::encode_message(&cmd, &entry)
            })
            .collect();
        for f in &frames {
            a.write_all(f).await.unwrap();
        }
        a.write_all(&encode_command(&cmd)).await.unwrap();
        drop(a);
        let mut reader = FrameReader::new(b, FrameDecoder::new(4 << 20)).reserving_announced();
        for (i, _) in frames.iter().enumerate() {
            let frame = reader.next().await.unwrap().expect("a frame");
            let payload = frame.payload.expect("a message's payload");
            let (_, at) = crate::entry::parse_entry(&payload.entry).unwrap();
            assert_eq!(
                payload.entry[at..],
                vec![i as u8; (1 << 20) + i][..],
                "frame {i}'s payload"
            );
            assert!(
                reader.buf.is_empty(),
                "{} bytes of the frame after frame {i} were read into its buffer",
                reader.buf.len()
            );
        }
        let last = reader.next().await.unwrap().expect("the small frame");
        assert!(last.payload.is_none());
        assert!(reader.next().await.unwrap().is_none());
    }

    /// A MESSAGE frame of an entry of `len` bytes of `fill`, with its checksum.
    fn large_message(fill: u8, len: usize) -> Bytes {
        let entry = crate::entry::encode_entry(&Default::default(), &vec![fill; len]);
        crate::frame::encode_message(&commands::ping(), &entry)
    }

    /// A reserving reader checks a large frame's checksum as its pieces arrive: the frames come
    /// whole and equal whatever the pieces, and a byte changed anywhere in the checked bytes —
    /// the first, the middle, the last — still fails the frame's checksum.
    #[tokio::test]
    async fn a_large_frames_checksum_is_checked_as_it_arrives_and_still_catches_any_change() {
        let frames: Vec<Bytes> = (0..3u8)
            .map(|i| large_message(i, (1 << 20) + 7 * usize::from(i)))
            .collect();
        let (mut a, b) = tokio::io::duplex(64 << 10);
        let sent = frames.clone();
        let writer = tokio::spawn(async move {
            for f in &sent {
                a.write_all(f).await.unwrap();
            }
        });
        let mut reader = FrameReader::new(b, FrameDecoder::new(4 << 20)).reserving_announced();
        for (i, f) in frames.iter().enumerate() {
            let got = reader.next().await.unwrap().expect("a frame");
            let entry = got.payload.expect("a payload").entry;
            assert_eq!(entry[..], f[f.len() - entry.len()..], "frame {i}");
        }
        writer.await.unwrap();

        let frame = large_message(9, 1 << 20);
        // Offset of the first checked byte: size fields, the command, magic and checksum.
        let cmd_size = u32::from_be_bytes(frame[4..8].try_into().unwrap()) as usize;
        let first = 8 + cmd_size + 6;
        for at in [first, (first + frame.len()) / 2, frame.len() - 1] {
            let mut bad = frame.to_vec();
            bad[at] ^= 0x20;
            let (mut a, b) = tokio::io::duplex(64 << 10);
            let mut reader = FrameReader::new(b, FrameDecoder::new(4 << 20)).reserving_announced();
            // Half the frame first: its checksum is under way before the rest arrives.
            let half = bad[..bad.len() / 2].to_vec();
            let rest = bad[bad.len() / 2..].to_vec();
            let (go_on, wait) = tokio::sync::oneshot::channel::<()>();
            tokio::spawn(async move {
                a.write_all(&half).await.unwrap();
                let _ = wait.await;
                a.write_all(&rest).await.unwrap();
            });
            let waited =
                tokio::time::timeout(std::time::Duration::from_millis(300), reader.next()).await;
            assert!(waited.is_err(), "half a frame is no frame");
            let running = reader.running_crc.as_ref().expect("a checksum under way");
            assert!(running.upto > running.from, "nothing checked as it arrived");
            go_on.send(()).unwrap();
            assert!(
                matches!(
                    reader.next().await,
                    Err(ReadError::Frame(FrameError::Checksum { .. }))
                ),
                "byte {at} of {} changed, and the frame was taken",
                bad.len()
            );
        }
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

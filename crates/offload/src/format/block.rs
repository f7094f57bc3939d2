//! Pulsar's offloaded data block (V1), byte for byte. All integers big-endian.
//!
//! ```text
//! block  := header record* padding
//! header := magic:i32 = 0xFBDBABCB  header_len:i64 = 128  block_len:i64  first_entry_id:i64  zero[100]
//! record := len:i32  entry_id:i64  payload[len]
//! padding:= the bytes FE DC DE AD repeated, phase-aligned to the first padding byte
//! ```
//!
//! A data object is the concatenation of its blocks; each block is one multipart part. An entry is
//! never split across blocks. Block sizes follow Pulsar's formula ([`block_size`]) so part
//! boundaries and offsets match what Pulsar would write for the same ledger.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{FormatError, FormatResult};

pub const BLOCK_MAGIC: u32 = 0xFBDB_ABCB;
/// Magic of a streaming-offload (V2) block header; records are identical.
pub const STREAMING_BLOCK_MAGIC: u32 = 0x26A6_6D32;
pub const BLOCK_HEADER_LEN: u64 = 128;
pub const RECORD_HEADER_LEN: u64 = 12;
pub const PADDING: [u8; 4] = [0xFE, 0xDC, 0xDE, 0xAD];
/// S3's minimum part size, and Pulsar's minimum block size.
pub const MIN_BLOCK_SIZE: u64 = 5 * 1024 * 1024;

/// Size of the next block: `min(max_block, remaining_entries * 12 + remaining_bytes + 128)`.
pub fn block_size(
    max_block_size: u64,
    remaining_entries: u64,
    remaining_payload_bytes: u64,
) -> u64 {
    let exact = remaining_entries
        .saturating_mul(RECORD_HEADER_LEN)
        .saturating_add(remaining_payload_bytes)
        .saturating_add(BLOCK_HEADER_LEN);
    max_block_size.min(exact)
}

/// A decoded block header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockHeader {
    pub magic: u32,
    pub header_len: u64,
    pub block_len: u64,
    pub first_entry_id: u64,
}

/// Decodes a block header (V1 or streaming magic). Never panics; lengths are checked.
pub fn decode_block_header(bytes: &[u8]) -> FormatResult<BlockHeader> {
    if bytes.len() < 28 {
        return Err(FormatError::Truncated {
            what: "block header",
            need: 28,
            have: bytes.len() as u64,
        });
    }
    let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if magic != BLOCK_MAGIC && magic != STREAMING_BLOCK_MAGIC {
        return Err(FormatError::BadMagic {
            what: "data block",
            found: magic,
        });
    }
    let header_len = be_i64(&bytes[4..12]);
    let block_len = be_i64(&bytes[12..20]);
    let first_entry_id = be_i64(&bytes[20..28]);
    if header_len < 28 || block_len < header_len || first_entry_id < 0 {
        return Err(FormatError::Invalid(format!(
            "block header with header length {header_len}, block length {block_len}, first entry {first_entry_id}"
        )));
    }
    Ok(BlockHeader {
        magic,
        header_len: header_len as u64,
        block_len: block_len as u64,
        first_entry_id: first_entry_id as u64,
    })
}

pub(crate) fn be_i64(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    i64::from_be_bytes(a)
}

pub(crate) fn be_i32(b: &[u8]) -> i32 {
    i32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Decodes a whole block: its header and every record up to the padding or the block's end.
/// Returns `(entry_id, payload)` pairs. Lengths are checked against the bytes present before any
/// allocation, so damaged input gives an error, never a panic.
pub fn decode_block(bytes: &[u8]) -> FormatResult<(BlockHeader, Vec<(u64, Bytes)>)> {
    let header = decode_block_header(bytes)?;
    let end = usize::try_from(header.block_len)
        .ok()
        .filter(|&e| e <= bytes.len())
        .ok_or(FormatError::Truncated {
            what: "block",
            need: header.block_len,
            have: bytes.len() as u64,
        })?;
    let mut pos = usize::try_from(header.header_len)
        .map_err(|_| FormatError::Invalid("header length".into()))?;
    let mut out = Vec::new();
    let mut expected = header.first_entry_id;
    while pos + 4 <= end {
        let len = be_i32(&bytes[pos..pos + 4]);
        if len < 0 {
            break; // padding
        }
        if pos + RECORD_HEADER_LEN as usize > end {
            return Err(FormatError::Truncated {
                what: "record header",
                need: (pos + 12) as u64,
                have: end as u64,
            });
        }
        let id = be_i64(&bytes[pos + 4..pos + 12]);
        if id < 0 || id as u64 != expected {
            return Err(FormatError::Invalid(format!(
                "expected entry {expected}, found {id}"
            )));
        }
        let start = pos + RECORD_HEADER_LEN as usize;
        let stop = start
            .checked_add(len as usize)
            .filter(|&s| s <= end)
            .ok_or(FormatError::Truncated {
                what: "record",
                need: (start as u64).saturating_add(len as u64),
                have: end as u64,
            })?;
        out.push((id as u64, Bytes::copy_from_slice(&bytes[start..stop])));
        expected += 1;
        pos = stop;
    }
    Ok((header, out))
}

/// Plans one block (header, then records while they fit, then padding) and builds its bytes.
/// Adding an entry keeps a reference to it; [`finish`](Self::finish) makes the one copy, so a
/// caller can plan on its async thread and copy (and fault in the block's memory) elsewhere.
pub struct BlockBuilder {
    records: Vec<Bytes>,
    /// Bytes the block holds so far: header and records.
    len: usize,
    block_len: usize,
    first_entry_id: u64,
    payload_bytes: u64,
}

impl BlockBuilder {
    /// Starts a block of exactly `block_len` bytes whose first entry is `first_entry_id`.
    pub fn new(block_len: u64, first_entry_id: u64) -> FormatResult<Self> {
        if block_len < BLOCK_HEADER_LEN {
            return Err(FormatError::Invalid(format!(
                "block length {block_len} below the header length"
            )));
        }
        let block_len = usize::try_from(block_len)
            .map_err(|_| FormatError::Invalid("block too large".into()))?;
        Ok(BlockBuilder {
            records: Vec::new(),
            len: BLOCK_HEADER_LEN as usize,
            block_len,
            first_entry_id,
            payload_bytes: 0,
        })
    }

    /// Adds the next entry if its whole record fits; `false` means the block is full.
    pub fn try_add(&mut self, payload: &Bytes) -> bool {
        let record = RECORD_HEADER_LEN as usize + payload.len();
        if self.len + record > self.block_len || payload.len() > i32::MAX as usize {
            return false;
        }
        self.records.push(payload.clone());
        self.len += record;
        self.payload_bytes += payload.len() as u64;
        true
    }

    pub fn entries(&self) -> u64 {
        self.records.len() as u64
    }

    pub fn payload_bytes(&self) -> u64 {
        self.payload_bytes
    }

    /// The block's bytes: header, records, padding to the block length.
    pub fn finish(self) -> Bytes {
        let mut buf = BytesMut::with_capacity(self.block_len);
        buf.put_u32(BLOCK_MAGIC);
        buf.put_i64(BLOCK_HEADER_LEN as i64);
        buf.put_i64(self.block_len as i64);
        buf.put_i64(self.first_entry_id as i64);
        buf.put_bytes(0, BLOCK_HEADER_LEN as usize - buf.len());
        for (k, payload) in self.records.iter().enumerate() {
            buf.put_i32(payload.len() as i32);
            buf.put_i64((self.first_entry_id + k as u64) as i64);
            buf.put_slice(payload);
        }
        let pad = self.block_len - buf.len();
        buf.extend((0..pad).map(|k| PADDING[k % 4]));
        buf.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of the spec (§1.5): 3 entries of 5, 3 and 0 bytes, one 172-byte block.
    #[test]
    fn worked_example_bytes() {
        let size = block_size(64 << 20, 3, 8);
        assert_eq!(size, 172);
        let mut b = BlockBuilder::new(size, 0).unwrap();
        assert!(b.try_add(&Bytes::from_static(b"hello")));
        assert!(b.try_add(&Bytes::from_static(b"abc")));
        assert!(b.try_add(&Bytes::new()));
        let block = b.finish();
        assert_eq!(block.len(), 172);
        assert_eq!(
            &block[..20],
            &[
                0xFB, 0xDB, 0xAB, 0xCB, 0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0xAC
            ]
        );
        assert!(block[20..128].iter().all(|&b| b == 0));
        assert_eq!(&block[0x80..0x8C], &[0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&block[0x8C..0x91], b"hello");
        assert_eq!(&block[0x91..0x9D], &[0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(&block[0xA0..0xAC], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        let h = decode_block_header(&block).unwrap();
        assert_eq!((h.header_len, h.block_len, h.first_entry_id), (128, 172, 0));
    }

    #[test]
    fn padding_is_phase_aligned_to_its_first_byte() {
        let mut b = BlockBuilder::new(128 + 12 + 3 + 7, 9).unwrap();
        assert!(b.try_add(&Bytes::from_static(b"xyz")));
        assert!(!b.try_add(&Bytes::new()), "12 more bytes do not fit in 7");
        let block = b.finish();
        assert_eq!(&block[143..], &[0xFE, 0xDC, 0xDE, 0xAD, 0xFE, 0xDC, 0xDE]);
    }

    proptest::proptest! {
        #[test]
        fn block_round_trip(payloads in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), 1..40),
                            slack in 0u64..64, first in 0u64..1_000_000) {
            let bytes: u64 = payloads.iter().map(|p| p.len() as u64).sum();
            let size = block_size(64 << 20, payloads.len() as u64, bytes) + slack;
            let mut b = BlockBuilder::new(size, first).unwrap();
            for p in &payloads {
                proptest::prop_assert!(b.try_add(&Bytes::copy_from_slice(p)));
            }
            let block = b.finish();
            proptest::prop_assert_eq!(block.len() as u64, size);
            let (h, entries) = decode_block(&block).unwrap();
            proptest::prop_assert_eq!(h.first_entry_id, first);
            proptest::prop_assert_eq!(entries.len(), payloads.len());
            for (i, (id, data)) in entries.iter().enumerate() {
                proptest::prop_assert_eq!(*id, first + i as u64);
                proptest::prop_assert_eq!(&data[..], &payloads[i][..]);
            }
        }

        #[test]
        fn block_decoder_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600), cut in 0usize..600) {
            let _ = decode_block(&bytes[..cut.min(bytes.len())]);
            let mut b = BlockBuilder::new(300, 0).unwrap();
            b.try_add(&Bytes::copy_from_slice(&bytes[..bytes.len().min(100)]));
            let mut block = b.finish().to_vec();
            if cut < block.len() { block[cut] ^= 0x80; }
            let _ = decode_block(&block);
        }

        #[test]
        fn header_decoder_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = decode_block_header(&bytes);
        }
    }
}

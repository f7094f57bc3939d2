//! On-disk format of a ledger file. All integers are little-endian.
//!
//! ```text
//! file   := header record* footer?          (footer present only once sealed)
//! header := "TLLEDGR1" ledger_id:u64        (16 bytes)
//! record := len:u32 crc:u32 entry_id:u64 payload[len]
//!           crc = CRC32C(len_le ‖ entry_id_le ‖ payload)
//! footer := offset:u64 * n  n:u64  crc:u32  "TLSEAL01"
//!           offset = file position of the record of entry i; crc = CRC32C(offsets ‖ n)
//! ```
//!
//! Why this shape: the CRC covers the length and the id, so a torn or overwritten tail can never be
//! taken for a valid entry; the footer lets a sealed ledger be opened without scanning its records.

use crate::error::{HotTierError, Result};

pub const FILE_MAGIC: &[u8; 8] = b"TLLEDGR1";
pub const FILE_HEADER_LEN: u64 = 16;
pub const RECORD_HEADER_LEN: usize = 16;
pub const FOOTER_MAGIC: &[u8; 8] = b"TLSEAL01";
/// Bytes of the footer after the offsets array: n, crc, magic.
pub const FOOTER_TRAILER_LEN: u64 = 8 + 4 + 8;

pub fn encode_file_header(ledger_id: u64) -> [u8; FILE_HEADER_LEN as usize] {
    let mut h = [0u8; FILE_HEADER_LEN as usize];
    h[..8].copy_from_slice(FILE_MAGIC);
    h[8..].copy_from_slice(&ledger_id.to_le_bytes());
    h
}

/// Checks a file header and returns the ledger id it names.
pub fn decode_file_header(bytes: &[u8]) -> Option<u64> {
    if bytes.len() < FILE_HEADER_LEN as usize || &bytes[..8] != FILE_MAGIC {
        return None;
    }
    Some(u64::from_le_bytes(bytes[8..16].try_into().ok()?))
}

/// CRC32C of `parts` one after another.
fn crc32c_of(parts: &[&[u8]]) -> u32 {
    let mut crc = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi);
    for part in parts {
        crc.update(part);
    }
    crc.finalize() as u32
}

fn record_crc(len: u32, entry_id: u64, payload: &[u8]) -> u32 {
    crc32c_of(&[&len.to_le_bytes(), &entry_id.to_le_bytes(), payload])
}

/// Appends one record to `out`.
pub fn encode_record(out: &mut Vec<u8>, entry_id: u64, payload: &[u8]) {
    let len = payload.len() as u32;
    // One allocation for the record, not one per field as the vector grows.
    out.reserve(RECORD_HEADER_LEN + payload.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&record_crc(len, entry_id, payload).to_le_bytes());
    out.extend_from_slice(&entry_id.to_le_bytes());
    out.extend_from_slice(payload);
}

/// The fixed part of a record, decoded but not yet verified against its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    pub len: u32,
    pub crc: u32,
    pub entry_id: u64,
}

pub fn decode_record_header(bytes: &[u8; RECORD_HEADER_LEN]) -> RecordHeader {
    let word = |r: std::ops::Range<usize>| {
        let mut b = [0u8; 8];
        b[..r.len()].copy_from_slice(&bytes[r]);
        u64::from_le_bytes(b)
    };
    RecordHeader {
        len: word(0..4) as u32,
        crc: word(4..8) as u32,
        entry_id: word(8..16),
    }
}

impl RecordHeader {
    /// True when `payload` is exactly what this header was written with.
    pub fn matches(&self, payload: &[u8]) -> bool {
        payload.len() == self.len as usize
            && record_crc(self.len, self.entry_id, payload) == self.crc
    }
}

/// Encodes the footer of a sealed ledger.
pub fn encode_footer(offsets: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(offsets.len() * 8 + FOOTER_TRAILER_LEN as usize);
    for o in offsets {
        out.extend_from_slice(&o.to_le_bytes());
    }
    out.extend_from_slice(&(offsets.len() as u64).to_le_bytes());
    let crc = crc_fast::crc32_iscsi(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(FOOTER_MAGIC);
    out
}

/// Parses the trailer (last [`FOOTER_TRAILER_LEN`] bytes) of a sealed file: the entry count and CRC.
pub fn decode_footer_trailer(ledger_id: u64, bytes: &[u8]) -> Result<(u64, u32)> {
    let corrupt = |detail: &str| HotTierError::Corrupt {
        ledger_id,
        detail: detail.to_string(),
    };
    if bytes.len() != FOOTER_TRAILER_LEN as usize {
        return Err(corrupt("footer trailer has the wrong length"));
    }
    if &bytes[12..20] != FOOTER_MAGIC {
        return Err(corrupt("footer magic missing"));
    }
    let n = u64::from_le_bytes(
        bytes[0..8]
            .try_into()
            .map_err(|_| corrupt("footer count"))?,
    );
    let crc = u32::from_le_bytes(bytes[8..12].try_into().map_err(|_| corrupt("footer crc"))?);
    Ok((n, crc))
}

/// Verifies and decodes the offsets array of a footer given its count and CRC from the trailer.
pub fn decode_footer_offsets(ledger_id: u64, bytes: &[u8], n: u64, crc: u32) -> Result<Vec<u64>> {
    let corrupt = |detail: &str| HotTierError::Corrupt {
        ledger_id,
        detail: detail.to_string(),
    };
    if bytes.len() as u64 != n.saturating_mul(8) {
        return Err(corrupt("footer offsets have the wrong length"));
    }
    let computed = crc32c_of(&[bytes, &n.to_le_bytes()]);
    if computed != crc {
        return Err(corrupt("footer checksum mismatch"));
    }
    let offsets: Vec<u64> = bytes
        .chunks_exact(8)
        .map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            u64::from_le_bytes(b)
        })
        .collect();
    if offsets.windows(2).any(|w| w[0] >= w[1]) {
        return Err(corrupt("footer offsets are not increasing"));
    }
    Ok(offsets)
}

/// Journal files. All integers little-endian.
///
/// ```text
/// journal    := "TLJRNL01" seq:u64 chunk*
/// chunk      := crc:u32 len:u32 ledger_id:u64 records[len]
///               crc = CRC32C(len_le ‖ ledger_id_le ‖ records)
/// records    := record+                        (the ledger-file records of one ledger, in entry order)
/// checkpoint := "TLCKPT01" seq:u64 offset:u64 crc:u32   crc = CRC32C(seq_le ‖ offset_le)
/// ```
///
/// A chunk carries exactly the bytes that go to the ledger's own file, so replay copies them
/// there unchanged. The chunk CRC covers everything after itself, so a torn or stale chunk
/// ends the replay of its file; the records inside also keep their own CRCs.
pub const JOURNAL_MAGIC: &[u8; 8] = b"TLJRNL01";
pub const JOURNAL_HEADER_LEN: u64 = 16;
pub const CHUNK_HEADER_LEN: usize = 16;
pub const CHECKPOINT_MAGIC: &[u8; 8] = b"TLCKPT01";
pub const CHECKPOINT_LEN: usize = 28;

pub fn encode_journal_header(seq: u64) -> [u8; JOURNAL_HEADER_LEN as usize] {
    let mut h = [0u8; JOURNAL_HEADER_LEN as usize];
    h[..8].copy_from_slice(JOURNAL_MAGIC);
    h[8..].copy_from_slice(&seq.to_le_bytes());
    h
}

/// Checks a journal file header and returns the sequence number it names.
pub fn decode_journal_header(bytes: &[u8]) -> Option<u64> {
    if bytes.len() < JOURNAL_HEADER_LEN as usize || &bytes[..8] != JOURNAL_MAGIC {
        return None;
    }
    Some(u64::from_le_bytes(bytes[8..16].try_into().ok()?))
}

fn chunk_crc(len: u32, ledger_id: u64, records: &[u8]) -> u32 {
    crc32c_of(&[&len.to_le_bytes(), &ledger_id.to_le_bytes(), records])
}

/// Appends one chunk (header and `records`) to `out`.
pub fn encode_chunk(out: &mut Vec<u8>, ledger_id: u64, records: &[u8]) {
    let len = records.len() as u32;
    out.extend_from_slice(&chunk_crc(len, ledger_id, records).to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&ledger_id.to_le_bytes());
    out.extend_from_slice(records);
}

/// The fixed part of a chunk, decoded but not yet verified against its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkHeader {
    pub crc: u32,
    pub len: u32,
    pub ledger_id: u64,
}

pub fn decode_chunk_header(bytes: &[u8; CHUNK_HEADER_LEN]) -> ChunkHeader {
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&bytes[0..4]);
    let mut len = [0u8; 4];
    len.copy_from_slice(&bytes[4..8]);
    let mut id = [0u8; 8];
    id.copy_from_slice(&bytes[8..16]);
    ChunkHeader {
        crc: u32::from_le_bytes(crc),
        len: u32::from_le_bytes(len),
        ledger_id: u64::from_le_bytes(id),
    }
}

impl ChunkHeader {
    /// True when `records` is exactly what this header was written with.
    pub fn matches(&self, records: &[u8]) -> bool {
        records.len() == self.len as usize
            && chunk_crc(self.len, self.ledger_id, records) == self.crc
    }
}

/// Splits the records of a verified chunk into (entry id, whole record bytes). Stops at the first
/// record that does not decode or match its own CRC (none should: the chunk CRC held).
pub fn chunk_records(records: &[u8]) -> Vec<(u64, &[u8])> {
    let mut out = Vec::new();
    let mut rest = records;
    while let Some(header) = rest
        .get(..RECORD_HEADER_LEN)
        .and_then(|h| <&[u8; RECORD_HEADER_LEN]>::try_from(h).ok())
    {
        let header = decode_record_header(header);
        let end = RECORD_HEADER_LEN + header.len as usize;
        let Some(payload) = rest.get(RECORD_HEADER_LEN..end) else {
            break;
        };
        if !header.matches(payload) {
            break;
        }
        out.push((header.entry_id, &rest[..end]));
        rest = &rest[end..];
    }
    out
}

pub fn encode_checkpoint(seq: u64, offset: u64) -> [u8; CHECKPOINT_LEN] {
    let mut c = [0u8; CHECKPOINT_LEN];
    c[..8].copy_from_slice(CHECKPOINT_MAGIC);
    c[8..16].copy_from_slice(&seq.to_le_bytes());
    c[16..24].copy_from_slice(&offset.to_le_bytes());
    let crc = crc_fast::crc32_iscsi(&c[8..24]);
    c[24..28].copy_from_slice(&crc.to_le_bytes());
    c
}

/// The (journal sequence, offset) a checkpoint names, or `None` if it is damaged.
pub fn decode_checkpoint(bytes: &[u8]) -> Option<(u64, u64)> {
    if bytes.len() != CHECKPOINT_LEN || &bytes[..8] != CHECKPOINT_MAGIC {
        return None;
    }
    let crc = u32::from_le_bytes(bytes[24..28].try_into().ok()?);
    if crc_fast::crc32_iscsi(&bytes[8..24]) != crc {
        return None;
    }
    Some((
        u64::from_le_bytes(bytes[8..16].try_into().ok()?),
        u64::from_le_bytes(bytes[16..24].try_into().ok()?),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn checksums_are_crc32c_of_the_parts_one_after_another() {
        // CRC-32C's check value: files written before are read with the same checksum.
        assert_eq!(crc32c_of(&[b"1234", b"", b"56789"]), 0xe306_9283);
        assert_eq!(crc_fast::crc32_iscsi(b"123456789"), 0xe306_9283);
    }

    proptest! {
        #[test]
        fn parts_checksum_as_their_concatenation(
            a in proptest::collection::vec(any::<u8>(), 0..300),
            b in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            prop_assert_eq!(crc32c_of(&[&a, &b]), crc_fast::crc32_iscsi(&[a.clone(), b.clone()].concat()));
        }

        #[test]
        fn record_round_trip(entry_id in any::<u64>(), payload in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let mut buf = Vec::new();
            encode_record(&mut buf, entry_id, &payload);
            prop_assert_eq!(buf.len(), RECORD_HEADER_LEN + payload.len());
            let header = decode_record_header(buf[..RECORD_HEADER_LEN].try_into().unwrap());
            prop_assert_eq!(header.entry_id, entry_id);
            prop_assert!(header.matches(&buf[RECORD_HEADER_LEN..]));
        }

        #[test]
        fn any_flipped_bit_is_detected(payload in proptest::collection::vec(any::<u8>(), 1..512), bit in any::<usize>()) {
            let mut buf = Vec::new();
            encode_record(&mut buf, 7, &payload);
            let bit = bit % (buf.len() * 8);
            buf[bit / 8] ^= 1 << (bit % 8);
            let header = decode_record_header(buf[..RECORD_HEADER_LEN].try_into().unwrap());
            let ok = header.entry_id == 7 && header.matches(&buf[RECORD_HEADER_LEN..]);
            prop_assert!(!ok);
        }

        #[test]
        fn footer_round_trip(mut offsets in proptest::collection::vec(1u64..u64::MAX / 2, 0..500)) {
            offsets.sort_unstable();
            offsets.dedup();
            let footer = encode_footer(&offsets);
            let split = footer.len() - FOOTER_TRAILER_LEN as usize;
            let (n, crc) = decode_footer_trailer(1, &footer[split..]).unwrap();
            prop_assert_eq!(n as usize, offsets.len());
            let back = decode_footer_offsets(1, &footer[..split], n, crc).unwrap();
            prop_assert_eq!(back, offsets);
        }

        #[test]
        fn footer_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256), n in any::<u64>(), crc in any::<u32>()) {
            let _ = decode_footer_trailer(1, &bytes);
            let _ = decode_footer_offsets(1, &bytes, n, crc);
            let _ = decode_file_header(&bytes);
        }
        #[test]
        fn chunk_round_trip(ledger_id in any::<u64>(), payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..8)) {
            let mut records = Vec::new();
            for (i, p) in payloads.iter().enumerate() {
                encode_record(&mut records, 10 + i as u64, p);
            }
            let mut chunk = Vec::new();
            encode_chunk(&mut chunk, ledger_id, &records);
            let header = decode_chunk_header(chunk[..CHUNK_HEADER_LEN].try_into().unwrap());
            prop_assert_eq!(header.ledger_id, ledger_id);
            prop_assert!(header.matches(&chunk[CHUNK_HEADER_LEN..]));
            let split = chunk_records(&chunk[CHUNK_HEADER_LEN..]);
            prop_assert_eq!(split.len(), payloads.len());
            for (i, (id, rec)) in split.iter().enumerate() {
                prop_assert_eq!(*id, 10 + i as u64);
                prop_assert_eq!(&rec[RECORD_HEADER_LEN..], &payloads[i][..]);
            }
        }

        #[test]
        fn any_flipped_bit_of_a_chunk_is_detected(payload in proptest::collection::vec(any::<u8>(), 1..512), bit in any::<usize>()) {
            let mut records = Vec::new();
            encode_record(&mut records, 3, &payload);
            let mut chunk = Vec::new();
            encode_chunk(&mut chunk, 9, &records);
            let bit = bit % (chunk.len() * 8);
            chunk[bit / 8] ^= 1 << (bit % 8);
            let header = decode_chunk_header(chunk[..CHUNK_HEADER_LEN].try_into().unwrap());
            prop_assert!(!(header.ledger_id == 9 && header.matches(&chunk[CHUNK_HEADER_LEN..])));
        }

        #[test]
        fn journal_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_journal_header(&bytes);
            let _ = decode_checkpoint(&bytes);
            let _ = chunk_records(&bytes);
            if let Some(h) = bytes.get(..CHUNK_HEADER_LEN) {
                let _ = decode_chunk_header(h.try_into().unwrap()).matches(&bytes[CHUNK_HEADER_LEN..]);
            }
        }

        #[test]
        fn checkpoint_round_trip(seq in any::<u64>(), offset in any::<u64>(), bit in 0usize..224) {
            let mut c = encode_checkpoint(seq, offset);
            prop_assert_eq!(decode_checkpoint(&c), Some((seq, offset)));
            c[bit / 8] ^= 1 << (bit % 8);
            prop_assert_eq!(decode_checkpoint(&c), None);
        }
    }
}

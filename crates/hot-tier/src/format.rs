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

fn record_crc(len: u32, entry_id: u64, payload: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&len.to_le_bytes());
    let crc = crc32c::crc32c_append(crc, &entry_id.to_le_bytes());
    crc32c::crc32c_append(crc, payload)
}

/// Appends one record to `out`.
pub fn encode_record(out: &mut Vec<u8>, entry_id: u64, payload: &[u8]) {
    let len = payload.len() as u32;
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
    let crc = crc32c::crc32c(&out);
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
    let computed = crc32c::crc32c_append(crc32c::crc32c(bytes), &n.to_le_bytes());
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
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
    }
}

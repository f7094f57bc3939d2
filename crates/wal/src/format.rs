//! What the WAL writes: the object layout and the extent records in the metadata store.
//!
//! An object is `"TLWAL001"` followed by one *extent* per ledger of the flush: that ledger's
//! entries of the flush as records `[len: u32 BE][crc32c of the entry: u32 BE][entry bytes]`.
//! The object orders nothing; each extent's place in its ledger is its metadata record
//! ([`Extent`], at [`crate::keys::extent_key`]).

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use crate::error::{Result, WalError};

/// The first bytes of every WAL object.
pub const OBJECT_MAGIC: &[u8; 8] = b"TLWAL001";
/// Bytes before each entry in an extent.
pub const RECORD_HEADER_LEN: usize = 8;

/// Where a run of consecutive entries of one ledger lives: the value of its extent key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extent {
    /// The object's path in the store.
    pub object: String,
    /// Byte range of the extent in the object.
    pub offset: u64,
    pub length: u64,
    /// Id of its first entry and how many it holds.
    pub first: u64,
    pub entries: u64,
    /// Sum of the entries' lengths.
    pub bytes: u64,
}

impl Extent {
    /// Id of its last entry.
    pub fn last(&self) -> u64 {
        self.first + self.entries - 1
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(key: &str, value: &[u8]) -> Result<Extent> {
        let e: Extent = serde_json::from_slice(value).map_err(|e| WalError::Corrupt {
            what: key.to_string(),
            detail: e.to_string(),
        })?;
        if e.entries == 0 || e.length < e.entries * RECORD_HEADER_LEN as u64 {
            return Err(WalError::Corrupt {
                what: key.to_string(),
                detail: format!("{} entries in {} bytes", e.entries, e.length),
            });
        }
        Ok(e)
    }
}

/// Appends the records of `entries` to `out`.
pub fn encode_extent(out: &mut BytesMut, entries: &[Bytes]) {
    for e in entries {
        out.put_u32(e.len() as u32);
        out.put_u32(crc32c::crc32c(e));
        out.put_slice(e);
    }
}

/// The entries of an extent's bytes, each checked against its checksum. `what` names the
/// extent in errors.
pub fn decode_extent(what: &str, bytes: &Bytes, entries: u64) -> Result<Vec<Bytes>> {
    let corrupt = |detail: String| WalError::Corrupt {
        what: what.to_string(),
        detail,
    };
    let mut out = Vec::with_capacity(entries as usize);
    let mut at = 0usize;
    for i in 0..entries {
        let header = bytes
            .get(at..at + RECORD_HEADER_LEN)
            .ok_or_else(|| corrupt(format!("record {i} is cut short")))?;
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        let start = at + RECORD_HEADER_LEN;
        let payload = bytes
            .get(start..start + len)
            .ok_or_else(|| corrupt(format!("record {i} of {len} bytes is cut short")))?;
        if crc32c::crc32c(payload) != crc {
            return Err(corrupt(format!("record {i} fails its checksum")));
        }
        out.push(bytes.slice(start..start + len));
        at = start + len;
    }
    if at != bytes.len() {
        return Err(corrupt(format!(
            "{} bytes after the last record",
            bytes.len() - at
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn extents_round_trip(entries in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..20)) {
            let entries: Vec<Bytes> = entries.into_iter().map(Bytes::from).collect();
            let mut out = BytesMut::new();
            encode_extent(&mut out, &entries);
            let bytes = out.freeze();
            prop_assert_eq!(decode_extent("t", &bytes, entries.len() as u64).unwrap(), entries);
        }

        #[test]
        fn damage_is_detected(entries in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..100), 1..10), at in any::<prop::sample::Index>(), bit in 0u8..8) {
            let entries: Vec<Bytes> = entries.into_iter().map(Bytes::from).collect();
            let mut out = BytesMut::new();
            encode_extent(&mut out, &entries);
            let mut bytes = out.to_vec();
            let i = at.index(bytes.len());
            bytes[i] ^= 1 << bit;
            let decoded = decode_extent("t", &Bytes::from(bytes), entries.len() as u64);
            // A flipped bit is either caught or (in a length field) turns into a cut-short or
            // trailing-bytes error: never different entries.
            prop_assert!(decoded.is_err() || decoded.unwrap() == entries);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), n in 0u64..10) {
            let _ = decode_extent("t", &Bytes::from(bytes), n);
        }
    }
}

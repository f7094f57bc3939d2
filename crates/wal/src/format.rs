//! What the WAL writes: the object layout and the extent records in the metadata store.
//!
//! An object is `"TLWAL001"` followed by one *extent* per ledger of the flush: that ledger's
//! entries of the flush as records `[len: u32 BE][crc32c of the entry: u32 BE][entry bytes]`.
//! The object orders nothing; each extent's place in its ledger is its metadata record: first
//! one [`FlushRecord`] for the whole flush, then ([`Extent`], at [`crate::keys::extent_key`])
//! one key per ledger.

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
        let e: Extent = decode_json(key, value)?;
        check_extent(key, "", e.entries, e.length)?;
        Ok(e)
    }
}

/// One commit of a flush: where each of its ledgers' entries lives, in one metadata value
/// (at [`crate::keys::flush_record_key`]). Committing one key instead of one per ledger keeps
/// the commit on the acknowledgement path short (etcd's cost grows with the keys a transaction
/// writes); the writer then *indexes* the record — copies its extents to their per-ledger keys
/// and deletes it — off that path. Until then readers merge it with the extent keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlushRecord {
    /// The object every part lives in.
    pub object: String,
    pub parts: Vec<RecordPart>,
}

/// One ledger's extent in a [`FlushRecord`] (its object is the record's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordPart {
    pub managed_ledger: String,
    pub ledger_id: i64,
    pub offset: u64,
    pub length: u64,
    pub first: u64,
    pub entries: u64,
    pub bytes: u64,
}

impl FlushRecord {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes a record; every part must be a valid extent.
    pub fn decode(key: &str, value: &[u8]) -> Result<FlushRecord> {
        let r: FlushRecord = decode_json(key, value)?;
        for p in &r.parts {
            let ledger = format!("ledger {}: ", p.ledger_id);
            check_extent(key, &ledger, p.entries, p.length)?;
        }
        Ok(r)
    }

    /// The extent of one part.
    pub fn extent(&self, part: &RecordPart) -> Extent {
        Extent {
            object: self.object.clone(),
            offset: part.offset,
            length: part.length,
            first: part.first,
            entries: part.entries,
            bytes: part.bytes,
        }
    }

    /// The part of `ledger_id` of `managed_ledger`, as an extent, if the record has one.
    pub fn extent_of(&self, managed_ledger: &str, ledger_id: i64) -> Option<Extent> {
        self.parts
            .iter()
            .find(|p| p.ledger_id == ledger_id && p.managed_ledger == managed_ledger)
            .map(|p| self.extent(p))
    }
}

/// A metadata value of the WAL's, decoded; `key` names it in the error.
fn decode_json<T: serde::de::DeserializeOwned>(key: &str, value: &[u8]) -> Result<T> {
    serde_json::from_slice(value).map_err(|e| WalError::Corrupt {
        what: key.to_string(),
        detail: e.to_string(),
    })
}

/// Whether `entries` entries can be in `length` bytes of an extent (at least one entry, and
/// a record header each).
fn check_extent(key: &str, which: &str, entries: u64, length: u64) -> Result<()> {
    if entries == 0 || length < entries.saturating_mul(RECORD_HEADER_LEN as u64) {
        return Err(WalError::Corrupt {
            what: key.to_string(),
            detail: format!("{which}{entries} entries in {length} bytes"),
        });
    }
    Ok(())
}

/// Entries this long or longer go into an object without being copied: the body references
/// them where they are (the frames they arrived in). Shorter ones are copied next to their
/// record headers, so a flush of many small entries stays a few large chunks.
pub const ZERO_COPY_MIN: usize = 8 * 1024;

/// An object's bytes as they are built, as a list of chunks: the magic, every record header and
/// every entry shorter than [`ZERO_COPY_MIN`] are copied into one buffer sized for them up
/// front; longer entries are referenced. A flush of batched entries thus neither copies its
/// payload nor touches fresh memory for it (a flat body of 8–24 MiB per flush did both, and
/// took a fifth of the broker's CPU at full load).
pub struct ObjectBody {
    chunks: Vec<Bytes>,
    copied: BytesMut,
    size: u64,
}

impl ObjectBody {
    /// A body holding the magic, with room for the copied part of `entries` (every entry the
    /// object will hold, over all its extents).
    pub fn for_entries<'a>(entries: impl IntoIterator<Item = &'a Bytes>) -> Self {
        let copied: usize = entries
            .into_iter()
            .map(|e| RECORD_HEADER_LEN + if e.len() < ZERO_COPY_MIN { e.len() } else { 0 })
            .sum();
        let mut buf = BytesMut::with_capacity(OBJECT_MAGIC.len() + copied);
        buf.put_slice(OBJECT_MAGIC);
        ObjectBody {
            chunks: Vec::new(),
            copied: buf,
            size: OBJECT_MAGIC.len() as u64,
        }
    }

    /// Bytes in the body so far: where the next extent starts.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends one extent: the records of `entries`.
    pub fn push_extent(&mut self, entries: &[Bytes]) {
        for e in entries {
            self.copied.put_u32(e.len() as u32);
            self.copied.put_u32(crc_fast::crc32_iscsi(e));
            if e.len() >= ZERO_COPY_MIN {
                // `split` hands over what was copied so far without copying it again; the
                // rest of the buffer's room stays for the records after this one.
                self.chunks.push(self.copied.split().freeze());
                self.chunks.push(e.clone());
            } else {
                self.copied.put_slice(e);
            }
            self.size += (RECORD_HEADER_LEN + e.len()) as u64;
        }
    }

    /// The body's chunks, in order.
    pub fn into_chunks(mut self) -> Vec<Bytes> {
        if !self.copied.is_empty() {
            self.chunks.push(self.copied.freeze());
        }
        self.chunks
    }
}

/// The entries of an extent's bytes, each checked against its checksum. `what` names the
/// extent in errors.
pub fn decode_extent(what: &str, bytes: &Bytes, entries: u64) -> Result<Vec<Bytes>> {
    let corrupt = |detail: String| WalError::Corrupt {
        what: what.to_string(),
        detail,
    };
    // Every record has a header: no more can be in these bytes, whatever `entries` says.
    let mut out = Vec::with_capacity((entries as usize).min(bytes.len() / RECORD_HEADER_LEN));
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
        if crc_fast::crc32_iscsi(payload) != crc {
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

    /// The bytes of one extent of `entries`, built as the writer builds objects.
    fn extent_bytes(entries: &[Bytes]) -> Bytes {
        let mut body = ObjectBody::for_entries(entries);
        body.push_extent(entries);
        let all: Vec<u8> = body.into_chunks().concat();
        Bytes::from(all).slice(OBJECT_MAGIC.len()..)
    }

    /// Some bytes that are sometimes JSON of a record.
    fn bytes_of(n: u64) -> Vec<u8> {
        match n % 3 {
            0 => b"{\"object\":\"o\",\"parts\":[{}]}".to_vec(),
            1 => format!("{{\"object\":\"o\",\"parts\":[{{\"managed_ledger\":\"a\",\"ledger_id\":1,\"offset\":0,\"length\":{n},\"first\":0,\"entries\":{},\"bytes\":0}}]}}", u64::MAX - n).into_bytes(),
            _ => vec![n as u8; n as usize],
        }
    }

    /// Entry lengths on both sides of [`ZERO_COPY_MIN`].
    fn entry() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..300),
            proptest::collection::vec(any::<u8>(), ZERO_COPY_MIN - 2..ZERO_COPY_MIN + 300),
        ]
    }

    #[test]
    fn long_entries_are_referenced_not_copied() {
        let long = Bytes::from(vec![7u8; ZERO_COPY_MIN]);
        let short = Bytes::from_static(b"short");
        let entries = [short.clone(), long.clone(), short.clone(), long.clone()];
        let mut body = ObjectBody::for_entries(&entries);
        body.push_extent(&entries[..2]);
        let second = body.size();
        body.push_extent(&entries[2..]);
        let len = body.size();
        let chunks = body.into_chunks();
        let referenced: Vec<_> = chunks
            .iter()
            .filter(|c| c.as_ptr() == long.as_ptr())
            .collect();
        assert_eq!(
            referenced.len(),
            2,
            "both long entries are the caller's own bytes"
        );
        assert_eq!(chunks.iter().map(|c| c.len() as u64).sum::<u64>(), len);
        let all = Bytes::from(chunks.concat());
        assert_eq!(&all[..OBJECT_MAGIC.len()], OBJECT_MAGIC);
        let first = all.slice(OBJECT_MAGIC.len()..second as usize);
        assert_eq!(decode_extent("t", &first, 2).unwrap(), entries[..2]);
        let rest = all.slice(second as usize..);
        assert_eq!(decode_extent("t", &rest, 2).unwrap(), entries[2..]);
    }

    proptest! {
        #[test]
        fn extents_round_trip(entries in proptest::collection::vec(entry(), 1..20)) {
            let entries: Vec<Bytes> = entries.into_iter().map(Bytes::from).collect();
            let bytes = extent_bytes(&entries);
            prop_assert_eq!(decode_extent("t", &bytes, entries.len() as u64).unwrap(), entries);
        }

        #[test]
        fn damage_is_detected(entries in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..100), 1..10), at in any::<prop::sample::Index>(), bit in 0u8..8) {
            let entries: Vec<Bytes> = entries.into_iter().map(Bytes::from).collect();
            let mut bytes = extent_bytes(&entries).to_vec();
            let i = at.index(bytes.len());
            bytes[i] ^= 1 << bit;
            let decoded = decode_extent("t", &Bytes::from(bytes), entries.len() as u64);
            // A flipped bit is either caught or (in a length field) turns into a cut-short or
            // trailing-bytes error: never different entries.
            prop_assert!(decoded.is_err() || decoded.unwrap() == entries);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), n in 0u64..10) {
            let bytes = Bytes::from(bytes);
            let _ = decode_extent("t", &bytes, n);
            let _ = decode_extent("t", &bytes, u64::MAX - n);
            let _ = FlushRecord::decode("k", &bytes_of(n));
        }

        #[test]
        fn flush_records_round_trip_and_refuse_impossible_extents(
            parts in proptest::collection::vec(("[a-z/]{1,30}", any::<i64>(), any::<u64>(), 0u64..1 << 40, any::<u64>(), 0u64..1 << 30, any::<u64>()), 0..20),
        ) {
            let record = FlushRecord {
                object: "wal/c/b/o".into(),
                parts: parts
                    .into_iter()
                    .map(|(managed_ledger, ledger_id, offset, length, first, entries, bytes)| RecordPart {
                        managed_ledger, ledger_id, offset, length, first, entries, bytes,
                    })
                    .collect(),
            };
            let possible = record
                .parts
                .iter()
                .all(|p| p.entries > 0 && p.length >= p.entries * RECORD_HEADER_LEN as u64);
            match FlushRecord::decode("k", &record.encode()) {
                Ok(decoded) => {
                    prop_assert!(possible);
                    prop_assert_eq!(&decoded, &record);
                    for p in &decoded.parts {
                        let e = decoded.extent_of(&p.managed_ledger, p.ledger_id).unwrap();
                        prop_assert_eq!(e.object.as_str(), "wal/c/b/o");
                    }
                }
                Err(WalError::Corrupt { .. }) => prop_assert!(!possible),
                Err(e) => prop_assert!(false, "{e}"),
            }
        }
    }
}

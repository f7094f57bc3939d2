//! Pulsar's offload index object, byte for byte. All integers big-endian.
//!
//! V1 (written by per-ledger offload, the only kind Pulsar writes in practice):
//! ```text
//! magic:i32 = 0xDE47DE47  index_len:i32  data_object_len:i64  data_header_len:i64 = 128
//! entry_count:i32  metadata_len:i32  LedgerMetadataFormat[metadata_len]
//! entry_count × (first_entry_id:i64  part_id:i32  block_offset:i64)
//! ```
//! V2 (streaming offload, read-only here): magic 0x3D1FB0BC, then per ledger
//! `ledger_id:i64 entry_count:i32 metadata_len:i32 LedgerInfo entries…` until the end.
//!
//! Decoding never trusts a length before checking it against the bytes actually present, so a
//! corrupt or truncated object gives an error, not a panic or a huge allocation.

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message;

use crate::error::{FormatError, FormatResult};
use crate::format::block::{BLOCK_HEADER_LEN, be_i32, be_i64};
use crate::format::ledger_metadata::{LedgerMetadataFormat, LedgerState, MlLedgerInfo};

pub const INDEX_MAGIC_V1: u32 = 0xDE47_DE47;
pub const INDEX_MAGIC_V2: u32 = 0x3D1F_B0BC;
const INDEX_ENTRY_LEN: usize = 20;

/// One block of the data object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    pub first_entry_id: i64,
    /// Multipart part number, from 1.
    pub part_id: i32,
    /// Byte offset of the block's header in the data object.
    pub block_offset: i64,
}

/// What a reader needs to know about an offloaded ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct OffloadIndex {
    pub data_object_len: u64,
    pub data_header_len: u64,
    /// Blocks in order, first entries strictly increasing, first block at entry 0.
    pub entries: Vec<IndexEntry>,
    pub last_entry_id: i64,
    /// Sum of payload bytes of all entries.
    pub length: i64,
    pub closed: bool,
    /// The V1 ledger metadata as stored (absent for V2).
    pub metadata: Option<LedgerMetadataFormat>,
}

impl OffloadIndex {
    /// The index entry of the block holding `entry_id` (greatest first entry ≤ it).
    pub fn block_of(&self, entry_id: i64) -> Option<(usize, &IndexEntry)> {
        let i = self
            .entries
            .partition_point(|e| e.first_entry_id <= entry_id);
        i.checked_sub(1).map(|i| (i, &self.entries[i]))
    }

    /// The managed ledger the ledger belongs to, as its metadata names it (BookKeeper's custom
    /// metadata key `pulsar/managed-ledger`, which Pulsar sets on every ledger and tierlog writes
    /// into the index).
    pub fn managed_ledger_name(&self) -> Option<String> {
        self.metadata.as_ref().and_then(|m| {
            m.custom_metadata.iter().find_map(|c| {
                (c.key.as_deref() == Some("pulsar/managed-ledger"))
                    .then(|| {
                        c.value
                            .as_ref()
                            .map(|v| String::from_utf8_lossy(v).into_owned())
                    })
                    .flatten()
            })
        })
    }

    /// Offset where the first record of block `i` starts.
    pub fn data_offset(&self, i: usize) -> Option<u64> {
        self.entries
            .get(i)
            .map(|e| e.block_offset as u64 + self.data_header_len)
    }

    /// End offset of block `i` (start of the next, or the object's end).
    pub fn block_end(&self, i: usize) -> u64 {
        self.entries
            .get(i + 1)
            .map(|e| e.block_offset as u64)
            .unwrap_or(self.data_object_len)
    }
}

/// Encodes a V1 index.
pub fn encode_index_v1(
    data_object_len: u64,
    entries: &[IndexEntry],
    metadata: &LedgerMetadataFormat,
) -> Bytes {
    let meta = metadata.encode_to_vec();
    let total = 32 + meta.len() + INDEX_ENTRY_LEN * entries.len();
    let mut buf = BytesMut::with_capacity(total);
    buf.put_u32(INDEX_MAGIC_V1);
    buf.put_i32(total as i32);
    buf.put_i64(data_object_len as i64);
    buf.put_i64(BLOCK_HEADER_LEN as i64);
    buf.put_i32(entries.len() as i32);
    buf.put_i32(meta.len() as i32);
    buf.put_slice(&meta);
    for e in entries {
        buf.put_i64(e.first_entry_id);
        buf.put_i32(e.part_id);
        buf.put_i64(e.block_offset);
    }
    buf.freeze()
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> FormatResult<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(FormatError::Truncated {
                what,
                need: (self.pos as u64).saturating_add(n as u64),
                have: self.bytes.len() as u64,
            });
        };
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn i32(&mut self, what: &'static str) -> FormatResult<i32> {
        self.take(4, what).map(be_i32)
    }
    fn i64(&mut self, what: &'static str) -> FormatResult<i64> {
        self.take(8, what).map(be_i64)
    }
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }
}

fn non_negative(v: i64, what: &str) -> FormatResult<u64> {
    u64::try_from(v).map_err(|_| FormatError::Invalid(format!("negative {what}: {v}")))
}

/// Decodes a V1 or V2 index object (dispatching on its magic).
pub fn decode_index(bytes: &[u8]) -> FormatResult<OffloadIndex> {
    let mut c = Cursor { bytes, pos: 0 };
    let magic = c.i32("index magic")? as u32;
    let _stored_len = c.i32("index length")?; // Ignored by readers, as Pulsar's reader does.
    let data_object_len = non_negative(c.i64("data object length")?, "data object length")?;
    let data_header_len = non_negative(c.i64("data header length")?, "data header length")?;
    let index = match magic {
        INDEX_MAGIC_V1 => {
            let count = c.i32("index entry count")?;
            let meta_len = c.i32("metadata length")?;
            let count = usize::try_from(count)
                .map_err(|_| FormatError::Invalid(format!("entry count {count}")))?;
            let meta_len = usize::try_from(meta_len)
                .map_err(|_| FormatError::Invalid(format!("metadata length {meta_len}")))?;
            let meta_bytes = c.take(meta_len, "ledger metadata")?;
            let metadata = LedgerMetadataFormat::decode(meta_bytes)
                .map_err(|e| FormatError::Invalid(format!("ledger metadata: {e}")))?;
            let entries = decode_entries(&mut c, count)?;
            let state = LedgerState::try_from(metadata.state).unwrap_or(LedgerState::Open);
            OffloadIndex {
                data_object_len,
                data_header_len,
                entries,
                last_entry_id: metadata.last_entry_id.unwrap_or(-1),
                length: metadata.length,
                closed: state == LedgerState::Closed,
                metadata: Some(metadata),
            }
        }
        INDEX_MAGIC_V2 => {
            // A streaming index may describe several ledgers; the read path needs one.
            let mut all = Vec::new();
            let mut info: Option<MlLedgerInfo> = None;
            while c.remaining() > 0 {
                let _ledger_id = c.i64("ledger id")?;
                let count = c.i32("index entry count")?;
                let meta_len = c.i32("metadata length")?;
                let count = usize::try_from(count)
                    .map_err(|_| FormatError::Invalid(format!("entry count {count}")))?;
                let meta_len = usize::try_from(meta_len)
                    .map_err(|_| FormatError::Invalid(format!("metadata length {meta_len}")))?;
                let li = MlLedgerInfo::decode(c.take(meta_len, "ledger info")?)
                    .map_err(|e| FormatError::Invalid(format!("ledger info: {e}")))?;
                all.extend(decode_entries(&mut c, count)?);
                info.get_or_insert(li);
            }
            let info = info
                .ok_or_else(|| FormatError::Invalid("streaming index without a ledger".into()))?;
            OffloadIndex {
                data_object_len,
                data_header_len,
                entries: all,
                last_entry_id: info.entries.unwrap_or(0) - 1,
                length: info.size.unwrap_or(0),
                closed: true,
                metadata: None,
            }
        }
        other => {
            return Err(FormatError::BadMagic {
                what: "index",
                found: other,
            });
        }
    };
    validate(&index)?;
    Ok(index)
}

fn decode_entries(c: &mut Cursor<'_>, count: usize) -> FormatResult<Vec<IndexEntry>> {
    // Check the bytes exist before allocating for `count` entries.
    let need = count
        .checked_mul(INDEX_ENTRY_LEN)
        .ok_or_else(|| FormatError::Invalid("entry count overflows".into()))?;
    if need > c.remaining() {
        return Err(FormatError::Truncated {
            what: "index entries",
            need: (c.pos + need) as u64,
            have: c.bytes.len() as u64,
        });
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        out.push(IndexEntry {
            first_entry_id: c.i64("index entry")?,
            part_id: c.i32("index entry")?,
            block_offset: c.i64("index entry")?,
        });
    }
    Ok(out)
}

fn validate(index: &OffloadIndex) -> FormatResult<()> {
    if index.data_header_len < 28 || index.data_header_len > index.data_object_len.max(28) {
        return Err(FormatError::Invalid(format!(
            "data header length {}",
            index.data_header_len
        )));
    }
    let mut prev: Option<&IndexEntry> = None;
    for e in &index.entries {
        if e.block_offset < 0
            || e.block_offset as u64 + index.data_header_len > index.data_object_len
        {
            return Err(FormatError::Invalid(format!(
                "block offset {} outside the data object",
                e.block_offset
            )));
        }
        if let Some(p) = prev
            && (e.first_entry_id <= p.first_entry_id || e.block_offset <= p.block_offset)
        {
            return Err(FormatError::Invalid(
                "index entries are not strictly increasing".into(),
            ));
        }
        prev = Some(e);
    }
    if let Some(first) = index.entries.first()
        && (first.first_entry_id != 0 || first.block_offset != 0)
    {
        return Err(FormatError::Invalid(
            "first block does not start at entry 0, offset 0".into(),
        ));
    }
    if index.last_entry_id >= 0 && index.entries.is_empty() {
        return Err(FormatError::Invalid(
            "ledger has entries but the index has no blocks".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::ledger_metadata::DigestType;
    use proptest::prelude::*;

    fn metadata(last: i64, length: i64) -> LedgerMetadataFormat {
        LedgerMetadataFormat {
            quorum_size: 1,
            ensemble_size: 1,
            length,
            last_entry_id: Some(last),
            state: LedgerState::Closed as i32,
            digest_type: Some(DigestType::Crc32c as i32),
            ack_quorum_size: Some(1),
            ctime: Some(1_700_000_000_000),
            ..Default::default()
        }
    }

    proptest! {
        #[test]
        fn v1_round_trip(blocks in proptest::collection::vec((1i64..1000, 200i64..100_000), 1..50), length in 0i64..1 << 40) {
            let mut entries = Vec::new();
            let (mut first, mut offset) = (0i64, 0i64);
            for (i, (n, size)) in blocks.iter().enumerate() {
                entries.push(IndexEntry { first_entry_id: first, part_id: i as i32 + 1, block_offset: offset });
                first += n;
                offset += size;
            }
            let m = metadata(first - 1, length);
            let bytes = encode_index_v1(offset as u64, &entries, &m);
            let index = decode_index(&bytes).unwrap();
            prop_assert_eq!(&index.entries, &entries);
            prop_assert_eq!(index.last_entry_id, first - 1);
            prop_assert_eq!(index.length, length);
            prop_assert!(index.closed);
            prop_assert_eq!(index.data_object_len, offset as u64);
            prop_assert_eq!(index.metadata, Some(m));
        }

        #[test]
        fn decoder_never_panics_on_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode_index(&bytes);
        }

        #[test]
        fn decoder_never_panics_on_truncation_or_corruption(cut in 0usize..200, flip in 0usize..200, bit in 0u8..8) {
            let entries = [IndexEntry { first_entry_id: 0, part_id: 1, block_offset: 0 },
                           IndexEntry { first_entry_id: 10, part_id: 2, block_offset: 5000 }];
            let mut bytes = encode_index_v1(9000, &entries, &metadata(19, 100)).to_vec();
            if flip < bytes.len() { bytes[flip] ^= 1 << bit; }
            bytes.truncate(cut.min(bytes.len()));
            let _ = decode_index(&bytes);
        }
    }

    #[test]
    fn huge_counts_are_refused_without_allocating() {
        let mut bytes = encode_index_v1(
            172,
            &[IndexEntry {
                first_entry_id: 0,
                part_id: 1,
                block_offset: 0,
            }],
            &metadata(2, 8),
        )
        .to_vec();
        // entry count := i32::MAX
        bytes[24..28].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(
            decode_index(&bytes),
            Err(FormatError::Truncated { .. })
        ));
        bytes[24..28].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(decode_index(&bytes).is_err());
    }

    #[test]
    fn floor_lookup() {
        let index = OffloadIndex {
            data_object_len: 300,
            data_header_len: 128,
            entries: vec![
                IndexEntry {
                    first_entry_id: 0,
                    part_id: 1,
                    block_offset: 0,
                },
                IndexEntry {
                    first_entry_id: 5,
                    part_id: 2,
                    block_offset: 150,
                },
            ],
            last_entry_id: 9,
            length: 0,
            closed: true,
            metadata: None,
        };
        assert_eq!(index.block_of(0).unwrap().0, 0);
        assert_eq!(index.block_of(4).unwrap().0, 0);
        assert_eq!(index.block_of(5).unwrap().0, 1);
        assert_eq!(index.block_of(9).unwrap().0, 1);
        assert!(index.block_of(-1).is_none());
        assert_eq!(index.data_offset(1), Some(278));
        assert_eq!(index.block_end(0), 150);
        assert_eq!(index.block_end(1), 300);
    }
}

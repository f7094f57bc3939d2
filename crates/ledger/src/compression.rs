//! How managed-ledger and cursor metadata values are stored: JSON, and above a size JSON
//! compressed (Pulsar's `managedLedgerInfoCompressionType` and
//! `managedCursorInfoCompressionType`, with their thresholds).
//!
//! Why: a topic kept forever accumulates ledgers, and its ledger list is one value, rewritten
//! at every rollover. An offloaded ledger takes ~450 bytes of JSON, so etcd's request limit
//! (1.5 MiB by default) is reached at ~3500 ledgers — weeks for a busy topic — and from then on
//! every rollover, and so every append, fails. The list compresses ~9× with LZ4.
//!
//! A compressed value: `\0TLZ`, one codec byte, the JSON's length (u32 LE), the compressed
//! JSON. No JSON value starts with a NUL byte, so plain and compressed values tell themselves
//! apart, and every broker reads both whatever it is configured to write.

use std::io::{Read, Write};

/// The first bytes of a compressed value.
const MAGIC: &[u8; 4] = b"\0TLZ";
const HEADER_LEN: usize = MAGIC.len() + 1 + 4;
/// The largest JSON a compressed value may claim (a damaged length must not allocate more).
const MAX_JSON_BYTES: usize = 256 << 20;

/// A compression codec of metadata values, by Pulsar's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Lz4,
    Zlib,
    Zstd,
    Snappy,
}

impl Codec {
    fn id(self) -> u8 {
        match self {
            Codec::Lz4 => 1,
            Codec::Zlib => 2,
            Codec::Zstd => 3,
            Codec::Snappy => 4,
        }
    }

    fn from_id(id: u8) -> Option<Codec> {
        match id {
            1 => Some(Codec::Lz4),
            2 => Some(Codec::Zlib),
            3 => Some(Codec::Zstd),
            4 => Some(Codec::Snappy),
            _ => None,
        }
    }
}

/// Whether and from which size metadata values are stored compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compression {
    /// `None`: always plain JSON (Pulsar's `NONE`).
    pub codec: Option<Codec>,
    /// Values of at most this many bytes stay plain JSON, readable with any etcd tool.
    pub threshold_bytes: usize,
}

impl Compression {
    /// Plain JSON always.
    pub const NONE: Compression = Compression {
        codec: None,
        threshold_bytes: 0,
    };
}

impl Default for Compression {
    /// LZ4 above 16 KiB (Pulsar's threshold; Pulsar's codec default is `NONE`, which leaves a
    /// topic kept forever on etcd unwritable after a few thousand ledgers).
    fn default() -> Self {
        Compression {
            codec: Some(Codec::Lz4),
            threshold_bytes: 16 << 10,
        }
    }
}

/// `json` as stored under `compression`.
pub(crate) fn compress(json: Vec<u8>, compression: Compression) -> Vec<u8> {
    let Some(codec) = compression.codec else {
        return json;
    };
    if json.len() <= compression.threshold_bytes || json.len() > MAX_JSON_BYTES {
        return json;
    }
    let mut out = Vec::with_capacity(HEADER_LEN + json.len() / 4);
    out.extend_from_slice(MAGIC);
    out.push(codec.id());
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    match codec {
        Codec::Lz4 => out.extend_from_slice(&lz4_flex::block::compress(&json)),
        Codec::Zlib => {
            let mut z = flate2::write::ZlibEncoder::new(out, flate2::Compression::fast());
            // Writing into a Vec cannot fail.
            if z.write_all(&json).is_err() {
                return json;
            }
            match z.finish() {
                Ok(v) => out = v,
                Err(_) => return json,
            }
        }
        // Level 1: metadata values are rewritten at every rollover and cursor move, and the
        // faster levels already shrink JSON lists several times.
        Codec::Zstd => match zstd::bulk::compress(&json, 1) {
            Ok(z) => out.extend_from_slice(&z),
            Err(_) => return json,
        },
        Codec::Snappy => match snap::raw::Encoder::new().compress_vec(&json) {
            Ok(z) => out.extend_from_slice(&z),
            Err(_) => return json,
        },
    }
    out
}

/// The JSON of a stored value (plain values as they are).
pub(crate) fn decompress(raw: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, String> {
    let Some(rest) = raw.strip_prefix(MAGIC) else {
        return Ok(std::borrow::Cow::Borrowed(raw));
    };
    let (&[id], rest) = rest
        .split_first_chunk::<1>()
        .ok_or("compressed value cut short")?;
    let (len, body) = rest
        .split_first_chunk::<4>()
        .ok_or("compressed value cut short")?;
    let len = u32::from_le_bytes(*len) as usize;
    if len > MAX_JSON_BYTES {
        return Err(format!("compressed value claims {len} bytes"));
    }
    let codec = Codec::from_id(id).ok_or_else(|| format!("unknown compression codec {id}"))?;
    let json = match codec {
        Codec::Lz4 => lz4_flex::block::decompress(body, len).map_err(|e| format!("LZ4: {e}"))?,
        Codec::Zlib => {
            let mut json = Vec::with_capacity(len);
            flate2::read::ZlibDecoder::new(body)
                .take(len as u64 + 1)
                .read_to_end(&mut json)
                .map_err(|e| format!("zlib: {e}"))?;
            json
        }
        // Room for exactly `len` bytes: a body that holds more fails instead of growing it.
        Codec::Zstd => zstd::bulk::decompress(body, len).map_err(|e| format!("zstd: {e}"))?,
        Codec::Snappy => {
            let claimed = snap::raw::decompress_len(body).map_err(|e| format!("snappy: {e}"))?;
            if claimed != len {
                return Err(format!(
                    "compressed value holds {claimed} bytes, its header says {len}"
                ));
            }
            snap::raw::Decoder::new()
                .decompress_vec(body)
                .map_err(|e| format!("snappy: {e}"))?
        }
    };
    if json.len() != len {
        return Err(format!(
            "compressed value holds {} bytes, its header says {len}",
            json.len()
        ));
    }
    Ok(std::borrow::Cow::Owned(json))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn json(n: usize) -> Vec<u8> {
        let items: Vec<String> = (0..n)
            .map(|i| format!(r#"{{"ledger_id":{i},"entries":50000,"driver":"aws-s3"}}"#))
            .collect();
        format!("[{}]", items.join(",")).into_bytes()
    }

    #[test]
    fn small_values_and_none_stay_plain_json() {
        let small = json(3);
        assert_eq!(compress(small.clone(), Compression::default()), small);
        let big = json(2000);
        assert_eq!(compress(big.clone(), Compression::NONE), big);
        assert_eq!(decompress(&big).unwrap().as_ref(), big.as_slice());
    }

    #[test]
    fn large_values_shrink_and_come_back() {
        let big = json(2000);
        for codec in [Codec::Lz4, Codec::Zlib, Codec::Zstd, Codec::Snappy] {
            let stored = compress(
                big.clone(),
                Compression {
                    codec: Some(codec),
                    threshold_bytes: 1024,
                },
            );
            assert!(stored.starts_with(MAGIC), "{codec:?}");
            assert!(stored.len() * 4 < big.len(), "{codec:?}: {}", stored.len());
            assert_eq!(decompress(&stored).unwrap().as_ref(), big.as_slice());
        }
    }

    #[test]
    fn damaged_values_are_errors_not_panics() {
        let stored = compress(json(2000), Compression::default());
        // (Shorter than the magic it is no compressed value: JSON decoding refuses it.)
        for cut in [
            MAGIC.len(),
            5,
            8,
            HEADER_LEN,
            stored.len() / 2,
            stored.len() - 1,
        ] {
            assert!(decompress(&stored[..cut]).is_err(), "cut at {cut}");
        }
        let mut wrong_len = stored.clone();
        wrong_len[5] ^= 1;
        assert!(decompress(&wrong_len).is_err());
        let mut huge = stored.clone();
        huge[5..9].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decompress(&huge).is_err());
        let mut codec = stored;
        codec[4] = 9;
        assert!(decompress(&codec).unwrap_err().contains("codec 9"));
    }

    proptest! {
        #[test]
        fn any_bytes_round_trip_under_any_setting(
            bytes in proptest::collection::vec(any::<u8>(), 0..4096),
            codec in 1u8..=4,
            threshold in 0usize..2048,
        ) {
            // JSON never starts with a NUL: neither do the values this module is given.
            prop_assume!(bytes.first() != Some(&0));
            let c = Compression {
                codec: Codec::from_id(codec),
                threshold_bytes: threshold,
            };
            let stored = compress(bytes.clone(), c);
            let back = decompress(&stored).unwrap();
            prop_assert_eq!(back.as_ref(), bytes.as_slice());
        }

        #[test]
        fn arbitrary_stored_bytes_never_panic(
            tail in proptest::collection::vec(any::<u8>(), 0..512),
            id in any::<u8>(),
            len in any::<u32>(),
        ) {
            let mut raw = MAGIC.to_vec();
            raw.push(id);
            raw.extend_from_slice(&len.to_le_bytes());
            raw.extend_from_slice(&tail);
            let _ = decompress(&raw);
        }
    }
}

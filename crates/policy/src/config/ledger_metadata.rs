//! How ledger lists and cursors are stored in the metadata store: Pulsar's
//! `managedLedgerInfoCompressionType` / `managedCursorInfoCompressionType` and their
//! `…CompressionThresholdInBytes`.

use ledger::{Codec, Compression};

use super::{ConfigError, Properties};

const ALLOWED: &str = "NONE, LZ4, ZLIB, ZSTD or SNAPPY";

/// `<what>CompressionType` and `<what>CompressionThresholdInBytes`, for `what` =
/// `managedLedgerInfo` or `managedCursorInfo`. tierlog's default codec is LZ4 where Pulsar's is
/// NONE: an uncompressed ledger list of a topic kept forever outgrows etcd's request limit
/// after a few thousand ledgers (see `ledger::compression`).
pub(super) fn parse(raw: &mut Properties, what: &str) -> Result<Compression, ConfigError> {
    let default = Compression::default();
    let codec = raw.choice(
        &format!("{what}CompressionType"),
        default.codec,
        |v| match v.trim().to_ascii_uppercase().as_str() {
            "NONE" => Some(None),
            "LZ4" => Some(Some(Codec::Lz4)),
            "ZLIB" => Some(Some(Codec::Zlib)),
            "ZSTD" => Some(Some(Codec::Zstd)),
            "SNAPPY" => Some(Some(Codec::Snappy)),
            _ => None,
        },
        ALLOWED,
    )?;
    let threshold_bytes = raw.unsigned(
        &format!("{what}CompressionThresholdInBytes"),
        default.threshold_bytes as u64,
        0,
        u64::from(u32::MAX),
    )? as usize;
    Ok(Compression {
        codec,
        threshold_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str, what: &str) -> Result<Compression, ConfigError> {
        parse(&mut Properties::parse("t.conf", text).unwrap(), what)
    }

    #[test]
    fn pulsars_keys_choose_the_codec_and_threshold() {
        assert_eq!(
            parse_text("", "managedLedgerInfo").unwrap(),
            Compression::default()
        );
        let c = parse_text(
            "managedCursorInfoCompressionType=zlib\nmanagedCursorInfoCompressionThresholdInBytes=0\n",
            "managedCursorInfo",
        )
        .unwrap();
        assert_eq!(
            c,
            Compression {
                codec: Some(Codec::Zlib),
                threshold_bytes: 0
            }
        );
        let c = parse_text(
            "managedLedgerInfoCompressionType=NONE\n",
            "managedLedgerInfo",
        )
        .unwrap();
        assert_eq!(c.codec, None);
        for (name, codec) in [("zstd", Codec::Zstd), ("SNAPPY", Codec::Snappy)] {
            let c = parse_text(
                &format!("managedCursorInfoCompressionType={name}\n"),
                "managedCursorInfo",
            )
            .unwrap();
            assert_eq!(c.codec, Some(codec));
        }
        let e = parse_text(
            "managedLedgerInfoCompressionType=BROTLI\n",
            "managedLedgerInfo",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("managedLedgerInfoCompressionType")
                && e.contains("BROTLI")
                && e.contains("SNAPPY"),
            "{e}"
        );
    }
}

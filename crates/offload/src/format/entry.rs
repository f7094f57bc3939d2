//! The entries inside the data blocks: what the broker stored, a message from its magic on.
//!
//! Pulsar stores `[0x0e01][crc32c u32][metadataSize u32][MessageMetadata][payload]`, the CRC32C
//! covering everything after it, computed by the producing client (tierlog's broker adds it to a
//! message that came without one, so every entry it stores carries one). A Pulsar broker with
//! broker entry metadata enabled puts `[0x0e02][size u32][BrokerEntryMetadata]` in front.
//! Checking that CRC on the way out of the tier makes the check end to end: from the producer,
//! through the hot tier, the upload, the store, the download and the disk cache, to the reader.

/// `0x0e01`: a CRC32C follows.
const MAGIC_CRC32C: [u8; 2] = [0x0e, 0x01];
/// `0x0e02`: broker entry metadata follows.
const MAGIC_BROKER_ENTRY_METADATA: [u8; 2] = [0x0e, 0x02];

/// Whether `entry`'s own checksum matches its bytes. An entry without a checksum section (not a
/// Pulsar message, or one of a very old client stored by Pulsar as received) has nothing to
/// check and passes.
pub fn checksum_matches(entry: &[u8]) -> bool {
    let mut rest = entry;
    if rest.len() >= 6 && rest[..2] == MAGIC_BROKER_ENTRY_METADATA {
        let size = u32::from_be_bytes([rest[2], rest[3], rest[4], rest[5]]) as usize;
        match rest.get(6 + size..) {
            Some(r) => rest = r,
            None => return true,
        }
    }
    if rest.len() < 6 || rest[..2] != MAGIC_CRC32C {
        return true;
    }
    let stored = u32::from_be_bytes([rest[2], rest[3], rest[4], rest[5]]);
    crc_fast::crc32_iscsi(&rest[6..]) == stored
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn with_checksum(body: &[u8]) -> Vec<u8> {
        let mut e = MAGIC_CRC32C.to_vec();
        e.extend_from_slice(&crc_fast::crc32_iscsi(body).to_be_bytes());
        e.extend_from_slice(body);
        e
    }

    proptest! {
        #[test]
        fn any_single_flipped_bit_after_the_magic_is_caught(
            body in proptest::collection::vec(any::<u8>(), 4..2000),
            at in any::<prop::sample::Index>(),
            bit in 0u8..8,
            broker_metadata in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
        ) {
            let mut entry = Vec::new();
            if let Some(m) = &broker_metadata {
                entry.extend_from_slice(&MAGIC_BROKER_ENTRY_METADATA);
                entry.extend_from_slice(&(m.len() as u32).to_be_bytes());
                entry.extend_from_slice(m);
            }
            let prefix = entry.len();
            entry.extend_from_slice(&with_checksum(&body));
            prop_assert!(checksum_matches(&entry));
            // Any bit of the checksum or of what it covers.
            let i = prefix + 2 + at.index(entry.len() - prefix - 2);
            entry[i] ^= 1 << bit;
            prop_assert!(!checksum_matches(&entry));
        }

        #[test]
        fn never_panics(entry in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = checksum_matches(&entry);
        }
    }

    #[test]
    fn entries_without_a_checksum_pass() {
        assert!(checksum_matches(b""));
        assert!(checksum_matches(b"plain bytes, no magic"));
        assert!(checksum_matches(&[0x0e, 0x02, 0xff, 0xff, 0xff, 0xff, 1]));
    }
}

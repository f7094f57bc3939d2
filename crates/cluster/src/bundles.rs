//! Namespace bundles: a namespace's topics split into hash ranges, the unit of ownership.
//!
//! As in Pulsar: a topic's hash is the CRC-32 (IEEE) of its full name
//! (`persistent://tenant/ns/topic`, a partition by its own name), and a namespace of `n`
//! bundles splits `[0x00000000, 0xffffffff]` at multiples of `2^32 / n`; every range is
//! half-open but the last, which includes `0xffffffff`. A bundle is named `0x<low>_0x<high>`.

use protocol::{NamespaceName, TopicName};

/// One hash range of a namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bundle {
    pub namespace: NamespaceName,
    pub low: u32,
    pub high: u32,
}

impl Bundle {
    /// `0x<low>_0x<high>`, Pulsar's name of the range.
    pub fn range(&self) -> String {
        format!("0x{:08x}_0x{:08x}", self.low, self.high)
    }

    /// Parses `0x<low>_0x<high>` for `namespace`.
    pub fn parse(namespace: NamespaceName, range: &str) -> Option<Bundle> {
        let (low, high) = range.split_once('_')?;
        let hex = |s: &str| u32::from_str_radix(s.strip_prefix("0x")?, 16).ok();
        let (low, high) = (hex(low)?, hex(high)?);
        (low < high).then_some(Bundle {
            namespace,
            low,
            high,
        })
    }
}

impl std::fmt::Display for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.range())
    }
}

/// The hash Pulsar places a topic by.
pub fn topic_hash(topic: &TopicName) -> u32 {
    crc_fast::crc32_iso_hdlc(topic.to_string().as_bytes())
}

/// The boundaries of `n` equal bundles (n + 1 values, first 0, last `0xffffffff`).
pub fn boundaries(n: u32) -> Vec<u32> {
    let n = n.max(1);
    let step = (1u64 << 32) / u64::from(n);
    let mut b: Vec<u32> = (0..n).map(|i| (u64::from(i) * step) as u32).collect();
    b.push(u32::MAX);
    b
}

/// The bundles of `namespace` split at `boundaries`.
pub fn bundles(namespace: &NamespaceName, boundaries: &[u32]) -> Vec<Bundle> {
    boundaries
        .windows(2)
        .map(|w| Bundle {
            namespace: namespace.clone(),
            low: w[0],
            high: w[1],
        })
        .collect()
}

/// The bundle of `topic` among `boundaries` of its namespace.
pub fn bundle_of(topic: &TopicName, boundaries: &[u32]) -> Bundle {
    let h = topic_hash(topic);
    let all = bundles(topic.namespace(), boundaries);
    let last = all.len().saturating_sub(1);
    all.iter()
        .enumerate()
        .find(|(i, b)| h >= b.low && (h < b.high || *i == last))
        .map(|(_, b)| b.clone())
        .unwrap_or_else(|| Bundle {
            namespace: topic.namespace().clone(),
            low: 0,
            high: u32::MAX,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_bundles_split_as_pulsar_names_them() {
        let ns = NamespaceName::parse("public/default").unwrap();
        let names: Vec<String> = bundles(&ns, &boundaries(4))
            .iter()
            .map(Bundle::range)
            .collect();
        assert_eq!(
            names,
            [
                "0x00000000_0x40000000",
                "0x40000000_0x80000000",
                "0x80000000_0xc0000000",
                "0xc0000000_0xffffffff"
            ]
        );
        assert_eq!(
            Bundle::parse(ns.clone(), "0x40000000_0x80000000"),
            Some(bundles(&ns, &boundaries(4))[1].clone())
        );
        assert_eq!(Bundle::parse(ns, "0x8_0x1"), None);
    }

    #[test]
    fn a_topic_lands_in_the_bundle_of_its_crc32() {
        // CRC-32 (IEEE) of "123456789" is 0xcbf43926, the algorithm's check value.
        assert_eq!(crc_fast::crc32_iso_hdlc(b"123456789"), 0xcbf4_3926);
        let t = TopicName::parse("persistent://public/default/t1").unwrap();
        let h = topic_hash(&t);
        let b = bundle_of(&t, &boundaries(4));
        assert!(b.low <= h && h < b.high, "{h:x} in {b}");
        assert_eq!(
            bundle_of(&t, &boundaries(1)).range(),
            "0x00000000_0xffffffff"
        );
    }
}

//! Which messages of a batch entry are still unacknowledged (Pulsar's batch-index
//! acknowledgement, PIP-54).
//!
//! The bits are Pulsar's on the wire and in cursor metadata: 64-bit words, bit `i` of the whole
//! set is bit `i % 64` of word `i / 64`, and a set bit is a message *not yet* acknowledged. A
//! client acknowledging index 3 of a batch of 10 sends bits 0..10 with bit 3 cleared; the broker
//! keeps the AND of what it was sent, and an entry whose set becomes empty is acknowledged as a
//! whole.

use serde::{Deserialize, Serialize};

/// Most words an ack set may have (a million messages in one entry); longer sets from a client
/// or from damaged metadata are refused rather than kept.
pub const MAX_WORDS: usize = 1 << 14;

/// The messages of one batch entry still unacknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AckSet(Vec<i64>);

impl AckSet {
    /// The set as a client or the metadata store sent it; `None` if it is longer than
    /// [`MAX_WORDS`].
    pub fn from_words(words: &[i64]) -> Option<AckSet> {
        (words.len() <= MAX_WORDS).then(|| AckSet(words.to_vec()).trimmed())
    }

    /// The words as Pulsar sends them (trailing zero words dropped).
    pub fn words(&self) -> &[i64] {
        &self.0
    }

    /// Whether every message of the entry is acknowledged.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    /// How many messages are still unacknowledged.
    pub fn count(&self) -> u32 {
        self.0.iter().map(|w| w.count_ones()).sum()
    }

    /// Whether message `index` is still unacknowledged.
    pub fn contains(&self, index: usize) -> bool {
        self.0
            .get(index / 64)
            .is_some_and(|w| (*w as u64) >> (index % 64) & 1 == 1)
    }

    /// Keeps only what both sets leave unacknowledged (acks only ever add up).
    pub fn intersect(&mut self, other: &AckSet) {
        self.0.truncate(other.0.len());
        for (w, o) in self.0.iter_mut().zip(&other.0) {
            *w &= *o;
        }
        self.trim();
    }

    fn trimmed(mut self) -> AckSet {
        self.trim();
        self
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Messages 0..n with `acked` cleared, as a Pulsar client builds it.
    fn unacked_but(n: usize, acked: &[usize]) -> AckSet {
        let mut words = vec![0i64; n.div_ceil(64)];
        for i in (0..n).filter(|i| !acked.contains(i)) {
            words[i / 64] |= 1i64 << (i % 64);
        }
        AckSet::from_words(&words).unwrap()
    }

    #[test]
    fn acks_add_up_until_the_entry_is_done() {
        let mut s = unacked_but(10, &[3]);
        assert_eq!(s.count(), 9);
        assert!(!s.contains(3) && s.contains(4));
        s.intersect(&unacked_but(10, &[0, 1, 2, 4, 5, 6, 7, 8, 9]));
        assert!(s.is_empty());
        assert_eq!(s.words(), &[] as &[i64]);
    }

    #[test]
    fn the_high_bit_of_a_word_is_an_index_like_any_other() {
        let s = unacked_but(130, &[63, 64]);
        assert!(s.contains(62) && !s.contains(63) && !s.contains(64) && s.contains(129));
        assert_eq!(s.count(), 128);
        assert!(!s.contains(130) && !s.contains(10_000));
    }

    #[test]
    fn sets_longer_than_the_limit_are_refused() {
        assert!(AckSet::from_words(&vec![-1; MAX_WORDS]).is_some());
        assert!(AckSet::from_words(&vec![-1; MAX_WORDS + 1]).is_none());
    }

    proptest! {
        #[test]
        fn intersecting_is_acking_the_union(
            n in 1usize..300,
            a in proptest::collection::vec(0usize..300, 0..40),
            b in proptest::collection::vec(0usize..300, 0..40),
        ) {
            let mut s = unacked_but(n, &a);
            s.intersect(&unacked_but(n, &b));
            for i in 0..n {
                prop_assert_eq!(s.contains(i), !a.contains(&i) && !b.contains(&i));
            }
            let acked: std::collections::BTreeSet<usize> =
                a.iter().chain(&b).copied().filter(|i| *i < n).collect();
            prop_assert_eq!(s.count() as usize, n - acked.len());
        }
    }
}

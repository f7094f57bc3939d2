//! Message deduplication, as Pulsar's `MessageDeduplication` decides it: per producer name, the
//! highest sequence id *pushed* (appended, maybe not yet durable) and *persisted* (durable).
//! A SEND whose sequence id is not above the producer's highest pushed one is a duplicate when
//! it is not above the highest persisted one (acknowledged again, not stored), and of unknown
//! status otherwise (its first copy is still being written: refused, the client resends).
//!
//! Durability of the state: a snapshot (a log position and each producer's highest sequence id
//! up to it) is kept in the metadata store. It is built from the log itself — the entries
//! after the previous snapshot, read back and folded by their metadata — so it never depends
//! on the order receipts were processed in, and recovery is the same fold from the last
//! snapshot to the end of the log, whichever tier the entries are in now.

use std::collections::HashMap;

use ledger::{ManagedLedger, Position};
use serde::{Deserialize, Serialize};

use crate::error::BrokerError;

/// The cursor (Pulsar's name) that keeps the entries after the last snapshot from retention:
/// recovery needs them. It moves to each snapshot's position once the snapshot is saved.
pub const DEDUP_CURSOR: &str = "pulsar.dedup";

/// Each producer's highest sequence id in the log up to `position` (inclusive).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedupSnapshot {
    pub ledger_id: i64,
    pub entry_id: i64,
    pub producers: HashMap<String, i64>,
}

/// What a SEND is for deduplication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    New,
    /// Its sequence id is durable already: acknowledge without storing.
    Duplicate,
    /// Its sequence id was appended but is not durable yet: refuse, the client resends.
    Unknown,
}

#[derive(Debug, Default)]
pub(crate) struct Dedup {
    pub enabled: bool,
    /// Whether `persisted` holds the log's state (recovered since the topic loaded).
    pub recovered: bool,
    pushed: HashMap<String, i64>,
    persisted: HashMap<String, i64>,
    /// Durable entries since the last snapshot.
    pub since_snapshot: u64,
}

impl Dedup {
    /// Pulsar's `isDuplicate` (and, when new, records the push).
    pub(crate) fn check(&mut self, producer: &str, sequence_id: i64, highest: i64) -> Verdict {
        let highest = highest.max(sequence_id);
        if let Some(&pushed) = self.pushed.get(producer)
            && sequence_id <= pushed
        {
            return match self.persisted.get(producer) {
                Some(&persisted) if sequence_id <= persisted => Verdict::Duplicate,
                _ => Verdict::Unknown,
            };
        }
        self.pushed.insert(producer.to_string(), highest);
        Verdict::New
    }

    /// A producer's entry up to `highest` is durable.
    pub(crate) fn persisted(&mut self, producer: &str, highest: i64) {
        let e = self
            .persisted
            .entry(producer.to_string())
            .or_insert(highest);
        *e = (*e).max(highest);
        self.since_snapshot += 1;
    }

    /// The highest durable sequence id of a producer (-1: none), for PRODUCER_SUCCESS.
    pub(crate) fn last_sequence_id(&self, producer: &str) -> i64 {
        self.persisted.get(producer).copied().unwrap_or(-1)
    }

    /// Takes the state recovered from the log (pushed = persisted: nothing is in flight).
    pub(crate) fn restore(&mut self, producers: HashMap<String, i64>) {
        self.pushed = producers.clone();
        self.persisted = producers;
        self.recovered = true;
        self.since_snapshot = 0;
    }
}

/// `snapshot` brought up to the end of the log: every entry after its position, folded by its
/// producer name and sequence ids (entries a client cannot have sent, such as markers, skipped).
pub(crate) async fn fold_log(
    ml: &ManagedLedger,
    mut snapshot: DedupSnapshot,
) -> Result<DedupSnapshot, BrokerError> {
    let end = ml.last_confirmed();
    let mut from = Position::new(snapshot.ledger_id, snapshot.entry_id + 1);
    if snapshot.entry_id < 0 && snapshot.ledger_id < 0 {
        from = Position::new(0, 0);
    }
    loop {
        if end.entry_id < 0 || (from.ledger_id, from.entry_id) > (end.ledger_id, end.entry_id) {
            break;
        }
        let entries = ml.read(from, 256, 8 << 20).await?;
        let Some(last) = entries.last().map(|e| e.position) else {
            break;
        };
        for e in &entries {
            if (e.position.ledger_id, e.position.entry_id) > (end.ledger_id, end.entry_id) {
                break;
            }
            if let Ok((meta, _)) = protocol::parse_entry(&e.data) {
                let highest = meta
                    .highest_sequence_id
                    .map_or(meta.sequence_id as i64, |h| h as i64)
                    .max(meta.sequence_id as i64);
                let slot = snapshot
                    .producers
                    .entry(meta.producer_name.clone())
                    .or_insert(highest);
                *slot = (*slot).max(highest);
            }
            snapshot.ledger_id = e.position.ledger_id;
            snapshot.entry_id = e.position.entry_id;
        }
        if (last.ledger_id, last.entry_id) >= (end.ledger_id, end.entry_id) {
            break;
        }
        from = Position::new(last.ledger_id, last.entry_id + 1);
    }
    Ok(snapshot)
}

impl DedupSnapshot {
    /// A snapshot before any entry.
    pub fn empty() -> DedupSnapshot {
        DedupSnapshot {
            ledger_id: -1,
            entry_id: -1,
            producers: HashMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resent_sequence_ids_are_duplicates_once_durable_and_unknown_before() {
        let mut d = Dedup::default();
        assert_eq!(d.check("p", 0, 0), Verdict::New);
        assert_eq!(d.check("p", 1, 3), Verdict::New);
        // 0 appended, not durable yet.
        assert_eq!(d.check("p", 0, 0), Verdict::Unknown);
        d.persisted("p", 0);
        assert_eq!(d.check("p", 0, 0), Verdict::Duplicate);
        // Inside the batch 1..=3, not durable.
        assert_eq!(d.check("p", 2, 2), Verdict::Unknown);
        d.persisted("p", 3);
        assert_eq!(d.check("p", 2, 2), Verdict::Duplicate);
        assert_eq!(d.check("p", 4, 4), Verdict::New);
        // Another producer's ids are its own.
        assert_eq!(d.check("q", 0, 0), Verdict::New);
        assert_eq!(d.last_sequence_id("p"), 3);
        assert_eq!(d.last_sequence_id("nobody"), -1);
    }
}

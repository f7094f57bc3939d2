//! Which ledgers retention may remove — a pure function of the ledger list, the cursors and the
//! policy, so the rules can be tested exhaustively.
//!
//! Pulsar's rules: only ledgers that every cursor has moved past are candidates (the ledger of the
//! slowest mark-delete position stays unless that position is its last entry); the ledger being
//! written never goes; candidates are taken oldest first while the ledger is older than the
//! retention time or the remaining total size would still be at least the retention size. `-1`
//! means unlimited on that axis, `0` means no retention.

use crate::info::LedgerInfo;
use crate::position::Position;

/// Retention limits: `-1` = unlimited, `0` = none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub time_ms: i64,
    pub size_bytes: i64,
}

/// Ids of the ledgers to remove, oldest first.
///
/// `ledgers` is the ledger list in order with the current (open) ledger last; `current_size` is
/// the live size of that open ledger; `slowest` is the lowest mark-delete position of all cursors.
pub fn ledgers_to_trim(
    ledgers: &[LedgerInfo],
    current_size: i64,
    slowest: Option<Position>,
    policy: RetentionPolicy,
    now_ms: u64,
) -> Vec<i64> {
    let Some(current) = ledgers.last() else {
        return Vec::new();
    };
    // Ledgers with an id below this bound have been consumed by every cursor.
    let bound = match slowest {
        None => current.ledger_id,
        Some(p) => {
            let at_last_entry = ledgers
                .iter()
                .find(|l| l.ledger_id == p.ledger_id)
                .is_some_and(|l| l.ledger_id != current.ledger_id && l.entries == p.entry_id + 1);
            if at_last_entry {
                p.ledger_id + 1
            } else {
                p.ledger_id
            }
        }
    };
    let total: i64 = ledgers[..ledgers.len() - 1]
        .iter()
        .map(|l| l.size)
        .sum::<i64>()
        + current_size;
    let mut size_to_delete = 0i64;
    let mut out = Vec::new();
    for l in &ledgers[..ledgers.len() - 1] {
        if l.ledger_id >= bound {
            break;
        }
        size_to_delete += l.size;
        let over_size = policy.size_bytes >= 0 && total - size_to_delete >= policy.size_bytes;
        let expired =
            policy.time_ms >= 0 && now_ms.saturating_sub(l.timestamp) as i64 > policy.time_ms;
        if over_size || expired {
            out.push(l.ledger_id);
        } else {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger(id: i64, size: i64, ts: u64) -> LedgerInfo {
        LedgerInfo {
            ledger_id: id,
            entries: 10,
            size,
            timestamp: ts,
            created_ms: 0,
            offload: None,
            hot_tier_broker: None,
            hot_tier: crate::HotTier::Local,
        }
    }

    fn list() -> Vec<LedgerInfo> {
        vec![
            ledger(1, 100, 1000),
            ledger(2, 100, 2000),
            ledger(3, 100, 3000),
            LedgerInfo::new_open(4, 0),
        ]
    }

    const NONE: RetentionPolicy = RetentionPolicy {
        time_ms: 0,
        size_bytes: 0,
    };
    const UNLIMITED: RetentionPolicy = RetentionPolicy {
        time_ms: -1,
        size_bytes: -1,
    };

    #[test]
    fn no_retention_removes_every_consumed_ledger_but_the_current() {
        assert_eq!(
            ledgers_to_trim(&list(), 50, None, NONE, 10_000),
            vec![1, 2, 3]
        );
    }

    #[test]
    fn unlimited_retention_removes_nothing() {
        assert!(ledgers_to_trim(&list(), 50, None, UNLIMITED, u64::MAX).is_empty());
    }

    #[test]
    fn a_cursor_keeps_the_ledger_it_still_needs() {
        // Mark-delete inside ledger 2: ledger 2 and later are needed.
        assert_eq!(
            ledgers_to_trim(&list(), 0, Some(Position::new(2, 4)), NONE, 10_000),
            vec![1]
        );
        // Mark-delete on the last entry of ledger 2: ledger 2 is fully consumed.
        assert_eq!(
            ledgers_to_trim(&list(), 0, Some(Position::new(2, 9)), NONE, 10_000),
            vec![1, 2]
        );
        // Before the first entry: nothing consumed.
        assert!(ledgers_to_trim(&list(), 0, Some(Position::new(1, -1)), NONE, 10_000).is_empty());
    }

    #[test]
    fn size_retention_keeps_the_newest_bytes() {
        // total = 300 + 50; keep at least 200 bytes: deleting 1 leaves 250 >= 200 -> delete;
        // deleting 2 as well leaves 150 < 200 -> keep.
        let p = RetentionPolicy {
            time_ms: -1,
            size_bytes: 200,
        };
        assert_eq!(ledgers_to_trim(&list(), 50, None, p, 10_000), vec![1]);
        let p = RetentionPolicy {
            time_ms: -1,
            size_bytes: 150,
        };
        assert_eq!(ledgers_to_trim(&list(), 50, None, p, 10_000), vec![1, 2]);
    }

    #[test]
    fn time_retention_removes_expired_ledgers_oldest_first() {
        let p = RetentionPolicy {
            time_ms: 1500,
            size_bytes: -1,
        };
        // now 3600: ledger 1 (closed at 1000) is 2600 old, ledger 2 is 1600 old, ledger 3 600.
        assert_eq!(ledgers_to_trim(&list(), 0, None, p, 3600), vec![1, 2]);
        assert!(ledgers_to_trim(&list(), 0, None, p, 2400).is_empty());
    }

    #[test]
    fn either_limit_exceeded_removes() {
        // Size would keep everything, time expires ledger 1.
        let p = RetentionPolicy {
            time_ms: 1500,
            size_bytes: 10_000,
        };
        assert_eq!(ledgers_to_trim(&list(), 0, None, p, 2600), vec![1]);
    }
}

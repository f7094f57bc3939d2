//! A managed ledger's internal stats as Pulsar's `PersistentTopicInternalStats`.

use std::time::{Duration, UNIX_EPOCH};

use ledger::{ManagedLedger, TierReadFailure, info};

use crate::types::{CursorStatsJson, LedgerInfoJson, PersistentTopicInternalStats};

/// Milliseconds since the epoch as Pulsar's JSON shows timestamps (`2024-01-01T00:00:00.000Z`).
pub fn iso8601(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

fn ledger_json(l: &info::LedgerInfo, failure: Option<&TierReadFailure>) -> LedgerInfoJson {
    LedgerInfoJson {
        ledger_id: l.ledger_id,
        entries: l.entries,
        size: l.size,
        offloaded: l.offload.as_ref().is_some_and(|o| o.complete),
        metadata: None,
        under_replicated: false,
        offload_read_error: failure.map(|f| {
            format!(
                "{} ({} failed reads since {}; {})",
                f.error,
                f.count,
                iso8601(f.since_ms),
                if f.served_hot {
                    "reads are served from the hot copy"
                } else {
                    "no hot copy: reads wait and retry"
                }
            )
        }),
    }
}

/// The internal stats of `ml`.
pub async fn internal_stats(ml: &ManagedLedger) -> PersistentTopicInternalStats {
    let st = ml.stats().await;
    let current = st.ledgers.last().map(|l| l.ledger_id);
    let mut cursors = std::collections::BTreeMap::new();
    for (name, c) in ml.cursors().await {
        let read = ml.position_after(c.mark_delete);
        let ranges: Vec<String> = info::to_ranges(c.individually_deleted.iter().copied())
            .iter()
            .map(|r| format!("({}:{}..{}:{}]", r[0], r[1] - 1, r[0], r[2]))
            .collect();
        cursors.insert(
            name,
            CursorStatsJson {
                mark_delete_position: c.mark_delete.to_string(),
                read_position: read.to_string(),
                waiting_read_op: false,
                pending_read_ops: 0,
                messages_consumed_counter: 0,
                cursor_ledger: -1,
                cursor_ledger_last_entry: -1,
                individually_deleted_messages: format!("[{}]", ranges.join(", ")),
                last_ledger_switch_timestamp: iso8601(st.last_ledger_created_ms),
                state: "Open".into(),
                active: false,
                number_of_entries_since_first_not_acked_message: 0,
                total_non_contiguous_deleted_messages_range: ranges.len() as i64,
                properties: Default::default(),
            },
        );
    }
    PersistentTopicInternalStats {
        entries_added_counter: st.entries_added as i64,
        number_of_entries: st.number_of_entries,
        total_size: st.total_size,
        current_ledger_entries: st.current_ledger_entries as i64,
        current_ledger_size: st.current_ledger_size as i64,
        last_ledger_created_timestamp: iso8601(st.last_ledger_created_ms),
        last_ledger_creation_failure_timestamp: None,
        waiting_cursors_count: 0,
        pending_add_entries_count: 0,
        last_confirmed_entry: st.last_confirmed.to_string(),
        state: if current.is_some() {
            "LedgerOpened"
        } else {
            "Closed"
        }
        .into(),
        ledgers: st
            .ledgers
            .iter()
            .map(|l| ledger_json(l, st.tier_read_failures.get(&l.ledger_id)))
            .collect(),
        cursors,
        schema_ledgers: Vec::new(),
        compacted_ledger: LedgerInfoJson {
            ledger_id: -1,
            entries: -1,
            size: -1,
            offloaded: false,
            metadata: None,
            under_replicated: false,
            offload_read_error: None,
        },
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_are_iso8601_with_milliseconds() {
        assert_eq!(super::iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::iso8601(1_704_067_200_123),
            "2024-01-01T00:00:00.123Z"
        );
        assert_eq!(super::iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}

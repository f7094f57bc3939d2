//! Pulsar's admin JSON, as serde types shared by the REST handlers (which send and receive them)
//! and `tierlog admin` (which builds and reads them): nobody writes this JSON by hand.
//!
//! Field names are Pulsar's exactly (`retention_policies` in `Policies` is snake case there,
//! `retentionTimeInMinutes` camel case elsewhere). Fields tierlog does not apply yet are absent;
//! unknown fields in requests are ignored, as Pulsar's Jackson configuration does.

use serde::{Deserialize, Serialize};

use crate::offload_policies::OffloadPolicies;

/// `TenantInfo`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantInfo {
    #[serde(default)]
    pub admin_roles: Vec<String>,
    #[serde(default)]
    pub allowed_clusters: Vec<String>,
}

/// Pulsar's `ClusterData`: where a cluster's brokers are reached (the fields tierlog keeps;
/// others in a body are ignored).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_url_tls: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_service_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_service_url_tls: Option<String>,
}

/// `RetentionPolicies`: -1 = unlimited, 0 = none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetentionPolicies {
    pub retention_time_in_minutes: i64,
    #[serde(rename = "retentionSizeInMB")]
    pub retention_size_in_mb: i64,
}

impl RetentionPolicies {
    /// Pulsar's rules: each limit is -1 (unlimited) or at least 0, and a single zero limit next
    /// to a non-zero one is refused.
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.retention_size_in_mb < -1 {
            return Err("Invalid retention policy: size limit must be >= -1");
        }
        if self.retention_time_in_minutes < -1 {
            return Err("Invalid retention policy: time limit must be >= -1");
        }
        if (self.retention_time_in_minutes == 0) != (self.retention_size_in_mb == 0) {
            return Err(
                "Invalid retention policy: Setting a single time or size limit to 0 is invalid when one of the limits has a non-zero value. Use the value of -1 instead of 0 to ignore a specific limit.",
            );
        }
        Ok(())
    }

    /// The limits in milliseconds and bytes (-1 stays unlimited).
    pub fn to_ms_and_bytes(self) -> (i64, i64) {
        let ms = if self.retention_time_in_minutes < 0 {
            -1
        } else {
            self.retention_time_in_minutes.saturating_mul(60_000)
        };
        let bytes = if self.retention_size_in_mb < 0 {
            -1
        } else {
            self.retention_size_in_mb.saturating_mul(1 << 20)
        };
        (ms, bytes)
    }

    /// The policy expressing limits in milliseconds and bytes (-1 stays unlimited).
    pub fn from_ms_and_bytes(ms: i64, bytes: i64) -> Self {
        RetentionPolicies {
            retention_time_in_minutes: if ms < 0 { -1 } else { ms / 60_000 },
            retention_size_in_mb: if bytes < 0 { -1 } else { bytes >> 20 },
        }
    }
}

/// A namespace's `Policies` (the fields tierlog applies), in Pulsar's field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policies {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_policies: Option<RetentionPolicies>,
    /// Legacy: -1 = not set (the broker default applies), other negatives = off, 0 = as soon as
    /// possible.
    #[serde(default = "minus_one")]
    pub offload_threshold: i64,
    /// Legacy, as `offload_threshold`.
    #[serde(default = "minus_one")]
    pub offload_threshold_in_seconds: i64,
    /// Legacy: `None` = not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offload_deletion_lag_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offload_policies: Option<OffloadPolicies>,
    /// tierlog: where the hot copies of the namespace's new ledgers go (`None`: the broker's
    /// `managedLedgerHotTier`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hot_tier: Option<ledger::HotTier>,
    /// Who may produce to and consume from the namespace and its topics.
    #[serde(default)]
    pub auth_policies: security::AuthPolicies,
    /// `UNDEFINED`: the broker's `schemaCompatibilityStrategy`.
    #[serde(default)]
    pub schema_compatibility_strategy: crate::schema::CompatibilityStrategy,
    /// `None`: the broker's `isAllowAutoUpdateSchemaEnabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_allow_auto_update_schema: Option<bool>,
    #[serde(default)]
    pub schema_validation_enforced: bool,
    /// `None`: the broker's `brokerDeduplicationEnabled`.
    #[serde(
        default,
        rename = "deduplicationEnabled",
        skip_serializing_if = "Option::is_none"
    )]
    pub deduplication_enabled: Option<bool>,
    /// `None`: the broker's `ttlDurationDefaultInSeconds`; 0: no TTL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_ttl_in_seconds: Option<i32>,
    /// Bytes not yet compacted beyond which topics are compacted (`None`: the broker's
    /// `brokerServiceCompactionThresholdInBytes`; 0: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compaction_threshold: Option<i64>,
    /// Per quota type; a type absent here gets the broker's `backlogQuotaDefault*`.
    #[serde(default)]
    pub backlog_quota_map:
        std::collections::BTreeMap<broker::BacklogQuotaType, broker::BacklogQuota>,
}

fn minus_one() -> i64 {
    -1
}

impl Default for Policies {
    fn default() -> Self {
        Policies {
            retention_policies: None,
            offload_threshold: -1,
            offload_threshold_in_seconds: -1,
            offload_deletion_lag_ms: None,
            offload_policies: None,
            hot_tier: None,
            auth_policies: Default::default(),
            schema_compatibility_strategy: Default::default(),
            is_allow_auto_update_schema: None,
            schema_validation_enforced: false,
            deduplication_enabled: None,
            message_ttl_in_seconds: None,
            compaction_threshold: None,
            backlog_quota_map: Default::default(),
        }
    }
}

/// Topic-level policies (they win over the namespace's, field by field for offload policies).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicPolicies {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_policies: Option<RetentionPolicies>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offload_policies: Option<OffloadPolicies>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_compatibility_strategy: Option<crate::schema::CompatibilityStrategy>,
    /// Over the namespace's `message_ttl_in_seconds` (0: no TTL for this topic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_ttl_in_seconds: Option<i32>,
    /// Over the namespace's `deduplicationEnabled`.
    #[serde(
        default,
        rename = "deduplicationEnabled",
        skip_serializing_if = "Option::is_none"
    )]
    pub deduplication_enabled: Option<bool>,
    /// Per quota type, over the namespace's.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub backlog_quota_map:
        std::collections::BTreeMap<broker::BacklogQuotaType, broker::BacklogQuota>,
    /// Over the namespace's `compaction_threshold` (bytes; 0: never for this topic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compaction_threshold: Option<i64>,
}

/// `PartitionedTopicMetadata`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionedTopicMetadata {
    pub partitions: u32,
}

/// `MessageIdImpl` (`BatchMessageIdImpl` with a batch index) as the admin API sends it
/// (offload trigger and status, last message id, subscription positions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageIdJson {
    pub ledger_id: i64,
    pub entry_id: i64,
    #[serde(default = "minus_one_i32")]
    pub partition_index: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_index: Option<i32>,
}

/// Pulsar's `ResetCursorData`: a message id, and whether the position starts after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResetCursorData {
    #[serde(flatten)]
    pub id: MessageIdJson,
    #[serde(default)]
    pub is_excluded: bool,
}

fn minus_one_i32() -> i32 {
    -1
}

impl MessageIdJson {
    pub fn new(ledger_id: i64, entry_id: i64) -> Self {
        MessageIdJson {
            ledger_id,
            entry_id,
            partition_index: -1,
            batch_index: None,
        }
    }
}

/// Pulsar's `LongRunningProcessStatus.Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProcessStatus {
    NotRun,
    Running,
    Success,
    Error,
}

/// `OffloadProcessStatus` (`GET …/offload`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OffloadProcessStatus {
    pub status: ProcessStatus,
    /// Why the offload failed; while it runs, the latest per-ledger failure (it goes on with
    /// the next ledger).
    #[serde(default)]
    pub last_error: String,
    pub first_unoffloaded_message: MessageIdJson,
    /// tierlog's own, while the offload runs: how far it has got.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<OffloadProgressJson>,
}

/// How far a running offload has got (tierlog's addition to `OffloadProcessStatus`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OffloadProgressJson {
    pub ledgers_offloaded: u64,
    pub ledgers_failed: u64,
    /// Not yet done, the one being uploaded included.
    pub ledgers_remaining: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_ledger: Option<i64>,
}

/// One ledger of `PersistentTopicInternalStats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerInfoJson {
    pub ledger_id: i64,
    pub entries: i64,
    pub size: i64,
    pub offloaded: bool,
    #[serde(default)]
    pub metadata: Option<String>,
    #[serde(default)]
    pub under_replicated: bool,
    /// tierlog's own: why the tier cannot serve this offloaded ledger now (absent when it can).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offload_read_error: Option<String>,
}

/// One cursor of `PersistentTopicInternalStats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CursorStatsJson {
    pub mark_delete_position: String,
    pub read_position: String,
    pub waiting_read_op: bool,
    pub pending_read_ops: i32,
    pub messages_consumed_counter: i64,
    pub cursor_ledger: i64,
    pub cursor_ledger_last_entry: i64,
    pub individually_deleted_messages: String,
    pub last_ledger_switch_timestamp: String,
    pub state: String,
    pub active: bool,
    pub number_of_entries_since_first_not_acked_message: i64,
    pub total_non_contiguous_deleted_messages_range: i64,
    #[serde(default)]
    pub properties: std::collections::BTreeMap<String, i64>,
}

/// `PersistentTopicInternalStats` (`GET …/internalStats`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersistentTopicInternalStats {
    pub entries_added_counter: i64,
    pub number_of_entries: i64,
    pub total_size: i64,
    pub current_ledger_entries: i64,
    pub current_ledger_size: i64,
    pub last_ledger_created_timestamp: String,
    #[serde(default)]
    pub last_ledger_creation_failure_timestamp: Option<String>,
    pub waiting_cursors_count: i32,
    pub pending_add_entries_count: i32,
    pub last_confirmed_entry: String,
    pub state: String,
    pub ledgers: Vec<LedgerInfoJson>,
    pub cursors: std::collections::BTreeMap<String, CursorStatsJson>,
    #[serde(default)]
    pub schema_ledgers: Vec<LedgerInfoJson>,
    pub compacted_ledger: LedgerInfoJson,
}

/// The `{"reason": …}` body of every admin error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_pulsars_field_names() {
        let r = RetentionPolicies {
            retention_time_in_minutes: 120,
            retention_size_in_mb: 1024,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            "{\"retentionTimeInMinutes\":120,\"retentionSizeInMB\":1024}"
        );
        let p: Policies = serde_json::from_str("{\"offload_threshold\": 5, \"bogus\": 1}").unwrap();
        assert_eq!(
            (p.offload_threshold, p.offload_threshold_in_seconds),
            (5, -1)
        );
        let s = OffloadProcessStatus {
            status: ProcessStatus::NotRun,
            last_error: String::new(),
            first_unoffloaded_message: MessageIdJson::new(-1, -1),
            progress: None,
        };
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            "{\"status\":\"NOT_RUN\",\"lastError\":\"\",\"firstUnoffloadedMessage\":{\"ledgerId\":-1,\"entryId\":-1,\"partitionIndex\":-1}}"
        );
    }

    #[test]
    fn retention_converts_both_ways_and_validates_like_pulsar() {
        let r = RetentionPolicies::from_ms_and_bytes(3 * 60_000, -1);
        assert_eq!(
            (r.retention_time_in_minutes, r.retention_size_in_mb),
            (3, -1)
        );
        assert_eq!(r.to_ms_and_bytes(), (180_000, -1));
        assert!(
            RetentionPolicies {
                retention_time_in_minutes: 0,
                retention_size_in_mb: 5
            }
            .validate()
            .is_err()
        );
        assert!(
            RetentionPolicies {
                retention_time_in_minutes: -1,
                retention_size_in_mb: 5
            }
            .validate()
            .is_ok()
        );
    }
}

//! Topic statistics as Pulsar's `TopicStats` JSON (`GET …/stats`): publishers, subscriptions
//! with their type, backlog and consumers, and the message counters the broker keeps.
//!
//! Rates (`msgRateIn`, …) need periodic sampling and are not reported yet; fields tierlog does
//! not know are left out rather than reported as zero.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// When something happened, as Pulsar's stats show it (`2024-01-01T00:00:00.000Z`).
pub(crate) fn timestamp(t: SystemTime) -> String {
    let ms = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// One producer (`PublisherStats`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublisherStats {
    pub producer_id: u64,
    pub producer_name: String,
    /// `Shared` or `Exclusive`.
    pub access_mode: &'static str,
    pub address: String,
    pub connected_since: String,
    pub client_version: String,
}

/// One consumer of a subscription (`ConsumerStats`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerStats {
    pub consumer_name: String,
    pub available_permits: i64,
    /// Messages delivered to it and not acknowledged yet.
    pub unacked_messages: u64,
    pub msg_out_counter: u64,
    pub bytes_out_counter: u64,
    pub address: String,
    pub connected_since: String,
    pub client_version: String,
}

/// One subscription (`SubscriptionStats`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionStats {
    /// `Exclusive`, `Shared`, `Failover`, `Key_Shared`, or `None` before a consumer attached.
    #[serde(rename = "type")]
    pub sub_type: &'static str,
    /// Entries not acknowledged yet.
    pub msg_backlog: i64,
    /// Messages delivered and not acknowledged yet.
    pub unacked_messages: u64,
    pub msg_out_counter: u64,
    pub bytes_out_counter: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_consumer_name: Option<String>,
    pub consumers: Vec<ConsumerStats>,
    pub is_durable: bool,
    /// Ranges of individually acknowledged entries above the mark-delete position.
    pub non_contiguous_deleted_messages_ranges: u64,
}

/// A topic (`TopicStats`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicStats {
    /// Messages published since the topic was loaded (a batch counts its messages).
    pub msg_in_counter: u64,
    pub bytes_in_counter: u64,
    /// Messages delivered to consumers since the topic was loaded.
    pub msg_out_counter: u64,
    pub bytes_out_counter: u64,
    /// Bytes of entries stored, in either tier.
    pub storage_size: i64,
    /// Bytes of entries that have a complete copy in tiered storage.
    pub offloaded_storage_size: i64,
    pub publishers: Vec<PublisherStats>,
    pub waiting_publishers: u32,
    pub subscriptions: BTreeMap<String, SubscriptionStats>,
    pub deduplication_status: &'static str,
}

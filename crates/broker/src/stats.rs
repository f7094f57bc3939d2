//! Topic statistics as Pulsar's `TopicStats` JSON (`GET …/stats`): publishers, subscriptions
//! with their type, backlog and consumers, and the message counters the broker keeps.
//!
//! Rates (`msgRateIn`, …) are the counters' change over the last `statsUpdateFrequencyInSecs`
//! (see [`crate::rates`]); fields tierlog does not know are left out rather than reported as
//! zero.

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
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublisherStats {
    /// Messages and bytes per second over the last stats interval.
    pub msg_rate_in: f64,
    pub msg_throughput_in: f64,
    pub average_msg_size: f64,
    pub producer_id: u64,
    pub producer_name: String,
    /// `Shared` or `Exclusive`.
    pub access_mode: &'static str,
    pub address: String,
    pub connected_since: String,
    pub client_version: String,
}

/// One consumer of a subscription (`ConsumerStats`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerStats {
    /// Messages and bytes per second delivered over the last stats interval.
    pub msg_rate_out: f64,
    pub msg_throughput_out: f64,
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
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    /// Messages and bytes per second delivered over the last stats interval.
    pub msg_rate_out: f64,
    pub msg_throughput_out: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_consumer_name: Option<String>,
    pub consumers: Vec<ConsumerStats>,
    pub is_durable: bool,
    /// Ranges of individually acknowledged entries above the mark-delete position.
    pub non_contiguous_deleted_messages_ranges: u64,
}

/// A topic (`TopicStats`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicStats {
    /// Messages and bytes per second, in and out, over the last stats interval
    /// (`statsUpdateFrequencyInSecs`).
    pub msg_rate_in: f64,
    pub msg_throughput_in: f64,
    pub msg_rate_out: f64,
    pub msg_throughput_out: f64,
    pub average_msg_size: f64,
    /// Bytes after the slowest subscription's mark-delete position.
    pub backlog_size: i64,
    /// What metrics add (not in Pulsar's JSON).
    #[serde(skip)]
    pub metrics: TopicMetrics,
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

/// What `/metrics` reports of a topic besides its [`TopicStats`]: the last stats interval's
/// storage rates, counts and write latencies, and its managed ledger's counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TopicMetrics {
    /// Entries per second stored and read, bytes per second read.
    pub storage_write_rate: f64,
    pub storage_read_rate: f64,
    pub storage_read_bytes_rate: f64,
    /// Bytes per second offloaded and read from tiered storage.
    pub offload_rate: f64,
    pub read_offload_rate: f64,
    /// Entries read, reads failed and appends refused, in the last interval.
    pub interval_read_entries: u64,
    pub interval_read_errors: u64,
    pub interval_add_errors: u64,
    /// How long the last interval's entries took to become durable.
    pub write_latency: crate::rates::LatencySnapshot,
    /// The managed ledger's counters since it was opened.
    pub io: ledger::IoStats,
    /// Reads of offloaded ledgers the tier failed since the broker started.
    pub tier_read_errors: u64,
}

//! What keeps a topic's backlog in bounds: message TTL and backlog quotas, as Pulsar has them.
//!
//! - **TTL** (`ttlDurationDefaultInSeconds`, the namespace's `message_ttl_in_seconds`): every
//!   `messageExpiryCheckIntervalInMinutes`, each durable subscription acknowledges the messages
//!   published more than the TTL ago (up to the newest such entry, found by binary search as
//!   Pulsar's expiry monitor does, publish times being in log order). Also on request
//!   (`expireMessages`).
//! - **Backlog quotas** (`backlogQuotaDefault*`, the namespace's `backlog_quota_map`): a limit on
//!   the bytes (`destination_storage`) or on the age of the oldest unacknowledged message
//!   (`message_age`) behind the slowest subscription. Exceeded, `producer_request_hold` and
//!   `producer_exception` refuse new producers (and the periodic check closes the attached ones,
//!   so they meet the refusal when they come back); `consumer_backlog_eviction` moves the slowest
//!   subscriptions forward until the backlog is back at 90 % of the limit.
//!
//! The hot-tier space freed follows from retention once the cursors have moved. The internal
//! deduplication and compaction cursors are not subscriptions: they neither count nor move here.

use std::time::Duration;

use ledger::Position;
use serde::{Deserialize, Serialize};

use crate::compaction::COMPACTION_CURSOR;
use crate::dedup::DEDUP_CURSOR;
use crate::error::BrokerError;
use crate::topic::Topic;

/// The two kinds of backlog quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BacklogQuotaType {
    /// Bytes behind the slowest subscription.
    DestinationStorage,
    /// Age of the oldest message the slowest subscription has not acknowledged.
    MessageAge,
}

impl BacklogQuotaType {
    pub fn parse(s: &str) -> Option<BacklogQuotaType> {
        match s {
            "destination_storage" => Some(BacklogQuotaType::DestinationStorage),
            "message_age" => Some(BacklogQuotaType::MessageAge),
            _ => None,
        }
    }
}

/// What an exceeded quota does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaPolicy {
    /// New producers are refused with `ProducerBlockedQuotaExceededError` (clients retry).
    ProducerRequestHold,
    /// New producers are refused with `ProducerBlockedQuotaExceededException` (clients fail).
    ProducerException,
    /// The slowest subscriptions lose their oldest messages.
    ConsumerBacklogEviction,
}

impl QuotaPolicy {
    pub const ALLOWED: &'static str =
        "producer_request_hold, producer_exception or consumer_backlog_eviction";

    pub fn parse(s: &str) -> Option<QuotaPolicy> {
        match s {
            "producer_request_hold" => Some(QuotaPolicy::ProducerRequestHold),
            "producer_exception" => Some(QuotaPolicy::ProducerException),
            "consumer_backlog_eviction" => Some(QuotaPolicy::ConsumerBacklogEviction),
            _ => None,
        }
    }
}

/// One backlog quota (Pulsar's `BacklogQuota` JSON: `limitSize` bytes, `limitTime` seconds,
/// -1 for none; the deprecated `limit` is read as `limitSize` and written as its copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "BacklogQuotaJson", into = "BacklogQuotaJson")]
pub struct BacklogQuota {
    pub limit_size: i64,
    pub limit_time: i64,
    pub policy: QuotaPolicy,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BacklogQuotaJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    limit_size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    limit_time: Option<i64>,
    policy: QuotaPolicy,
}

impl From<BacklogQuotaJson> for BacklogQuota {
    fn from(j: BacklogQuotaJson) -> Self {
        BacklogQuota {
            limit_size: j.limit_size.or(j.limit).unwrap_or(-1),
            limit_time: j.limit_time.unwrap_or(-1),
            policy: j.policy,
        }
    }
}

impl From<BacklogQuota> for BacklogQuotaJson {
    fn from(q: BacklogQuota) -> Self {
        BacklogQuotaJson {
            limit: Some(q.limit_size),
            limit_size: Some(q.limit_size),
            limit_time: Some(q.limit_time),
            policy: q.policy,
        }
    }
}

/// A topic's TTL and quotas, as the namespace and the broker's defaults make them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BacklogRules {
    /// Messages older than this are acknowledged for every subscription.
    pub ttl: Option<Duration>,
    /// Limit in bytes (`destination_storage`), when there is one.
    pub size: Option<(u64, QuotaPolicy)>,
    /// Limit on the oldest unacknowledged message's age (`message_age`), when there is one.
    pub age: Option<(Duration, QuotaPolicy)>,
    /// Bytes not yet compacted beyond which the topic is compacted automatically.
    pub compaction_threshold: Option<u64>,
}

impl BacklogRules {
    /// The rules of a namespace quota map entry (or the broker's default) per type.
    pub fn quota(&mut self, kind: BacklogQuotaType, q: &BacklogQuota) {
        match kind {
            BacklogQuotaType::DestinationStorage => {
                self.size = u64::try_from(q.limit_size).ok().map(|l| (l, q.policy));
            }
            BacklogQuotaType::MessageAge => {
                self.age = u64::try_from(q.limit_time)
                    .ok()
                    .map(|s| (Duration::from_secs(s), q.policy));
            }
        }
    }
}

/// The broker's own cursors (deduplication, compaction): not subscriptions, so quotas,
/// eviction and TTL leave them alone.
fn is_internal(cursor: &str) -> bool {
    cursor == DEDUP_CURSOR || cursor == COMPACTION_CURSOR
}

/// Where the slowest subscription stands: its mark-delete position.
fn slowest(cursors: &[(String, ledger::CursorState)]) -> Option<Position> {
    cursors
        .iter()
        .filter(|(name, _)| !is_internal(name))
        .map(|(_, c)| c.mark_delete)
        .min()
}

/// Milliseconds since the epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Topic {
    /// The publish time of the entry at `p` (ms since the epoch), reading it from its tier.
    async fn publish_time(&self, p: Position) -> Result<Option<i64>, BrokerError> {
        let entry = self.ml.read(p, 1, 1).await?.into_iter().next();
        Ok(entry
            .filter(|e| e.position == p)
            .and_then(|e| protocol::parse_entry(&e.data).ok())
            .map(|(m, _)| m.publish_time as i64))
    }

    /// Which quota this topic exceeds now, and its policy (storage checked first).
    pub(crate) async fn exceeded_quota(
        &self,
        rules: &BacklogRules,
    ) -> Result<Option<(BacklogQuotaType, QuotaPolicy)>, BrokerError> {
        if rules.size.is_none() && rules.age.is_none() {
            return Ok(None);
        }
        let Some(md) = slowest(&self.ml.cursors().await) else {
            return Ok(None);
        };
        if let Some((limit, policy)) = rules.size
            && self.ml.bytes_after(md) > limit as i64
        {
            return Ok(Some((BacklogQuotaType::DestinationStorage, policy)));
        }
        if let Some((limit, policy)) = rules.age
            && self.ml.entries_after(md) > 0
            && let Some(published) = self.publish_time(self.ml.position_after(md)).await?
            && now_ms() - published > limit.as_millis() as i64
        {
            return Ok(Some((BacklogQuotaType::MessageAge, policy)));
        }
        Ok(None)
    }

    /// The refusal a new producer meets while a quota with a producer policy is exceeded;
    /// an eviction quota evicts instead.
    pub(crate) async fn admit_producer_under_quota(
        &self,
        rules: &BacklogRules,
    ) -> Result<(), BrokerError> {
        match self.exceeded_quota(rules).await? {
            None => Ok(()),
            Some((kind, QuotaPolicy::ConsumerBacklogEviction)) => {
                self.evict(kind, rules).await?;
                Ok(())
            }
            Some((_, policy)) => Err(BrokerError::BacklogQuotaExceeded {
                hold: policy == QuotaPolicy::ProducerRequestHold,
            }),
        }
    }

    /// The periodic quota check: closes the producers of a topic over a producer-policy quota
    /// (they come back and are refused), evicts for an eviction quota. Returns the quota
    /// exceeded, if any.
    pub(crate) async fn enforce_quota(
        &self,
        rules: &BacklogRules,
    ) -> Result<Option<BacklogQuotaType>, BrokerError> {
        let Some((kind, policy)) = self.exceeded_quota(rules).await? else {
            return Ok(None);
        };
        tracing::info!(topic = %self.name, quota = ?kind, ?policy, "backlog quota exceeded");
        match policy {
            QuotaPolicy::ConsumerBacklogEviction => self.evict(kind, rules).await?,
            QuotaPolicy::ProducerRequestHold | QuotaPolicy::ProducerException => {
                let closed = self.close_producers();
                if closed > 0 {
                    tracing::info!(topic = %self.name, producers = closed, "producers closed: backlog quota exceeded");
                }
            }
        }
        Ok(Some(kind))
    }

    /// Moves the slowest subscriptions until the backlog is at 90 % of the limit (bytes), or
    /// acknowledges what is older than 90 % of the limit (age).
    async fn evict(&self, kind: BacklogQuotaType, rules: &BacklogRules) -> Result<(), BrokerError> {
        match (kind, rules.size, rules.age) {
            (BacklogQuotaType::DestinationStorage, Some((limit, _)), _) => {
                let target = (limit as f64 * 0.9) as i64;
                // Each round moves the slowest cursor; a few rounds cover cursors at the
                // same place.
                for _ in 0..16 {
                    let cursors = self.ml.cursors().await;
                    let Some(md) = slowest(&cursors) else { break };
                    let bytes = self.ml.bytes_after(md);
                    if bytes <= target {
                        break;
                    }
                    let entries = self.ml.entries_after(md);
                    let skip = ((entries as f64) * (bytes - target) as f64 / bytes as f64).ceil();
                    let to = self.ml.skip_entries(md, (skip as i64).max(1));
                    for (name, c) in &cursors {
                        if !is_internal(name) && c.mark_delete < to {
                            self.move_cursor(name, to).await?;
                        }
                    }
                }
                Ok(())
            }
            (BacklogQuotaType::MessageAge, _, Some((limit, _))) => {
                self.expire_messages(limit.mul_f64(0.9), None).await?;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Acknowledges, for subscription `only` or every durable one, the messages published more
    /// than `age` ago. Returns how many entries were expired.
    pub async fn expire_messages(
        &self,
        age: Duration,
        only: Option<&str>,
    ) -> Result<u64, BrokerError> {
        let cutoff = now_ms() - age.as_millis() as i64;
        let mut expired = 0;
        for (name, c) in self.ml.cursors().await {
            if is_internal(&name) || only.is_some_and(|o| o != name) {
                continue;
            }
            let Some(to) = self.newest_published_before(c.mark_delete, cutoff).await? else {
                continue;
            };
            expired += self.ml.entries_after(c.mark_delete) - self.ml.entries_after(to);
            self.move_cursor(&name, to).await?;
        }
        Ok(expired.max(0) as u64)
    }

    /// The newest entry after `md` published before `cutoff`, by binary search over the
    /// entries after `md` (publish times follow log order).
    async fn newest_published_before(
        &self,
        md: Position,
        cutoff: i64,
    ) -> Result<Option<Position>, BrokerError> {
        let (mut lo, mut hi) = (0i64, self.ml.entries_after(md));
        // Invariant: the lo-th entry after md (0: md itself) is older than cutoff, the ones
        // after hi are not.
        while lo < hi {
            let mid = lo + (hi - lo + 1) / 2;
            let p = self.ml.skip_entries(md, mid);
            match self.publish_time(p).await? {
                Some(t) if t < cutoff => lo = mid,
                _ => hi = mid - 1,
            }
        }
        Ok((lo > 0).then(|| self.ml.skip_entries(md, lo)))
    }
}

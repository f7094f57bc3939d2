//! What the admin API does to a topic's subscriptions and messages (`pulsar-admin topics
//! subscriptions | create-subscription | unsubscribe | skip | clear-backlog | reset-cursor |
//! peek-messages | examine-message | get-message-by-id | last-message-id | terminate`), and
//! the broker health check.
//!
//! A subscription may be loaded (consumers attached since the topic loaded: its cursor state
//! lives in the [`Subscription`], whose dispatcher must see every move) or only a durable
//! cursor of the managed ledger; each operation goes through whichever holds the state.

use std::sync::Arc;

use ledger::{CursorState, Entry, InitialPosition, ManagedLedger, Position};
use protocol::TopicName;

use crate::subscription::{Subscription, read_position_for};
use crate::{BrokerError, BrokerService, Topic};

/// Where a subscription is created or a cursor reset to, as Pulsar's `MessageId` says it:
/// `(-1, -1)` is the earliest message, `(i64::MAX, i64::MAX)` the latest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    Earliest,
    Latest,
    /// This message is the next one read (or the one after, when `excluded`).
    Message {
        at: Position,
        excluded: bool,
    },
}

impl StartAt {
    /// Pulsar's `MessageId.earliest` / `MessageId.latest` / any other id.
    pub fn from_message_id(ledger_id: i64, entry_id: i64, excluded: bool) -> StartAt {
        match (ledger_id, entry_id) {
            (-1, -1) => StartAt::Earliest,
            (i64::MAX, i64::MAX) => StartAt::Latest,
            _ => StartAt::Message {
                at: Position::new(ledger_id, entry_id),
                excluded,
            },
        }
    }
}

/// Which end [`BrokerService::examine_message`] counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FromEnd {
    Earliest,
    Latest,
}

/// Internal cursors that are not subscriptions (as in Pulsar's subscription list).
fn is_subscription(cursor: &str) -> bool {
    cursor != crate::dedup::DEDUP_CURSOR
}

impl Topic {
    async fn loaded_subscription(&self, name: &str) -> Option<Arc<Subscription>> {
        self.subscriptions.lock().await.get(name).cloned()
    }

    /// The current cursor state of subscription `name` (its loaded state, which may be ahead
    /// of what is persisted), or `SubscriptionNotFound`.
    async fn cursor_state(&self, name: &str) -> Result<CursorState, BrokerError> {
        if let Some(sub) = self.loaded_subscription(name).await
            && sub.is_durable()
        {
            return Ok(sub.cursor_state());
        }
        match self.ml.cursor(name).await {
            Some(c) if is_subscription(name) => Ok(c),
            _ => Err(BrokerError::SubscriptionNotFound(name.to_string())),
        }
    }
}

/// The `n`th (1-based) entry after `state`'s mark-delete position that it has not
/// acknowledged, if the ledger has that many.
fn nth_unacked(ml: &ManagedLedger, state: &CursorState, n: u64) -> Option<Position> {
    let last = ml.last_confirmed();
    let next = ml.successor();
    let mut at = state.mark_delete;
    let mut left = n;
    while left > 0 {
        at = next(at);
        if at > last || at.entry_id < 0 {
            return None;
        }
        if !state.individually_deleted.contains(&at) {
            left -= 1;
        }
    }
    Some(at)
}

impl BrokerService {
    /// The subscriptions of a topic (its durable cursors and its loaded subscriptions).
    pub async fn subscriptions(&self, name: &TopicName) -> Result<Vec<String>, BrokerError> {
        let t = self.topic(name).await?;
        let mut names: Vec<String> =
            t.ml.cursors()
                .await
                .into_iter()
                .map(|(n, _)| n)
                .filter(|n| is_subscription(n))
                .collect();
        names.extend(t.subscriptions.lock().await.keys().cloned());
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Creates durable subscription `sub` with no consumer, reading from `at` (Pulsar's
    /// `create-subscription`); `SubscriptionExists` if it is there already.
    pub async fn create_subscription(
        &self,
        name: &TopicName,
        sub: &str,
        at: StartAt,
    ) -> Result<(), BrokerError> {
        let t = self.topic(name).await?;
        if !is_subscription(sub)
            || t.ml.cursor(sub).await.is_some()
            || t.loaded_subscription(sub).await.is_some()
        {
            return Err(BrokerError::SubscriptionExists(sub.to_string()));
        }
        let initial = match at {
            StartAt::Earliest => InitialPosition::Earliest,
            _ => InitialPosition::Latest,
        };
        t.ml.open_cursor(sub, initial).await?;
        if let StartAt::Message { .. } = at {
            t.ml.reset_cursor(sub, read_from(&t.ml, at)).await?;
        }
        Ok(())
    }

    /// Deletes subscription `sub` (Pulsar's `unsubscribe`): refused with `SubscriptionBusy`
    /// while consumers are attached, unless `force`, which disconnects them first.
    pub async fn delete_subscription(
        &self,
        name: &TopicName,
        sub: &str,
        force: bool,
    ) -> Result<(), BrokerError> {
        let t = self.topic(name).await?;
        t.cursor_state(sub).await?;
        if let Some(loaded) = t.loaded_subscription(sub).await {
            if loaded.consumer_count() > 0 && !force {
                return Err(BrokerError::SubscriptionBusy);
            }
            loaded.disconnect_consumers();
            t.remove_subscription(sub).await;
            return loaded.delete().await;
        }
        Ok(t.ml.delete_cursor(sub).await?)
    }

    /// Acknowledges the next `n` unacknowledged entries of `sub` (Pulsar's `skip`), or all of
    /// them when `n` is `None` (`clear-backlog`).
    pub async fn skip_messages(
        &self,
        name: &TopicName,
        sub: &str,
        n: Option<u64>,
    ) -> Result<(), BrokerError> {
        let t = self.topic(name).await?;
        let state = t.cursor_state(sub).await?;
        let last = t.ml.last_confirmed();
        let to = match n {
            Some(0) => return Ok(()),
            Some(n) => nth_unacked(&t.ml, &state, n).unwrap_or(last),
            None => last,
        };
        if to.entry_id < 0 || to <= state.mark_delete {
            return Ok(());
        }
        t.move_cursor(sub, to).await
    }

    /// Moves `sub` so that `at` is read next, acknowledged or not (Pulsar's `reset-cursor`);
    /// its consumers are disconnected and subscribe again from there.
    pub async fn reset_cursor(
        &self,
        name: &TopicName,
        sub: &str,
        at: StartAt,
    ) -> Result<(), BrokerError> {
        let t = self.topic(name).await?;
        t.cursor_state(sub).await?;
        let from = read_from(&t.ml, at);
        match t.loaded_subscription(sub).await {
            Some(loaded) if loaded.is_durable() => {
                loaded.seek(from).await?;
            }
            _ => t.ml.reset_cursor(sub, from).await?,
        }
        Ok(())
    }

    /// Moves `sub` to the first message published at or after `ts_ms` (reset-cursor by time).
    pub async fn reset_cursor_to_time(
        &self,
        name: &TopicName,
        sub: &str,
        ts_ms: u64,
    ) -> Result<(), BrokerError> {
        let t = self.topic(name).await?;
        t.cursor_state(sub).await?;
        let at = crate::subscription::find_by_publish_time(&t.ml, ts_ms).await?;
        self.reset_cursor(
            name,
            sub,
            StartAt::Message {
                at,
                excluded: false,
            },
        )
        .await
    }

    /// The `n`th (1-based) entry `sub` has not acknowledged (Pulsar's `peek-messages` reads
    /// them one by one); `None` past the end.
    pub async fn peek(
        &self,
        name: &TopicName,
        sub: &str,
        n: u64,
    ) -> Result<Option<Entry>, BrokerError> {
        let t = self.topic(name).await?;
        let state = t.cursor_state(sub).await?;
        match nth_unacked(&t.ml, &state, n) {
            Some(p) => read_one(&t.ml, p).await,
            None => Ok(None),
        }
    }

    /// The `n`th (1-based) entry from the earliest or the latest end of the topic (Pulsar's
    /// `examine-message`).
    pub async fn examine_message(
        &self,
        name: &TopicName,
        from: FromEnd,
        n: u64,
    ) -> Result<Option<Entry>, BrokerError> {
        let t = self.topic(name).await?;
        let ml = &t.ml;
        let first = ml.first_position();
        let before_first = Position::new(first.ledger_id, first.entry_id - 1);
        let total = ml.entries_after(before_first).max(0) as u64;
        if n == 0 || n > total {
            return Ok(None);
        }
        let k = match from {
            FromEnd::Earliest => n,
            FromEnd::Latest => total - n + 1,
        };
        let p = ml.skip_entries(before_first, k as i64);
        read_one(ml, p).await
    }

    /// The entry at `at` (Pulsar's `get-message-by-id`); `None` if the topic has no such entry.
    pub async fn entry(
        &self,
        name: &TopicName,
        at: Position,
    ) -> Result<Option<Entry>, BrokerError> {
        let t = self.topic(name).await?;
        if !t.ml.contains(at) {
            return Ok(None);
        }
        read_one(&t.ml, at).await
    }

    /// The position of the topic's last entry (`(current ledger, -1)` when it has none) and
    /// the number of messages in it.
    pub async fn last_message(
        &self,
        name: &TopicName,
    ) -> Result<(Position, Option<i32>), BrokerError> {
        let t = self.topic(name).await?;
        let last = t.ml.last_confirmed();
        if last.entry_id < 0 {
            return Ok((last, None));
        }
        let batch = read_one(&t.ml, last)
            .await?
            .and_then(|e| protocol::parse_entry(&e.data).ok())
            .and_then(|(meta, _)| meta.num_messages_in_batch);
        Ok((last, batch))
    }

    /// Pulsar's broker health check on this broker's heartbeat topic: a message is stored and
    /// read back from storage (the same append and read paths as every topic). Returns how long
    /// the round trip took.
    pub async fn health_check(
        &self,
        heartbeat: &TopicName,
    ) -> Result<std::time::Duration, BrokerError> {
        let started = std::time::Instant::now();
        let t = self.topic(heartbeat).await?;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let content = format!("health-check-{now_ms}-{}", started.elapsed().as_nanos());
        let meta = protocol::pb::MessageMetadata {
            producer_name: "health-check".into(),
            sequence_id: now_ms,
            publish_time: now_ms,
            ..Default::default()
        };
        let entry = protocol::entry::encode_entry(&meta, content.as_bytes());
        let at = t.ml.append(entry.clone()).await?.await?;
        t.count_in(None, 1, entry.len() as u64);
        t.notify_appended();
        match read_one(&t.ml, at).await? {
            Some(e) if e.data == entry => Ok(started.elapsed()),
            Some(_) => Err(BrokerError::Metadata(format!(
                "health check: the entry read back at {at} is not the one written"
            ))),
            None => Err(BrokerError::Metadata(format!(
                "health check: the entry written at {at} cannot be read back"
            ))),
        }
    }

    /// Pulsar's `topics terminate`: the topic takes no more messages, ever. Producers are
    /// closed (re-created, they are refused with `TopicTerminatedError`); consumers that have
    /// read everything are told REACHED_END_OF_TOPIC. Returns the last message's position.
    pub async fn terminate(&self, name: &TopicName) -> Result<Position, BrokerError> {
        let t = self.topic(name).await?;
        let last = t.ml.terminate().await?;
        let closed = t.close_producers();
        for sub in t.subscriptions.lock().await.values() {
            sub.wake();
        }
        tracing::info!(topic = %name, %last, producers_closed = closed, "topic terminated");
        Ok(last)
    }
}

/// The position a cursor reset to `at` reads next.
fn read_from(ml: &ManagedLedger, at: StartAt) -> Position {
    match at {
        StartAt::Earliest => ml.first_position(),
        StartAt::Latest => ml.position_after(ml.last_confirmed()),
        StartAt::Message { at, excluded } => {
            let p = read_position_for(ml, at);
            if excluded && p == Position::new(at.ledger_id, at.entry_id.max(0)) {
                ml.position_after(p)
            } else {
                p
            }
        }
    }
}

/// The entry at exactly `p`, if it is stored.
async fn read_one(ml: &ManagedLedger, p: Position) -> Result<Option<Entry>, BrokerError> {
    Ok(ml
        .read(p, 1, usize::MAX)
        .await?
        .into_iter()
        .next()
        .filter(|e| e.position == p))
}

//! A topic's subscriptions and messages over REST, with Pulsar's paths, bodies and answers:
//! `…/{topic}/subscriptions`, `…/subscription/{sub}` (create, delete), `…/skip/{n}`,
//! `…/skip_all`, `…/resetcursor[/{timestamp}]`, `…/position/{n}` (peek), `…/examinemessage`,
//! `…/ledger/{l}/entry/{e}` and `…/lastMessageId`.
//!
//! A message travels as Pulsar's admin API sends it: the payload as the body (a batch entry's
//! whole batch, which the client splits), its metadata in `X-Pulsar-*` headers.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use broker::admin::{FromEnd, StartAt};
use ledger::{Entry, Position};
use policy::types::{MessageIdJson, ResetCursorData};
use protocol::{Domain, NamespaceName, TopicName};
use serde::Deserialize;

use super::{ApiError, ApiResult, S, WebState, json, no_content};

/// The topic and the subscription of a `…/{topic}/subscription/{sub}/…` path.
pub struct TopicSub {
    topic: TopicName,
    sub: String,
    params: HashMap<String, String>,
}

impl TopicSub {
    fn param(&self, k: &str) -> Result<&str, ApiError> {
        self.params
            .get(k)
            .map(String::as_str)
            .ok_or_else(|| ApiError::bad_request(format!("the path has no {{{k}}}")))
    }

    fn number<T: std::str::FromStr>(&self, k: &str) -> Result<T, ApiError> {
        let v = self.param(k)?;
        v.parse().map_err(|_| {
            ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                format!("Invalid {k}: {v:?}"),
            )
        })
    }
}

impl<St: Send + Sync> FromRequestParts<St> for TopicSub {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, ApiError> {
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let get = |k: &str| params.get(k).map(String::as_str).unwrap_or_default();
        let topic =
            NamespaceName::new(get("t"), get("ns"))?.topic(Domain::Persistent, get("topic"))?;
        let sub = get("sub").to_string();
        Ok(TopicSub { topic, sub, params })
    }
}

/// Subscription operations are on one topic: a partitioned topic's are on its partitions.
async fn single_topic(s: &WebState, t: &TopicName, what: &str) -> Result<(), ApiError> {
    if s.policy.partitions(t).await? > 0 {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{what} on a partitioned topic is not allowed"),
        ));
    }
    s.policy.existing_topic(t).await?;
    Ok(())
}

/// The topics a subscription operation applies to: the partitions of a partitioned topic,
/// else the topic itself (which must exist).
async fn targets(s: &WebState, t: &TopicName) -> Result<Vec<TopicName>, ApiError> {
    let partitions = s.policy.partitions(t).await?;
    if partitions > 0 {
        return Ok((0..partitions).map(|i| t.partition(i)).collect());
    }
    s.policy.existing_topic(t).await?;
    Ok(vec![t.clone()])
}

/// `GET …/{topic}/subscriptions`.
pub async fn list(State(s): S, super::Topic(t): super::Topic) -> ApiResult {
    let mut names = Vec::new();
    for target in targets(&s, &t).await? {
        names.extend(s.broker.subscriptions(&target).await?);
    }
    names.sort();
    names.dedup();
    json(&names)
}

/// The position a `MessageIdImpl` / `ResetCursorData` body names; an empty body is `latest`.
fn start_at(raw: &Bytes) -> Result<StartAt, ApiError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(StartAt::Latest);
    }
    let r: ResetCursorData = super::body(raw, "message id")?;
    Ok(StartAt::from_message_id(
        r.id.ledger_id,
        r.id.entry_id,
        r.is_excluded,
    ))
}

/// `PUT …/subscription/{sub}` with a message id (`latest` when empty): creates the
/// subscription there, on every partition of a partitioned topic.
pub async fn create(State(s): S, p: TopicSub, raw: Bytes) -> ApiResult {
    let at = start_at(&raw)?;
    for target in targets(&s, &p.topic).await? {
        s.broker.create_subscription(&target, &p.sub, at).await?;
    }
    no_content()
}

/// `DELETE …/subscription/{sub}[?force=true]`.
pub async fn delete(
    State(s): S,
    p: TopicSub,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let force = super::force(&q)?;
    for target in targets(&s, &p.topic).await? {
        s.broker.delete_subscription(&target, &p.sub, force).await?;
    }
    no_content()
}

/// `POST …/subscription/{sub}/skip/{numMessages}`.
pub async fn skip(State(s): S, p: TopicSub) -> ApiResult {
    let n: u64 = p.number("n")?;
    single_topic(&s, &p.topic, "Skip messages").await?;
    s.broker.skip_messages(&p.topic, &p.sub, Some(n)).await?;
    no_content()
}

/// `POST …/subscription/{sub}/skip_all` (clear-backlog).
pub async fn skip_all(State(s): S, p: TopicSub) -> ApiResult {
    for target in targets(&s, &p.topic).await? {
        s.broker.skip_messages(&target, &p.sub, None).await?;
    }
    no_content()
}

/// `POST …/subscription/{sub}/resetcursor/{timestamp}`.
pub async fn reset_to_time(State(s): S, p: TopicSub) -> ApiResult {
    let ts: u64 = p.number("timestamp")?;
    for target in targets(&s, &p.topic).await? {
        s.broker.reset_cursor_to_time(&target, &p.sub, ts).await?;
    }
    no_content()
}

/// `POST …/subscription/{sub}/resetcursor` with a `ResetCursorData` body.
pub async fn reset_to_message(State(s): S, p: TopicSub, raw: Bytes) -> ApiResult {
    let at = start_at(&raw)?;
    single_topic(&s, &p.topic, "Reset cursor").await?;
    s.broker.reset_cursor(&p.topic, &p.sub, at).await?;
    no_content()
}

/// `GET …/subscription/{sub}/position/{n}`: the `n`th message the subscription has not
/// acknowledged.
pub async fn peek(State(s): S, p: TopicSub) -> ApiResult {
    let n: u64 = p.number("n")?;
    if n == 0 {
        return Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "Invalid message position 0: positions start at 1",
        ));
    }
    single_topic(&s, &p.topic, "Peek messages").await?;
    match s.broker.peek(&p.topic, &p.sub, n).await? {
        Some(e) => Ok(message_response(&e)),
        None => Err(ApiError::not_found("Message not found")),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExamineQuery {
    #[serde(default = "latest")]
    initial_position: String,
    #[serde(default = "first")]
    message_position: u64,
}

fn latest() -> String {
    "latest".into()
}

fn first() -> u64 {
    1
}

/// `GET …/{topic}/examinemessage?initialPosition=earliest|latest&messagePosition=n`.
pub async fn examine(
    State(s): S,
    super::Topic(t): super::Topic,
    Query(q): Query<ExamineQuery>,
) -> ApiResult {
    let from = match q.initial_position.to_ascii_lowercase().as_str() {
        "earliest" => FromEnd::Earliest,
        "latest" => FromEnd::Latest,
        other => {
            return Err(ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                format!("Invalid initialPosition {other:?}: earliest or latest"),
            ));
        }
    };
    if q.message_position == 0 {
        return Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "Invalid messagePosition 0: positions start at 1",
        ));
    }
    single_topic(&s, &t, "Examine messages").await?;
    match s
        .broker
        .examine_message(&t, from, q.message_position)
        .await?
    {
        Some(e) => Ok(message_response(&e)),
        None => Err(ApiError::not_found(format!(
            "Message not found: the topic has fewer than {} messages",
            q.message_position
        ))),
    }
}

/// `GET …/{topic}/ledger/{ledgerId}/entry/{entryId}`.
pub async fn by_id(State(s): S, p: TopicSub) -> ApiResult {
    let at = Position::new(p.number("ledger")?, p.number("entry")?);
    single_topic(&s, &p.topic, "Get message by id").await?;
    match s.broker.entry(&p.topic, at).await? {
        Some(e) => Ok(message_response(&e)),
        None => Err(ApiError::not_found(format!(
            "Message id not found: {}:{}",
            at.ledger_id, at.entry_id
        ))),
    }
}

/// `POST …/{topic}/terminate`: no more messages, ever; answers the last message's id.
pub async fn terminate(State(s): S, super::Topic(t): super::Topic) -> ApiResult {
    single_topic(&s, &t, "Termination").await?;
    let last = s.broker.terminate(&t).await?;
    json(&MessageIdJson {
        partition_index: t.partition_index().map_or(-1, |i| i as i32),
        ..MessageIdJson::new(last.ledger_id, last.entry_id)
    })
}

/// `GET …/{topic}/lastMessageId`.
pub async fn last_message_id(State(s): S, super::Topic(t): super::Topic) -> ApiResult {
    single_topic(&s, &t, "Get last message id").await?;
    let (last, batch) = s.broker.last_message(&t).await?;
    json(&MessageIdJson {
        partition_index: t.partition_index().map_or(-1, |i| i as i32),
        batch_index: batch.filter(|n| *n > 1).map(|n| n - 1),
        ..MessageIdJson::new(last.ledger_id, last.entry_id)
    })
}

/// One stored entry as Pulsar's admin API answers it: its payload as the body (compressed
/// payloads are sent as stored, with `X-Pulsar-compression` saying how), its metadata in
/// headers.
fn message_response(e: &Entry) -> axum::response::Response {
    let mut h = HeaderMap::new();
    let mut put = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(HeaderName::from_static(name), v);
        }
    };
    put(
        "x-pulsar-message-id",
        format!("{}:{}", e.position.ledger_id, e.position.entry_id),
    );
    let Ok((meta, offset)) = protocol::parse_entry(&e.data) else {
        // Not a message Pulsar's way (nothing tierlog writes): the bytes as stored.
        return (h, e.data.clone()).into_response();
    };
    let payload = e.data.slice(offset..);
    let time = |ms: u64| {
        humantime::format_rfc3339_millis(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms),
        )
        .to_string()
    };
    put("x-pulsar-publish-time", time(meta.publish_time));
    if let Some(t) = meta.event_time.filter(|t| *t > 0) {
        put("x-pulsar-event-time", time(t));
    }
    if let Some(t) = meta.deliver_at_time.filter(|t| *t > 0) {
        put("x-pulsar-deliver-at-time", time(t as u64));
    }
    put("x-pulsar-producer-name", meta.producer_name.clone());
    put("x-pulsar-sequence-id", meta.sequence_id.to_string());
    if let Some(k) = &meta.partition_key {
        put("x-pulsar-partition-key", k.clone());
    }
    if meta.partition_key_b64_encoded == Some(true) {
        put("x-pulsar-partition-key-b64-encoded", "true".into());
    }
    if meta.null_value == Some(true) {
        put("x-pulsar-null-value", "true".into());
    }
    if let Some(n) = meta.num_messages_in_batch {
        put("x-pulsar-num-batch-message", n.to_string());
    }
    put("x-pulsar-batch-size", payload.len().to_string());
    let compression = protocol::pb::CompressionType::try_from(meta.compression.unwrap_or(0))
        .unwrap_or(protocol::pb::CompressionType::None);
    if compression != protocol::pb::CompressionType::None {
        put("x-pulsar-compression", compression.as_str_name().into());
        put(
            "x-pulsar-uncompressed-size",
            meta.uncompressed_size.unwrap_or(0).to_string(),
        );
    }
    if !meta.encryption_keys.is_empty() {
        put("x-pulsar-is-encrypted", "true".into());
    }
    if !meta.properties.is_empty() {
        let props: std::collections::BTreeMap<&str, &str> = meta
            .properties
            .iter()
            .map(|kv| (kv.key.as_str(), kv.value.as_str()))
            .collect();
        if let Ok(j) = serde_json::to_string(&props) {
            put("x-pulsar-property", j);
        }
    }
    (h, payload).into_response()
}

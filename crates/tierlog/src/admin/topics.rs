//! Handlers of the admin REST API.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ledger::Position;
use serde_json::{Value, json};

use super::error::ApiError;
use super::policies::{Policies, RetentionPolicies, TenantInfo};
use super::time::iso8601;
use super::{AdminState, OffloadStatus, ml_name};

type S = State<Arc<AdminState>>;
type ApiResult = Result<Response, ApiError>;

fn no_content() -> ApiResult {
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn parse<T: serde::de::DeserializeOwned>(body: &Bytes, what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("Invalid {what}: {e}")))
}

// ----- tenants -----

pub async fn list_tenants(State(s): S) -> ApiResult {
    Ok(Json(s.policies.tenants().await?).into_response())
}

pub async fn get_tenant(State(s): S, Path(t): Path<String>) -> ApiResult {
    Ok(Json(s.policies.tenant(&t).await?).into_response())
}

pub async fn create_tenant(State(s): S, Path(t): Path<String>, body: Bytes) -> ApiResult {
    let info: TenantInfo = if body.is_empty() {
        TenantInfo::default()
    } else {
        parse(&body, "tenant info")?
    };
    s.policies.create_tenant(&t, &info).await?;
    no_content()
}

pub async fn delete_tenant(State(s): S, Path(t): Path<String>) -> ApiResult {
    s.policies.delete_tenant(&t).await?;
    no_content()
}

// ----- namespaces -----

pub async fn list_namespaces(State(s): S, Path(t): Path<String>) -> ApiResult {
    if !s.policies.tenant_exists(&t).await? {
        return Err(ApiError::not_found("Tenant does not exist"));
    }
    Ok(Json(s.policies.namespaces(&t).await?).into_response())
}

pub async fn create_namespace(State(s): S, Path((t, ns)): Path<(String, String)>) -> ApiResult {
    s.policies.create_namespace(&t, &ns).await?;
    no_content()
}

pub async fn delete_namespace(State(s): S, Path((t, ns)): Path<(String, String)>) -> ApiResult {
    let prefix = format!("{t}/{ns}/persistent/");
    if s.factory
        .names()
        .await?
        .iter()
        .any(|n| n.starts_with(&prefix))
    {
        return Err(ApiError::conflict("Cannot delete non empty namespace"));
    }
    s.policies.delete_namespace(&t, &ns).await?;
    no_content()
}

pub async fn get_policies(State(s): S, Path((t, ns)): Path<(String, String)>) -> ApiResult {
    Ok(Json(s.policies.policies(&t, &ns).await?).into_response())
}

async fn update(s: &AdminState, t: &str, ns: &str, f: impl Fn(&mut Policies)) -> ApiResult {
    s.policies.update(t, ns, f).await?;
    s.apply(t, ns).await?;
    no_content()
}

pub async fn get_retention(State(s): S, Path((t, ns)): Path<(String, String)>) -> ApiResult {
    let p = s.policies.policies(&t, &ns).await?;
    // Unset: the broker defaults, in the policy's units (-1 stays unlimited).
    let r = p.retention_policies.unwrap_or(RetentionPolicies {
        retention_time_in_minutes: if s.defaults.retention_time_ms < 0 {
            -1
        } else {
            s.defaults.retention_time_ms / 60_000
        },
        retention_size_in_mb: if s.defaults.retention_size_bytes < 0 {
            -1
        } else {
            s.defaults.retention_size_bytes >> 20
        },
    });
    Ok(Json(r).into_response())
}

pub async fn set_retention(
    State(s): S,
    Path((t, ns)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let r: RetentionPolicies = parse(&body, "retention policies")?;
    retention_valid(&r)?;
    update(&s, &t, &ns, move |p| p.retention_policies = Some(r)).await
}

pub async fn remove_retention(State(s): S, Path((t, ns)): Path<(String, String)>) -> ApiResult {
    update(&s, &t, &ns, |p| p.retention_policies = None).await
}

fn parse_number(body: &Bytes, what: &str) -> Result<i64, ApiError> {
    parse::<i64>(body, what)
}

pub async fn get_threshold(State(s): S, Path((t, ns)): Path<(String, String)>) -> ApiResult {
    Ok(Json(s.policies.policies(&t, &ns).await?.offload_threshold).into_response())
}

pub async fn set_threshold(
    State(s): S,
    Path((t, ns)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let v = parse_number(&body, "offload threshold")?;
    update(&s, &t, &ns, move |p| p.offload_threshold = v).await
}

pub async fn get_threshold_seconds(
    State(s): S,
    Path((t, ns)): Path<(String, String)>,
) -> ApiResult {
    Ok(Json(
        s.policies
            .policies(&t, &ns)
            .await?
            .offload_threshold_in_seconds,
    )
    .into_response())
}

pub async fn set_threshold_seconds(
    State(s): S,
    Path((t, ns)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let v = parse_number(&body, "offload threshold in seconds")?;
    update(&s, &t, &ns, move |p| p.offload_threshold_in_seconds = v).await
}

pub async fn get_lag(State(s): S, Path((t, ns)): Path<(String, String)>) -> ApiResult {
    match s.policies.policies(&t, &ns).await?.offload_deletion_lag_ms {
        Some(v) => Ok(Json(v).into_response()),
        None => no_content(),
    }
}

pub async fn set_lag(State(s): S, Path((t, ns)): Path<(String, String)>, body: Bytes) -> ApiResult {
    let v = parse_number(&body, "offload deletion lag")?;
    update(&s, &t, &ns, move |p| p.offload_deletion_lag_ms = Some(v)).await
}

pub async fn clear_lag(State(s): S, Path((t, ns)): Path<(String, String)>) -> ApiResult {
    update(&s, &t, &ns, |p| p.offload_deletion_lag_ms = None).await
}

// ----- topics -----

async fn existing_topic(
    s: &AdminState,
    t: &str,
    ns: &str,
    topic: &str,
) -> Result<ledger::ManagedLedger, ApiError> {
    s.policies.policies(t, ns).await?;
    if !s.factory.exists(&ml_name(t, ns, topic)).await? {
        return Err(ApiError::not_found("Topic not found"));
    }
    s.open_topic(t, ns, topic).await
}

pub async fn list_topics(State(s): S, Path((t, ns)): Path<(String, String)>) -> ApiResult {
    s.policies.policies(&t, &ns).await?;
    let prefix = format!("{t}/{ns}/persistent/");
    let topics: Vec<String> = s
        .factory
        .names()
        .await?
        .into_iter()
        .filter_map(|n| {
            n.strip_prefix(&prefix)
                .map(|local| format!("persistent://{t}/{ns}/{local}"))
        })
        .collect();
    Ok(Json(topics).into_response())
}

pub async fn create_topic(
    State(s): S,
    Path((t, ns, topic)): Path<(String, String, String)>,
) -> ApiResult {
    s.policies.policies(&t, &ns).await?;
    if s.factory.exists(&ml_name(&t, &ns, &topic)).await? {
        return Err(ApiError::conflict("This topic already exists"));
    }
    s.open_topic(&t, &ns, &topic).await?;
    no_content()
}

pub async fn delete_topic(
    State(s): S,
    Path((t, ns, topic)): Path<(String, String, String)>,
) -> ApiResult {
    existing_topic(&s, &t, &ns, &topic).await?;
    if let Some(b) = s.broker.get() {
        b.unload(&format!("persistent://{t}/{ns}/{topic}")).await;
    }
    s.factory.delete(&ml_name(&t, &ns, &topic)).await?;
    s.policies.delete_topic_policies(&t, &ns, &topic).await?;
    s.offload_status
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&ml_name(&t, &ns, &topic));
    no_content()
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageIdBody {
    ledger_id: i64,
    entry_id: i64,
}

pub async fn trigger_offload(
    State(s): S,
    Path((t, ns, topic)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult {
    let id: MessageIdBody = parse(&body, "message id")?;
    let ml = existing_topic(&s, &t, &ns, &topic).await?;
    let name = ml_name(&t, &ns, &topic);
    {
        let mut status = s.offload_status.lock().unwrap_or_else(|p| p.into_inner());
        if matches!(status.get(&name), Some(OffloadStatus::Running)) {
            return Err(ApiError::conflict("Offload already in progress"));
        }
        status.insert(name.clone(), OffloadStatus::Running);
    }
    let state = Arc::clone(&s);
    tokio::spawn(async move {
        let result = ml
            .offload_prefix(Position::new(id.ledger_id, id.entry_id))
            .await;
        let status = match result {
            Ok(p) => OffloadStatus::Success(p),
            Err(e) => OffloadStatus::Error(e.to_string()),
        };
        state
            .offload_status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name, status);
    });
    no_content()
}

fn message_id(p: Position) -> Value {
    json!({"ledgerId": p.ledger_id, "entryId": p.entry_id, "partitionIndex": -1})
}

pub async fn offload_status(
    State(s): S,
    Path((t, ns, topic)): Path<(String, String, String)>,
) -> ApiResult {
    existing_topic(&s, &t, &ns, &topic).await?;
    let status = s
        .offload_status
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&ml_name(&t, &ns, &topic))
        .cloned();
    let earliest = message_id(Position::EARLIEST);
    let body = match status {
        None => json!({"status": "NOT_RUN", "lastError": "", "firstUnoffloadedMessage": earliest}),
        Some(OffloadStatus::Running) => {
            json!({"status": "RUNNING", "lastError": "", "firstUnoffloadedMessage": earliest})
        }
        Some(OffloadStatus::Success(p)) => {
            json!({"status": "SUCCESS", "lastError": "", "firstUnoffloadedMessage": message_id(p)})
        }
        Some(OffloadStatus::Error(e)) => {
            json!({"status": "ERROR", "lastError": e, "firstUnoffloadedMessage": earliest})
        }
    };
    Ok(Json(body).into_response())
}

pub async fn internal_stats(
    State(s): S,
    Path((t, ns, topic)): Path<(String, String, String)>,
) -> ApiResult {
    let ml = existing_topic(&s, &t, &ns, &topic).await?;
    let st = ml.stats().await;
    let current = st.ledgers.last().map(|l| l.ledger_id);
    let ledgers: Vec<Value> = st
        .ledgers
        .iter()
        .map(|l| {
            json!({
                "ledgerId": l.ledger_id,
                "entries": l.entries,
                "size": l.size,
                "offloaded": l.offload.as_ref().is_some_and(|o| o.complete),
                "metadata": null,
                "underReplicated": false,
            })
        })
        .collect();
    let mut cursors = serde_json::Map::new();
    for (name, c) in ml.cursors().await {
        let read = ml
            .cursor_read_position(&name)
            .await
            .unwrap_or(c.mark_delete);
        let ranges: Vec<String> = ledger::info::to_ranges(c.individually_deleted.iter().copied())
            .iter()
            .map(|r| format!("({}:{}..{}:{}]", r[0], r[1] - 1, r[0], r[2]))
            .collect();
        cursors.insert(
            name,
            json!({
                "markDeletePosition": c.mark_delete.to_string(),
                "readPosition": read.to_string(),
                "waitingReadOp": false,
                "pendingReadOps": 0,
                "messagesConsumedCounter": 0,
                "cursorLedger": -1,
                "cursorLedgerLastEntry": -1,
                "individuallyDeletedMessages": format!("[{}]", ranges.join(", ")),
                "lastLedgerSwitchTimestamp": iso8601(st.last_ledger_created_ms),
                "state": "Open",
                "active": false,
                "numberOfEntriesSinceFirstNotAckedMessage": 0,
                "totalNonContiguousDeletedMessagesRange": ranges.len(),
                "properties": {},
            }),
        );
    }
    let body = json!({
        "entriesAddedCounter": st.entries_added,
        "numberOfEntries": st.number_of_entries,
        "totalSize": st.total_size,
        "currentLedgerEntries": st.current_ledger_entries,
        "currentLedgerSize": st.current_ledger_size,
        "lastLedgerCreatedTimestamp": iso8601(st.last_ledger_created_ms),
        "lastLedgerCreationFailureTimestamp": null,
        "waitingCursorsCount": 0,
        "pendingAddEntriesCount": 0,
        "lastConfirmedEntry": st.last_confirmed.to_string(),
        "state": if current.is_some() { "LedgerOpened" } else { "Closed" },
        "ledgers": ledgers,
        "cursors": cursors,
        "schemaLedgers": [],
        "compactedLedger": {"ledgerId": -1, "entries": -1, "size": -1, "offloaded": false, "underReplicated": false},
    });
    Ok(Json(body).into_response())
}

pub async fn stats(State(s): S, Path((t, ns, topic)): Path<(String, String, String)>) -> ApiResult {
    let ml = existing_topic(&s, &t, &ns, &topic).await?;
    let st = ml.stats().await;
    let offloaded: i64 = st
        .ledgers
        .iter()
        .filter(|l| l.offload.as_ref().is_some_and(|o| o.complete))
        .map(|l| l.size)
        .sum();
    let subscriptions: serde_json::Map<String, Value> = ml
        .cursors()
        .await
        .into_iter()
        .map(|(name, _)| {
            (
                name,
                json!({"msgBacklog": 0, "type": "Exclusive", "consumers": []}),
            )
        })
        .collect();
    Ok(Json(json!({
        "msgInCounter": st.entries_added,
        "storageSize": st.total_size,
        "offloadedStorageSize": offloaded,
        "backlogSize": 0,
        "publishers": [],
        "subscriptions": subscriptions,
    }))
    .into_response())
}

fn retention_valid(r: &RetentionPolicies) -> Result<(), ApiError> {
    // Pulsar rejects a single zero limit next to a non-zero one.
    if (r.retention_time_in_minutes == 0) != (r.retention_size_in_mb == 0) {
        return Err(ApiError::precondition(
            "Invalid retention policy: Setting a single time or size limit to 0 is invalid when one of the limits has a non-zero value. Use the value of -1 instead of 0 to ignore a specific limit.",
        ));
    }
    Ok(())
}

pub async fn get_offload_policies(State(s): S, Path((t, ns)): Path<(String, String)>) -> ApiResult {
    let p = s.policies.policies(&t, &ns).await?;
    Ok(Json(p.offload_policies.unwrap_or_default()).into_response())
}

pub async fn set_offload_policies(
    State(s): S,
    Path((t, ns)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let op = super::offload_policies::OffloadPolicies::parse(&body, s.offload_base.as_ref())?;
    update(&s, &t, &ns, move |p| p.offload_policies = Some(op.clone())).await
}

pub async fn remove_offload_policies(
    State(s): S,
    Path((t, ns)): Path<(String, String)>,
) -> ApiResult {
    update(&s, &t, &ns, |p| p.offload_policies = None).await
}

/// Topic-level policy handlers: the namespace must exist, the topic need not be loaded.
async fn update_topic(
    s: &AdminState,
    (t, ns, topic): &(String, String, String),
    f: impl Fn(&mut super::policies::TopicPolicies),
) -> ApiResult {
    s.policies.policies(t, ns).await?;
    s.policies.update_topic_policies(t, ns, topic, f).await?;
    s.apply(t, ns).await?;
    no_content()
}

pub async fn get_topic_offload_policies(
    State(s): S,
    Path((t, ns, topic)): Path<(String, String, String)>,
) -> ApiResult {
    s.policies.policies(&t, &ns).await?;
    let tp = s.policies.topic_policies(&t, &ns, &topic).await?;
    Ok(Json(tp.offload_policies.unwrap_or_default()).into_response())
}

pub async fn set_topic_offload_policies(
    State(s): S,
    Path(path): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult {
    let op = super::offload_policies::OffloadPolicies::parse(&body, s.offload_base.as_ref())?;
    update_topic(&s, &path, move |p| p.offload_policies = Some(op.clone())).await
}

pub async fn remove_topic_offload_policies(
    State(s): S,
    Path(path): Path<(String, String, String)>,
) -> ApiResult {
    update_topic(&s, &path, |p| p.offload_policies = None).await
}

pub async fn get_topic_retention(
    State(s): S,
    Path((t, ns, topic)): Path<(String, String, String)>,
) -> ApiResult {
    s.policies.policies(&t, &ns).await?;
    let tp = s.policies.topic_policies(&t, &ns, &topic).await?;
    match tp.retention_policies {
        Some(r) => Ok(Json(r).into_response()),
        None => Ok(axum::http::StatusCode::NO_CONTENT.into_response()),
    }
}

pub async fn set_topic_retention(
    State(s): S,
    Path(path): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult {
    let r: RetentionPolicies = parse(&body, "retention policies")?;
    retention_valid(&r)?;
    update_topic(&s, &path, move |p| p.retention_policies = Some(r)).await
}

pub async fn remove_topic_retention(
    State(s): S,
    Path(path): Path<(String, String, String)>,
) -> ApiResult {
    update_topic(&s, &path, |p| p.retention_policies = None).await
}

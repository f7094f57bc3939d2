//! `/admin/v2/persistent/…` (topics, partitioned topics, topic policies, offload, stats) and the
//! HTTP lookup clients use with an `http://` service URL.

use axum::body::Bytes;
use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use ledger::Position;
use policy::OffloadPolicies;
use policy::types::{MessageIdJson, PartitionedTopicMetadata, RetentionPolicies};
use protocol::{Domain, TopicName};
use serde::Serialize;

use super::{ApiError, ApiResult, Ns, S, Topic, body, json, no_content};

fn full_names(topics: &[TopicName]) -> Vec<String> {
    topics.iter().map(ToString::to_string).collect()
}

pub async fn list_topics(State(s): S, Ns(ns): Ns) -> ApiResult {
    json(&full_names(
        &s.policy.list_topics(&ns, Domain::Persistent).await?,
    ))
}

pub async fn create_topic(State(s): S, Topic(t): Topic) -> ApiResult {
    s.policy.create_topic(&t).await?;
    no_content()
}

// ----- permissions (kept in the namespace's auth_policies, per topic) -----

/// The `{t}/{ns}/{topic}/permissions/{role}` of a path.
type TopicRolePath = Path<(String, String, String, String)>;

fn topic_of(t: &str, ns: &str, local: &str) -> Result<TopicName, ApiError> {
    Ok(protocol::NamespaceName::new(t, ns)?.topic(Domain::Persistent, local)?)
}

/// `GET …/{topic}/permissions`: what each role may do on the topic, namespace-wide grants
/// included (as Pulsar answers).
pub async fn get_permissions(State(s): S, Topic(t): Topic) -> ApiResult {
    let auth = s
        .policy
        .store()
        .policies(t.namespace())
        .await?
        .auth_policies;
    let mut all = auth.namespace_auth.clone();
    if let Some(own) = auth.destination_auth.get(&t.to_string()) {
        for (role, actions) in own {
            all.entry(role.clone()).or_default().extend(actions);
        }
    }
    json(&all)
}

/// `POST …/{topic}/permissions/{role}` with the actions.
pub async fn grant_permission(
    State(s): S,
    Path((tenant, ns, local, role)): TopicRolePath,
    raw: Bytes,
) -> ApiResult {
    let t = topic_of(&tenant, &ns, &local)?;
    let actions = super::namespaces::actions(&raw)?;
    let key = t.to_string();
    s.policy
        .store()
        .update_policies(t.namespace(), |p| {
            p.auth_policies
                .destination_auth
                .entry(key.clone())
                .or_default()
                .insert(role.clone(), actions.clone());
        })
        .await?;
    tracing::info!(topic = %t, role, ?actions, "permissions granted");
    no_content()
}

/// `DELETE …/{topic}/permissions/{role}`.
pub async fn revoke_permission(
    State(s): S,
    Path((tenant, ns, local, role)): TopicRolePath,
) -> ApiResult {
    let t = topic_of(&tenant, &ns, &local)?;
    let key = t.to_string();
    s.policy
        .store()
        .update_policies(t.namespace(), |p| {
            if let Some(roles) = p.auth_policies.destination_auth.get_mut(&key) {
                roles.remove(&role);
                if roles.is_empty() {
                    p.auth_policies.destination_auth.remove(&key);
                }
            }
        })
        .await?;
    tracing::info!(topic = %t, role, "permissions revoked");
    no_content()
}

type QueryParams = Query<HashMap<String, String>>;

pub async fn delete_topic(State(s): S, Topic(t): Topic, Query(q): QueryParams) -> ApiResult {
    s.policy
        .delete_topic(&t, &s.broker, super::force(&q)?)
        .await?;
    no_content()
}

// ----- partitioned topics -----

pub async fn list_partitioned(State(s): S, Ns(ns): Ns) -> ApiResult {
    s.policy.store().policies(&ns).await?;
    json(&full_names(
        &s.policy.store().partitioned_topics(&ns).await?,
    ))
}

pub async fn get_partitions(State(s): S, Topic(t): Topic) -> ApiResult {
    json(&PartitionedTopicMetadata {
        partitions: s.policy.partitions(&t).await?,
    })
}

pub async fn create_partitions(State(s): S, Topic(t): Topic, raw: Bytes) -> ApiResult {
    let n: u32 = body(&raw, "partition count")?;
    s.policy.create_partitioned(&t, n).await?;
    no_content()
}

/// `POST …/{topic}/partitions` with the new count: more partitions (never fewer).
pub async fn update_partitions(State(s): S, Topic(t): Topic, raw: Bytes) -> ApiResult {
    let n: u32 = body(&raw, "partition count")?;
    s.policy.store().policies(t.namespace()).await?;
    s.policy.store().update_partitioned(&t, n).await?;
    tracing::info!(topic = %t, partitions = n, "partitioned topic updated");
    no_content()
}

/// Pulsar's `PartitionedTopicStats`: the partitions' stats summed, its metadata, and each
/// partition's stats when `perPartition` (the default).
pub async fn partitioned_stats(State(s): S, Topic(t): Topic, Query(q): QueryParams) -> ApiResult {
    let partitions = s.policy.partitions(&t).await?;
    if partitions == 0 {
        return Err(policy::PolicyError::PartitionedTopicNotFound.into());
    }
    let per_partition = q.get("perPartition").is_none_or(|v| v != "false");
    let mut total = serde_json::Map::new();
    let mut each = serde_json::Map::new();
    for i in 0..partitions {
        let p = t.partition(i);
        let stats = serde_json::to_value(s.broker.topic_stats(&p).await?).map_err(|e| {
            ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        })?;
        sum_into(&mut total, &stats);
        if per_partition {
            each.insert(p.to_string(), stats);
        }
    }
    total.insert(
        "metadata".into(),
        serde_json::json!({ "partitions": partitions }),
    );
    total.insert("partitions".into(), serde_json::Value::Object(each));
    json(&total)
}

/// Adds a partition's stats into the totals: numbers are summed, lists appended, maps merged
/// (subscriptions of the same name summed the same way), anything else kept from the first.
fn sum_into(total: &mut serde_json::Map<String, serde_json::Value>, add: &serde_json::Value) {
    use serde_json::Value as V;
    let Some(add) = add.as_object() else { return };
    for (k, v) in add {
        match (total.get_mut(k), v) {
            (None, v) => {
                total.insert(k.clone(), v.clone());
            }
            (Some(V::Number(a)), V::Number(b)) => {
                let sum = match (a.as_i64(), b.as_i64()) {
                    (Some(x), Some(y)) => V::from(x + y),
                    _ => V::from(a.as_f64().unwrap_or(0.0) + b.as_f64().unwrap_or(0.0)),
                };
                total.insert(k.clone(), sum);
            }
            (Some(V::Array(a)), V::Array(b)) => a.extend(b.iter().cloned()),
            (Some(V::Object(a)), V::Object(b)) => {
                for (name, sub) in b {
                    match a.get_mut(name) {
                        Some(V::Object(existing)) => sum_into(existing, sub),
                        _ => {
                            a.insert(name.clone(), sub.clone());
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

pub async fn delete_partitions(State(s): S, Topic(t): Topic, Query(q): QueryParams) -> ApiResult {
    s.policy
        .delete_partitioned(&t, &s.broker, super::force(&q)?)
        .await?;
    no_content()
}

// ----- topic policies -----

pub async fn get_offload_policies(State(s): S, Topic(t): Topic) -> ApiResult {
    let tp = s.policy.topic_policies(&t).await?;
    json(&tp.offload_policies.unwrap_or_default())
}

pub async fn set_offload_policies(State(s): S, Topic(t): Topic, raw: Bytes) -> ApiResult {
    let op: OffloadPolicies = body(&raw, "offload policies")?;
    s.policy.validate_offload_policies(&op)?;
    s.policy
        .update_topic(&t, move |p| p.offload_policies = Some(op.clone()))
        .await?;
    no_content()
}

pub async fn remove_offload_policies(State(s): S, Topic(t): Topic) -> ApiResult {
    s.policy
        .update_topic(&t, |p| p.offload_policies = None)
        .await?;
    no_content()
}

pub async fn get_retention(State(s): S, Topic(t): Topic) -> ApiResult {
    match s.policy.topic_policies(&t).await?.retention_policies {
        Some(r) => json(&r),
        None => no_content(),
    }
}

pub async fn set_retention(State(s): S, Topic(t): Topic, raw: Bytes) -> ApiResult {
    let r: RetentionPolicies = body(&raw, "retention policies")?;
    r.validate()
        .map_err(|why| policy::PolicyError::Invalid(why.into()))?;
    s.policy
        .update_topic(&t, move |p| p.retention_policies = Some(r))
        .await?;
    no_content()
}

pub async fn remove_retention(State(s): S, Topic(t): Topic) -> ApiResult {
    s.policy
        .update_topic(&t, |p| p.retention_policies = None)
        .await?;
    no_content()
}

// ----- offload and stats -----

pub async fn trigger_offload(State(s): S, Topic(t): Topic, raw: Bytes) -> ApiResult {
    let id: MessageIdJson = body(&raw, "message id")?;
    s.policy
        .offload(&t, Position::new(id.ledger_id, id.entry_id))
        .await?;
    no_content()
}

pub async fn offload_status(State(s): S, Topic(t): Topic) -> ApiResult {
    json(&s.policy.offload_status(&t).await?)
}

pub async fn internal_stats(State(s): S, Topic(t): Topic) -> ApiResult {
    json(&s.policy.internal_stats(&t).await?)
}

pub async fn stats(State(s): S, Topic(t): Topic) -> ApiResult {
    // Only a topic that exists has stats (the broker would create it).
    s.policy.existing_topic(&t).await?;
    json(&s.broker.topic_stats(&t).await?)
}

/// Pulsar's `LookupData`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LookupData<'a> {
    broker_url: &'a str,
    broker_url_tls: &'a str,
    http_url: &'a str,
    http_url_tls: &'a str,
    native_url: &'a str,
}

/// Query of an HTTP lookup.
#[derive(serde::Deserialize, Default)]
pub struct LookupQuery {
    #[serde(default)]
    authoritative: bool,
    /// The listener whose URLs to answer with (`advertisedListeners`); also taken from the
    /// `X-Pulsar-ListenerName` header.
    #[serde(rename = "listenerName")]
    listener_name: Option<String>,
}

/// Pulsar's header naming a listener for HTTP lookups.
const LISTENER_HEADER: &str = "X-Pulsar-ListenerName";

/// `GET /lookup/v2/topic/{domain}/{t}/{ns}/{topic}`: the URLs of the broker serving the topic
/// (standalone: this one; in a cluster, a 307 to the owner's lookup when it is another).
pub async fn lookup(
    State(s): S,
    Path((domain, t, ns, local)): Path<(String, String, String, String)>,
    axum::extract::Query(q): axum::extract::Query<LookupQuery>,
    tls: Option<axum::Extension<super::auth::OverTls>>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> ApiResult {
    let over_tls = tls.is_some_and(|t| t.0.0);
    let listener = q
        .listener_name
        .clone()
        .or_else(|| {
            headers
                .get(LISTENER_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        })
        .filter(|n| !n.is_empty());
    let domain = Domain::parse(&domain)
        .ok_or_else(|| policy::PolicyError::Invalid(format!("unknown topic domain {domain:?}")))?;
    let topic = protocol::NamespaceName::new(&t, &ns)?.topic(domain, &local)?;
    s.policy.store().policies(topic.namespace()).await?;
    if let Some(c) = s.broker.cluster()
        && let Some(redirect) = super::cluster::lookup_in_cluster(
            c,
            &topic,
            q.authoritative,
            listener.as_deref(),
            &uri,
            over_tls,
        )
        .await?
    {
        return Ok(redirect);
    }
    let config = s.broker.config();
    let (url, url_tls) = match &listener {
        None => (
            config.service_url.as_deref(),
            config.service_url_tls.as_deref(),
        ),
        Some(name) => {
            let l = config.listeners.get(name).ok_or_else(|| {
                // Pulsar's words.
                ApiError::new(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    format!("the broker do not have {name} listener"),
                )
            })?;
            (l.broker_url.as_deref(), l.broker_url_tls.as_deref())
        }
    };
    let url = url.unwrap_or_default();
    json(&LookupData {
        broker_url: url,
        broker_url_tls: url_tls.unwrap_or_default(),
        http_url: &s.web_service_url,
        http_url_tls: s.web_service_url_tls.as_deref().unwrap_or_default(),
        native_url: url,
    })
}

/// `POST …/{topic}/subscription/{sub}/expireMessages/{seconds}` and
/// `…/{topic}/all_subscription/expireMessages/{seconds}`: acknowledges the messages published
/// more than `seconds` ago (for every partition of a partitioned topic).
pub async fn expire_messages(State(s): S, Path(p): Path<Vec<(String, String)>>) -> ApiResult {
    let get = |k: &str| p.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let (Some(t), Some(ns), Some(local), Some(secs)) =
        (get("t"), get("ns"), get("topic"), get("seconds"))
    else {
        return Err(ApiError::bad_request("incomplete expireMessages path"));
    };
    let secs: u64 = secs.parse().map_err(|_| {
        ApiError::bad_request(format!("Invalid expire time {secs:?}: seconds >= 0"))
    })?;
    let topic = protocol::NamespaceName::new(t, ns)?.topic(Domain::Persistent, local)?;
    let partitions = s.policy.partitions(&topic).await?;
    let targets: Vec<TopicName> = if partitions > 0 {
        (0..partitions).map(|i| topic.partition(i)).collect()
    } else {
        s.policy.existing_topic(&topic).await?;
        vec![topic]
    };
    for target in targets {
        s.broker
            .expire_messages(&target, std::time::Duration::from_secs(secs), get("sub"))
            .await?;
    }
    no_content()
}

#[derive(serde::Deserialize)]
pub struct TtlQuery {
    #[serde(rename = "messageTTL")]
    message_ttl: Option<i32>,
}

/// A topic's own message TTL (null: its namespace's applies).
pub async fn get_message_ttl(State(s): S, Topic(t): Topic) -> ApiResult {
    json(&s.policy.topic_policies(&t).await?.message_ttl_in_seconds)
}

/// `POST …/messageTTL?messageTTL=<seconds>` (as Pulsar; a JSON number body is taken too).
pub async fn set_message_ttl(
    State(s): S,
    Topic(t): Topic,
    axum::extract::Query(q): axum::extract::Query<TtlQuery>,
    raw: Bytes,
) -> ApiResult {
    let ttl = match q.message_ttl {
        Some(v) => v,
        None => body::<i32>(&raw, "message TTL (seconds)")?,
    };
    if ttl < 0 {
        return Err(ApiError::new(
            axum::http::StatusCode::PRECONDITION_FAILED,
            "Invalid value for message TTL, message TTL must >= 0",
        ));
    }
    s.policy
        .update_topic(&t, move |p| p.message_ttl_in_seconds = Some(ttl))
        .await?;
    no_content()
}

pub async fn remove_message_ttl(State(s): S, Topic(t): Topic) -> ApiResult {
    s.policy
        .update_topic(&t, |p| p.message_ttl_in_seconds = None)
        .await?;
    no_content()
}

/// The topic's own compaction threshold (null: its namespace's applies).
pub async fn get_compaction_threshold(State(s): S, Topic(t): Topic) -> ApiResult {
    json(&s.policy.topic_policies(&t).await?.compaction_threshold)
}

/// `POST …/compactionThreshold` with the bytes (0: never compact this topic automatically).
pub async fn set_compaction_threshold(State(s): S, Topic(t): Topic, raw: Bytes) -> ApiResult {
    let bytes = super::namespaces::compaction_threshold(&raw)?;
    s.policy
        .update_topic(&t, move |p| p.compaction_threshold = Some(bytes))
        .await?;
    no_content()
}

pub async fn remove_compaction_threshold(State(s): S, Topic(t): Topic) -> ApiResult {
    s.policy
        .update_topic(&t, |p| p.compaction_threshold = None)
        .await?;
    no_content()
}

/// `PUT …/compaction`: starts compacting the topic (each partition of a partitioned one).
pub async fn trigger_compaction(State(s): S, Topic(t): Topic) -> ApiResult {
    let partitions = s.policy.partitions(&t).await?;
    if partitions > 0 {
        for i in 0..partitions {
            s.broker.compact(&t.partition(i)).await?;
        }
    } else {
        s.policy.existing_topic(&t).await?;
        s.broker.compact(&t).await?;
    }
    no_content()
}

/// `GET …/compaction`: Pulsar's `LongRunningProcessStatus` of the last compaction.
pub async fn compaction_status(State(s): S, Topic(t): Topic) -> ApiResult {
    s.policy.existing_topic(&t).await?;
    json(&s.broker.compaction_status(&t).await?)
}

/// A topic's own deduplication setting (null: its namespace's applies).
pub async fn get_deduplication(State(s): S, Topic(t): Topic) -> ApiResult {
    json(&s.policy.topic_policies(&t).await?.deduplication_enabled)
}

pub async fn set_deduplication(State(s): S, Topic(t): Topic, raw: Bytes) -> ApiResult {
    let on: bool = body(&raw, "boolean")?;
    s.policy
        .update_topic(&t, move |p| p.deduplication_enabled = Some(on))
        .await?;
    no_content()
}

pub async fn remove_deduplication(State(s): S, Topic(t): Topic) -> ApiResult {
    s.policy
        .update_topic(&t, |p| p.deduplication_enabled = None)
        .await?;
    no_content()
}

/// A topic's own backlog quotas by type (over its namespace's).
pub async fn get_backlog_quotas(State(s): S, Topic(t): Topic) -> ApiResult {
    json(&s.policy.topic_policies(&t).await?.backlog_quota_map)
}

pub async fn set_backlog_quota(
    State(s): S,
    Topic(t): Topic,
    Query(q): Query<super::namespaces::QuotaTypeQuery>,
    raw: Bytes,
) -> ApiResult {
    let kind = q.kind()?;
    let quota: broker::BacklogQuota = body(&raw, "backlog quota")?;
    let own = s.policy.topic_policies(&t).await?.retention_policies;
    let ns = s
        .policy
        .store()
        .policies(t.namespace())
        .await?
        .retention_policies;
    let (retention, level) = match own {
        Some(r) => (Some(r), "topic"),
        None => (ns, "namespace"),
    };
    super::namespaces::check_quota_within_retention(&quota, retention.as_ref(), level)?;
    s.policy
        .update_topic(&t, move |p| {
            p.backlog_quota_map.insert(kind, quota);
        })
        .await?;
    no_content()
}

pub async fn remove_backlog_quota(
    State(s): S,
    Topic(t): Topic,
    Query(q): Query<super::namespaces::QuotaTypeQuery>,
) -> ApiResult {
    let kind = q.kind()?;
    s.policy
        .update_topic(&t, move |p| {
            p.backlog_quota_map.remove(&kind);
        })
        .await?;
    no_content()
}

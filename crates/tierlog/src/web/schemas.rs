//! `/admin/v2/schemas/{t}/{ns}/{topic}/…`: a topic's schemas as Pulsar's `SchemasResource`
//! serves them (`GetSchemaResponse`, `GetAllVersionsSchemaResponse`, `PostSchemaPayload`,
//! `IsCompatibilityResponse`, `LongSchemaVersion`), and the namespace's schema rules.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use policy::schema::{CompatibilityStrategy, SchemaEntry, SchemaType};
use protocol::{Domain, NamespaceName, TopicName};
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiResult, Ns, S, Topic, body, json, no_content};

/// Pulsar's `GetSchemaResponse`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct GetSchemaResponse {
    pub version: u64,
    #[serde(rename = "type")]
    pub schema_type: String,
    pub timestamp: u64,
    pub data: String,
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

impl GetSchemaResponse {
    fn new(version: u64, e: &SchemaEntry) -> Self {
        GetSchemaResponse {
            version,
            schema_type: e.schema_type.name(),
            timestamp: e.timestamp,
            data: String::from_utf8_lossy(&e.data).into_owned(),
            properties: e.properties.clone(),
        }
    }
}

/// Pulsar's `PostSchemaPayload` (upload, compatibility check, version lookup).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PostSchemaPayload {
    #[serde(rename = "type")]
    pub schema_type: String,
    #[serde(default)]
    pub schema: String,
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

impl PostSchemaPayload {
    fn entry(&self) -> Result<SchemaEntry, ApiError> {
        let schema_type = SchemaType::from_name(&self.schema_type).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("unknown schema type {:?}", self.schema_type),
            )
        })?;
        Ok(SchemaEntry {
            properties: self.properties.clone(),
            ..SchemaEntry::new(schema_type, self.schema.clone().into_bytes())
        })
    }
}

/// `/schemas/{t}/{ns}/{topic}/schema/{version}`: the topic and the version.
fn topic_and_version(
    (t, ns, local, version): (String, String, String, String),
) -> Result<(TopicName, u64), ApiError> {
    let topic = NamespaceName::new(&t, &ns)?.topic(Domain::Persistent, &local)?;
    let version = version
        .parse()
        .map_err(|_| ApiError::bad_request(format!("invalid schema version {version:?}")))?;
    Ok((topic, version))
}

pub async fn get_schema(State(s): S, Topic(topic): Topic) -> ApiResult {
    let history = s.policy.schema_history(&topic).await?;
    match history.latest() {
        Some((v, e)) => json(&GetSchemaResponse::new(v, e)),
        None if history.entries.is_empty() => Err(ApiError::not_found("Schema not found")),
        None => Err(ApiError::not_found("Schema is deleted")),
    }
}

pub async fn get_schema_version(
    State(s): S,
    Path(parts): Path<(String, String, String, String)>,
) -> ApiResult {
    let (topic, version) = topic_and_version(parts)?;
    match s.policy.get_schema(&topic, Some(version)).await? {
        Some((v, e)) => json(&GetSchemaResponse::new(v, &e)),
        None => Err(ApiError::not_found("Schema not found")),
    }
}

pub async fn get_all_schemas(State(s): S, Topic(topic): Topic) -> ApiResult {
    let history = s.policy.schema_history(&topic).await?;
    let all: Vec<GetSchemaResponse> = history
        .live()
        .into_iter()
        .map(|(v, e)| GetSchemaResponse::new(v, e))
        .collect();
    json(&serde_json::json!({ "getSchemaResponses": all }))
}

pub async fn delete_schema(State(s): S, Topic(topic): Topic) -> ApiResult {
    let version = s.policy.delete_schema(&topic).await?;
    json(&serde_json::json!({ "version": version.map_or(-1, |v| v as i64) }))
}

/// Uploads a schema under the topic's strategy (auto-update applies to producers only, as in
/// Pulsar): 409 with the reason when incompatible.
pub async fn post_schema(State(s): S, Topic(topic): Topic, raw: Bytes) -> ApiResult {
    let payload: PostSchemaPayload = body(&raw, "schema payload")?;
    let entry = payload.entry()?;
    let rules = policy::schema::SchemaRules {
        allow_auto_update: true,
        ..s.policy.schema_rules(&topic).await?
    };
    let version = s.policy.add_schema(&topic, entry, rules).await?;
    json(&serde_json::json!({ "version": { "version": version } }))
}

/// Whether a schema could be uploaded: 202 `{"isCompatibility": true, …}`, 409 with the reason
/// when not.
pub async fn test_compatibility(State(s): S, Topic(topic): Topic, raw: Bytes) -> ApiResult {
    let payload: PostSchemaPayload = body(&raw, "schema payload")?;
    let entry = payload.entry()?;
    let strategy = s.policy.schema_rules(&topic).await?.strategy;
    s.policy
        .schema_history(&topic)
        .await?
        .check(&entry, strategy)
        .map_err(|e| policy::PolicyError::IncompatibleSchema(e.0))?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({
            "isCompatibility": true,
            "schemaCompatibilityStrategy": strategy.name(),
        })),
    )
        .into_response())
}

/// The version a schema has (-1: none).
pub async fn version_of(State(s): S, Topic(topic): Topic, raw: Bytes) -> ApiResult {
    let payload: PostSchemaPayload = body(&raw, "schema payload")?;
    let entry = payload.entry()?;
    let found = s.policy.schema_history(&topic).await?.find(&entry);
    json(&serde_json::json!({ "version": found.map_or(-1, |v| v as i64) }))
}

// ----- the namespace's schema rules -----

pub async fn get_compatibility_strategy(State(s): S, Ns(ns): Ns) -> ApiResult {
    json(
        &s.policy
            .store()
            .policies(&ns)
            .await?
            .schema_compatibility_strategy,
    )
}

/// A strategy in a request body: pulsar-admin sends the name as a JSON string; a bare name is
/// taken too.
fn strategy_body(raw: &Bytes) -> Result<CompatibilityStrategy, ApiError> {
    let name = serde_json::from_slice::<String>(raw)
        .unwrap_or_else(|_| String::from_utf8_lossy(raw).trim().to_string());
    CompatibilityStrategy::from_name(&name).ok_or_else(|| {
        ApiError::bad_request(format!("Invalid schema compatibility strategy {name:?}"))
    })
}

pub async fn set_compatibility_strategy(State(s): S, Ns(ns): Ns, raw: Bytes) -> ApiResult {
    let strategy = strategy_body(&raw)?;
    s.policy
        .update_namespace(&ns, move |p| p.schema_compatibility_strategy = strategy)
        .await?;
    no_content()
}

pub async fn get_allow_auto_update(State(s): S, Ns(ns): Ns) -> ApiResult {
    json(
        &s.policy
            .store()
            .policies(&ns)
            .await?
            .is_allow_auto_update_schema,
    )
}

pub async fn set_allow_auto_update(State(s): S, Ns(ns): Ns, raw: Bytes) -> ApiResult {
    let on: bool = body(&raw, "boolean")?;
    s.policy
        .update_namespace(&ns, move |p| p.is_allow_auto_update_schema = Some(on))
        .await?;
    no_content()
}

pub async fn get_validation_enforced(State(s): S, Ns(ns): Ns) -> ApiResult {
    json(
        &s.policy
            .store()
            .policies(&ns)
            .await?
            .schema_validation_enforced,
    )
}

pub async fn set_validation_enforced(State(s): S, Ns(ns): Ns, raw: Bytes) -> ApiResult {
    let on: bool = body(&raw, "boolean")?;
    s.policy
        .update_namespace(&ns, move |p| p.schema_validation_enforced = on)
        .await?;
    no_content()
}

// ----- a topic's own strategy (over its namespace's) -----

pub async fn get_topic_compatibility_strategy(State(s): S, Topic(topic): Topic) -> ApiResult {
    json(
        &s.policy
            .topic_policies(&topic)
            .await?
            .schema_compatibility_strategy,
    )
}

pub async fn set_topic_compatibility_strategy(
    State(s): S,
    Topic(topic): Topic,
    raw: Bytes,
) -> ApiResult {
    let strategy = strategy_body(&raw)?;
    s.policy
        .update_topic(&topic, move |p| {
            p.schema_compatibility_strategy = Some(strategy)
        })
        .await?;
    no_content()
}

pub async fn remove_topic_compatibility_strategy(State(s): S, Topic(topic): Topic) -> ApiResult {
    s.policy
        .update_topic(&topic, |p| p.schema_compatibility_strategy = None)
        .await?;
    no_content()
}

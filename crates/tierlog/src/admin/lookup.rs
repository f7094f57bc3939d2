//! What the binary protocol needs from the admin side: the [`broker::TopicStore`] that opens a
//! topic's managed ledger with its namespace's policies, partitioned-topic metadata, and the HTTP
//! lookup endpoints clients use with an `http://` service URL.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use broker::BrokerError;
use bytes::Bytes;
use ledger::ManagedLedger;
use protocol::{Domain, TopicName};

use super::{AdminState, ApiError, ml_name};

/// The managed ledger behind a topic: `tenant/ns/<domain>/<local>`.
pub fn topic_ml_name(t: &TopicName) -> String {
    match t.domain {
        Domain::Persistent => ml_name(&t.tenant, &t.namespace, &t.local),
        Domain::NonPersistent => format!("{}/{}/non-persistent/{}", t.tenant, t.namespace, t.local),
    }
}

fn broker_error(topic: &TopicName, e: ApiError) -> BrokerError {
    if e.status == axum::http::StatusCode::NOT_FOUND {
        BrokerError::TopicNotFound(format!("{topic} ({})", e.reason))
    } else {
        BrokerError::Metadata(e.reason)
    }
}

/// Topics for the broker service, backed by the admin state.
pub struct AdminTopics(pub Arc<AdminState>);

#[async_trait::async_trait]
impl broker::TopicStore for AdminTopics {
    async fn open(&self, topic: &TopicName) -> Result<ManagedLedger, BrokerError> {
        self.0
            .open_ml(
                &topic.tenant,
                &topic.namespace,
                &topic.local,
                &topic_ml_name(topic),
            )
            .await
            .map_err(|e| broker_error(topic, e))
    }

    async fn partitions(&self, topic: &TopicName) -> Result<u32, BrokerError> {
        Ok(self
            .0
            .policies
            .partitions(&topic.tenant, &topic.namespace, &topic.local)
            .await
            .map_err(|e| broker_error(topic, e))?
            .unwrap_or(0))
    }

    async fn list(&self, namespace: &str) -> Result<Vec<String>, BrokerError> {
        let names = self.0.factory.names().await?;
        let mut out = Vec::new();
        for domain in ["persistent", "non-persistent"] {
            let prefix = format!("{namespace}/{domain}/");
            out.extend(
                names
                    .iter()
                    .filter_map(|n| n.strip_prefix(&prefix))
                    .map(|local| format!("{domain}://{namespace}/{local}")),
            );
        }
        Ok(out)
    }

    async fn schema(&self, key: &str) -> Result<Option<Vec<u8>>, BrokerError> {
        self.0
            .policies
            .schema(key)
            .await
            .map_err(|e| BrokerError::Metadata(e.reason))
    }

    async fn put_schema_if_absent(
        &self,
        key: &str,
        schema: Vec<u8>,
    ) -> Result<Vec<u8>, BrokerError> {
        self.0
            .policies
            .put_schema_if_absent(key, schema)
            .await
            .map_err(|e| BrokerError::Metadata(e.reason))
    }
}

type S = State<Arc<AdminState>>;

pub async fn get_partitions(
    State(s): S,
    Path((t, ns, topic)): Path<(String, String, String)>,
) -> Result<axum::response::Response, ApiError> {
    s.policies.policies(&t, &ns).await?;
    let n = s.policies.partitions(&t, &ns, &topic).await?.unwrap_or(0);
    Ok(Json(serde_json::json!({ "partitions": n })).into_response())
}

pub async fn create_partitions(
    State(s): S,
    Path((t, ns, topic)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<axum::response::Response, ApiError> {
    s.policies.policies(&t, &ns).await?;
    let n: u32 = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the body must be a partition count: {e}")))?;
    if n == 0 {
        return Err(ApiError::precondition(
            "Number of partitions should be more than 0",
        ));
    }
    if s.factory.exists(&ml_name(&t, &ns, &topic)).await? {
        return Err(ApiError::conflict("This topic already exists"));
    }
    s.policies.create_partitioned(&t, &ns, &topic, n).await?;
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}

pub async fn delete_partitions(
    State(s): S,
    Path((t, ns, topic)): Path<(String, String, String)>,
) -> Result<axum::response::Response, ApiError> {
    s.policies.policies(&t, &ns).await?;
    let Some(n) = s.policies.partitions(&t, &ns, &topic).await? else {
        return Err(ApiError::not_found("Partitioned topic does not exist"));
    };
    for i in 0..n {
        let local = format!("{topic}-partition-{i}");
        if let Some(b) = s.broker.get() {
            b.unload(&format!("persistent://{t}/{ns}/{local}")).await;
        }
        let name = ml_name(&t, &ns, &local);
        if s.factory.exists(&name).await? {
            s.factory.delete(&name).await?;
        }
    }
    s.policies.delete_partitioned(&t, &ns, &topic).await?;
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}

pub async fn list_partitioned(
    State(s): S,
    Path((t, ns)): Path<(String, String)>,
) -> Result<axum::response::Response, ApiError> {
    s.policies.policies(&t, &ns).await?;
    let names: Vec<String> = s
        .policies
        .partitioned_topics(&t, &ns)
        .await?
        .into_iter()
        .map(|l| format!("persistent://{t}/{ns}/{l}"))
        .collect();
    Ok(Json(names).into_response())
}

/// `GET /lookup/v2/topic/{domain}/{t}/{ns}/{topic}`: this broker serves every topic.
pub async fn lookup(
    State(s): S,
    Path((domain, t, ns, topic)): Path<(String, String, String, String)>,
) -> Result<axum::response::Response, ApiError> {
    let name = TopicName::parse(&format!("{domain}://{t}/{ns}/{topic}"))
        .map_err(|e| ApiError::precondition(e.to_string()))?;
    s.policies.policies(&name.tenant, &name.namespace).await?;
    let broker_url = s
        .broker
        .get()
        .map(|b| b.config().service_url.clone())
        .unwrap_or_default();
    Ok(Json(serde_json::json!({
        "brokerUrl": broker_url,
        "brokerUrlTls": "",
        "httpUrl": s.web_service_url,
        "httpUrlTls": "",
        "nativeUrl": broker_url,
    }))
    .into_response())
}

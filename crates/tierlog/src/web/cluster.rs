//! The cluster's side of the admin API: brokers, owned bundles, unloading, and the redirect of
//! topic requests to the broker that owns the topic (Pulsar answers those with 307 too).
//!
//! A standalone broker is a cluster of one: it lists itself and owns everything.

use std::collections::BTreeMap;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use protocol::{Domain, NamespaceName, TopicName};
use serde::Serialize;

use super::{ApiError, ApiResult, Ns, S, json, no_content};

fn check_cluster(s: &super::WebState, cluster: &str) -> Result<(), ApiError> {
    let mine = &s.broker.config().cluster_name;
    if cluster != mine {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("Cluster {cluster} does not exist (this broker is in {mine})"),
        ));
    }
    Ok(())
}

/// `GET /admin/v2/brokers/{cluster}`: the ids (`host:webPort`) of the live brokers.
pub async fn list_brokers(State(s): S, Path(cluster): Path<String>) -> ApiResult {
    check_cluster(&s, &cluster)?;
    let ids: Vec<String> = match s.broker.cluster() {
        Some(c) => c.brokers().await?.into_iter().map(|b| b.id).collect(),
        None => vec![s.broker_id.clone()],
    };
    json(&ids)
}

/// Pulsar's `NamespaceOwnershipStatus`.
#[derive(Serialize)]
struct OwnershipStatus {
    broker_assignment: &'static str,
    is_controlled: bool,
    is_active: bool,
}

/// `GET /admin/v2/brokers/{cluster}/{broker}/ownedNamespaces`: the bundles `broker` owns.
pub async fn owned_namespaces(
    State(s): S,
    Path((cluster, broker)): Path<(String, String)>,
) -> ApiResult {
    check_cluster(&s, &cluster)?;
    let mut out = BTreeMap::new();
    let status = || OwnershipStatus {
        broker_assignment: "shared",
        is_controlled: false,
        is_active: true,
    };
    match s.broker.cluster() {
        Some(c) => {
            for (key, owner) in c.ownerships().await? {
                if owner == broker {
                    // `/namespace/<t>/<ns>/<range>` → `<t>/<ns>/<range>`
                    let name = key.trim_start_matches("/namespace/").to_string();
                    out.insert(name, status());
                }
            }
        }
        None if broker == s.broker_id => {
            for tenant in s.policy.store().tenants().await? {
                for ns in s.policy.store().namespaces(&tenant).await? {
                    out.insert(format!("{ns}/0x00000000_0xffffffff"), status());
                }
            }
        }
        None => {}
    }
    json(&out)
}

/// `PUT /admin/v2/namespaces/{t}/{ns}/{bundle}/unload`: the owner closes the bundle's topics
/// and gives it up (the next lookup places it again); another broker redirects to the owner.
pub async fn unload_bundle(
    State(s): S,
    Path((t, ns, range)): Path<(String, String, String)>,
    uri: axum::http::Uri,
) -> ApiResult {
    let ns = NamespaceName::new(&t, &ns)?;
    let Some(c) = s.broker.cluster() else {
        // Standalone: one bundle; unloading closes every topic of the namespace.
        unload_namespace_topics(&s, &ns).await?;
        return no_content();
    };
    let bundle = cluster::Bundle::parse(ns.clone(), &range).ok_or_else(|| {
        ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            format!("Invalid bundle range {range:?} (expected 0x<low>_0x<high>)"),
        )
    })?;
    if !c.owned_bundles().contains(&bundle) {
        return match owner_of_bundle(c, &bundle).await? {
            Some(web) => Ok(redirect(&web, &uri)),
            None => no_content(),
        };
    }
    let closed = s.broker.unload_bundle(&bundle).await;
    c.release(&bundle).await?;
    tracing::info!(%bundle, topics = closed, "bundle unloaded");
    no_content()
}

/// `PUT /admin/v2/namespaces/{t}/{ns}/unload`: unloads every bundle of the namespace, on
/// whichever broker owns it.
pub async fn unload_namespace(State(s): S, Ns(ns): Ns) -> ApiResult {
    let Some(c) = s.broker.cluster() else {
        unload_namespace_topics(&s, &ns).await?;
        return no_content();
    };
    let http = reqwest::Client::new();
    for bundle in c.bundles(&ns) {
        if c.owned_bundles().contains(&bundle) {
            s.broker.unload_bundle(&bundle).await;
            c.release(&bundle).await?;
            continue;
        }
        let Some(web) = owner_of_bundle(c, &bundle).await? else {
            continue;
        };
        let url = format!(
            "{web}/admin/v2/namespaces/{}/{}/{}/unload",
            ns.tenant(),
            ns.local(),
            bundle.range()
        );
        let resp = http.put(&url).send().await.map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("unloading {bundle} at its owner {web}: {e}"),
            )
        })?;
        if !resp.status().is_success() {
            return Err(ApiError::new(
                resp.status(),
                format!("unloading {bundle} at its owner {web}: {}", resp.status()),
            ));
        }
    }
    no_content()
}

async fn unload_namespace_topics(s: &super::WebState, ns: &NamespaceName) -> Result<(), ApiError> {
    for topic in broker::TopicStore::list(&*s.policy, ns).await? {
        s.broker.unload_for_delete(&topic, true).await?;
    }
    Ok(())
}

/// `PUT /admin/v2/persistent/{t}/{ns}/{topic}/unload` (reached only on the owner, see
/// [`redirect_to_owner`]): closes the topic and its clients; it loads again on next use.
pub async fn unload_topic(State(s): S, super::Topic(topic): super::Topic) -> ApiResult {
    s.broker.unload_for_delete(&topic, true).await?;
    no_content()
}

async fn owner_of_bundle(
    c: &cluster::Cluster,
    bundle: &cluster::Bundle,
) -> Result<Option<String>, ApiError> {
    let key_end = format!(
        "{}/{}/{}",
        bundle.namespace.tenant(),
        bundle.namespace.local(),
        bundle.range()
    );
    let owner = c
        .ownerships()
        .await?
        .into_iter()
        .find(|(k, _)| k.ends_with(&key_end))
        .map(|(_, id)| id);
    let Some(id) = owner else { return Ok(None) };
    Ok(c.brokers()
        .await?
        .into_iter()
        .find(|b| b.id == id)
        .map(|b| b.web_url))
}

/// The owner's web URL for a client that came over TLS (its TLS one, if it has one) or not.
fn web_url_for(b: &cluster::BrokerInfo, over_tls: bool) -> &str {
    match (&b.web_url_tls, over_tls) {
        (Some(tls), true) => tls,
        _ => &b.web_url,
    }
}

fn over_tls(req: &Request) -> bool {
    req.extensions()
        .get::<super::auth::OverTls>()
        .is_some_and(|t| t.0)
}

/// A 307 to the same path and query at `web_url`.
fn redirect(web_url: &str, uri: &axum::http::Uri) -> Response {
    temporary_redirect(&format!(
        "{web_url}{}",
        uri.path_and_query().map_or(uri.path(), |p| p.as_str())
    ))
}

fn temporary_redirect(target: &str) -> Response {
    let mut r = StatusCode::TEMPORARY_REDIRECT.into_response();
    if let Ok(v) = HeaderValue::from_str(target) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// The topic a topic-level admin path names, if it is one a topic's owner must serve:
/// `/admin/v2/persistent/{t}/{ns}/{topic}[/…]`, except partitioned-topic metadata, which any
/// broker answers.
fn owned_topic_of_path(path: &str) -> Option<TopicName> {
    let rest = path.strip_prefix("/admin/v2/persistent/")?;
    let mut parts = rest.splitn(4, '/');
    let (t, ns, local) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next() == Some("partitions") || local == "partitioned" {
        return None;
    }
    let decode = |s: &str| meta::name_of_segment(s);
    NamespaceName::new(&decode(t)?, &decode(ns)?)
        .ok()?
        .topic(Domain::Persistent, &decode(local)?)
        .ok()
}

/// Middleware: a request for a topic owned by another broker is answered with a 307 to the
/// same path there (placing the topic first if nobody owns it), as Pulsar's brokers do.
pub async fn redirect_to_owner(State(s): S, req: Request, next: Next) -> Response {
    let Some(c) = s.broker.cluster() else {
        return next.run(req).await;
    };
    let Some(topic) = owned_topic_of_path(req.uri().path()) else {
        return next.run(req).await;
    };
    match c.lookup(&topic, false).await {
        Ok(cluster::Owner::This) => next.run(req).await,
        Ok(cluster::Owner::Other(b)) => redirect(web_url_for(&b, over_tls(&req)), req.uri()),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The HTTP lookup of a topic in a cluster: this broker's URLs if it owns it (or takes it),
/// otherwise a 307 to the owner's lookup, marked authoritative.
pub async fn lookup_in_cluster(
    c: &cluster::Cluster,
    topic: &TopicName,
    authoritative: bool,
    listener: Option<&str>,
    uri: &axum::http::Uri,
    over_tls: bool,
) -> Result<Option<Response>, ApiError> {
    match c.lookup(topic, authoritative).await? {
        cluster::Owner::This => Ok(None),
        cluster::Owner::Other(b) => {
            // The listener the client asked for goes along (the owner answers with its URLs).
            let listener = listener
                .map(|l| {
                    let l = percent_encoding::utf8_percent_encode(
                        l,
                        percent_encoding::NON_ALPHANUMERIC,
                    );
                    format!("&listenerName={l}")
                })
                .unwrap_or_default();
            Ok(Some(temporary_redirect(&format!(
                "{}{}?authoritative=true{listener}",
                web_url_for(&b, over_tls),
                uri.path()
            ))))
        }
    }
}

// ----- clusters -----

/// `GET /admin/v2/clusters`.
pub async fn list_clusters(State(s): S) -> ApiResult {
    json(&s.policy.store().clusters().await?)
}

/// `GET /admin/v2/clusters/{cluster}`: Pulsar's `ClusterData`.
pub async fn get_cluster(State(s): S, Path(cluster): Path<String>) -> ApiResult {
    json(&s.policy.store().cluster(&cluster).await?)
}

/// `PUT /admin/v2/clusters/{cluster}` with its `ClusterData`.
pub async fn create_cluster(
    State(s): S,
    Path(cluster): Path<String>,
    raw: axum::body::Bytes,
) -> ApiResult {
    let data: policy::types::ClusterData = super::body(&raw, "cluster data")?;
    s.policy.store().create_cluster(&cluster, &data).await?;
    tracing::info!(cluster, "cluster created");
    no_content()
}

/// `POST /admin/v2/clusters/{cluster}` with its new `ClusterData`.
pub async fn update_cluster(
    State(s): S,
    Path(cluster): Path<String>,
    raw: axum::body::Bytes,
) -> ApiResult {
    let data: policy::types::ClusterData = super::body(&raw, "cluster data")?;
    s.policy.store().update_cluster(&cluster, &data).await?;
    tracing::info!(cluster, "cluster updated");
    no_content()
}

/// `DELETE /admin/v2/clusters/{cluster}`; the cluster this broker serves cannot go.
pub async fn delete_cluster(State(s): S, Path(cluster): Path<String>) -> ApiResult {
    if cluster == s.broker.config().cluster_name {
        return Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            format!("Cluster {cluster} is the cluster of this broker: it cannot be deleted"),
        ));
    }
    s.policy.store().delete_cluster(&cluster).await?;
    tracing::info!(cluster, "cluster deleted");
    no_content()
}

/// Pulsar's `BrokerInfo` (`brokers leader-broker`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LeaderBroker {
    service_url: String,
    broker_id: String,
}

/// `GET /admin/v2/brokers/leaderBroker`. tierlog elects no leader (no load manager to run):
/// every broker answers with the live broker of lowest id, the same answer everywhere.
pub async fn leader_broker(State(s): S) -> ApiResult {
    let (id, url) = match s.broker.cluster() {
        Some(c) => match c.brokers().await?.into_iter().next() {
            Some(b) => (b.id, b.web_url),
            None => (s.broker_id.clone(), s.web_service_url.clone()),
        },
        None => (s.broker_id.clone(), s.web_service_url.clone()),
    };
    json(&LeaderBroker {
        service_url: url,
        broker_id: id,
    })
}

/// Pulsar's `InternalConfigurationData` (`brokers get-internal-configuration`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InternalConfiguration<'a> {
    metadata_store_url: &'a str,
    configuration_metadata_store_url: &'a str,
    /// No BookKeeper: the hot tier is local disk or object storage.
    bookkeeper_metadata_service_uri: Option<String>,
    state_storage_service_url: Option<String>,
}

/// `GET /admin/v2/brokers/internal-configuration`.
pub async fn internal_configuration(State(s): S) -> ApiResult {
    json(&InternalConfiguration {
        metadata_store_url: &s.metadata_store_url,
        configuration_metadata_store_url: &s.metadata_store_url,
        bookkeeper_metadata_service_uri: None,
        state_storage_service_url: None,
    })
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct HealthQuery {
    topic_version: Option<String>,
}

/// `GET /admin/v2/brokers/health[?topicVersion=V2]`: Pulsar's health check. A message is
/// written to this broker's heartbeat topic (`persistent://pulsar/<broker id>/healthcheck`,
/// namespace created on first use, owned by this broker in a cluster) and read back; `ok`, or
/// 500 with what failed.
pub async fn health(
    State(s): S,
    axum::extract::Query(q): axum::extract::Query<HealthQuery>,
) -> ApiResult {
    if let Some(v) = q.topic_version.as_deref()
        && !v.eq_ignore_ascii_case("V2")
    {
        return Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            format!(
                "Unsupported topicVersion {v:?}: tierlog's heartbeat topic is the V2 one (pulsar/<broker id>)"
            ),
        ));
    }
    let failed = |what: String| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, what);
    let ns = NamespaceName::new("pulsar", &s.broker_id)?;
    let topic = ns.topic(Domain::Persistent, "healthcheck")?;
    s.policy
        .ensure_namespace(&ns, &s.broker.config().cluster_name)
        .await
        .map_err(|e| failed(format!("health check: the heartbeat namespace {ns}: {e}")))?;
    if let Some(c) = s.broker.cluster() {
        match c.lookup(&topic, true).await {
            Ok(cluster::Owner::This) => {}
            Ok(cluster::Owner::Other(b)) => {
                return Err(failed(format!(
                    "health check: this broker's heartbeat namespace is owned by {}",
                    b.id
                )));
            }
            Err(e) => return Err(failed(format!("health check: {e}"))),
        }
    }
    match s.broker.health_check(&topic).await {
        Ok(took) => {
            tracing::debug!(?took, "health check passed");
            Ok("ok".into_response())
        }
        Err(e) => {
            tracing::warn!(error = %e, "health check failed");
            Err(failed(format!("health check: {e}")))
        }
    }
}

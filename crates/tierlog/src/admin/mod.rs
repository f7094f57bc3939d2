//! The admin REST API on the web port, with Pulsar's paths, JSON bodies, status codes and error
//! bodies (`{"reason": "..."}`): tenants, namespaces and their retention/offload policies, topics,
//! offload trigger and status, internal stats.
//!
//! Namespace policies are applied to every open topic of the namespace when they change, and to a
//! topic when it is opened (policy value if set, else the broker default).

mod error;
mod lookup;
mod offload_policies;
mod policies;
mod time;
mod topics;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::{get, put};
use ledger::{ManagedLedger, ManagedLedgerConfig, ManagedLedgerFactory};

pub use error::ApiError;
pub use lookup::AdminTopics;
pub use policies::PolicyStore;
use policies::{Policies, TopicPolicies};

/// Pulsar's `LongRunningProcessStatus` of a topic's last offload since broker start.
#[derive(Debug, Clone)]
pub enum OffloadStatus {
    Running,
    Success(ledger::Position),
    Error(String),
}

pub struct AdminState {
    pub factory: Arc<ManagedLedgerFactory>,
    pub policies: PolicyStore,
    pub defaults: ManagedLedgerConfig,
    pub offload_status: Mutex<HashMap<String, OffloadStatus>>,
    /// The binary-protocol service, once started (topics it has loaded are unloaded on delete).
    pub broker: std::sync::OnceLock<Arc<broker::BrokerService>>,
    /// `http://host:port` of this web service, for HTTP lookups.
    pub web_service_url: String,
    /// The broker's offload settings and offloader (what topics use without offload policies).
    pub offload_base: Option<offload::OffloadConfig>,
    pub broker_offloader: Option<Arc<offload::BlobStoreOffloader>>,
    /// Offloaders of offload policies with their own location.
    pub policy_offloaders: offload_policies::PolicyOffloaders,
}

/// `tenant/namespace/persistent/topic`: the managed ledger behind a persistent topic.
pub fn ml_name(t: &str, ns: &str, topic: &str) -> String {
    format!("{t}/{ns}/persistent/{topic}")
}

impl AdminState {
    /// The managed-ledger settings of a topic: topic policy, else namespace policy, else broker
    /// default, field by field. Any negative retention value means unlimited (as older brokers
    /// did).
    pub fn effective_config(&self, p: &Policies, tp: &TopicPolicies) -> ManagedLedgerConfig {
        let mut c = self.defaults.clone();
        offload_policies::apply_to_config(&mut c, p, tp);
        c
    }

    /// Opens the topic's managed ledger with its effective settings and offloader (404 if the
    /// namespace does not exist).
    pub async fn open_topic(
        &self,
        t: &str,
        ns: &str,
        topic: &str,
    ) -> Result<ManagedLedger, ApiError> {
        self.open_ml(t, ns, topic, &ml_name(t, ns, topic)).await
    }

    /// Opens a managed ledger of namespace `t/ns` named `name` (topic `topic`).
    pub async fn open_ml(
        &self,
        t: &str,
        ns: &str,
        topic: &str,
        name: &str,
    ) -> Result<ManagedLedger, ApiError> {
        let p = self.policies.policies(t, ns).await?;
        let tp = self.policies.topic_policies(t, ns, topic).await?;
        let ml = self
            .factory
            .open(name, self.effective_config(&p, &tp))
            .await?;
        self.apply_offloader(&ml, &p, &tp).await?;
        Ok(ml)
    }

    async fn apply_offloader(
        &self,
        ml: &ManagedLedger,
        p: &Policies,
        tp: &TopicPolicies,
    ) -> Result<(), ApiError> {
        let o = self
            .policy_offloaders
            .resolve(
                self.offload_base.as_ref(),
                self.broker_offloader.as_ref(),
                p,
                tp,
            )
            .await?;
        ml.set_offloader(o);
        Ok(())
    }

    /// Applies changed namespace or topic policies to the open topics they cover.
    async fn apply(&self, t: &str, ns: &str) -> Result<(), ApiError> {
        let p = self.policies.policies(t, ns).await?;
        for ml in self.factory.open_ledgers().await {
            let Some(rest) = ml.name().strip_prefix(&format!("{t}/{ns}/")) else {
                continue;
            };
            let topic = rest.split_once('/').map(|(_, l)| l).unwrap_or(rest);
            let tp = self.policies.topic_policies(t, ns, topic).await?;
            ml.set_config(self.effective_config(&p, &tp));
            self.apply_offloader(&ml, &p, &tp).await?;
        }
        Ok(())
    }
}

pub fn router(state: Arc<AdminState>) -> Router {
    use topics as tp;
    Router::new()
        .route("/admin/v2/tenants", get(tp::list_tenants))
        .route(
            "/admin/v2/tenants/{t}",
            get(tp::get_tenant)
                .put(tp::create_tenant)
                .delete(tp::delete_tenant),
        )
        .route("/admin/v2/namespaces/{t}", get(tp::list_namespaces))
        .route(
            "/admin/v2/namespaces/{t}/{ns}",
            put(tp::create_namespace)
                .delete(tp::delete_namespace)
                .get(tp::get_policies),
        )
        .route(
            "/admin/v2/namespaces/{t}/{ns}/retention",
            get(tp::get_retention)
                .post(tp::set_retention)
                .delete(tp::remove_retention),
        )
        .route(
            "/admin/v2/namespaces/{t}/{ns}/offloadThreshold",
            get(tp::get_threshold).put(tp::set_threshold),
        )
        .route(
            "/admin/v2/namespaces/{t}/{ns}/offloadThresholdInSeconds",
            get(tp::get_threshold_seconds).put(tp::set_threshold_seconds),
        )
        .route(
            "/admin/v2/namespaces/{t}/{ns}/offloadDeletionLagMs",
            get(tp::get_lag).put(tp::set_lag).delete(tp::clear_lag),
        )
        .route("/admin/v2/persistent/{t}/{ns}", get(tp::list_topics))
        .route(
            "/admin/v2/persistent/{t}/{ns}/{topic}",
            put(tp::create_topic).delete(tp::delete_topic),
        )
        .route(
            "/admin/v2/persistent/{t}/{ns}/{topic}/offload",
            put(tp::trigger_offload).get(tp::offload_status),
        )
        .route(
            "/admin/v2/namespaces/{t}/{ns}/offloadPolicies",
            get(tp::get_offload_policies).post(tp::set_offload_policies),
        )
        .route(
            "/admin/v2/namespaces/{t}/{ns}/removeOffloadPolicies",
            axum::routing::delete(tp::remove_offload_policies),
        )
        .route(
            "/admin/v2/persistent/{t}/{ns}/{topic}/offloadPolicies",
            get(tp::get_topic_offload_policies)
                .post(tp::set_topic_offload_policies)
                .delete(tp::remove_topic_offload_policies),
        )
        .route(
            "/admin/v2/persistent/{t}/{ns}/{topic}/retention",
            get(tp::get_topic_retention)
                .post(tp::set_topic_retention)
                .delete(tp::remove_topic_retention),
        )
        .route(
            "/admin/v2/persistent/{t}/{ns}/{topic}/partitions",
            get(lookup::get_partitions)
                .put(lookup::create_partitions)
                .delete(lookup::delete_partitions),
        )
        .route(
            "/admin/v2/persistent/{t}/{ns}/partitioned",
            get(lookup::list_partitioned),
        )
        .route(
            "/lookup/v2/topic/{domain}/{t}/{ns}/{topic}",
            get(lookup::lookup),
        )
        .route(
            "/admin/v2/persistent/{t}/{ns}/{topic}/internalStats",
            get(tp::internal_stats),
        )
        .route(
            "/admin/v2/persistent/{t}/{ns}/{topic}/stats",
            get(tp::stats),
        )
        .with_state(state)
}

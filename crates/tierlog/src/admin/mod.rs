//! The admin REST API on the web port, with Pulsar's paths, JSON bodies, status codes and error
//! bodies (`{"reason": "..."}`): tenants, namespaces and their retention/offload policies, topics,
//! offload trigger and status, internal stats.
//!
//! Namespace policies are applied to every open topic of the namespace when they change, and to a
//! topic when it is opened (policy value if set, else the broker default).

mod error;
mod lookup;
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
use policies::Policies;
pub use policies::PolicyStore;

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
}

/// `tenant/namespace/persistent/topic`: the managed ledger behind a persistent topic.
pub fn ml_name(t: &str, ns: &str, topic: &str) -> String {
    format!("{t}/{ns}/persistent/{topic}")
}

impl AdminState {
    /// The managed-ledger settings of topics in `t/ns`: namespace policy where set, broker
    /// default otherwise. Any negative retention value means unlimited (as older brokers did).
    pub fn effective_config(&self, p: &Policies) -> ManagedLedgerConfig {
        let mut c = self.defaults.clone();
        if let Some(r) = p.retention_policies {
            c.retention_time_ms = if r.retention_time_in_minutes < 0 {
                -1
            } else {
                r.retention_time_in_minutes * 60_000
            };
            c.retention_size_bytes = if r.retention_size_in_mb < 0 {
                -1
            } else {
                r.retention_size_in_mb << 20
            };
        }
        if p.offload_threshold != -1 {
            c.offload_threshold_bytes = p.offload_threshold;
        }
        if p.offload_threshold_in_seconds != -1 {
            c.offload_threshold_seconds = p.offload_threshold_in_seconds;
        }
        if let Some(lag) = p.offload_deletion_lag_ms {
            c.offload_deletion_lag_ms = u64::try_from(lag).ok();
        }
        c
    }

    /// Opens the topic's managed ledger with its namespace's settings (404 if the namespace does
    /// not exist).
    pub async fn open_topic(
        &self,
        t: &str,
        ns: &str,
        topic: &str,
    ) -> Result<ManagedLedger, ApiError> {
        let p = self.policies.policies(t, ns).await?;
        Ok(self
            .factory
            .open(&ml_name(t, ns, topic), self.effective_config(&p))
            .await?)
    }

    /// Applies changed policies to the namespace's open topics.
    async fn apply(&self, t: &str, ns: &str, p: &Policies) {
        let prefix = format!("{t}/{ns}/persistent/");
        let c = self.effective_config(p);
        for ml in self.factory.open_ledgers().await {
            if ml.name().starts_with(&prefix) {
                ml.set_config(c.clone());
            }
        }
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

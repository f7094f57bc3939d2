//! What a role may do, decided by Pulsar's rules ([`security::Authorizer`]) over the stored
//! tenant admin roles and namespace `auth_policies`: one check for the REST endpoints and the
//! binary protocol alike.

use protocol::{NamespaceName, TopicName};
use security::{NamespaceOperation, Role, Scope, TopicOperation};

use crate::error::{PolicyError, Result};
use crate::service::PolicyService;

/// What a request needs to be allowed.
#[derive(Debug, Clone, Copy)]
pub enum Access<'a> {
    /// Anyone who authenticated (or no authentication at all): `/metrics`, health.
    Authenticated,
    /// Super-users only: tenants and clusters, brokers.
    SuperUser,
    /// The tenant's admins (and super-users).
    TenantAdmin(&'a str),
    Namespace(&'a NamespaceName, NamespaceOperation),
    Topic(&'a TopicName, TopicOperation<'a>),
}

impl PolicyService {
    /// `Ok` when `role` may do what `access` says; `NotAuthorized` naming the role and the
    /// operation otherwise. With authorization off, everything is allowed.
    pub async fn check_access(&self, role: Option<&Role>, access: Access<'_>) -> Result<()> {
        let authz = self.authorizer();
        if !authz.enabled || authz.is_super_user(role) {
            return Ok(());
        }
        let who = role.map_or("(no role)", Role::as_str);
        let allowed = match access {
            Access::Authenticated => true,
            Access::SuperUser => false,
            Access::TenantAdmin(tenant) => {
                authz.is_tenant_admin(role, &self.tenant_admins(tenant).await?)
            }
            Access::Namespace(ns, op) => {
                let admins = self.tenant_admins(ns.tenant()).await?;
                let policies = self.store().policies_if_exists(ns).await?;
                authz.allows_namespace(
                    role,
                    op,
                    Scope {
                        tenant_admins: &admins,
                        auth: policies.as_ref().map(|p| &p.auth_policies),
                    },
                )
            }
            Access::Topic(topic, op) => {
                let admins = self.tenant_admins(topic.tenant()).await?;
                let policies = self.store().policies_if_exists(topic.namespace()).await?;
                let full = topic.to_string();
                let partitioned = topic.partition_index().map(|_| topic.base().to_string());
                authz.allows_topic(
                    role,
                    &full,
                    partitioned.as_deref(),
                    op,
                    Scope {
                        tenant_admins: &admins,
                        auth: policies.as_ref().map(|p| &p.auth_policies),
                    },
                )
            }
        };
        if allowed {
            return Ok(());
        }
        Err(PolicyError::NotAuthorized(match access {
            Access::Authenticated | Access::SuperUser => {
                format!("role {who:?} is not a super-user")
            }
            Access::TenantAdmin(t) => {
                format!("role {who:?} does not have permission to administrate tenant {t}")
            }
            Access::Namespace(ns, NamespaceOperation::ListTopics) => {
                format!("role {who:?} is not authorized to list the topics of {ns}")
            }
            Access::Namespace(ns, NamespaceOperation::Admin) => {
                format!("role {who:?} does not have permission to administrate namespace {ns}")
            }
            Access::Topic(t, op) => format!(
                "role {who:?} is not authorized to {} {t}",
                match op {
                    TopicOperation::Lookup => "look up",
                    TopicOperation::Produce => "produce to",
                    TopicOperation::Consume { .. } => "consume from",
                    TopicOperation::Admin => "administrate",
                }
            ),
        }))
    }

    async fn tenant_admins(&self, tenant: &str) -> Result<Vec<String>> {
        match self.store().tenant(tenant).await {
            Ok(info) => Ok(info.admin_roles),
            Err(PolicyError::TenantNotFound) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }
}

//! Pulsar's authorization rules (`PulsarAuthorizationProvider`): super-users may do
//! everything; a tenant's admin roles may do everything within it; other roles get what the
//! namespace's `auth_policies` grant them (namespace-wide, per topic, with `*` prefix/suffix
//! wildcards when `authorizationAllowWildcardsMatching`), and subscriptions may be restricted to
//! roles. The rules are pure functions of the role, the operation and the stored policies; the
//! policy layer loads what they need.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::Role;

/// Pulsar's `AuthAction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthAction {
    Produce,
    Consume,
    Functions,
    Sources,
    Sinks,
    Packages,
}

impl AuthAction {
    pub const ALL: [AuthAction; 6] = [
        AuthAction::Produce,
        AuthAction::Consume,
        AuthAction::Functions,
        AuthAction::Sources,
        AuthAction::Sinks,
        AuthAction::Packages,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AuthAction::Produce => "produce",
            AuthAction::Consume => "consume",
            AuthAction::Functions => "functions",
            AuthAction::Sources => "sources",
            AuthAction::Sinks => "sinks",
            AuthAction::Packages => "packages",
        }
    }

    pub fn parse(s: &str) -> Option<AuthAction> {
        AuthAction::ALL.into_iter().find(|a| a.name() == s.trim())
    }
}

/// Role → actions.
pub type Permissions = BTreeMap<String, BTreeSet<AuthAction>>;

/// A namespace's `auth_policies`, in Pulsar's JSON field names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthPolicies {
    /// Namespace-wide grants.
    #[serde(default)]
    pub namespace_auth: Permissions,
    /// Grants per topic (full topic name).
    #[serde(default)]
    pub destination_auth: BTreeMap<String, Permissions>,
    /// Subscription name → the only roles that may use it (empty: any role with `consume`).
    #[serde(default)]
    pub subscription_auth_roles: BTreeMap<String, BTreeSet<String>>,
}

/// What is being done to a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicOperation<'a> {
    /// Lookups, partition metadata, stats: `produce` or `consume`.
    Lookup,
    Produce,
    /// Subscribing, reading, acknowledging, listing subscriptions; with the subscription name
    /// when one is involved.
    Consume {
        subscription: Option<&'a str>,
    },
    /// Everything else (offload, unload, delete, policies): tenant admins only.
    Admin,
}

/// What is being done to a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespaceOperation {
    /// Listing its topics: `consume`.
    ListTopics,
    /// Everything else: tenant admins only.
    Admin,
}

/// The broker's authorization settings and rules.
#[derive(Debug, Clone, Default)]
pub struct Authorizer {
    /// `authorizationEnabled`.
    pub enabled: bool,
    /// `superUserRoles`.
    pub super_users: BTreeSet<String>,
    /// `authorizationAllowWildcardsMatching`.
    pub wildcards: bool,
}

/// What the rules need to know about where an operation happens.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The tenant's `adminRoles` (none for a tenant that does not exist).
    pub tenant_admins: &'a [String],
    /// The namespace's `auth_policies` (none for a namespace that does not exist).
    pub auth: Option<&'a AuthPolicies>,
}

impl Authorizer {
    /// Whether `role` is a super-user; with authorization off, everyone is.
    pub fn is_super_user(&self, role: Option<&Role>) -> bool {
        if !self.enabled {
            return true;
        }
        role.is_some_and(|r| self.super_users.contains(r.as_str()))
    }

    /// Super-user, or one of the tenant's admin roles.
    pub fn is_tenant_admin(&self, role: Option<&Role>, tenant_admins: &[String]) -> bool {
        self.is_super_user(role)
            || role.is_some_and(|r| tenant_admins.iter().any(|a| a == r.as_str()))
    }

    pub fn allows_namespace(
        &self,
        role: Option<&Role>,
        op: NamespaceOperation,
        scope: Scope<'_>,
    ) -> bool {
        if self.is_tenant_admin(role, scope.tenant_admins) {
            return true;
        }
        let (Some(role), Some(auth)) = (role, scope.auth) else {
            return false;
        };
        match op {
            NamespaceOperation::ListTopics => {
                self.granted(role, AuthAction::Consume, &auth.namespace_auth)
            }
            NamespaceOperation::Admin => false,
        }
    }

    /// `topic` is the full name; `partitioned` the partitioned topic's name for a partition.
    pub fn allows_topic(
        &self,
        role: Option<&Role>,
        topic: &str,
        partitioned: Option<&str>,
        op: TopicOperation<'_>,
        scope: Scope<'_>,
    ) -> bool {
        if self.is_tenant_admin(role, scope.tenant_admins) {
            return true;
        }
        let (Some(role), Some(auth)) = (role, scope.auth) else {
            return false;
        };
        let has = |action| self.has_topic_permission(role, action, topic, partitioned, auth);
        match op {
            TopicOperation::Lookup => has(AuthAction::Produce) || has(AuthAction::Consume),
            TopicOperation::Produce => has(AuthAction::Produce),
            TopicOperation::Consume { subscription } => {
                if let Some(sub) = subscription
                    && let Some(roles) = auth.subscription_auth_roles.get(sub)
                    && !roles.is_empty()
                    && !roles.contains(role.as_str())
                {
                    return false;
                }
                has(AuthAction::Consume)
            }
            TopicOperation::Admin => false,
        }
    }

    fn has_topic_permission(
        &self,
        role: &Role,
        action: AuthAction,
        topic: &str,
        partitioned: Option<&str>,
        auth: &AuthPolicies,
    ) -> bool {
        if self.granted(role, action, &auth.namespace_auth) {
            return true;
        }
        // A partition is covered by its partitioned topic's grants (partitions added later
        // have none of their own).
        [Some(topic), partitioned]
            .into_iter()
            .flatten()
            .filter_map(|t| auth.destination_auth.get(t))
            .any(|perms| self.granted(role, action, perms))
    }

    fn granted(&self, role: &Role, action: AuthAction, perms: &Permissions) -> bool {
        if perms
            .get(role.as_str())
            .is_some_and(|a| a.contains(&action))
        {
            return true;
        }
        self.wildcards
            && perms.iter().any(|(pattern, actions)| {
                actions.contains(&action) && wildcard_matches(pattern, role.as_str())
            })
    }
}

/// `abc*` matches roles starting with `abc`, `*abc` roles ending with it.
fn wildcard_matches(pattern: &str, role: &str) -> bool {
    if let Some(prefix) = pattern.strip_suffix('*') {
        return role.starts_with(prefix);
    }
    if let Some(suffix) = pattern.strip_prefix('*') {
        return role.ends_with(suffix);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authz() -> Authorizer {
        Authorizer {
            enabled: true,
            super_users: ["admin".to_string()].into(),
            wildcards: false,
        }
    }

    fn policies(json: &str) -> AuthPolicies {
        serde_json::from_str(json).unwrap()
    }

    const T: &str = "persistent://t/ns/topic";

    #[test]
    fn pulsars_json_is_read_and_namespace_grants_apply_to_every_topic() {
        let p = policies(
            r#"{"namespace_auth": {"app": ["produce", "consume"], "reader": ["consume"]}}"#,
        );
        let a = authz();
        let scope = Scope {
            tenant_admins: &[],
            auth: Some(&p),
        };
        let app = Role::new("app");
        let reader = Role::new("reader");
        let other = Role::new("other");
        let produce = TopicOperation::Produce;
        let consume = TopicOperation::Consume {
            subscription: Some("s"),
        };
        assert!(a.allows_topic(Some(&app), T, None, produce, scope));
        assert!(a.allows_topic(Some(&app), T, None, consume, scope));
        assert!(!a.allows_topic(Some(&reader), T, None, produce, scope));
        assert!(a.allows_topic(Some(&reader), T, None, TopicOperation::Lookup, scope));
        assert!(!a.allows_topic(Some(&other), T, None, TopicOperation::Lookup, scope));
        assert!(!a.allows_topic(None, T, None, TopicOperation::Lookup, scope));
        assert!(!a.allows_topic(Some(&app), T, None, TopicOperation::Admin, scope));
        assert!(a.allows_namespace(Some(&reader), NamespaceOperation::ListTopics, scope));
        assert!(!a.allows_namespace(Some(&reader), NamespaceOperation::Admin, scope));
    }

    #[test]
    fn super_users_and_tenant_admins_may_do_everything() {
        let a = authz();
        let admins = ["tadmin".to_string()];
        let scope = Scope {
            tenant_admins: &admins,
            auth: None,
        };
        for role in ["admin", "tadmin"] {
            let r = Role::new(role);
            assert!(a.allows_topic(Some(&r), T, None, TopicOperation::Admin, scope));
            assert!(a.allows_namespace(Some(&r), NamespaceOperation::Admin, scope));
        }
        assert!(!a.is_super_user(Some(&Role::new("tadmin"))));
        // Authorization off: everyone, even without a role.
        assert!(Authorizer::default().is_super_user(None));
    }

    #[test]
    fn topic_grants_cover_the_partitions_and_subscriptions_can_be_restricted() {
        let p = policies(
            r#"{"destination_auth": {"persistent://t/ns/p": {"app": ["consume"]}},
                "subscription_auth_roles": {"locked": ["owner"]}}"#,
        );
        let a = authz();
        let scope = Scope {
            tenant_admins: &[],
            auth: Some(&p),
        };
        let app = Role::new("app");
        let part = "persistent://t/ns/p-partition-3";
        let sub = |s| TopicOperation::Consume {
            subscription: Some(s),
        };
        assert!(a.allows_topic(
            Some(&app),
            part,
            Some("persistent://t/ns/p"),
            sub("s"),
            scope
        ));
        assert!(!a.allows_topic(Some(&app), T, None, sub("s"), scope));
        assert!(!a.allows_topic(
            Some(&app),
            part,
            Some("persistent://t/ns/p"),
            sub("locked"),
            scope
        ));
    }

    #[test]
    fn wildcards_only_when_enabled() {
        let p = policies(r#"{"namespace_auth": {"team-*": ["produce"], "*-bot": ["consume"]}}"#);
        let scope = Scope {
            tenant_admins: &[],
            auth: Some(&p),
        };
        let mut a = authz();
        let r = Role::new("team-x");
        assert!(!a.allows_topic(Some(&r), T, None, TopicOperation::Produce, scope));
        a.wildcards = true;
        assert!(a.allows_topic(Some(&r), T, None, TopicOperation::Produce, scope));
        let bot = Role::new("ci-bot");
        assert!(a.allows_topic(
            Some(&bot),
            T,
            None,
            TopicOperation::Consume { subscription: None },
            scope
        ));
        assert!(!a.allows_topic(Some(&bot), T, None, TopicOperation::Produce, scope));
    }
}

//! The broker's security: TLS on its ports, who a client is (authentication), and what a role
//! may do (Pulsar's authorization rules over the permissions stored in namespace policies).

pub mod authn;
pub mod authz;
pub mod basic;
pub mod keys;
pub mod tls;
pub mod token;

pub use authn::{
    AuthConfigError, AuthError, Authenticated, AuthenticationSettings, Authenticator, Presented,
    ProviderKind,
};
pub use authz::{AuthAction, AuthPolicies, Authorizer, NamespaceOperation, Scope, TopicOperation};
pub use tls::{TlsError, TlsProtocol, TlsServer, TlsSettings};

/// An authenticated identity (Pulsar's "role"), as providers derive it: a token's subject, a
/// certificate's common name, a basic-auth user, or `anonymousUserRole`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Role(String);

impl Role {
    pub fn new(name: impl Into<String>) -> Role {
        Role(name.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

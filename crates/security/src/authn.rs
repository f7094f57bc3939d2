//! Authentication: who a client is, from what it presents on CONNECT (`auth_method_name`,
//! `auth_data`), in an HTTP `Authorization` header, or as its TLS client certificate.
//!
//! Providers are chosen by Pulsar's class names (`authenticationProviders`). A client that
//! presents nothing gets `anonymousUserRole` when one is configured; a client that presents
//! credentials that fail is refused, never downgraded to anonymous. Errors say why in words
//! and never carry the credential.

use std::collections::BTreeSet;

use base64::Engine;
use std::time::{Duration, SystemTime};

use crate::Role;
use crate::basic::{BasicAuthError, BasicUsers};
use crate::token::{TokenError, TokenProvider, TokenSettings};

/// An authentication provider, by the method name clients send (`token`, `tls`, `basic`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProviderKind {
    Token,
    Tls,
    Basic,
}

impl ProviderKind {
    /// Pulsar's provider class names (`org.apache.pulsar.broker.authentication.…`).
    pub fn from_class_name(class: &str) -> Option<ProviderKind> {
        match class.trim().rsplit('.').next()? {
            "AuthenticationProviderToken" => Some(ProviderKind::Token),
            "AuthenticationProviderTls" => Some(ProviderKind::Tls),
            "AuthenticationProviderBasic" => Some(ProviderKind::Basic),
            _ => None,
        }
    }

    /// The `auth_method_name` clients send for it.
    pub fn method_name(self) -> &'static str {
        match self {
            ProviderKind::Token => "token",
            ProviderKind::Tls => "tls",
            ProviderKind::Basic => "basic",
        }
    }
}

/// The authentication settings (`authenticationEnabled` and the providers' keys).
#[derive(Debug, Clone, Default)]
pub struct AuthenticationSettings {
    pub enabled: bool,
    pub providers: BTreeSet<ProviderKind>,
    /// `anonymousUserRole`: the role of clients that present no credentials.
    pub anonymous_role: Option<Role>,
    /// The token provider's keys (required when it is listed).
    pub token: Option<TokenSettings>,
    /// The basic provider's users (`basicAuthConf`, required when it is listed).
    pub basic: Option<std::sync::Arc<BasicUsers>>,
    /// `authenticationRefreshCheckSeconds` (60): how often connections' credentials are
    /// checked for expiry.
    pub refresh_check: Duration,
}

/// A client whose credentials were accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub role: Role,
    /// The method that accepted it (`token`, `tls`, or `anonymous`).
    pub method: &'static str,
    /// When the credentials stop being valid (an expiring token), if ever.
    pub expires_at: Option<SystemTime>,
}

/// Why a client was not authenticated. The text goes back to the client and into the logs.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("Authentication required")]
    Required,
    #[error("authentication method {0:?} is not enabled on this broker")]
    UnknownMethod(String),
    #[error("invalid token: {0}")]
    Token(#[from] TokenError),
    #[error("the TLS client certificate is missing, untrusted, or has no common name")]
    NoClientCertificate,
    #[error(transparent)]
    Basic(#[from] BasicAuthError),
    #[error("malformed Authorization header: {0}")]
    BadHeader(&'static str),
}

/// What a connection or request presented.
#[derive(Debug, Clone, Copy, Default)]
pub struct Presented<'a> {
    /// The CONNECT's `auth_method_name` (binary protocol only; `none` counts as absent).
    pub method: Option<&'a str>,
    /// The CONNECT's `auth_data`, or the credentials of an HTTP `Authorization` header.
    pub data: &'a [u8],
    /// The common name of the verified TLS client certificate, if any.
    pub tls_common_name: Option<&'a str>,
}

/// The broker's authentication providers.
#[derive(Debug)]
pub struct Authenticator {
    enabled: bool,
    token: Option<TokenProvider>,
    tls: bool,
    basic: Option<std::sync::Arc<BasicUsers>>,
    anonymous_role: Option<Role>,
    refresh_check: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error(
        "authenticationProviders lists AuthenticationProviderToken but neither tokenSecretKey nor tokenPublicKey is set"
    )]
    TokenKeyMissing,
    #[error(
        "authenticationProviders lists AuthenticationProviderBasic but basicAuthConf is not set"
    )]
    BasicConfMissing,
    #[error("authenticationEnabled=true but authenticationProviders names no provider")]
    NoProvider,
    #[error(transparent)]
    Token(#[from] crate::token::TokenKeyError),
}

impl Authenticator {
    /// Everyone is accepted, with no role (authentication off).
    pub fn disabled() -> Authenticator {
        Authenticator {
            enabled: false,
            token: None,
            tls: false,
            basic: None,
            anonymous_role: None,
            refresh_check: Duration::from_secs(60),
        }
    }

    pub fn new(s: &AuthenticationSettings) -> Result<Authenticator, AuthConfigError> {
        if !s.enabled {
            return Ok(Authenticator::disabled());
        }
        if s.providers.is_empty() {
            return Err(AuthConfigError::NoProvider);
        }
        let token = if s.providers.contains(&ProviderKind::Token) {
            let t = s.token.as_ref().ok_or(AuthConfigError::TokenKeyMissing)?;
            Some(TokenProvider::new(t)?)
        } else {
            None
        };
        let basic = if s.providers.contains(&ProviderKind::Basic) {
            Some(s.basic.clone().ok_or(AuthConfigError::BasicConfMissing)?)
        } else {
            None
        };
        Ok(Authenticator {
            enabled: true,
            token,
            tls: s.providers.contains(&ProviderKind::Tls),
            basic,
            anonymous_role: s.anonymous_role.clone(),
            refresh_check: s.refresh_check,
        })
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// How often connections check whether their credentials expired.
    pub fn refresh_check(&self) -> Duration {
        self.refresh_check
    }

    /// Authenticates a CONNECT (or an AUTH_RESPONSE). `Ok(None)` when authentication is off.
    pub fn authenticate_command(
        &self,
        p: Presented<'_>,
    ) -> Result<Option<Authenticated>, AuthError> {
        if !self.enabled {
            return Ok(None);
        }
        let method = p.method.filter(|m| !m.is_empty() && *m != "none");
        let result = match method {
            Some("token") if self.token.is_some() => self.token(p.data),
            Some("tls") if self.tls => self.tls(p.tls_common_name),
            Some("basic") if self.basic.is_some() => self.basic(p.data),
            // The C++ client sends its TLS method as "tls" too; any other is unknown here.
            Some(other) => Err(AuthError::UnknownMethod(other.to_string())),
            None => self.anonymous(),
        };
        result.map(Some)
    }

    /// Authenticates an HTTP request by its `Authorization` header (`Bearer <token>`,
    /// `Basic <base64(user:password)>`), else
    /// its TLS client certificate, else as anonymous. `Ok(None)` when authentication is off.
    pub fn authenticate_http(
        &self,
        authorization: Option<&str>,
        tls_common_name: Option<&str>,
    ) -> Result<Option<Authenticated>, AuthError> {
        if !self.enabled {
            return Ok(None);
        }
        let result = match authorization.map(str::trim) {
            Some(h) if !h.is_empty() => {
                let (scheme, value) = h
                    .split_once(' ')
                    .ok_or(AuthError::BadHeader("expected `<scheme> <credentials>`"))?;
                match scheme.to_ascii_lowercase().as_str() {
                    "bearer" if self.token.is_some() => self.token(value.trim().as_bytes()),
                    "basic" if self.basic.is_some() => {
                        let decoded = base64::engine::general_purpose::STANDARD
                            .decode(value.trim())
                            .map_err(|_| {
                                AuthError::BadHeader("Basic credentials are not base64")
                            })?;
                        self.basic(&decoded)
                    }
                    _ => Err(AuthError::UnknownMethod(scheme.to_string())),
                }
            }
            _ if self.tls && tls_common_name.is_some() => self.tls(tls_common_name),
            _ => self.anonymous(),
        };
        result.map(Some)
    }

    fn token(&self, data: &[u8]) -> Result<Authenticated, AuthError> {
        let token = self.token.as_ref().ok_or(AuthError::Required)?;
        let (role, expires_at) = token.authenticate(data)?;
        Ok(Authenticated {
            role,
            method: "token",
            expires_at,
        })
    }

    fn basic(&self, data: &[u8]) -> Result<Authenticated, AuthError> {
        let users = self.basic.as_ref().ok_or(AuthError::Required)?;
        Ok(Authenticated {
            role: users.authenticate(data)?,
            method: "basic",
            expires_at: None,
        })
    }

    fn tls(&self, cn: Option<&str>) -> Result<Authenticated, AuthError> {
        let cn = cn
            .filter(|c| !c.is_empty())
            .ok_or(AuthError::NoClientCertificate)?;
        Ok(Authenticated {
            role: Role::new(cn),
            method: "tls",
            expires_at: None,
        })
    }

    fn anonymous(&self) -> Result<Authenticated, AuthError> {
        match &self.anonymous_role {
            Some(r) => Ok(Authenticated {
                role: r.clone(),
                method: "anonymous",
                expires_at: None,
            }),
            None => Err(AuthError::Required),
        }
    }
}

//! The security keys of Pulsar's broker configuration: TLS ports and files, authentication
//! providers and their keys, authorization. Key material is read here (so a bad key stops
//! start-up with the key's name), and never shown in errors.

use std::collections::BTreeSet;
use std::time::Duration;

use security::token::{TokenKey, TokenSettings};
use security::{AuthenticationSettings, Authorizer, ProviderKind, Role, TlsProtocol, TlsSettings};

use super::{ConfigError, Properties};

/// The broker's listening ports and security settings.
#[derive(Debug, Clone)]
pub struct SecuritySettings {
    /// `brokerServicePort` (6650; empty: off) and `brokerServicePortTls` (off unless set, or
    /// 6651 with the deprecated `tlsEnabled=true`).
    pub broker_port: Option<u16>,
    pub broker_port_tls: Option<u16>,
    /// `webServicePort` (8080; empty: off) and `webServicePortTls` (as the broker's).
    pub web_port: Option<u16>,
    pub web_port_tls: Option<u16>,
    /// The TLS files and choices, when a TLS port is on.
    pub tls: Option<TlsSettings>,
    pub authentication: AuthenticationSettings,
    pub authorization: Authorizer,
}

fn secret_error(key: &str, reason: impl std::fmt::Display) -> ConfigError {
    ConfigError::Secret {
        key: key.into(),
        reason: reason.to_string(),
    }
}

pub(super) fn parse(raw: &mut Properties) -> Result<SecuritySettings, ConfigError> {
    let tls_enabled = raw.boolean("tlsEnabled", false)?;
    let broker_port = raw.take_optional_port("brokerServicePort", Some(6650))?;
    let web_port = raw.take_optional_port("webServicePort", Some(8080))?;
    let broker_port_tls =
        raw.take_optional_port("brokerServicePortTls", tls_enabled.then_some(6651))?;
    let web_port_tls = raw.take_optional_port("webServicePortTls", tls_enabled.then_some(8443))?;
    if broker_port.is_none() && broker_port_tls.is_none() {
        return Err(ConfigError::InvalidValue {
            key: "brokerServicePort".into(),
            value: String::new(),
            allowed: "a port, unless brokerServicePortTls is set".into(),
        });
    }
    if web_port.is_none() && web_port_tls.is_none() {
        return Err(ConfigError::InvalidValue {
            key: "webServicePort".into(),
            value: String::new(),
            allowed: "a port, unless webServicePortTls is set".into(),
        });
    }
    let tls = parse_tls(raw, broker_port_tls.is_some() || web_port_tls.is_some())?;
    let authentication = parse_authentication(raw)?;
    let authorization = Authorizer {
        enabled: raw.boolean("authorizationEnabled", false)?,
        super_users: raw.list("superUserRoles").into_iter().collect(),
        wildcards: raw.boolean("authorizationAllowWildcardsMatching", false)?,
    };
    if authorization.enabled && !authentication.enabled {
        return Err(ConfigError::InvalidValue {
            key: "authorizationEnabled".into(),
            value: "true".into(),
            allowed: "false unless authenticationEnabled=true (roles come from authentication)"
                .into(),
        });
    }
    Ok(SecuritySettings {
        broker_port,
        broker_port_tls,
        web_port,
        web_port_tls,
        tls,
        authentication,
        authorization,
    })
}

fn parse_tls(raw: &mut Properties, needed: bool) -> Result<Option<TlsSettings>, ConfigError> {
    let certificate_file = raw.take("tlsCertificateFilePath");
    let key_file = raw.take("tlsKeyFilePath");
    let trust_certs_file = raw.take("tlsTrustCertsFilePath").map(Into::into);
    let allow_insecure = raw.boolean("tlsAllowInsecureConnection", false)?;
    let require_trusted_client_cert = raw.boolean("tlsRequireTrustedClientCertOnConnect", false)?;
    let mut protocols = Vec::new();
    for p in raw.list("tlsProtocols") {
        protocols.push(
            TlsProtocol::parse(&p).ok_or_else(|| ConfigError::InvalidValue {
                key: "tlsProtocols".into(),
                value: p.clone(),
                allowed: "TLSv1.2 and/or TLSv1.3".into(),
            })?,
        );
    }
    let ciphers = raw.list("tlsCiphers");
    let refresh = raw.unsigned("tlsCertRefreshCheckDurationSec", 300, 0, 86_400)?;
    if !needed {
        return Ok(None);
    }
    if allow_insecure {
        tracing::warn!(
            "tlsAllowInsecureConnection=true: tierlog still never takes an untrusted client certificate as an identity"
        );
    }
    let missing = |key: &str| ConfigError::InvalidValue {
        key: key.into(),
        value: String::new(),
        allowed: "the PEM file's path (a TLS port is configured)".into(),
    };
    Ok(Some(TlsSettings {
        certificate_file: certificate_file
            .ok_or_else(|| missing("tlsCertificateFilePath"))?
            .into(),
        key_file: key_file.ok_or_else(|| missing("tlsKeyFilePath"))?.into(),
        trust_certs_file,
        require_trusted_client_cert,
        protocols,
        ciphers,
        refresh_interval: Duration::from_secs(refresh),
    }))
}

fn parse_authentication(raw: &mut Properties) -> Result<AuthenticationSettings, ConfigError> {
    let enabled = raw.boolean("authenticationEnabled", false)?;
    let mut providers = BTreeSet::new();
    for class in raw.list("authenticationProviders") {
        providers.insert(ProviderKind::from_class_name(&class).ok_or_else(|| {
            ConfigError::InvalidValue {
                key: "authenticationProviders".into(),
                value: class.clone(),
                allowed: "org.apache.pulsar.broker.authentication.AuthenticationProviderToken, …AuthenticationProviderTls, …AuthenticationProviderBasic".into(),
            }
        })?);
    }
    let anonymous_role = raw.take("anonymousUserRole").map(Role::new);
    let refresh = raw.unsigned("authenticationRefreshCheckSeconds", 60, 1, 86_400)?;
    let secret = raw.take("tokenSecretKey");
    let public = raw.take("tokenPublicKey");
    let alg_name = raw.string("tokenPublicAlg", "RS256");
    let auth_claim = raw.string("tokenAuthClaim", "sub");
    let audience_claim = raw.string("tokenAudienceClaim", "aud");
    let audience = raw.take("tokenAudience");
    let key = match (secret, public) {
        (Some(_), Some(_)) => {
            return Err(secret_error(
                "tokenSecretKey",
                "set tokenSecretKey or tokenPublicKey, not both",
            ));
        }
        (Some(s), None) => Some(TokenKey::Secret(
            security::keys::read_key_source(&s).map_err(|e| secret_error("tokenSecretKey", e))?,
        )),
        (None, Some(p)) => {
            let algorithm = security::token::parse_algorithm(&alg_name).ok_or_else(|| {
                ConfigError::InvalidValue {
                    key: "tokenPublicAlg".into(),
                    value: alg_name.clone(),
                    allowed: "RS256, RS384, RS512, PS256, PS384, PS512, ES256 or ES384".into(),
                }
            })?;
            Some(TokenKey::Public {
                key: security::keys::read_key_source(&p)
                    .map_err(|e| secret_error("tokenPublicKey", e))?,
                algorithm,
            })
        }
        (None, None) => None,
    };
    // Read only when the provider is listed, as Pulsar does: a stale key elsewhere stays inert.
    let basic_conf = raw.take("basicAuthConf");
    let basic = match basic_conf {
        Some(source) if providers.contains(&ProviderKind::Basic) => {
            let bytes = security::keys::read_key_source(&source)
                .map_err(|e| secret_error("basicAuthConf", e))?;
            let users = security::basic::BasicUsers::parse(&bytes)
                .map_err(|e| secret_error("basicAuthConf", e))?;
            Some(std::sync::Arc::new(users))
        }
        None if providers.contains(&ProviderKind::Basic) => {
            return Err(secret_error(
                "basicAuthConf",
                "AuthenticationProviderBasic is listed but no htpasswd file is configured",
            ));
        }
        _ => None,
    };
    Ok(AuthenticationSettings {
        enabled,
        providers,
        anonymous_role,
        token: key.map(|key| TokenSettings {
            key,
            auth_claim,
            audience_claim,
            audience,
        }),
        basic,
        refresh_check: Duration::from_secs(refresh),
    })
}

//! How `tierlog admin` and `tierlog perf` reach a secured broker, as pulsar-admin and
//! pulsar-perf do: `conf/client.conf` in Pulsar's format (or the file `TIERLOG_CLIENT_CONF`
//! names) read by default, command-line flags winning. Authentication plugins by Pulsar's class
//! names: `AuthenticationToken` (`token:<jwt>`, `file:///path`, or the token itself) and
//! `AuthenticationTls` (`tlsCertFile:<path>,tlsKeyFile:<path>` or that as JSON) and
//! `AuthenticationBasic` (`{"userId":…,"password":…}`).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use base64::Engine;
use clap::Args;

/// The flags both tools share.
#[derive(Debug, Args, Default)]
pub struct ClientArgs {
    /// Authentication plugin class (e.g. org.apache.pulsar.client.impl.auth.AuthenticationToken).
    #[arg(long = "auth-plugin", global = true)]
    pub auth_plugin: Option<String>,
    /// The plugin's parameters (for tokens: token:<jwt> or file:///path/to/token).
    #[arg(long = "auth-params", global = true)]
    pub auth_params: Option<String>,
    /// PEM file of the CAs to trust for https:// and pulsar+ssl://.
    #[arg(
        long = "tls-trust-cert-path",
        visible_alias = "trust-cert-file",
        global = true
    )]
    pub tls_trust_cert_path: Option<PathBuf>,
    /// Accept any server certificate.
    #[arg(long = "tls-allow-insecure", global = true)]
    pub tls_allow_insecure: bool,
    /// Check that the server's certificate names the host dialled.
    #[arg(long = "tls-enable-hostname-verification", global = true)]
    pub tls_enable_hostname_verification: bool,
}

/// Credentials a client presents.
#[derive(Clone, Default)]
pub enum ClientAuth {
    #[default]
    None,
    Token(String),
    Tls {
        cert: PathBuf,
        key: PathBuf,
    },
    Basic {
        user: String,
        password: String,
    },
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientAuth::None => f.write_str("None"),
            ClientAuth::Token(_) => f.write_str("Token(<redacted>)"),
            ClientAuth::Tls { cert, .. } => write!(f, "Tls({})", cert.display()),
            ClientAuth::Basic { user, .. } => write!(f, "Basic({user}, <redacted>)"),
        }
    }
}

/// Everything a tool needs to connect.
#[derive(Debug, Clone, Default)]
pub struct ClientSettings {
    /// `webServiceUrl` / `brokerServiceUrl` from client.conf (flags win).
    pub web_service_url: Option<String>,
    pub broker_service_url: Option<String>,
    pub auth: ClientAuth,
    pub tls: client::TlsOptions,
}

/// The client.conf to read: `TIERLOG_CLIENT_CONF`, else `conf/client.conf` if it exists.
fn conf_file() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TIERLOG_CLIENT_CONF") {
        return Some(PathBuf::from(p));
    }
    let default = Path::new("conf/client.conf");
    default.exists().then(|| default.to_path_buf())
}

impl ClientSettings {
    /// client.conf (if any), then the flags.
    pub fn resolve(args: &ClientArgs) -> anyhow::Result<ClientSettings> {
        let mut conf = policy::Properties::default();
        if let Some(path) = conf_file() {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading the client configuration {shown}"))?;
            conf = policy::Properties::parse(&shown, &text)?;
        }
        let flag_or = |flag: &Option<String>, conf: &mut policy::Properties, key: &str| {
            flag.clone().or_else(|| conf.take(key))
        };
        let plugin = flag_or(&args.auth_plugin, &mut conf, "authPlugin");
        let params = flag_or(&args.auth_params, &mut conf, "authParams");
        let bool_key = |conf: &mut policy::Properties, key: &str| {
            conf.take(key)
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        };
        let trust = args
            .tls_trust_cert_path
            .clone()
            .or_else(|| conf.take("tlsTrustCertsFilePath").map(PathBuf::from));
        let allow_insecure =
            args.tls_allow_insecure || bool_key(&mut conf, "tlsAllowInsecureConnection");
        let hostname_verification = args.tls_enable_hostname_verification
            || bool_key(&mut conf, "tlsEnableHostnameVerification");
        let auth = match plugin.as_deref() {
            None | Some("") => ClientAuth::None,
            Some(p) => parse_auth(p, params.as_deref().unwrap_or_default())?,
        };
        let client_cert = match &auth {
            ClientAuth::Tls { cert, key } => Some((cert.clone(), key.clone())),
            _ => None,
        };
        Ok(ClientSettings {
            web_service_url: conf.take("webServiceUrl"),
            broker_service_url: conf.take("brokerServiceUrl"),
            auth,
            tls: client::TlsOptions {
                trust_certs_file: trust,
                allow_insecure,
                hostname_verification,
                client_cert,
            },
        })
    }

    /// CONNECT's credentials for the binary protocol.
    pub fn connect_options(&self) -> client::ConnectOptions {
        client::ConnectOptions {
            tls: self.tls.clone(),
            auth: match &self.auth {
                ClientAuth::None => None,
                ClientAuth::Token(t) => Some(client::AuthData {
                    method: "token".into(),
                    data: t.clone().into_bytes(),
                }),
                ClientAuth::Tls { .. } => Some(client::AuthData {
                    method: "tls".into(),
                    data: Vec::new(),
                }),
                ClientAuth::Basic { user, password } => Some(client::AuthData {
                    method: "basic".into(),
                    data: format!("{user}:{password}").into_bytes(),
                }),
            },
        }
    }

    /// An HTTP client for the admin API with these credentials and trust.
    pub fn http_client(&self, timeout: std::time::Duration) -> anyhow::Result<reqwest::Client> {
        let mut b = reqwest::Client::builder().timeout(timeout);
        if self.tls.allow_insecure {
            b = b.tls_danger_accept_invalid_certs(true);
        } else if let Some(path) = &self.tls.trust_certs_file {
            // The trust file replaces the system's roots, as in Pulsar's clients.
            let pem = std::fs::read(path)
                .with_context(|| format!("reading the trusted certificates {}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("{} holds no PEM certificate", path.display()))?;
            b = b.tls_certs_only(certs);
            if !self.tls.hostname_verification {
                // Pulsar's clients do not check host names unless asked to.
                b = b.tls_danger_accept_invalid_hostnames(true);
            }
        }
        if let ClientAuth::Tls { cert, key } = &self.auth {
            let mut pem = std::fs::read(cert)
                .with_context(|| format!("reading the client certificate {}", cert.display()))?;
            pem.extend(
                std::fs::read(key)
                    .with_context(|| format!("reading the client key {}", key.display()))?,
            );
            b = b.identity(
                reqwest::Identity::from_pem(&pem).context("the client certificate or key")?,
            );
        }
        let authorization = match &self.auth {
            ClientAuth::Token(t) => Some(format!("Bearer {t}")),
            ClientAuth::Basic { user, password } => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            )),
            ClientAuth::None | ClientAuth::Tls { .. } => None,
        };
        if let Some(authorization) = authorization {
            let mut headers = reqwest::header::HeaderMap::new();
            let mut value = reqwest::header::HeaderValue::from_str(&authorization)
                .context("the credentials hold characters a header cannot")?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
            b = b.default_headers(headers);
        }
        Ok(b.build()?)
    }
}

/// A plugin and its parameters, as Pulsar's clients take them.
fn parse_auth(plugin: &str, params: &str) -> anyhow::Result<ClientAuth> {
    let short = plugin.rsplit('.').next().unwrap_or(plugin);
    match short {
        "AuthenticationToken" | "token" => {
            let params = params.trim();
            let token = if let Some(t) = params.strip_prefix("token:") {
                t.trim().to_string()
            } else if let Some(path) = params.strip_prefix("file:") {
                let path = path.strip_prefix("//").unwrap_or(path);
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading the token file {path}"))?
                    .trim()
                    .to_string()
            } else if params.starts_with('{') {
                let v: serde_json::Value =
                    serde_json::from_str(params).context("--auth-params is not valid JSON")?;
                v.get("token")
                    .and_then(|t| t.as_str())
                    .context("--auth-params JSON has no \"token\"")?
                    .to_string()
            } else {
                params.to_string()
            };
            if token.is_empty() {
                bail!("AuthenticationToken needs --auth-params token:<jwt> or file:///path");
            }
            Ok(ClientAuth::Token(token))
        }
        "AuthenticationTls" | "tls" => {
            let (mut cert, mut key) = (None, None);
            if params.trim_start().starts_with('{') {
                let v: serde_json::Value =
                    serde_json::from_str(params).context("--auth-params is not valid JSON")?;
                cert = v
                    .get("tlsCertFile")
                    .and_then(|s| s.as_str())
                    .map(PathBuf::from);
                key = v
                    .get("tlsKeyFile")
                    .and_then(|s| s.as_str())
                    .map(PathBuf::from);
            } else {
                for kv in params.split(',') {
                    match kv.split_once(':') {
                        Some(("tlsCertFile", v)) => cert = Some(PathBuf::from(v.trim())),
                        Some(("tlsKeyFile", v)) => key = Some(PathBuf::from(v.trim())),
                        _ => {}
                    }
                }
            }
            match (cert, key) {
                (Some(cert), Some(key)) => Ok(ClientAuth::Tls { cert, key }),
                _ => bail!(
                    "AuthenticationTls needs --auth-params tlsCertFile:<path>,tlsKeyFile:<path>"
                ),
            }
        }
        "AuthenticationBasic" | "basic" => {
            let v: serde_json::Value = serde_json::from_str(params.trim()).context(
                r#"AuthenticationBasic needs --auth-params '{"userId":"…","password":"…"}'"#,
            )?;
            let field = |name: &str| {
                v.get(name)
                    .and_then(|s| s.as_str())
                    .map(str::to_string)
                    .with_context(|| format!("AuthenticationBasic --auth-params has no {name:?}"))
            };
            Ok(ClientAuth::Basic {
                user: field("userId")?,
                password: field("password")?,
            })
        }
        _ => bail!(
            "authentication plugin {plugin:?} is not supported (org.apache.pulsar.client.impl.auth.AuthenticationToken, AuthenticationTls or AuthenticationBasic)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_parameters_as_pulsar_takes_them() {
        let tok = "org.apache.pulsar.client.impl.auth.AuthenticationToken";
        assert!(
            matches!(parse_auth(tok, "token:abc").unwrap(), ClientAuth::Token(t) if t == "abc")
        );
        assert!(matches!(parse_auth(tok, "abc").unwrap(), ClientAuth::Token(t) if t == "abc"));
        assert!(
            matches!(parse_auth(tok, r#"{"token":"abc"}"#).unwrap(), ClientAuth::Token(t) if t == "abc")
        );
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t");
        std::fs::write(&f, "from-file\n").unwrap();
        let p = format!("file://{}", f.display());
        assert!(matches!(parse_auth(tok, &p).unwrap(), ClientAuth::Token(t) if t == "from-file"));
        let tls = "org.apache.pulsar.client.impl.auth.AuthenticationTls";
        assert!(matches!(
            parse_auth(tls, "tlsCertFile:/c.pem,tlsKeyFile:/k.pem").unwrap(),
            ClientAuth::Tls { .. }
        ));
        assert!(parse_auth(tls, "tlsCertFile:/c.pem").is_err());
        let e = parse_auth("com.example.Custom", "x").unwrap_err();
        assert!(e.to_string().contains("com.example.Custom"));
        // The token never shows in Debug.
        assert!(!format!("{:?}", parse_auth(tok, "token:secret-jwt").unwrap()).contains("secret"));
        let basic = "org.apache.pulsar.client.impl.auth.AuthenticationBasic";
        let parsed = parse_auth(basic, r#"{"userId":"superuser","password":"pw-secret"}"#).unwrap();
        assert!(
            matches!(&parsed, ClientAuth::Basic { user, password } if user == "superuser" && password == "pw-secret")
        );
        assert!(!format!("{parsed:?}").contains("pw-secret"));
        assert!(parse_auth(basic, r#"{"userId":"superuser"}"#).is_err());
        assert!(parse_auth(basic, "superuser:admin").is_err());
    }
}

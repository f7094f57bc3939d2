//! `tierlog tokens`: Pulsar's `pulsar tokens` — secret keys, key pairs, signing, showing and
//! validating the JWTs the token provider accepts. Keys are written as Pulsar writes them (raw
//! bytes: a 32-byte secret, PKCS#8 / X.509 DER key pairs) and read in every form Pulsar's keys
//! take (`file:///…`, `data:;base64,…`, a path, base64).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use base64::Engine;
use clap::{Args, Subcommand};
use security::token::{SigningKey, TokenKey, TokenSettings};

#[derive(Subcommand)]
pub enum TokensCommand {
    /// A new secret key for HS256 tokens (tokenSecretKey).
    CreateSecretKey {
        /// Only HS256 is offered.
        #[arg(long, short = 'a', default_value = "HS256")]
        algorithm: String,
        /// Write the key to this file (default: standard output).
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
        /// Encode the key in base64.
        #[arg(long, short = 'b')]
        base64: bool,
    },
    /// A new key pair for RS256/ES256 tokens (tokenPublicKey is the public half).
    CreateKeyPair {
        #[arg(long, short = 'a', default_value = "RS256")]
        algorithm: String,
        #[arg(long = "output-private-key")]
        output_private_key: PathBuf,
        #[arg(long = "output-public-key")]
        output_public_key: PathBuf,
    },
    /// Sign a token for a subject (the role).
    Create(CreateArgs),
    /// Print a token's header and claims (without checking its signature).
    Show {
        /// The token (or use --stdin / --token-file).
        token: Option<String>,
        #[arg(long, short = 'i')]
        stdin: bool,
        #[arg(long = "token-file", short = 'f')]
        token_file: Option<PathBuf>,
    },
    /// Check a token's signature and expiry with a key; print its claims.
    Validate {
        token: Option<String>,
        #[arg(long, short = 'i')]
        stdin: bool,
        #[arg(long = "token-file", short = 'f')]
        token_file: Option<PathBuf>,
        #[arg(long = "secret-key", short = 's')]
        secret_key: Option<String>,
        #[arg(long = "public-key", short = 'p')]
        public_key: Option<String>,
        #[arg(long, short = 'a', default_value = "RS256")]
        algorithm: String,
    },
}

#[derive(Args)]
pub struct CreateArgs {
    /// The role the token names (its `sub` claim).
    #[arg(long, short = 's')]
    subject: String,
    /// HS256 secret key (file:///path, data:;base64,…, a path or base64).
    #[arg(long = "secret-key", short = 'k')]
    secret_key: Option<String>,
    /// Private key of a key pair (file:///path, data:…, a path or base64).
    #[arg(long = "private-key", short = 'p')]
    private_key: Option<String>,
    /// The key pair's algorithm.
    #[arg(long, short = 'a', default_value = "RS256")]
    algorithm: String,
    /// Lifetime, such as 30m, 12h, 7d or 1y (default: never expires).
    #[arg(long = "expiry-time", short = 'e')]
    expiry_time: Option<String>,
    /// `kid=<id>`: a key id for the JWT header.
    #[arg(long = "headers", short = 'H')]
    headers: Vec<String>,
}

fn algorithm(name: &str) -> anyhow::Result<security::token::Algorithm> {
    security::token::parse_algorithm(name).with_context(|| {
        format!("unsupported algorithm {name:?} (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384)")
    })
}

fn key(value: &str, what: &str) -> anyhow::Result<Vec<u8>> {
    security::keys::read_key_source(value).with_context(|| format!("reading the {what}"))
}

fn read_token(token: Option<String>, stdin: bool, file: Option<PathBuf>) -> anyhow::Result<String> {
    let t = match (token, stdin, file) {
        (Some(t), false, None) => t,
        (None, true, None) => std::io::read_to_string(std::io::stdin()).context("reading stdin")?,
        (None, false, Some(f)) => {
            std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?
        }
        _ => anyhow::bail!("give the token as an argument, with --stdin, or with --token-file"),
    };
    Ok(t.trim().to_string())
}

fn write_out(path: Option<&PathBuf>, bytes: &[u8]) -> anyhow::Result<()> {
    match path {
        Some(p) => std::fs::write(p, bytes).with_context(|| format!("writing {}", p.display())),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(bytes)?;
            out.flush()?;
            Ok(())
        }
    }
}

pub fn run(cmd: TokensCommand) -> anyhow::Result<()> {
    match cmd {
        TokensCommand::CreateSecretKey {
            algorithm,
            output,
            base64,
        } => {
            if algorithm != "HS256" {
                anyhow::bail!("secret keys are for HS256 (got {algorithm:?})");
            }
            let secret = security::token::generate_secret()?;
            let bytes = if base64 {
                base64::engine::general_purpose::STANDARD
                    .encode(&secret)
                    .into_bytes()
            } else {
                secret
            };
            write_out(output.as_ref(), &bytes)
        }
        TokensCommand::CreateKeyPair {
            algorithm: alg,
            output_private_key,
            output_public_key,
        } => {
            let (private, public) = security::token::generate_key_pair(algorithm(&alg)?)?;
            write_out(Some(&output_private_key), &private)?;
            write_out(Some(&output_public_key), &public)
        }
        TokensCommand::Create(a) => {
            let signing = match (&a.secret_key, &a.private_key) {
                (Some(s), None) => SigningKey::Secret(key(s, "secret key")?),
                (None, Some(p)) => SigningKey::Private {
                    key: key(p, "private key")?,
                    algorithm: algorithm(&a.algorithm)?,
                },
                _ => anyhow::bail!("give either --secret-key or --private-key"),
            };
            let expiry =
                match &a.expiry_time {
                    Some(e) => Some(humantime::parse_duration(e).with_context(|| {
                        format!("--expiry-time {e:?} (such as 30m, 12h, 7d, 1y)")
                    })?),
                    None => None,
                };
            let mut kid = None;
            for h in &a.headers {
                match h.split_once('=') {
                    Some(("kid", v)) => kid = Some(v.to_string()),
                    _ => anyhow::bail!("--headers takes kid=<id> (got {h:?})"),
                }
            }
            let token = security::token::create_token(&signing, &a.subject, expiry, kid)?;
            println!("{token}");
            Ok(())
        }
        TokensCommand::Show {
            token,
            stdin,
            token_file,
        } => {
            let token = read_token(token, stdin, token_file)?;
            let parts: Vec<&str> = token.split('.').collect();
            if parts.len() != 3 {
                anyhow::bail!("not a JWT (expected three dot-separated parts)");
            }
            let decode = |p: &str| -> anyhow::Result<String> {
                let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(p.trim_end_matches('='))
                    .context("a token part is not base64url")?;
                Ok(String::from_utf8_lossy(&raw).into_owned())
            };
            println!("{}\n---\n{}", decode(parts[0])?, decode(parts[1])?);
            Ok(())
        }
        TokensCommand::Validate {
            token,
            stdin,
            token_file,
            secret_key,
            public_key,
            algorithm: alg,
        } => {
            let token = read_token(token, stdin, token_file)?;
            let key = match (&secret_key, &public_key) {
                (Some(s), None) => TokenKey::Secret(key(s, "secret key")?),
                (None, Some(p)) => TokenKey::Public {
                    key: key(p, "public key")?,
                    algorithm: algorithm(&alg)?,
                },
                _ => anyhow::bail!("give either --secret-key or --public-key"),
            };
            let authn = security::Authenticator::new(&security::AuthenticationSettings {
                enabled: true,
                providers: [security::ProviderKind::Token].into(),
                token: Some(TokenSettings::new(key)),
                ..Default::default()
            })?;
            let a = authn
                .authenticate_command(security::Presented {
                    method: Some("token"),
                    data: token.as_bytes(),
                    tls_common_name: None,
                })
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .context("token authentication is off")?;
            println!("valid: subject {}", a.role);
            if let Some(exp) = a.expires_at {
                println!("expires {}", httpdate::fmt_http_date(exp));
            }
            Ok(())
        }
    }
}

//! Pulsar's token authentication (`AuthenticationProviderToken`): JWTs signed with a shared
//! secret (`tokenSecretKey`, HS256) or a key pair (`tokenPublicKey` with `tokenPublicAlg`,
//! RS256 by default), the role in `tokenAuthClaim` (`sub`), an optional audience
//! (`tokenAudienceClaim` / `tokenAudience`), expiry checked. Also signing, for `tierlog tokens`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
pub use jsonwebtoken::Algorithm;
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};

use crate::Role;

/// The verification key, as configured. Its bytes never appear in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub enum TokenKey {
    /// `tokenSecretKey`: HMAC (HS256).
    Secret(Vec<u8>),
    /// `tokenPublicKey` (DER or PEM) and `tokenPublicAlg`.
    Public { key: Vec<u8>, algorithm: Algorithm },
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenKey::Secret(_) => f.write_str("Secret(<redacted>)"),
            TokenKey::Public { algorithm, .. } => write!(f, "Public({algorithm:?})"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSettings {
    pub key: TokenKey,
    /// `tokenAuthClaim` (`sub`): the claim holding the role.
    pub auth_claim: String,
    /// `tokenAudienceClaim` (`aud`).
    pub audience_claim: String,
    /// `tokenAudience`: when set, tokens must name it in `audience_claim`.
    pub audience: Option<String>,
}

impl TokenSettings {
    pub fn new(key: TokenKey) -> TokenSettings {
        TokenSettings {
            key,
            auth_claim: "sub".into(),
            audience_claim: "aud".into(),
            audience: None,
        }
    }
}

/// A `tokenPublicAlg` value.
pub fn parse_algorithm(name: &str) -> Option<Algorithm> {
    let alg: Algorithm = name.trim().parse().ok()?;
    matches!(
        alg,
        Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512
            | Algorithm::ES256
            | Algorithm::ES384
    )
    .then_some(alg)
}

#[derive(Debug, thiserror::Error)]
pub enum TokenKeyError {
    #[error("the {what} is not a usable {algorithm:?} key ({reason})")]
    Unusable {
        what: &'static str,
        algorithm: Algorithm,
        reason: String,
    },
}

/// Why a token was refused (the text is safe to log and to send: it never holds the token).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token has expired")]
    Expired,
    #[error("the token's signature does not verify with the broker's key")]
    BadSignature,
    #[error("the token is signed with {0}, which the broker's key does not verify")]
    WrongAlgorithm(String),
    #[error("the token has no {0:?} claim naming a role")]
    NoRole(String),
    #[error("the token's {claim:?} claim does not name this broker's audience")]
    WrongAudience { claim: String },
    #[error("the token is not a well-formed JWT ({0})")]
    Malformed(String),
}

#[derive(Debug)]
pub(crate) struct TokenProvider {
    key: DecodingKeyDebug,
    validation: Validation,
    auth_claim: String,
    audience_claim: String,
    audience: Option<String>,
}

/// `DecodingKey` with a `Debug` that shows nothing of the key.
struct DecodingKeyDebug(DecodingKey);

impl std::fmt::Debug for DecodingKeyDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<key>")
    }
}

impl TokenProvider {
    pub(crate) fn new(s: &TokenSettings) -> Result<TokenProvider, TokenKeyError> {
        let (key, algorithms) = match &s.key {
            TokenKey::Secret(secret) => (
                DecodingKey::from_secret(secret).map_err(|e| TokenKeyError::Unusable {
                    what: "tokenSecretKey",
                    algorithm: Algorithm::HS256,
                    reason: e.to_string(),
                })?,
                vec![Algorithm::HS256, Algorithm::HS384, Algorithm::HS512],
            ),
            TokenKey::Public { key, algorithm } => {
                (public_decoding_key(key, *algorithm)?, vec![*algorithm])
            }
        };
        let mut validation = Validation::new(algorithms[0]);
        validation.algorithms = algorithms;
        // Tokens without `exp` never expire, as in Pulsar; the audience is checked here
        // because its claim name is configurable.
        validation.required_spec_claims.clear();
        validation.validate_exp = true;
        validation.leeway = 0;
        validation.validate_aud = false;
        Ok(TokenProvider {
            key: DecodingKeyDebug(key),
            validation,
            auth_claim: s.auth_claim.clone(),
            audience_claim: s.audience_claim.clone(),
            audience: s.audience.clone(),
        })
    }

    /// The role a token grants and when it expires.
    pub(crate) fn authenticate(
        &self,
        token: &[u8],
    ) -> Result<(Role, Option<SystemTime>), TokenError> {
        let token = std::str::from_utf8(token)
            .map_err(|_| TokenError::Malformed("not UTF-8".into()))?
            .trim();
        // Clients may send the header's form too.
        let token = token.strip_prefix("Bearer ").unwrap_or(token);
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            &self.key.0,
            &self.validation,
        )
        .map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::ExpiredSignature => TokenError::Expired,
                K::InvalidSignature => TokenError::BadSignature,
                K::InvalidAlgorithm => TokenError::WrongAlgorithm(
                    jsonwebtoken::decode_header(token)
                        .map(|h| format!("{:?}", h.alg))
                        .unwrap_or_else(|_| "an unknown algorithm".into()),
                ),
                K::InvalidClaimFormat(c) => TokenError::Malformed(format!("bad {c} claim")),
                other => TokenError::Malformed(format!("{other:?}")),
            }
        })?;
        let claims = data.claims;
        let role = claims
            .get(&self.auth_claim)
            .and_then(|v| v.as_str())
            .filter(|r| !r.is_empty())
            .ok_or_else(|| TokenError::NoRole(self.auth_claim.clone()))?;
        if let Some(want) = &self.audience {
            let ok = match claims.get(&self.audience_claim) {
                Some(serde_json::Value::String(a)) => a == want,
                Some(serde_json::Value::Array(list)) => {
                    list.iter().any(|a| a.as_str() == Some(want.as_str()))
                }
                _ => false,
            };
            if !ok {
                return Err(TokenError::WrongAudience {
                    claim: self.audience_claim.clone(),
                });
            }
        }
        let expires_at = claims
            .get("exp")
            .and_then(|v| v.as_u64())
            .map(|s| UNIX_EPOCH + Duration::from_secs(s));
        Ok((Role::new(role), expires_at))
    }
}

/// PEM text of DER bytes under `label`.
fn pem(label: &str, der: &[u8]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out.into_bytes()
}

fn is_pem(bytes: &[u8]) -> bool {
    bytes.trim_ascii_start().starts_with(b"-----BEGIN")
}

/// A public key as Pulsar writes it (X.509 SubjectPublicKeyInfo DER) or as PEM.
fn public_decoding_key(bytes: &[u8], alg: Algorithm) -> Result<DecodingKey, TokenKeyError> {
    let text = if is_pem(bytes) {
        bytes.to_vec()
    } else {
        pem("PUBLIC KEY", bytes)
    };
    let key = match alg {
        Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(&text),
        _ => DecodingKey::from_rsa_pem(&text),
    };
    key.map_err(|e| TokenKeyError::Unusable {
        what: "tokenPublicKey",
        algorithm: alg,
        reason: e.to_string(),
    })
}

/// A signing key for `tierlog tokens create`.
pub enum SigningKey {
    /// `--secret-key`: HS256.
    Secret(Vec<u8>),
    /// `--private-key` (PKCS#8 DER as Pulsar writes it, or PEM) with its algorithm.
    Private { key: Vec<u8>, algorithm: Algorithm },
}

/// Signs a token for `subject`, expiring after `expiry` if given, with `kid` in its header
/// (Pulsar's `--headers kid=…`).
pub fn create_token(
    key: &SigningKey,
    subject: &str,
    expiry: Option<Duration>,
    kid: Option<String>,
) -> Result<String, TokenKeyError> {
    let mut claims = serde_json::Map::new();
    claims.insert("sub".into(), subject.into());
    if let Some(d) = expiry {
        let exp = SystemTime::now()
            .checked_add(d)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
            .unwrap_or(u64::MAX / 2);
        claims.insert("exp".into(), exp.into());
    }
    sign(key, &claims, kid)
}

/// Signs a token with exactly `claims`.
pub fn create_token_with_claims(
    key: &SigningKey,
    claims: serde_json::Map<String, serde_json::Value>,
) -> Result<String, TokenKeyError> {
    sign(key, &claims, None)
}

fn sign(
    key: &SigningKey,
    claims: &serde_json::Map<String, serde_json::Value>,
    kid: Option<String>,
) -> Result<String, TokenKeyError> {
    let (encoding, algorithm) = match key {
        SigningKey::Secret(s) => (
            EncodingKey::from_secret(s).map_err(|e| TokenKeyError::Unusable {
                what: "secret key",
                algorithm: Algorithm::HS256,
                reason: e.to_string(),
            })?,
            Algorithm::HS256,
        ),
        SigningKey::Private { key, algorithm } => {
            let text = if is_pem(key) {
                key.clone()
            } else {
                pem("PRIVATE KEY", key)
            };
            let k = match algorithm {
                Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(&text),
                _ => EncodingKey::from_rsa_pem(&text),
            }
            .map_err(|e| TokenKeyError::Unusable {
                what: "private key",
                algorithm: *algorithm,
                reason: e.to_string(),
            })?;
            (k, *algorithm)
        }
    };
    let mut header = Header::new(algorithm);
    header.typ = None;
    header.kid = kid;
    jsonwebtoken::encode(&header, claims, &encoding).map_err(|e| TokenKeyError::Unusable {
        what: "signing key",
        algorithm,
        reason: e.to_string(),
    })
}

/// A new HS256 secret (32 random bytes), for `tierlog tokens create-secret-key`.
pub fn generate_secret() -> Result<Vec<u8>, KeyGenError> {
    let mut secret = vec![0u8; 32];
    aws_lc_rs::rand::fill(&mut secret).map_err(|_| KeyGenError)?;
    Ok(secret)
}

/// The system random source failed.
#[derive(Debug, thiserror::Error)]
#[error("the system's random number generator failed")]
pub struct KeyGenError;

/// A new key pair as Pulsar writes it: (PKCS#8 private DER, X.509 public DER).
pub fn generate_key_pair(algorithm: Algorithm) -> Result<(Vec<u8>, Vec<u8>), KeyGenError> {
    use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
    use aws_lc_rs::signature::KeyPair;
    match algorithm {
        Algorithm::ES256 | Algorithm::ES384 => {
            let alg = if algorithm == Algorithm::ES256 {
                &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING
            } else {
                &aws_lc_rs::signature::ECDSA_P384_SHA384_FIXED_SIGNING
            };
            let kp = aws_lc_rs::signature::EcdsaKeyPair::generate(alg).map_err(|_| KeyGenError)?;
            let private = kp.to_pkcs8v1().map_err(|_| KeyGenError)?;
            let public: PublicKeyX509Der = kp.public_key().as_der().map_err(|_| KeyGenError)?;
            Ok((private.as_ref().to_vec(), public.as_ref().to_vec()))
        }
        _ => {
            let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .map_err(|_| KeyGenError)?;
            let private: Pkcs8V1Der = kp.as_der().map_err(|_| KeyGenError)?;
            let public: PublicKeyX509Der = kp.public_key().as_der().map_err(|_| KeyGenError)?;
            Ok((private.as_ref().to_vec(), public.as_ref().to_vec()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(key: TokenKey) -> TokenProvider {
        TokenProvider::new(&TokenSettings::new(key)).unwrap()
    }

    #[test]
    fn a_secret_key_token_names_its_subject_and_expiry_is_checked() {
        let secret = generate_secret().unwrap();
        let p = provider(TokenKey::Secret(secret.clone()));
        let key = SigningKey::Secret(secret);
        let t = create_token(&key, "alice", None, None).unwrap();
        let (role, exp) = p.authenticate(t.as_bytes()).unwrap();
        assert_eq!((role.as_str(), exp), ("alice", None));
        let t = create_token(&key, "bob", Some(Duration::from_secs(3600)), None).unwrap();
        let (role, exp) = p.authenticate(t.as_bytes()).unwrap();
        assert_eq!(role.as_str(), "bob");
        assert!(exp.unwrap() > SystemTime::now());

        // An expired token (exp in the past, signed with the right key).
        let mut claims = serde_json::Map::new();
        claims.insert("sub".into(), "carol".into());
        claims.insert("exp".into(), 1_000_000_000u64.into());
        let SigningKey::Secret(s) = &key else {
            unreachable!()
        };
        let old = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(s).unwrap(),
        )
        .unwrap();
        assert!(matches!(
            p.authenticate(old.as_bytes()),
            Err(TokenError::Expired)
        ));
        // Another secret's token.
        let other = create_token(
            &SigningKey::Secret(b"another secret, 32 bytes long!!!".to_vec()),
            "alice",
            None,
            None,
        )
        .unwrap();
        assert!(matches!(
            p.authenticate(other.as_bytes()),
            Err(TokenError::BadSignature)
        ));
        assert!(matches!(
            p.authenticate(b"not.a.jwt"),
            Err(TokenError::Malformed(_))
        ));
    }

    #[test]
    fn key_pair_tokens_rs256_and_es256_in_pulsars_der_files() {
        for alg in [Algorithm::RS256, Algorithm::ES256] {
            let (private, public) = generate_key_pair(alg).unwrap();
            let p = provider(TokenKey::Public {
                key: public,
                algorithm: alg,
            });
            let signing = SigningKey::Private {
                key: private,
                algorithm: alg,
            };
            let t = create_token(&signing, "svc", None, Some("k1".into())).unwrap();
            assert_eq!(p.authenticate(t.as_bytes()).unwrap().0.as_str(), "svc");
            // An HS256 token must not pass as the key pair's algorithm.
            let hs = create_token(&SigningKey::Secret(vec![7; 32]), "svc", None, None).unwrap();
            assert!(matches!(
                p.authenticate(hs.as_bytes()),
                Err(TokenError::WrongAlgorithm(_))
            ));
        }
    }

    #[test]
    fn custom_role_claim_and_audience() {
        let secret = vec![9u8; 32];
        let mut s = TokenSettings::new(TokenKey::Secret(secret.clone()));
        s.auth_claim = "role".into();
        s.audience_claim = "my-aud".into();
        s.audience = Some("tierlog".into());
        let p = TokenProvider::new(&s).unwrap();
        let sign = |claims: serde_json::Value| {
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(&secret).unwrap(),
            )
            .unwrap()
        };
        let ok = sign(serde_json::json!({"role": "r1", "my-aud": ["x", "tierlog"]}));
        assert_eq!(p.authenticate(ok.as_bytes()).unwrap().0.as_str(), "r1");
        let wrong = sign(serde_json::json!({"role": "r1", "my-aud": "other"}));
        assert!(matches!(
            p.authenticate(wrong.as_bytes()),
            Err(TokenError::WrongAudience { .. })
        ));
        let no_role = sign(serde_json::json!({"sub": "r1", "my-aud": "tierlog"}));
        assert!(matches!(
            p.authenticate(no_role.as_bytes()),
            Err(TokenError::NoRole(_))
        ));
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let k = TokenKey::Secret(b"super-secret-value".to_vec());
        assert!(!format!("{k:?}").contains("super"));
        let p = provider(k);
        assert!(!format!("{p:?}").contains("super"));
    }
}

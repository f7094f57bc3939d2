//! AWS credentials for the S3 drivers: the standard chain (environment, shared credentials and
//! config files / `AWS_PROFILE`, web identity, container and instance metadata) from `aws-config`,
//! optionally wrapped in STS AssumeRole (`s3ManagedLedgerOffloadRole`), adapted to object_store.
//!
//! The adapter caches credentials until five minutes before they expire: object_store asks for
//! credentials on every request, and the chain's providers would otherwise call STS (or the
//! metadata service) each time. Session credentials are refreshed before they expire, never used
//! past it. Secrets are never logged; `Debug` shows none.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use object_store::aws::{AwsCredential, AwsCredentialProvider};

use crate::config::Credentials;
use crate::error::{OffloadError, Result};
use crate::location::Location;

/// Refresh this long before expiry.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

struct Cached {
    credential: Arc<AwsCredential>,
    expiry: Option<SystemTime>,
}

/// object_store credential provider backed by an `aws-config` provider, with caching.
pub struct CachingAwsCredentials {
    provider: SharedCredentialsProvider,
    cache: tokio::sync::Mutex<Option<Cached>>,
}

impl std::fmt::Debug for CachingAwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CachingAwsCredentials { .. }")
    }
}

impl CachingAwsCredentials {
    pub fn new(provider: SharedCredentialsProvider) -> Self {
        CachingAwsCredentials {
            provider,
            cache: tokio::sync::Mutex::new(None),
        }
    }
}

#[async_trait::async_trait]
impl object_store::CredentialProvider for CachingAwsCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref() {
            let fresh = c
                .expiry
                .is_none_or(|e| e > SystemTime::now() + REFRESH_MARGIN);
            if fresh {
                return Ok(Arc::clone(&c.credential));
            }
        }
        let creds = self.provider.provide_credentials().await.map_err(|e| {
            object_store::Error::Unauthenticated {
                path: String::new(),
                source: format!("cannot obtain AWS credentials: {}", aws_error_chain(&e)).into(),
            }
        })?;
        let credential = Arc::new(AwsCredential {
            key_id: creds.access_key_id().to_string(),
            secret_key: creds.secret_access_key().to_string(),
            token: creds.session_token().map(str::to_string),
        });
        tracing::debug!(expiry = ?creds.expiry(), "obtained AWS credentials");
        *cache = Some(Cached {
            credential: Arc::clone(&credential),
            expiry: creds.expiry(),
        });
        Ok(credential)
    }
}

fn aws_error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

/// The credential provider for an S3 location.
pub async fn aws_provider(
    location: &Location,
    config: &Credentials,
) -> Result<AwsCredentialProvider> {
    let region = aws_config::Region::new(location.region_or_default());
    let base: SharedCredentialsProvider = match (&config.credential_id, &config.credential_secret) {
        (Some(id), Some(secret)) if !id.is_empty() => SharedCredentialsProvider::new(
            aws_credential_types::Credentials::new(id, secret, None, None, "tierlog-static"),
        ),
        _ => {
            let sdk = aws_config::defaults(BehaviorVersion::latest())
                .region(region.clone())
                .load()
                .await;
            sdk.credentials_provider().ok_or_else(|| {
                OffloadError::Credentials("the AWS default credential chain is unavailable".into())
            })?
        }
    };
    let provider = match config.role.as_deref().filter(|r| !r.is_empty()) {
        None => base,
        Some(role) => {
            let sdk = aws_config::defaults(BehaviorVersion::latest())
                .region(region.clone())
                .credentials_provider(base)
                .load()
                .await;
            let assume = aws_config::sts::AssumeRoleProvider::builder(role)
                .session_name(config.role_session_name())
                .region(region)
                .configure(&sdk)
                .build()
                .await;
            SharedCredentialsProvider::new(assume)
        }
    };
    Ok(Arc::new(CachingAwsCredentials::new(provider)))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use aws_credential_types::provider::future;
    use object_store::CredentialProvider;

    use super::*;

    /// Hands out credentials that expire `lifetime` from now, counting calls.
    #[derive(Debug)]
    struct Counting {
        calls: Arc<AtomicU32>,
        lifetime: Duration,
    }

    impl ProvideCredentials for Counting {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            future::ProvideCredentials::ready(Ok(aws_credential_types::Credentials::new(
                format!("key-{n}"),
                "secret",
                Some("token".into()),
                Some(SystemTime::now() + self.lifetime),
                "test",
            )))
        }
    }

    async fn calls_for(lifetime: Duration) -> (u32, String) {
        let calls = Arc::new(AtomicU32::new(0));
        let c = CachingAwsCredentials::new(SharedCredentialsProvider::new(Counting {
            calls: Arc::clone(&calls),
            lifetime,
        }));
        let mut last = String::new();
        for _ in 0..5 {
            last = c.get_credential().await.unwrap().key_id.clone();
        }
        (calls.load(Ordering::SeqCst), last)
    }

    #[tokio::test]
    async fn credentials_are_cached_until_shortly_before_expiry() {
        assert_eq!(
            calls_for(Duration::from_secs(3600)).await,
            (1, "key-0".into())
        );
        // Within the refresh margin: never used, fetched again each time.
        assert_eq!(
            calls_for(Duration::from_secs(60)).await,
            (5, "key-4".into())
        );
    }

    #[test]
    fn debug_shows_no_secret() {
        let c = CachingAwsCredentials::new(SharedCredentialsProvider::new(
            aws_credential_types::Credentials::new("AKID", "very-secret", None, None, "t"),
        ));
        assert!(!format!("{c:?}").contains("very-secret"));
    }
}

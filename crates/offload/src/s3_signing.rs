//! The S3 requests object_store cannot make (multipart uploads with CRC32C parts, listing and
//! aborting incomplete uploads): where they go (the bucket's URL, path-style with a configured
//! endpoint, virtual-hosted on AWS, as the object_store client addresses it) and how they are
//! signed (the AWS SDK's SigV4 signer, `aws-sigv4`, with the credentials the location's client
//! uses); tierlog writes no SigV4 itself.
//!
//! The signing headers carry the access key id, a session token and a signature: requests are
//! never logged whole, and errors lose their URL ([`without_url`]).

use std::sync::Arc;

use object_store::aws::{AwsCredential, AwsCredentialProvider};

use crate::config::Credentials;
use crate::credentials;
use crate::error::{OffloadError, Result};
use crate::location::Location;

/// The bucket of an S3 location and where its credentials come from.
pub(crate) struct S3Target {
    /// The bucket's URL (objects are path segments below it).
    bucket_url: url::Url,
    region: String,
    provider: AwsCredentialProvider,
    pub location: Location,
}

impl std::fmt::Debug for S3Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Target")
            .field("location", &self.location.to_string())
            .finish_non_exhaustive()
    }
}

impl S3Target {
    /// The target of an S3 location (`None` for the other families), with the credentials of
    /// `provider` (the location's client's, so both share one cache and one STS session) or
    /// else of a provider made from `config`.
    pub async fn new(
        location: &Location,
        config: &Credentials,
        provider: Option<AwsCredentialProvider>,
    ) -> Result<Option<S3Target>> {
        let Location::S3 {
            bucket, endpoint, ..
        } = location
        else {
            return Ok(None);
        };
        let region = location.region_or_default();
        // A configured endpoint means path-style addressing, as the object_store client does.
        let text = match endpoint {
            Some(e) => format!("{}/{bucket}", e.trim_end_matches('/')),
            None => format!("https://{bucket}.s3.{region}.amazonaws.com"),
        };
        let bucket_url = url::Url::parse(&text)
            .ok()
            .filter(|u| !u.cannot_be_a_base())
            .ok_or_else(|| {
                OffloadError::Config(format!("S3 endpoint and bucket make no URL: {text:?}"))
            })?;
        let provider = match provider {
            Some(p) => p,
            None => credentials::aws_provider(location, config).await?,
        };
        Ok(Some(S3Target {
            bucket_url,
            region,
            provider,
            location: location.clone(),
        }))
    }

    /// The credentials to sign the next request with (the provider caches and refreshes them).
    pub async fn credentials(&self) -> Result<Arc<AwsCredential>> {
        self.provider
            .get_credential()
            .await
            .map_err(|e| OffloadError::AccessDenied {
                bucket: self.location.to_string(),
                detail: e.to_string(),
            })
    }
}

impl S3Target {
    /// The URL of `key`, or of the bucket itself.
    fn url(&self, key: Option<&str>) -> url::Url {
        let mut url = self.bucket_url.clone();
        if let Some(key) = key
            && let Ok(mut segments) = url.path_segments_mut()
        {
            segments.pop_if_empty().extend(key.split('/'));
        }
        url
    }

    /// `request` for `method` on `key` (`None`: the bucket) with `query`, its `headers` and the
    /// SigV4 headers
    /// (`authorization`, `x-amz-date`, `x-amz-content-sha256: UNSIGNED-PAYLOAD`, a session
    /// token), signed by the AWS SDK's signer (`aws-sigv4`) with S3's URI rules. The body is
    /// not signed: what protects it is the caller's business (a checksum header).
    pub fn signed(
        &self,
        http: &reqwest::Client,
        creds: &AwsCredential,
        method: reqwest::Method,
        key: Option<&str>,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Result<reqwest::RequestBuilder> {
        use aws_sigv4::http_request::{
            PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest,
            SigningSettings, UriPathNormalizationMode, sign,
        };
        let mut url = self.url(key);
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        let failed = |e: &dyn std::fmt::Display| {
            OffloadError::Config(format!("signing a request to {}: {e}", self.location))
        };
        let identity = aws_credential_types::Credentials::new(
            &creds.key_id,
            &creds.secret_key,
            creds.token.clone(),
            None,
            "tierlog",
        )
        .into();
        let mut settings = SigningSettings::default();
        // S3 takes paths encoded once and unnormalised; the SDK's S3 client signs the same way.
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(std::time::SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| failed(&e))?
            .into();
        let signable = SignableRequest::new(
            method.as_str(),
            url.as_str(),
            headers.iter().copied(),
            SignableBody::UnsignedPayload,
        )
        .map_err(|e| failed(&e))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| failed(&e))?
            .into_parts();
        let request = headers
            .iter()
            .fold(http.request(method, url), |r, (k, v)| r.header(*k, *v));
        Ok(instructions
            .headers()
            .fold(request, |r, (k, v)| r.header(k, v)))
    }
}

/// `e` without the URL it was sent to: a signed URL holds the signature and the access key id.
pub(crate) fn without_url(e: reqwest::Error) -> reqwest::Error {
    e.without_url()
}

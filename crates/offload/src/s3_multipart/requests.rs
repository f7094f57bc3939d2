//! The four multipart requests (create, part, complete, abort), signed for the location and
//! sent with reqwest: retries with backoff, a request given up once it makes no progress for
//! the request timeout, a paced part body, S3's error bodies turned into typed errors.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use object_store::aws::AwsCredential;
use object_store::{Attribute, PutMultipartOptions, PutPayload, PutResult};
use serde::{Deserialize, Serialize};

use crate::config::S3Encryption;
use crate::error::Result;
use crate::s3_signing::{S3Target, without_url};
use crate::stores::ClientSettings;
use crate::throttle::Rates;

/// The largest piece of a body sent at once.
const MAX_PIECE: usize = 256 << 10;
/// The smallest piece of a paced body.
const MIN_PIECE: usize = 16 << 10;

/// Pieces of a paced body are a twentieth of a second's worth of the slowest rate (at most
/// [`MAX_PIECE`]), so waiting for the next one never looks like a stalled request.
fn piece_size(rates: &Rates) -> usize {
    rates.slowest_bytes_per_second().map_or(MAX_PIECE, |r| {
        ((r / 20) as usize).clamp(MIN_PIECE, MAX_PIECE)
    })
}

/// Server-side encryption headers: on CreateMultipartUpload, and (SSE-C) on every part too.
#[derive(Default)]
pub(super) struct SseHeaders {
    create: Vec<(&'static str, String)>,
    parts: Vec<(&'static str, String)>,
}

impl std::fmt::Debug for SseHeaders {
    // The SSE-C key is among the values: names only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.create.iter().map(|(k, _)| k))
            .finish()
    }
}

impl SseHeaders {
    pub(super) fn of(e: &S3Encryption) -> Result<SseHeaders> {
        let mut h = SseHeaders::default();
        match e {
            S3Encryption::None => {}
            S3Encryption::SseS3 => h
                .create
                .push(("x-amz-server-side-encryption", "AES256".into())),
            S3Encryption::SseKms { key_id, dual } => {
                let kind = if *dual { "aws:kms:dsse" } else { "aws:kms" };
                h.create.push(("x-amz-server-side-encryption", kind.into()));
                if let Some(id) = key_id {
                    h.create
                        .push(("x-amz-server-side-encryption-aws-kms-key-id", id.clone()));
                }
            }
            S3Encryption::SseC { key_file } => {
                use md5::Digest;
                let b64 = base64::engine::general_purpose::STANDARD;
                let key = S3Encryption::customer_key_base64(key_file)?;
                let raw = b64.decode(&key).unwrap_or_default();
                let digest = b64.encode(md5::Md5::digest(&raw));
                h.parts = vec![
                    (
                        "x-amz-server-side-encryption-customer-algorithm",
                        "AES256".into(),
                    ),
                    ("x-amz-server-side-encryption-customer-key", key),
                    ("x-amz-server-side-encryption-customer-key-md5", digest),
                ];
                h.create.extend(h.parts.iter().cloned());
            }
        }
        Ok(h)
    }
}

/// Signs and sends the multipart requests of one location.
#[derive(Debug)]
pub(super) struct PartClient {
    pub(super) target: S3Target,
    pub(super) http: reqwest::Client,
    pub(super) settings: ClientSettings,
    pub(super) sse: SseHeaders,
}

/// A failed S3 request: what was asked, what the store answered (or how sending failed).
#[derive(Debug, thiserror::Error)]
#[error("{op} {key}: {detail}{}", if *.attempts > 1 { format!(" ({} attempts)", .attempts) } else { String::new() })]
pub struct S3RequestError {
    op: &'static str,
    key: String,
    status: Option<u16>,
    code: Option<String>,
    detail: String,
    attempts: usize,
}

impl S3RequestError {
    /// Into object_store's error kinds, which the offloader classifies (a missing bucket, denied
    /// access).
    pub(super) fn into_store_error(self) -> object_store::Error {
        let path = self.key.clone();
        match self.status {
            Some(404) => object_store::Error::NotFound {
                path,
                source: Box::new(self),
            },
            Some(403) => object_store::Error::PermissionDenied {
                path,
                source: Box::new(self),
            },
            Some(401) => object_store::Error::Unauthenticated {
                path,
                source: Box::new(self),
            },
            _ => object_store::Error::Generic {
                store: "S3",
                source: Box::new(self),
            },
        }
    }

    /// Worth sending again: the request did not arrive or the store failed, was busy or found
    /// the body damaged on its way.
    fn retryable(&self) -> bool {
        match self.status {
            None => true,
            Some(s) if s >= 500 || s == 429 => true,
            Some(400) => matches!(
                self.code.as_deref(),
                Some("BadDigest" | "RequestTimeout" | "IncompleteBody")
            ),
            // S3 can answer a CompleteMultipartUpload 200 with an error in the body.
            Some(200) => matches!(
                self.code.as_deref(),
                Some("InternalError" | "SlowDown" | "ServiceUnavailable")
            ),
            _ => false,
        }
    }
}

/// S3's error body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ErrorXml {
    code: Option<String>,
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InitiateResultXml {
    upload_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CompleteResultXml {
    #[serde(rename = "ETag")]
    e_tag: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename = "CompleteMultipartUpload")]
struct CompleteXml {
    #[serde(rename = "Part")]
    parts: Vec<CompletedPart>,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct CompletedPart {
    #[serde(rename = "PartNumber")]
    number: u16,
    #[serde(rename = "ETag")]
    e_tag: String,
    #[serde(rename = "ChecksumCRC32C")]
    crc32c: String,
}

/// Remembers when a request last made progress; a request that makes none for the request
/// timeout is given up (a paced body may take far longer than the timeout as a whole).
#[derive(Debug, Clone)]
struct Progress(Arc<Mutex<Instant>>);

impl Progress {
    fn new() -> Self {
        Progress(Arc::new(Mutex::new(Instant::now())))
    }
    fn touch(&self) {
        if let Ok(mut t) = self.0.lock() {
            *t = Instant::now();
        }
    }
    fn idle(&self) -> Duration {
        self.0.lock().map(|t| t.elapsed()).unwrap_or_default()
    }
}

/// A part's body: its chunks, in pieces of [`piece_size`], each let through by the rate (if
/// any) before it is sent.
fn body_stream(
    data: PutPayload,
    rates: Rates,
    progress: Progress,
) -> impl Stream<Item = std::result::Result<Bytes, std::io::Error>> + Send + 'static {
    let piece = piece_size(&rates);
    let pieces: Vec<Bytes> = data
        .into_iter()
        .flat_map(|chunk| {
            let mut out = Vec::new();
            let mut rest = chunk;
            while rest.len() > piece {
                out.push(rest.split_to(piece));
            }
            if !rest.is_empty() {
                out.push(rest);
            }
            out
        })
        .collect();
    futures::stream::iter(pieces).then(move |piece| {
        let rates = rates.clone();
        let progress = progress.clone();
        async move {
            rates.take(piece.len() as u64).await;
            progress.touch();
            Ok(piece)
        }
    })
}

/// `e` and its causes ("error sending request: connection refused").
fn error_chain(e: reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// A request's future, given up once it has made no progress for `timeout`.
async fn with_stall_timeout<F>(
    request: F,
    progress: &Progress,
    timeout: Duration,
) -> Option<reqwest::Result<reqwest::Response>>
where
    F: std::future::Future<Output = reqwest::Result<reqwest::Response>>,
{
    let mut request = std::pin::pin!(request);
    let check = (timeout / 4).max(Duration::from_millis(10));
    loop {
        tokio::select! {
            r = &mut request => return Some(r),
            () = tokio::time::sleep(check) => {
                if progress.idle() >= timeout {
                    return None;
                }
            }
        }
    }
}

impl PartClient {
    /// Sends the request `attempt` builds (signed afresh each time) with the configured
    /// retries, backoff and operation timeout; the answer's body on success.
    async fn send<B>(
        &self,
        op: &'static str,
        key: &str,
        attempt: B,
    ) -> std::result::Result<(reqwest::header::HeaderMap, String), S3RequestError>
    where
        B: Fn(&AwsCredential, Progress) -> Result<reqwest::RequestBuilder>,
    {
        let started = Instant::now();
        let mut backoff = self.settings.retry_init_backoff;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let failure = match self.attempt(op, key, &attempt).await {
                Ok(answer) => return Ok(answer),
                Err(mut e) => {
                    e.attempts = attempts;
                    e
                }
            };
            if !failure.retryable()
                || attempts > self.settings.max_retries
                || started.elapsed() >= self.settings.operation_timeout
            {
                return Err(failure);
            }
            tracing::debug!(op, key, error = %failure, "S3 request failed; sending it again");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.settings.retry_max_backoff);
        }
    }

    async fn attempt<B>(
        &self,
        op: &'static str,
        key: &str,
        attempt: &B,
    ) -> std::result::Result<(reqwest::header::HeaderMap, String), S3RequestError>
    where
        B: Fn(&AwsCredential, Progress) -> Result<reqwest::RequestBuilder>,
    {
        let failed = |status: Option<u16>, code: Option<String>, detail: String| S3RequestError {
            op,
            key: key.to_string(),
            status,
            code,
            detail,
            attempts: 1,
        };
        let creds = self
            .target
            .credentials()
            .await
            .map_err(|e| failed(Some(403), None, e.to_string()))?;
        let progress = Progress::new();
        let request = attempt(&creds, progress.clone())
            .map_err(|e| failed(None, None, e.to_string()))?
            .send();
        let timeout = self.settings.request_timeout;
        let response = match with_stall_timeout(request, &progress, timeout).await {
            None => {
                return Err(failed(
                    None,
                    None,
                    format!("no progress for {} ms", timeout.as_millis()),
                ));
            }
            Some(Err(e)) => return Err(failed(None, None, error_chain(without_url(e)))),
            Some(Ok(r)) => r,
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        // An answer's body is small (XML).
        let body = match tokio::time::timeout(timeout, response.text()).await {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => return Err(failed(Some(status), None, error_chain(without_url(e)))),
            Err(_) => {
                return Err(failed(
                    Some(status),
                    None,
                    "reading the answer timed out".into(),
                ));
            }
        };
        let error: Option<ErrorXml> = if (200..300).contains(&status) {
            // CompleteMultipartUpload may fail after its 200 was sent: the body says so.
            body.contains("<Error>")
                .then(|| quick_xml::de::from_str(&body).ok())
                .flatten()
        } else {
            Some(quick_xml::de::from_str(&body).unwrap_or(ErrorXml {
                code: None,
                message: None,
            }))
        };
        match error {
            None => Ok((headers, body)),
            Some(e) => {
                let detail = format!(
                    "HTTP {status}{}{}",
                    e.code
                        .as_deref()
                        .map(|c| format!(" {c}"))
                        .unwrap_or_default(),
                    e.message
                        .as_deref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                );
                Err(failed(Some(status), e.code, detail))
            }
        }
    }

    pub(super) async fn create(
        &self,
        key: &str,
        opts: &PutMultipartOptions,
    ) -> std::result::Result<String, S3RequestError> {
        let mut headers: Vec<(String, String)> =
            vec![("x-amz-checksum-algorithm".to_string(), "CRC32C".to_string())];
        for (attribute, value) in opts.attributes.iter() {
            let name = match attribute {
                Attribute::Metadata(k) => format!("x-amz-meta-{k}"),
                Attribute::ContentType => "content-type".into(),
                Attribute::ContentEncoding => "content-encoding".into(),
                Attribute::ContentDisposition => "content-disposition".into(),
                Attribute::ContentLanguage => "content-language".into(),
                Attribute::CacheControl => "cache-control".into(),
                Attribute::StorageClass => "x-amz-storage-class".into(),
                _ => continue,
            };
            headers.push((name, value.to_string()));
        }
        if !opts.tags.encoded().is_empty() {
            headers.push(("x-amz-tagging".into(), opts.tags.encoded().to_string()));
        }
        headers.extend(
            self.sse
                .create
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone())),
        );
        let (_, body) = self
            .send("creating multipart upload of", key, |creds, _| {
                let signed: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                self.target.signed(
                    &self.http,
                    creds,
                    reqwest::Method::POST,
                    Some(key),
                    &[("uploads", "")],
                    &signed,
                )
            })
            .await?;
        quick_xml::de::from_str::<InitiateResultXml>(&body)
            .map(|r| r.upload_id)
            .map_err(|e| S3RequestError {
                op: "creating multipart upload of",
                key: key.to_string(),
                status: None,
                code: None,
                detail: format!("unreadable answer: {e}"),
                attempts: 1,
            })
    }

    pub(super) async fn put_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u16,
        data: PutPayload,
        rates: &Rates,
    ) -> std::result::Result<CompletedPart, S3RequestError> {
        let mut digest = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi);
        for chunk in data.iter() {
            digest.update(chunk);
        }
        let crc = digest.finalize() as u32;
        let crc32c = base64::engine::general_purpose::STANDARD.encode(crc.to_be_bytes());
        let len = data.content_length();
        let mut headers = vec![("x-amz-checksum-crc32c", crc32c.clone())];
        headers.extend(self.sse.parts.iter().cloned());
        let (answer, _) = self
            .send("uploading part of", key, |creds, progress| {
                let number = number.to_string();
                let len = len.to_string();
                let mut signed: Vec<(&str, &str)> =
                    headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
                signed.push(("content-length", &len));
                let body =
                    reqwest::Body::wrap_stream(body_stream(data.clone(), rates.clone(), progress));
                Ok(self
                    .target
                    .signed(
                        &self.http,
                        creds,
                        reqwest::Method::PUT,
                        Some(key),
                        &[("partNumber", &number), ("uploadId", upload_id)],
                        &signed,
                    )?
                    .body(body))
            })
            .await?;
        let failed = |detail: String| S3RequestError {
            op: "uploading part of",
            key: key.to_string(),
            status: None,
            code: None,
            detail,
            attempts: 1,
        };
        let e_tag = answer
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| failed(format!("part {number}: the answer has no ETag")))?
            .to_string();
        // A store that echoes the checksum must echo ours.
        if let Some(echoed) = answer
            .get("x-amz-checksum-crc32c")
            .and_then(|v| v.to_str().ok())
            && echoed != crc32c
        {
            return Err(failed(format!(
                "part {number}: the store computed CRC32C {echoed}, the part has {crc32c}"
            )));
        }
        Ok(CompletedPart {
            number,
            e_tag,
            crc32c,
        })
    }

    pub(super) async fn complete(
        &self,
        key: &str,
        upload_id: &str,
        parts: Vec<CompletedPart>,
    ) -> std::result::Result<PutResult, S3RequestError> {
        let xml = quick_xml::se::to_string(&CompleteXml { parts }).map_err(|e| S3RequestError {
            op: "completing multipart upload of",
            key: key.to_string(),
            status: None,
            code: None,
            detail: e.to_string(),
            attempts: 1,
        })?;
        let (_, body) = self
            .send("completing multipart upload of", key, |creds, _| {
                let signed: Vec<(&str, &str)> = self
                    .sse
                    .parts
                    .iter()
                    .map(|(k, v)| (*k, v.as_str()))
                    .collect();
                Ok(self
                    .target
                    .signed(
                        &self.http,
                        creds,
                        reqwest::Method::POST,
                        Some(key),
                        &[("uploadId", upload_id)],
                        &signed,
                    )?
                    .body(xml.clone()))
            })
            .await?;
        let e_tag = quick_xml::de::from_str::<CompleteResultXml>(&body)
            .ok()
            .and_then(|r| r.e_tag);
        Ok(PutResult {
            e_tag,
            version: None,
            extensions: Default::default(),
        })
    }

    pub(super) async fn abort(
        &self,
        key: &str,
        upload_id: &str,
    ) -> std::result::Result<(), S3RequestError> {
        match self
            .send("aborting multipart upload of", key, |creds, _| {
                self.target.signed(
                    &self.http,
                    creds,
                    reqwest::Method::DELETE,
                    Some(key),
                    &[("uploadId", upload_id)],
                    &[],
                )
            })
            .await
        {
            Ok(_) => Ok(()),
            // Already gone.
            Err(e) if e.status == Some(404) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

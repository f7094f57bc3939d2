//! S3 multipart uploads whose every part carries a CRC32C (`x-amz-checksum-crc32c`,
//! `s3ManagedLedgerOffloadPayloadChecksum=crc32c`, the default): the store recomputes it and
//! refuses a part whose bytes changed on the way (S3 answers 400 `BadDigest`), and the part is
//! sent again. The upload is created with the CRC32C algorithm and completed with every part's
//! checksum, so the store also keeps a checksum of the whole object. object_store 0.14 offers
//! SHA-256 and CRC64NVME only, so these four requests (create, part, complete, abort) are signed
//! for the location ([`crate::s3_signing`]) and sent with reqwest ([`requests`]); every other
//! request of the location goes to its object_store client.
//!
//! Bodies go as `UNSIGNED-PAYLOAD` (query-signed requests): the CRC32C, computed with the CPU's
//! CRC instruction, replaces the SHA-256 pass over every uploaded byte that a signed payload
//! costs. It catches corruption, not tampering: over plain HTTP a man in the middle could
//! rewrite a body and its checksum (TLS protects both).
//!
//! With an upload rate set, a part's body is sent at that rate, a piece at a time, rather than
//! held until the rate allows its whole size and then sent in one burst: other work on the
//! machine sees a steady stream, not 64 MiB at line rate every second or so. While a rate is set
//! the parts are sent one after another, those of one topic oldest ledger first
//! ([`crate::topic_order`]; the rate is the bottleneck then).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, UploadPart,
};

use crate::config::Credentials;
use crate::error::Result;
use crate::s3_signing::S3Target;
use crate::stores::ClientSettings;
use crate::throttle::Rates;
use crate::topic_order::PartSending;

mod requests;

use requests::{CompletedPart, PartClient, S3RequestError, SseHeaders};

/// The S3 client of a location with CRC32C-checked multipart uploads.
#[derive(Debug)]
pub(crate) struct ChecksummedS3 {
    inner: Arc<dyn ObjectStore>,
    client: Arc<PartClient>,
}

impl ChecksummedS3 {
    /// `inner` (the location's object_store client) with its multipart uploads made here.
    pub(crate) fn wrap(
        inner: Arc<dyn ObjectStore>,
        target: S3Target,
        credentials: &Credentials,
        settings: &ClientSettings,
    ) -> Result<ChecksummedS3> {
        let http = reqwest::Client::builder()
            .connect_timeout(settings.request_timeout.min(Duration::from_secs(5)))
            .build()
            .map_err(|e| crate::OffloadError::Config(format!("HTTP client: {e}")))?;
        Ok(ChecksummedS3 {
            inner,
            client: Arc::new(PartClient {
                target,
                http,
                settings: settings.clone(),
                sse: SseHeaders::of(&credentials.s3_encryption)?,
            }),
        })
    }
}

impl std::fmt::Display for ChecksummedS3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (CRC32C parts)", self.inner)
    }
}

/// One multipart upload in progress.
#[derive(Debug)]
struct ChecksummedUpload {
    client: Arc<PartClient>,
    key: Arc<str>,
    upload_id: Arc<str>,
    next_part: u16,
    /// What this upload's parts are sent at.
    rates: Rates,
    /// Uploaded parts by number − 1.
    parts: Arc<Mutex<Vec<Option<CompletedPart>>>>,
    /// While a rate is set, parts are sent one at a time in this line (`topic_order`).
    sending: PartSending,
}

#[async_trait::async_trait]
impl MultipartUpload for ChecksummedUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let number = self.next_part;
        self.next_part = self.next_part.saturating_add(1);
        let client = Arc::clone(&self.client);
        let (key, upload_id) = (Arc::clone(&self.key), Arc::clone(&self.upload_id));
        let parts = Arc::clone(&self.parts);
        let sending = self.sending.clone();
        let rates = self.rates.clone();
        Box::pin(async move {
            if number > 10_000 {
                return Err(object_store::Error::Generic {
                    store: "S3",
                    source: format!("{key}: more than 10000 parts").into(),
                });
            }
            let _turn = match rates.is_empty() {
                false => Some(sending.turn(u32::from(number)).await),
                true => None,
            };
            let part = client
                .put_part(&key, &upload_id, number, data, &rates)
                .await
                .map_err(S3RequestError::into_store_error)?;
            if let Ok(mut parts) = parts.lock() {
                let i = usize::from(number) - 1;
                if parts.len() <= i {
                    parts.resize(i + 1, None);
                }
                parts[i] = Some(part);
            }
            Ok(())
        })
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        let parts: Option<Vec<CompletedPart>> = self
            .parts
            .lock()
            .map_err(|_| object_store::Error::Generic {
                store: "S3",
                source: "part list poisoned".into(),
            })?
            .iter()
            .cloned()
            .collect();
        let Some(parts) = parts.filter(|p| p.len() == usize::from(self.next_part - 1)) else {
            return Err(object_store::Error::Generic {
                store: "S3",
                source: format!("{}: completing before every part was uploaded", self.key).into(),
            });
        };
        self.client
            .complete(&self.key, &self.upload_id, parts)
            .await
            .map_err(S3RequestError::into_store_error)
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.client
            .abort(&self.key, &self.upload_id)
            .await
            .map_err(S3RequestError::into_store_error)
    }
}

#[async_trait::async_trait]
impl ObjectStore for ChecksummedS3 {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let key = location.as_ref();
        let upload_id = self
            .client
            .create(key, &opts)
            .await
            .map_err(S3RequestError::into_store_error)?;
        Ok(Box::new(ChecksummedUpload {
            client: Arc::clone(&self.client),
            key: key.into(),
            upload_id: upload_id.into(),
            next_part: 1,
            rates: opts.extensions.get::<Rates>().cloned().unwrap_or_default(),
            parts: Arc::default(),
            sending: opts
                .extensions
                .get::<PartSending>()
                .cloned()
                .unwrap_or_else(PartSending::alone),
        }))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[std::ops::Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

//! The upload rate for clients that send a part's body whole (GCS, Azure, the filesystem, and
//! S3 with `s3ManagedLedgerOffloadPayloadChecksum` sha256 or crc64nvme): a part waits until the
//! rate lets its whole size pass, then goes. The wait happens in the part's own future (which
//! the offloader runs in its own task), so the next block is read and built meanwhile and the
//! rate is not left unused. The parts of one upload pass in the order they were made, so
//! several waiting parts of one ledger do not pass together and go out as one burst.
//! (S3 uploads with CRC32C parts stream each body at the rate instead: `s3_multipart`.)

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, UploadPart,
};

use crate::throttle::Rates;

/// `inner` with each multipart upload's parts paced by the [`Rates`] in its options'
/// extensions (none: not paced).
#[derive(Debug)]
pub(crate) struct PacedStore {
    inner: Arc<dyn ObjectStore>,
}

impl PacedStore {
    pub(crate) fn new(inner: Arc<dyn ObjectStore>) -> Self {
        PacedStore { inner }
    }
}

impl std::fmt::Display for PacedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (paced uploads)", self.inner)
    }
}

#[derive(Debug)]
struct PacedUpload {
    inner: Box<dyn MultipartUpload>,
    rates: Rates,
    /// Held by a part while it waits for the rate: the parts pass one at a time, in order.
    turn: Arc<tokio::sync::Mutex<()>>,
}

#[async_trait::async_trait]
impl MultipartUpload for PacedUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let bytes = data.content_length() as u64;
        // The part is numbered now (by call order) and sent when polled.
        let part = self.inner.put_part(data);
        let rates = self.rates.clone();
        let turn = Arc::clone(&self.turn);
        Box::pin(async move {
            if !rates.is_empty() {
                let _turn = turn.lock().await;
                rates.take(bytes).await;
            }
            part.await
        })
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        self.inner.complete().await
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.inner.abort().await
    }
}

#[async_trait::async_trait]
impl ObjectStore for PacedStore {
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
        let rates = opts.extensions.get::<Rates>().cloned().unwrap_or_default();
        if rates.is_empty() {
            return self.inner.put_multipart_opts(location, opts).await;
        }
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(PacedUpload {
            inner,
            rates,
            turn: Arc::default(),
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
        ranges: &[Range<u64>],
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

//! The upload rate for clients that send a part's body whole (GCS, Azure, the filesystem, and
//! S3 with `s3ManagedLedgerOffloadPayloadChecksum` sha256 or crc64nvme): a part waits until the
//! rate lets its whole size pass, then goes. The wait happens in the part's own future (which
//! the offloader runs in its own task), so the next block is read and built meanwhile and the
//! rate is not left unused. The parts pass one at a time, those of one topic oldest ledger
//! first (`topic_order`), so several waiting parts do not pass together and go out as one burst.
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
use crate::topic_order::PartSending;

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
    /// Held by a part while it waits for the rate: the parts pass one at a time, in the line
    /// of their topic (`topic_order`).
    sending: PartSending,
    /// The number of the next part (from 1), its place in the line.
    next_part: u32,
}

#[async_trait::async_trait]
impl MultipartUpload for PacedUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let bytes = data.content_length() as u64;
        // The part is numbered now (by call order) and sent when polled.
        let part = self.inner.put_part(data);
        let rates = self.rates.clone();
        let (sending, number) = (self.sending.clone(), self.next_part);
        self.next_part = self.next_part.saturating_add(1);
        Box::pin(async move {
            if !rates.is_empty() {
                let _turn = sending.turn(number).await;
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
        let sending = opts
            .extensions
            .get::<PartSending>()
            .cloned()
            .unwrap_or_else(PartSending::alone);
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(PacedUpload {
            inner,
            rates,
            sending,
            next_part: 1,
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

//! Orphan collection: what a location holds that no ledger list references and no running
//! offload can still be writing, removed.
//!
//! - **Unreferenced offloads**: both objects of an attempt (`<uuid>-ledger-<id>` and its index)
//!   whose UUID and ledger no ledger list names (`referenced`), once the newest of them is older
//!   than the grace period, and only if their `pulsarclustername` metadata names this cluster: a
//!   bucket shared with another cluster (or Pulsar) keeps that cluster's objects. Locations without
//!   user metadata (filesystem) belong to the cluster that writes them.
//! - **Incomplete multipart uploads** (S3): uploads of offload objects initiated longer ago than
//!   the grace period are aborted (an offload that started then has failed or died: the next
//!   attempt uses a new UUID). Their owner cannot be read (the metadata is only on a completed
//!   object), so the grace period must exceed the longest offload of any cluster sharing the
//!   bucket.
//!
//! The referenced set is read before the bucket is listed: an offload that starts or finishes in
//! between writes objects younger than the grace period, which are kept. Deletions are paced at
//! `max_deletes_per_second`.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use object_store::path::Path;
use object_store::{GetOptions, ObjectStore, ObjectStoreExt};
use uuid::Uuid;

use crate::config::Credentials;
use crate::error::{OffloadError, Result};
use crate::inventory::{Attempt, list_attempts};
use crate::keys;
use crate::location::Location;
use crate::s3_uploads;
use crate::stores::ObjectStores;

/// How a collection pass behaves.
#[derive(Debug, Clone)]
pub struct GcSettings {
    /// Nothing younger than this is touched.
    pub grace: Duration,
    /// `pulsarclustername` of the objects this cluster may delete.
    pub cluster_name: String,
    /// Report what would be removed, remove nothing.
    pub dry_run: bool,
    pub max_deletes_per_second: u32,
}

/// What a pass found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GcReport {
    /// Objects deleted (or, in a dry run, that would be).
    pub deleted_objects: Vec<String>,
    /// Multipart uploads aborted (or that would be), as `key (upload id)`.
    pub aborted_uploads: Vec<String>,
    /// Unreferenced attempts kept because they are younger than the grace period.
    pub kept_young: usize,
    /// Unreferenced attempts kept because another cluster (or nobody known) wrote them.
    pub kept_foreign: usize,
    /// Attempts a ledger list references.
    pub referenced: usize,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The `pulsarclustername` of one of the attempt's objects (`None` when it has none).
async fn cluster_of(
    store: &Arc<dyn ObjectStore>,
    location: &Location,
    attempt: &Attempt,
) -> Result<Option<String>> {
    let key = if attempt.index.is_some() {
        attempt.index_key()
    } else {
        attempt.data_key()
    };
    let head = GetOptions {
        head: true,
        ..Default::default()
    };
    match store.get_opts(&Path::from(key.as_str()), head).await {
        Ok(r) => Ok(r.attributes.iter().find_map(|(k, v)| match k {
            object_store::Attribute::Metadata(name)
                if name.eq_ignore_ascii_case("pulsarclustername") =>
            {
                Some(v.as_ref().to_string())
            }
            _ => None,
        })),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(OffloadError::on_read("reading", location, &key, e)),
    }
}

/// Paces deletions.
struct Pace {
    interval: Duration,
    next: tokio::time::Instant,
}

impl Pace {
    fn new(per_second: u32) -> Self {
        Pace {
            interval: Duration::from_secs(1) / per_second.max(1),
            next: tokio::time::Instant::now(),
        }
    }

    async fn wait(&mut self) {
        tokio::time::sleep_until(self.next).await;
        self.next = tokio::time::Instant::now() + self.interval;
    }
}

/// One pass over `location` (see the module documentation).
pub async fn collect_orphans(
    stores: &ObjectStores,
    location: &Location,
    credentials: &Credentials,
    referenced: &HashSet<(Uuid, i64)>,
    settings: &GcSettings,
) -> Result<GcReport> {
    let store = stores.get(location, credentials).await?;
    let mut report = GcReport::default();
    let grace_ms = settings.grace.as_millis() as u64;
    let cutoff = now_ms().saturating_sub(grace_ms);
    let mut pace = Pace::new(settings.max_deletes_per_second);
    for attempt in list_attempts(&store, location).await? {
        if referenced.contains(&(attempt.uuid, attempt.ledger_id)) {
            report.referenced += 1;
            continue;
        }
        let newest = [attempt.data, attempt.index]
            .iter()
            .flatten()
            .map(|o| o.last_modified_ms)
            .max()
            .unwrap_or(u64::MAX);
        if newest > cutoff {
            report.kept_young += 1;
            continue;
        }
        if location.has_object_metadata()
            && cluster_of(&store, location, &attempt).await?.as_deref()
                != Some(settings.cluster_name.as_str())
        {
            report.kept_foreign += 1;
            continue;
        }
        // Index first: without it no reader takes the data object for an offloaded ledger.
        let objects = [
            (attempt.index.is_some(), attempt.index_key()),
            (attempt.data.is_some(), attempt.data_key()),
        ];
        for (present, key) in objects {
            if !present {
                continue;
            }
            if !settings.dry_run {
                pace.wait().await;
                match store.delete(&Path::from(key.as_str())).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(OffloadError::on_write("deleting", location, &key, e)),
                }
                stores
                    .counters()
                    .orphans_deleted
                    .fetch_add(1, Ordering::Relaxed);
                tracing::info!(%location, key, "deleted unreferenced offloaded object");
            }
            report.deleted_objects.push(key);
        }
    }
    for upload in s3_uploads::list(location, credentials).await? {
        if keys::parse_key(&upload.key).is_none() || upload.initiated_ms > cutoff {
            continue;
        }
        if !settings.dry_run {
            pace.wait().await;
            s3_uploads::abort(location, credentials, &upload).await?;
            stores
                .counters()
                .uploads_aborted
                .fetch_add(1, Ordering::Relaxed);
            tracing::info!(%location, key = upload.key, "aborted incomplete multipart upload");
        }
        report
            .aborted_uploads
            .push(format!("{} ({})", upload.key, upload.upload_id));
    }
    Ok(report)
}

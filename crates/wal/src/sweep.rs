//! Garbage collection by reconciliation: WAL objects that no extent names any more (their
//! ledgers were rewritten or deleted, or their commit never happened) are deleted once older
//! than the grace period. No reference counts: the flush records and extent keys are the only
//! truth. Each sweep also indexes the flush records it finds (a writer that stopped between a
//! commit and its indexing leaves one).
//!
//! Why it never deletes an object a commit is about to name: candidates are listed first, and
//! only objects older than the grace period; a commit is attempted only within half the grace
//! period of its upload's start. So a record naming a candidate was committed before the
//! records are listed, and is seen there or (indexed meanwhile) in the extent keys listed
//! after them.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;

use crate::error::Result;
use crate::format::Extent;
use crate::writer::Wal;
use crate::{index, keys};

/// What one sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    /// Objects older than the grace period, and how many of them were deleted.
    pub candidates: usize,
    pub deleted: usize,
}

impl Wal {
    /// Deletes WAL objects older than the grace period that no record or extent names.
    pub async fn sweep(&self) -> Result<SweepReport> {
        self.sweep_older_than(self.inner.config.garbage_grace).await
    }

    /// [`sweep`](Self::sweep) with another age than the grace period: safe only while no
    /// flush of any broker is younger than `2 × grace` (tests, an operator's manual sweep of
    /// a stopped cluster).
    pub async fn sweep_older_than(&self, grace: Duration) -> Result<SweepReport> {
        let now = SystemTime::now();
        let prefix = Path::from(self.inner.config.sweep_prefix.as_str());
        let mut listing = self.inner.store.list(Some(&prefix));
        let mut candidates = Vec::new();
        while let Some(object) = listing.next().await {
            let object = object?;
            let modified = SystemTime::UNIX_EPOCH
                + Duration::from_millis(object.last_modified.timestamp_millis().max(0) as u64);
            if now.duration_since(modified).unwrap_or_default() > grace {
                candidates.push(object.location);
            }
        }
        let mut report = SweepReport {
            candidates: candidates.len(),
            deleted: 0,
        };
        if candidates.is_empty() {
            return Ok(report);
        }
        let meta = self.inner.meta.as_ref();
        // Records a stopped writer left are indexed here; a failure to index changes nothing
        // below, where records count as much as extent keys.
        match index::index_records(meta, |_| true).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(records = n, "indexed WAL flush records left unindexed"),
            Err(e) => tracing::warn!(error = %e, "indexing WAL flush records failed"),
        }
        // Records before extent keys (see `index`): an extent moving between them is seen.
        let mut named: HashSet<String> = index::pending_records(meta)
            .await?
            .into_iter()
            .map(|(_, _, r)| r.object)
            .collect();
        for (key, v) in meta.scan(keys::EXTENT_PREFIX).await? {
            named.insert(Extent::decode(&key, &v.value)?.object);
        }
        for path in candidates {
            if !named.contains(path.as_ref()) {
                match self.inner.store.delete(&path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => report.deleted += 1,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        if report.deleted > 0 {
            tracing::info!(
                deleted = report.deleted,
                "swept WAL objects no extent names"
            );
        }
        Ok(report)
    }

    /// Sweeps every half grace period.
    pub(crate) async fn sweeper(self) {
        let every = self.inner.config.garbage_grace / 2;
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = self.sweep().await {
                tracing::warn!(error = %e, "sweeping WAL objects failed (retried later)");
            }
        }
    }
}

//! Garbage collection by reconciliation: WAL objects that no extent names any more (their
//! ledgers were rewritten or deleted, or their commit never happened) are deleted once older
//! than the grace period. No reference counts: the extent keys are the only truth.
//!
//! Why it never deletes an object a commit is about to name: candidates are listed first, and
//! only objects older than the grace period; a commit is attempted only within half the grace
//! period of its upload's start. So an extent naming a candidate was committed before the
//! extents are listed, and is seen.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;

use crate::error::Result;
use crate::format::Extent;
use crate::keys;
use crate::writer::Wal;

/// What one sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    /// Objects older than the grace period, and how many of them were deleted.
    pub candidates: usize,
    pub deleted: usize,
}

impl Wal {
    /// Deletes WAL objects older than the grace period that no extent names.
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
        let mut named = HashSet::new();
        for (key, v) in self.inner.meta.scan(keys::EXTENT_PREFIX).await? {
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

//! Committing flushes: each one flush record (one metadata key, whatever the number of
//! ledgers in it) in a transaction carrying every bundle's fence check, in flush order; then
//! settling its appends; then, off the acknowledgement path, indexing the record into
//! per-ledger extent keys (`index`). Also how a flush's parts are packed into transactions.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use meta::{Expected, Fence, MetaError, Op};
use tokio::sync::mpsc;

use crate::error::WalError;
use crate::format::{Extent, FlushRecord, RecordPart};
use crate::writer::{Batch, Flush, Part, Wal};
use crate::{index, keys};

impl Wal {
    /// Commits flushes in the order they were taken, and hands their records to the indexer.
    pub(crate) async fn committer(
        self,
        mut rx: mpsc::Receiver<Flush>,
        index: mpsc::UnboundedSender<(String, u64, FlushRecord)>,
    ) {
        while let Some(flush) = rx.recv().await {
            let Flush {
                object,
                started,
                parts,
                upload,
            } = flush;
            let uploaded = match upload.await {
                Ok(r) => r,
                Err(e) => Err(WalError::Store(format!("upload task: {e}"))),
            };
            if let Err(e) = uploaded {
                tracing::warn!(%object, error = %e, "WAL object upload failed");
                self.fail_all(parts, &format!("uploading WAL object {object}: {e}"));
                continue;
            }
            if started.elapsed() > self.inner.config.garbage_grace / 2 {
                self.fail_all(
                    parts,
                    &format!(
                        "WAL object {object} was uploaded too long ago to be committed safely"
                    ),
                );
                continue;
            }
            let commits = transactions_of(parts);
            let wal = &self;
            let object = &object;
            let uploaded_at = started.elapsed();
            let transactions = commits.len();
            let records = futures::future::join_all(
                commits
                    .into_iter()
                    .map(|parts| async move { wal.commit(object, parts).await }),
            )
            .await;
            for record in records.into_iter().flatten() {
                // Cannot fail: the indexer ends only once this task has dropped its sender.
                let _ = index.send(record);
            }
            tracing::debug!(
                %object,
                uploaded_us = uploaded_at.as_micros() as u64,
                committed_us = started.elapsed().as_micros() as u64,
                transactions,
                queued = rx.len(),
                "WAL flush committed"
            );
        }
    }

    /// Commits the extents of `parts` as one flush record, in one transaction that carries the
    /// fencing check of every bundle among them, then settles them; returns the record and its
    /// key and version, for the indexer. A failed check fails only the ledgers behind it: etcd
    /// applies nothing of a transaction whose compare fails and names (through
    /// [`MetaError::Conflict`]) the key that failed, so the others are retried without it.
    async fn commit(&self, object: &str, parts: Vec<Part>) -> Option<(String, u64, FlushRecord)> {
        let mut ready = Vec::with_capacity(parts.len());
        for (batch, extent) in parts {
            match batch.state.refuses_extent(extent.first) {
                Some(e) => self.fail(batch, &e),
                None => ready.push((batch, extent)),
            }
        }
        // Which parts a failed commit names: those behind the bundle whose check failed.
        let fenced_by =
            |(b, _): &Part, e: &MetaError| b.fence.as_ref().is_some_and(|f| f.failed(e));
        while !ready.is_empty() {
            let mut fences: Vec<&Fence> =
                ready.iter().filter_map(|(b, _)| b.fence.as_ref()).collect();
            fences.sort_by(|a, b| a.key.cmp(&b.key));
            fences.dedup_by(|a, b| a.key == b.key);
            let mut ops: Vec<Op> = fences.iter().map(|f| f.check()).collect();
            let record = FlushRecord {
                object: object.to_string(),
                parts: ready.iter().map(record_part).collect(),
            };
            let key = keys::flush_record_key();
            let value = record.encode();
            ops.push(Op::put(key.clone(), value.clone(), Expected::Absent));
            let outcome = self.inner.meta.commit(ops).await;
            self.inner.counters.commits.fetch_add(1, Ordering::Relaxed);
            match outcome {
                Ok(version) => {
                    for (batch, extent) in ready {
                        self.settle(batch, extent);
                    }
                    return Some((key, version, record));
                }
                Err(e) if ready.iter().any(|p| fenced_by(p, &e)) => {
                    let (fenced, rest): (Vec<Part>, Vec<Part>) =
                        ready.into_iter().partition(|p| fenced_by(p, &e));
                    for (batch, _) in fenced {
                        let id = batch.state.ledger_id;
                        self.fail(batch, &WalError::Fenced { ledger_id: id });
                    }
                    ready = rest;
                }
                Err(e @ MetaError::Backend { .. }) => {
                    // The answer was lost: the transaction may have been applied. Read back.
                    tracing::warn!(error = %e, "WAL commit outcome unknown: reading the record back");
                    return self.resolve_unknown(ready, key, &value, record, &e).await;
                }
                Err(e) => {
                    for (batch, _) in ready {
                        self.fail_ledger(batch, format!("committing its WAL extent: {e}"));
                    }
                    return None;
                }
            }
        }
        None
    }

    /// Settles or fails `ready` after a commit of `record` at `key` whose answer was lost:
    /// committed if the record is there, or if its extents are (somebody indexed it already:
    /// a sweep, a deletion); failed if neither, or if they cannot be read.
    async fn resolve_unknown(
        &self,
        ready: Vec<Part>,
        key: String,
        value: &[u8],
        record: FlushRecord,
        error: &MetaError,
    ) -> Option<(String, u64, FlushRecord)> {
        match self.inner.meta.get(&key).await {
            Ok(Some(v)) if v.value == value => {
                for (batch, extent) in ready {
                    self.settle(batch, extent);
                }
                return Some((key, v.version, record));
            }
            Ok(_) => {}
            Err(read) => {
                for (batch, _) in ready {
                    self.fail_ledger(
                        batch,
                        format!("committing its WAL extent: {error}; reading it back: {read}"),
                    );
                }
                return None;
            }
        }
        for (batch, extent) in ready {
            let key = keys::extent_key(
                &batch.state.managed_ledger,
                batch.state.ledger_id,
                extent.first,
            );
            match self.inner.meta.get(&key).await {
                Ok(Some(v)) if Extent::decode(&key, &v.value).ok() == Some(extent.clone()) => {
                    self.settle(batch, extent)
                }
                Ok(_) => self.fail_ledger(batch, format!("committing its WAL extent: {error}")),
                Err(read) => self.fail_ledger(
                    batch,
                    format!("committing its WAL extent: {error}; reading it back: {read}"),
                ),
            }
        }
        None
    }

    /// Indexes committed flush records into extent keys, one after the other, off the
    /// acknowledgement path. One that fails stays a record (merged by readers) until a sweep
    /// indexes it.
    pub(crate) async fn indexer(self, mut rx: mpsc::UnboundedReceiver<(String, u64, FlushRecord)>) {
        let meta = self.inner.meta.as_ref();
        while let Some(first) = rx.recv().await {
            // The records waiting, indexed together (a flush over many bundles or thousands of
            // ledgers has several, and a slow etcd lets them pile up).
            let mut records = vec![first];
            while let Ok(more) = rx.try_recv() {
                records.push(more);
            }
            let outcomes = futures::future::join_all(records.iter().map(
                |(key, version, record)| async move {
                    (key, index::index_record(meta, key, *version, record).await)
                },
            ))
            .await;
            for (key, outcome) in outcomes {
                match outcome {
                    Ok(_) => {
                        self.inner.counters.indexed.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        tracing::warn!(%key, error = %e, "indexing a WAL flush record failed: a sweep will")
                    }
                }
            }
        }
    }

    fn settle(&self, batch: Batch, extent: Extent) {
        let Batch {
            state,
            entries,
            waiters,
            permit,
            first,
            ..
        } = batch;
        self.inner
            .counters
            .entries
            .fetch_add(extent.entries, Ordering::Relaxed);
        state.committed(extent, &entries, self.inner.config.recent_bytes_per_ledger);
        drop(permit);
        for (i, w) in waiters.into_iter().enumerate() {
            let _ = w.send(Ok(first + i as u64));
        }
    }

    fn fail(&self, batch: Batch, error: &WalError) {
        self.inner
            .counters
            .failed_extents
            .fetch_add(1, Ordering::Relaxed);
        batch.state.failed(batch.entries.len() as u64, error);
        drop(batch.permit);
        for w in batch.waiters {
            let _ = w.send(Err(error.clone()));
        }
    }

    /// Fails `batch` with [`WalError::LedgerFailed`] for `detail`.
    fn fail_ledger(&self, batch: Batch, detail: String) {
        let ledger_id = batch.state.ledger_id;
        self.fail(batch, &WalError::LedgerFailed { ledger_id, detail });
    }

    fn fail_all(&self, parts: Vec<Part>, detail: &str) {
        for (batch, _) in parts {
            self.fail_ledger(batch, detail.to_string());
        }
    }
}

/// A part of a flush record.
fn record_part((batch, extent): &Part) -> RecordPart {
    RecordPart {
        managed_ledger: batch.state.managed_ledger.clone(),
        ledger_id: batch.state.ledger_id,
        offset: extent.offset,
        length: extent.length,
        first: extent.first,
        entries: extent.entries,
        bytes: extent.bytes,
    }
}

/// A flush record's value stays under this many bytes (etcd refuses requests over 1.5 MiB).
const RECORD_MAX_BYTES: usize = 512 * 1024;

/// What a part adds to a record's value, at most (JSON: the name and seven numbers with their
/// field names).
fn record_bytes(part: &Part) -> usize {
    part.0.state.managed_ledger.len() + 200
}

/// Packs a flush's parts into commit transactions, each one flush record and the fencing check
/// of every bundle it touches, once: one for a flush unless its record would pass
/// [`RECORD_MAX_BYTES`] or its checks etcd's operation limit. One transaction per flush (rather
/// than one per bundle) keeps the commit to one etcd round trip and one raft entry. Two fences
/// on one key (a bundle that changed owner between two appends of one flush) go to different
/// transactions: a transaction names each key once.
fn transactions_of(mut parts: Vec<Part>) -> Vec<Vec<Part>> {
    let fence_of = |p: &Part| p.0.fence.as_ref().map(|f| (f.key.clone(), f.version));
    parts.sort_by_cached_key(fence_of);
    let mut transactions = Vec::new();
    let mut current: Vec<Part> = Vec::new();
    let mut bytes = 0usize;
    let mut checks: HashMap<String, u64> = HashMap::new();
    for part in parts {
        let fence = fence_of(&part);
        let clashes = |checks: &HashMap<String, u64>| {
            fence
                .as_ref()
                .is_some_and(|(k, v)| checks.get(k).is_some_and(|held| held != v))
        };
        let new_check = |checks: &HashMap<String, u64>| {
            usize::from(fence.as_ref().is_some_and(|(k, _)| !checks.contains_key(k)))
        };
        if !current.is_empty()
            && (clashes(&checks)
                || checks.len() + new_check(&checks) + 1 > meta::MAX_TXN_OPS
                || bytes + record_bytes(&part) > RECORD_MAX_BYTES)
        {
            transactions.push(std::mem::take(&mut current));
            checks.clear();
            bytes = 0;
        }
        if let Some((k, v)) = fence {
            checks.insert(k, v);
        }
        bytes += record_bytes(&part);
        current.push(part);
    }
    if !current.is_empty() {
        transactions.push(current);
    }
    transactions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::LedgerState;
    use std::sync::Arc;

    fn part(ledger_id: i64, fence: Option<(&str, u64)>) -> Part {
        let batch = Batch {
            state: Arc::new(LedgerState::new("t/ns/persistent/x", ledger_id)),
            fence: fence.map(|(key, version)| Fence {
                key: key.to_string(),
                version,
            }),
            first: 0,
            entries: Vec::new(),
            bytes: 0,
            waiters: Vec::new(),
            permit: None,
        };
        let extent = Extent {
            object: "o".into(),
            offset: 8,
            length: 0,
            first: 0,
            entries: 0,
            bytes: 0,
        };
        (batch, extent)
    }

    /// The fencing checks a transaction of these parts holds: one per fence key.
    fn checks(parts: &[Part]) -> usize {
        let keys: std::collections::HashSet<_> = parts
            .iter()
            .filter_map(|(b, _)| b.fence.as_ref().map(|f| f.key.clone()))
            .collect();
        keys.len()
    }

    #[test]
    fn a_flush_over_a_few_bundles_is_one_transaction() {
        let bundles = ["/b/0", "/b/1", "/b/2", "/b/3"];
        let parts = (0..1000)
            .map(|i| part(i, Some((bundles[i as usize % 4], 7))))
            .collect();
        let txns = transactions_of(parts);
        assert_eq!(txns.len(), 1);
        assert_eq!(checks(&txns[0]), 4);
    }

    #[test]
    fn transactions_stay_within_etcds_limits_and_keep_every_part() {
        // More bundles than one transaction has operations for their checks and the record.
        let bundles: Vec<String> = (0..300).map(|b| format!("/b/{b}")).collect();
        let parts = (0..1000)
            .map(|i| part(i, Some((bundles[i as usize % 300].as_str(), 1))))
            .collect();
        let txns = transactions_of(parts);
        assert!(txns.iter().all(|t| checks(t) < meta::MAX_TXN_OPS));
        assert_eq!(txns.iter().map(Vec::len).sum::<usize>(), 1000);
        assert_eq!(txns.len(), 3);
        // More parts than one record's value holds.
        let parts: Vec<Part> = (0..4000).map(|i| part(i, None)).collect();
        let txns = transactions_of(parts);
        assert!(txns.len() > 1);
        for t in &txns {
            let record = FlushRecord {
                object: "o".into(),
                parts: t.iter().map(record_part).collect(),
            };
            assert!(record.encode().len() <= RECORD_MAX_BYTES);
        }
        assert_eq!(txns.iter().map(Vec::len).sum::<usize>(), 4000);
    }

    #[test]
    fn two_versions_of_one_fence_never_share_a_transaction() {
        let parts = vec![
            part(1, Some(("/b/0", 3))),
            part(2, Some(("/b/0", 4))),
            part(3, Some(("/b/1", 1))),
        ];
        let txns = transactions_of(parts);
        for t in &txns {
            let versions: std::collections::HashSet<_> = t
                .iter()
                .filter_map(|(b, _)| b.fence.as_ref())
                .filter(|f| f.key == "/b/0")
                .map(|f| f.version)
                .collect();
            assert!(versions.len() <= 1, "{versions:?}");
        }
        assert_eq!(txns.iter().map(Vec::len).sum::<usize>(), 3);
    }
}

//! Reading entries back: from memory, else by ranged GETs of their extents; listing a
//! ledger's extents (flush records and extent keys) to recover where it ends; deleting a
//! ledger's extents.

use std::sync::Arc;

use bytes::Bytes;
use meta::{Expected, MAX_TXN_OPS, MetadataStore, Op};
use object_store::ObjectStoreExt;
use object_store::path::Path;

use crate::error::{Result, WalError};
use crate::format::{Extent, decode_extent};
use crate::writer::Wal;
use crate::{index, keys};

/// Fetched extents kept for readers stepping through one.
const FETCHED_EXTENTS: usize = 16;

/// The extents of `all` (in entry order) that hold entries of `first..=last`.
fn overlapping(all: &[Extent], first: u64, last: u64) -> Vec<Extent> {
    let start = all.partition_point(|e| e.last() < first);
    all[start..]
        .iter()
        .take_while(|e| e.first <= last)
        .cloned()
        .collect()
}

impl Wal {
    /// Entries `first..=last` of a ledger (at least one, then up to `max_bytes`), in order.
    pub async fn read(
        &self,
        managed_ledger: &str,
        ledger_id: i64,
        first: u64,
        last: u64,
        max_bytes: usize,
    ) -> Result<Vec<Bytes>> {
        let state = self.open_ledgers().get(&ledger_id).cloned();
        let extents = match state {
            Some(state) => {
                let p = state.progress();
                if let Some(out) = p.recent_entries(first, last, max_bytes) {
                    return Ok(out);
                }
                overlapping(&p.extents, first, last)
            }
            None => overlapping(&self.listed(managed_ledger, ledger_id).await?, first, last),
        };
        let mut out = Vec::new();
        let mut used = 0usize;
        'extents: for extent in extents {
            let bytes = self.extent_bytes(&extent).await?;
            let what = format!("{} (ledger {ledger_id})", extent.object);
            let entries = decode_extent(&what, &bytes, extent.entries)?;
            for (i, data) in entries.into_iter().enumerate() {
                let id = extent.first + i as u64;
                if id < first || id > last {
                    continue;
                }
                if !out.is_empty() && used + data.len() > max_bytes {
                    break 'extents;
                }
                used += data.len();
                out.push(data);
            }
        }
        if out.is_empty() {
            return Err(WalError::NoSuchEntries {
                ledger_id,
                first,
                last,
            });
        }
        Ok(out)
    }

    /// The bytes of one extent (one ranged GET, or the cache of recent ones).
    async fn extent_bytes(&self, extent: &Extent) -> Result<Bytes> {
        let id = (extent.object.clone(), extent.offset);
        let cached = {
            let fetched = self.inner.fetched.lock().unwrap_or_else(|p| p.into_inner());
            fetched
                .iter()
                .find(|(k, _)| *k == id)
                .map(|(_, b)| b.clone())
        };
        if let Some(b) = cached {
            return Ok(b);
        }
        let path = Path::from(extent.object.as_str());
        let bytes = self
            .inner
            .store
            .get_range(&path, extent.offset..extent.offset + extent.length)
            .await?;
        if bytes.len() as u64 != extent.length {
            return Err(WalError::Corrupt {
                what: extent.object.clone(),
                detail: format!(
                    "{} bytes where the extent has {}",
                    bytes.len(),
                    extent.length
                ),
            });
        }
        let mut fetched = self.inner.fetched.lock().unwrap_or_else(|p| p.into_inner());
        if fetched.len() >= FETCHED_EXTENTS {
            fetched.pop_front();
        }
        fetched.push_back((id, bytes.clone()));
        Ok(bytes)
    }

    /// The committed extents of a ledger not written here, listed once (it is sealed: no
    /// writer can extend it any more, the fence saw to that).
    async fn listed(&self, managed_ledger: &str, ledger_id: i64) -> Result<Arc<Vec<Extent>>> {
        self.inner
            .listed
            .get_or_try_init(ledger_id, || async {
                Ok(Arc::new(
                    self.list_extents(managed_ledger, ledger_id).await?,
                ))
            })
            .await
    }

    /// A ledger's extents from the metadata store: its flush records not yet indexed and its
    /// extent keys.
    async fn list_extents(&self, managed_ledger: &str, ledger_id: i64) -> Result<Vec<Extent>> {
        index::ledger_extents(self.inner.meta.as_ref(), managed_ledger, ledger_id).await
    }

    /// Where a ledger ends: its committed entries and bytes. For a ledger written here, once
    /// its accepted entries settled; else from its extents in the metadata store (the ledger of
    /// a broker that stopped: fenced, nobody extends it any more).
    pub async fn recover(&self, managed_ledger: &str, ledger_id: i64) -> Result<(u64, u64)> {
        let written_here = self.open_ledgers().get(&ledger_id).cloned();
        if let Some(state) = written_here {
            return Ok(state.seal().await);
        }
        self.inner.listed.remove(&ledger_id);
        let extents = self.listed(managed_ledger, ledger_id).await?;
        Ok((
            extents.iter().map(|e| e.entries).sum(),
            extents.iter().map(|e| e.bytes).sum(),
        ))
    }

    /// Deletes a ledger's extent keys (its objects go to the sweeper once no extent names
    /// them). Deleting a ledger without extents succeeds.
    pub async fn delete_ledger(&self, managed_ledger: &str, ledger_id: i64) -> Result<()> {
        delete_extents(self.inner.meta.as_ref(), managed_ledger, ledger_id).await?;
        self.open_ledgers().remove(&ledger_id);
        self.inner.listed.remove(&ledger_id);
        Ok(())
    }
}

/// Deletes a ledger's extent keys (also where no WAL runs: deleting a topic whose ledgers were
/// written elsewhere). Flush records naming the ledger are indexed first: indexed later, they
/// would put its keys back. (The ledger is sealed by now, so no record naming it is committed
/// after this looked; a stopped writer's record cannot be indexed after this either, since
/// indexing checks that the record still exists.)
pub async fn delete_extents(
    meta: &dyn MetadataStore,
    managed_ledger: &str,
    ledger_id: i64,
) -> Result<()> {
    index::index_records(meta, |r| r.extent_of(managed_ledger, ledger_id).is_some()).await?;
    let keys = meta
        .list(&keys::ledger_prefix(managed_ledger, ledger_id))
        .await?;
    for chunk in keys.chunks(MAX_TXN_OPS) {
        let ops = chunk
            .iter()
            .map(|k| Op::delete(k.clone(), Expected::Any))
            .collect();
        meta.commit(ops).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extent(first: u64, entries: u64) -> Extent {
        Extent {
            object: "o".into(),
            offset: 0,
            length: entries * 8,
            first,
            entries,
            bytes: 0,
        }
    }

    #[test]
    fn overlapping_extents() {
        let all = vec![extent(0, 3), extent(3, 2), extent(5, 10)];
        let firsts = |v: Vec<Extent>| v.iter().map(|e| e.first).collect::<Vec<_>>();
        assert_eq!(firsts(overlapping(&all, 0, 0)), vec![0]);
        assert_eq!(firsts(overlapping(&all, 2, 3)), vec![0, 3]);
        assert_eq!(firsts(overlapping(&all, 4, 100)), vec![3, 5]);
        assert!(overlapping(&all, 15, 20).is_empty());
    }
}

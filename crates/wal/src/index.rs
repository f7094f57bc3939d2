//! Flush records and their indexing into per-ledger extent keys.
//!
//! A flush commits one [`FlushRecord`] (one key, whatever the number of ledgers it carries)
//! and is acknowledged; its writer then *indexes* it: puts each part at its ledger's extent
//! key and deletes the record. Indexing is idempotent and anybody may do it (the writer right
//! after the commit, a sweeper for a writer that stopped, a deletion for the ledger it
//! deletes): every transaction of it checks that the record is still there at the version it
//! was read at, so once one indexer deleted it, the others' transactions fail and change
//! nothing — in particular they cannot put back the keys of a ledger deleted since.
//!
//! Who needs a ledger's complete extents reads the records *before* the extent keys and
//! merges: an extent moved from a record to its key in between is seen in the keys (the key
//! is put in or before the transaction that deletes the record), so none is ever missed.

use std::collections::BTreeMap;

use meta::{Expected, MAX_TXN_OPS, MetaError, MetadataStore, Op};

use crate::error::Result;
use crate::format::{Extent, FlushRecord};
use crate::keys;

/// Every flush record not yet indexed, with its version, in key order. A record that does not
/// decode is skipped with a warning (it is never served, and never indexed).
pub(crate) async fn pending_records(
    meta: &dyn MetadataStore,
) -> Result<Vec<(String, u64, FlushRecord)>> {
    let mut out = Vec::new();
    for (key, v) in meta.scan(keys::FLUSH_RECORD_PREFIX).await? {
        match FlushRecord::decode(&key, &v.value) {
            Ok(record) => out.push((key, v.version, record)),
            Err(e) => {
                tracing::warn!(%key, error = %e, "a WAL flush record does not decode: skipped")
            }
        }
    }
    Ok(out)
}

/// Indexes one record read at `version`: its extents go to their keys and the record is
/// deleted, in as many transactions as etcd's operation limit needs, each checking the record;
/// the last one deletes it at that version, once the others (sent at once) have succeeded.
/// Returns whether this call finished the job (false: somebody else indexed it first).
pub async fn index_record(
    meta: &dyn MetadataStore,
    key: &str,
    version: u64,
    record: &FlushRecord,
) -> Result<bool> {
    let puts = |parts: &[crate::format::RecordPart]| -> Vec<Op> {
        parts
            .iter()
            .map(|p| {
                let extent_key = keys::extent_key(&p.managed_ledger, p.ledger_id, p.first);
                Op::put(extent_key, record.extent(p).encode(), Expected::Any)
            })
            .collect()
    };
    let mut chunks: Vec<_> = record.parts.chunks(MAX_TXN_OPS - 1).collect();
    let last = chunks.pop().unwrap_or_default();
    let checked = |mut ops: Vec<Op>, op: Op| async move {
        ops.push(op);
        match meta.commit(ops).await {
            Ok(_) => Ok(true),
            Err(MetaError::Conflict { key: k, .. }) if k == key => Ok(false),
            Err(e) => Err(crate::WalError::from(e)),
        }
    };
    let firsts = futures::future::join_all(
        chunks
            .into_iter()
            .map(|c| checked(puts(c), Op::check(key, Expected::Version(version)))),
    )
    .await;
    for outcome in firsts {
        if !outcome? {
            return Ok(false);
        }
    }
    checked(puts(last), Op::delete(key, Expected::Version(version))).await
}

/// Indexes every pending record for which `wanted` holds; returns how many this call indexed.
pub async fn index_records(
    meta: &dyn MetadataStore,
    wanted: impl Fn(&FlushRecord) -> bool,
) -> Result<usize> {
    let mut indexed = 0;
    for (key, version, record) in pending_records(meta).await? {
        if wanted(&record) && index_record(meta, &key, version, &record).await? {
            indexed += 1;
        }
    }
    Ok(indexed)
}

/// Every committed extent of a ledger, from the records not yet indexed and then from its
/// extent keys (in that order: see the module's comment), in entry order up to the first gap
/// (there is none unless keys were removed by hand: commits keep them contiguous).
pub(crate) async fn ledger_extents(
    meta: &dyn MetadataStore,
    managed_ledger: &str,
    ledger_id: i64,
) -> Result<Vec<Extent>> {
    let mut by_first: BTreeMap<u64, Extent> = BTreeMap::new();
    for (_, _, record) in pending_records(meta).await? {
        if let Some(extent) = record.extent_of(managed_ledger, ledger_id) {
            by_first.insert(extent.first, extent);
        }
    }
    let prefix = keys::ledger_prefix(managed_ledger, ledger_id);
    for (key, v) in meta.scan(&prefix).await? {
        let Some(first) = keys::first_of_key(&prefix, &key) else {
            continue;
        };
        let extent = Extent::decode(&key, &v.value)?;
        if extent.first != first {
            tracing::warn!(
                managed_ledger,
                ledger_id,
                key,
                "a WAL extent key names another first entry than its value: skipped"
            );
            continue;
        }
        by_first.insert(first, extent);
    }
    let mut out: Vec<Extent> = Vec::with_capacity(by_first.len());
    for (first, extent) in by_first {
        let expected = out.last().map(|e| e.first + e.entries).unwrap_or(0);
        if first != expected {
            tracing::warn!(
                managed_ledger,
                ledger_id,
                first,
                expected,
                "WAL extents of a ledger have a gap: the ledger ends before it"
            );
            break;
        }
        out.push(extent);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::RecordPart;
    use meta::RedbStore;

    fn record(parts: usize) -> FlushRecord {
        FlushRecord {
            object: "wal/c/b/o".into(),
            parts: (0..parts)
                .map(|i| RecordPart {
                    managed_ledger: format!("t/ns/persistent/x{}", i % 7),
                    ledger_id: i as i64,
                    offset: 8,
                    length: 16,
                    first: 3,
                    entries: 1,
                    bytes: 8,
                })
                .collect(),
        }
    }

    #[tokio::test]
    async fn a_record_over_several_transactions_is_indexed_once_and_a_late_indexer_writes_nothing()
    {
        let dir = tempfile::tempdir().unwrap();
        let meta = RedbStore::open(&dir.path().join("m.redb")).unwrap();
        let r = record(300); // three transactions of puts
        let key = keys::flush_record_key();
        let version = meta.put(&key, r.encode(), Expected::Absent).await.unwrap();
        assert!(index_record(&meta, &key, version, &r).await.unwrap());
        let extents = meta.scan(keys::EXTENT_PREFIX).await.unwrap();
        assert_eq!(extents.len(), 300);
        for (k, v) in &extents {
            assert_eq!(Extent::decode(k, &v.value).unwrap().object, "wal/c/b/o");
        }
        assert!(meta.get(&key).await.unwrap().is_none());
        // The ledgers are deleted; an indexer that read the record before it went comes late.
        let ops = extents
            .iter()
            .map(|(k, _)| Op::delete(k.clone(), Expected::Any))
            .collect::<Vec<_>>();
        for chunk in ops.chunks(MAX_TXN_OPS) {
            meta.commit(chunk.to_vec()).await.unwrap();
        }
        assert!(!index_record(&meta, &key, version, &r).await.unwrap());
        assert!(meta.list(keys::EXTENT_PREFIX).await.unwrap().is_empty());
        // `index_records` finds nothing left to do.
        assert_eq!(index_records(&meta, |_| true).await.unwrap(), 0);
    }
}

//! Offload round trips through the filesystem driver (real files, same format as the object
//! stores), plus the error cases that need no server.

use crate::common;

use std::collections::BTreeMap;

use common::{VecSource, assert_reads_back};
use offload::format::block::{BLOCK_MAGIC, decode_block_header};
use offload::format::index::decode_index;
use offload::{
    BlobStoreOffloader, LedgerOffloader, Location, OffloadConfig, OffloadError, TierReader,
};
use uuid::Uuid;

async fn fs_offloader(dir: &std::path::Path, block: u64) -> BlobStoreOffloader {
    let mut c = OffloadConfig::new(Location::filesystem(dir));
    c.max_block_size_bytes = block;
    BlobStoreOffloader::new(c).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_entry_and_zero_byte_entries() {
    let dir = tempfile::tempdir().unwrap();
    let o = fs_offloader(dir.path(), 5 << 20).await;
    for sizes in [vec![1usize], vec![0], vec![0, 0, 5, 0, 3]] {
        let src = VecSource::with_sizes(7, sizes);
        let uuid = Uuid::new_v4();
        let r = o.offload(&src, uuid, &BTreeMap::new()).await.unwrap();
        assert_eq!(r.blocks, 1);
        let h = o.read(7, uuid, o.location()).await.unwrap();
        assert_reads_back(&h, &src, 2).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_entries_over_many_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let o = fs_offloader(dir.path(), 5 << 20).await;
    // ~25 MiB: six 5 MiB blocks; sizes vary so records straddle no block.
    let src = VecSource::with_sizes(42, (0..100_000).map(|i| (i * 37) % 500));
    let uuid = Uuid::new_v4();
    let r = o.offload(&src, uuid, &BTreeMap::new()).await.unwrap();
    assert!(r.blocks >= 5, "{r:?}");
    let data = std::fs::read(dir.path().join(&r.data_key)).unwrap();
    assert_eq!(data.len() as u64, r.data_object_len);
    let index = decode_index(&std::fs::read(dir.path().join(&r.index_key)).unwrap()).unwrap();
    assert_eq!(index.entries.len(), r.blocks);
    // Every block starts with Pulsar's header at the offset the index says; all but the last are
    // exactly the max block size.
    for (i, e) in index.entries.iter().enumerate() {
        let h = decode_block_header(&data[e.block_offset as usize..]).unwrap();
        assert_eq!(h.magic, BLOCK_MAGIC);
        assert_eq!(h.first_entry_id as i64, e.first_entry_id);
        assert_eq!(e.part_id, i as i32 + 1);
        if i + 1 < index.entries.len() {
            assert_eq!(h.block_len, 5 << 20);
        }
    }
    let h = o.read(42, uuid, o.location()).await.unwrap();
    assert_reads_back(&h, &src, 997).await;
    // Random access, including entries at block boundaries and the last one.
    for e in [
        0,
        1,
        99_999,
        index.entries[2].first_entry_id,
        index.entries[2].first_entry_id - 1,
        51_234,
    ] {
        assert_eq!(h.read(e, e).await.unwrap()[0], src.entries[e as usize]);
    }
    assert!(matches!(
        h.read(5, 100_000).await,
        Err(OffloadError::NoSuchEntry { .. })
    ));
    assert!(matches!(
        h.read(5, 4).await,
        Err(OffloadError::NoSuchEntry { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_mib_entries_need_a_block_larger_than_five_mib() {
    let dir = tempfile::tempdir().unwrap();
    let src = VecSource::with_sizes(3, [5 << 20, 10, 5 << 20]);
    let o = fs_offloader(dir.path(), 5 << 20).await;
    let e = o
        .offload(&src, Uuid::new_v4(), &BTreeMap::new())
        .await
        .unwrap_err();
    assert!(
        matches!(e, OffloadError::InvalidLedger { ledger_id: 3, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("does not fit in a block"), "{e}");

    let o = fs_offloader(dir.path(), 64 << 20).await;
    let uuid = Uuid::new_v4();
    o.offload(&src, uuid, &BTreeMap::new()).await.unwrap();
    let h = o.read(3, uuid, o.location()).await.unwrap();
    assert_reads_back(&h, &src, 1).await;
    assert_reads_back(&h, &src, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_ledger_is_refused_and_delete_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let o = fs_offloader(dir.path(), 5 << 20).await;
    let e = o
        .offload(&VecSource::new(1, vec![]), Uuid::new_v4(), &BTreeMap::new())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("empty or open ledger"), "{e}");

    let src = VecSource::with_sizes(2, [10, 20]);
    let uuid = Uuid::new_v4();
    o.offload(&src, uuid, &BTreeMap::new()).await.unwrap();
    o.delete(2, uuid, o.location()).await.unwrap();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    o.delete(2, uuid, o.location()).await.unwrap();
    let e = o.read(2, uuid, o.location()).await.unwrap_err();
    assert!(matches!(e, OffloadError::NotFound { .. }), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledgers_are_read_from_the_location_they_were_offloaded_to() {
    let old = tempfile::tempdir().unwrap();
    let new = tempfile::tempdir().unwrap();
    let src = VecSource::with_sizes(9, [100; 50]);
    let uuid = Uuid::new_v4();
    let before = fs_offloader(old.path(), 5 << 20).await;
    before.offload(&src, uuid, &BTreeMap::new()).await.unwrap();
    let recorded = before.location().clone();
    // The broker's configuration changes to another directory; the ledger is still read.
    let after = fs_offloader(new.path(), 5 << 20).await;
    let h = after.read(9, uuid, &recorded).await.unwrap();
    assert_reads_back(&h, &src, 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_index_and_data_objects_give_errors() {
    let dir = tempfile::tempdir().unwrap();
    let o = fs_offloader(dir.path(), 5 << 20).await;
    let src = VecSource::with_sizes(4, [100; 20]);
    let uuid = Uuid::new_v4();
    let r = o.offload(&src, uuid, &BTreeMap::new()).await.unwrap();
    // Damage an entry id inside the data object: the read reports corruption.
    let data_path = dir.path().join(&r.data_key);
    let mut data = std::fs::read(&data_path).unwrap();
    let second_record = 128 + 12 + 100;
    data[second_record + 4 + 7] ^= 0xff;
    std::fs::write(&data_path, &data).unwrap();
    let h = o.read(4, uuid, o.location()).await.unwrap();
    assert!(matches!(
        h.read(0, 5).await,
        Err(OffloadError::Corrupt { .. })
    ));
    // Truncate the index: opening fails with a clear error.
    let index_path = dir.path().join(&r.index_key);
    let index = std::fs::read(&index_path).unwrap();
    std::fs::write(&index_path, &index[..index.len() - 3]).unwrap();
    let e = o.read(4, uuid, o.location()).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("is corrupt: truncated index entries"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byte_budgeted_reads_stop_before_the_budget_and_resume_where_they_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let o = fs_offloader(dir.path(), 5 << 20).await;
    // 300 entries of 100..399 bytes over two blocks.
    let src = VecSource::with_sizes(9, (0..300).map(|i| 100 + i));
    let uuid = Uuid::new_v4();
    o.offload(&src, uuid, &BTreeMap::new()).await.unwrap();
    let h = o.read(9, uuid, o.location()).await.unwrap();
    let mut next = 0i64;
    let mut reads = 0;
    while next <= h.last_entry_id() {
        let got = h.read_up_to(next, h.last_entry_id(), 1000).await.unwrap();
        assert!(!got.is_empty());
        let total: usize = got.iter().map(|e| e.len()).sum();
        assert!(
            got.len() == 1 || total <= 1000,
            "{} entries, {total} bytes",
            got.len()
        );
        for (k, e) in got.iter().enumerate() {
            assert_eq!(
                e.as_ref(),
                &src.entries[next as usize + k][..],
                "entry {}",
                next as usize + k
            );
        }
        next += got.len() as i64;
        reads += 1;
    }
    assert!(reads > 30, "{reads} reads of at most 1000 bytes");
    // A budget smaller than one entry still returns that entry.
    assert_eq!(h.read_up_to(5, 10, 1).await.unwrap().len(), 1);
}

//! How reads size their GETs, and the disk cache of the cold tier, through the filesystem driver
//! (every request is counted as it is for the object stores).

use crate::common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use common::{VecSource, assert_reads_back};
use offload::{
    BlobStoreOffloader, ChunkCache, LedgerOffloader, LedgerSource, Location, ObjectStores,
    OffloadConfig, TierReader,
};
use uuid::Uuid;

const MIB: u64 = 1 << 20;

async fn offloader(dir: &std::path::Path, cache: Option<Arc<ChunkCache>>) -> BlobStoreOffloader {
    let mut c = OffloadConfig::new(Location::filesystem(dir));
    c.max_block_size_bytes = 8 * MIB;
    let mut stores = ObjectStores::default();
    if let Some(cache) = cache {
        stores = stores.with_chunk_cache(cache);
    }
    BlobStoreOffloader::with_stores(c, Arc::new(stores))
        .await
        .unwrap()
}

/// ~40 MiB in 4 KiB entries.
fn ledger(id: i64) -> VecSource {
    VecSource::with_sizes(id, (0..10_000).map(|_| 4096))
}

fn gets(o: &BlobStoreOffloader) -> u64 {
    o.counters().gets()
}

fn get_bytes(o: &BlobStoreOffloader) -> u64 {
    o.counters().get_bytes.load(Relaxed)
}

/// GETs and bytes read once no fetch has answered for 50 ms (a file system store answers a
/// range in well under a millisecond).
async fn settled_counts(o: &BlobStoreOffloader) -> (u64, u64) {
    let mut last = (gets(o), get_bytes(o));
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let now = (gets(o), get_bytes(o));
        if now == last {
            break;
        }
        last = now;
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_reads_grow_their_ranges_and_a_seek_starts_small_again() {
    let dir = tempfile::tempdir().unwrap();
    let o = offloader(dir.path(), None).await;
    let src = ledger(1);
    let uuid = Uuid::new_v4();
    o.offload(&src, uuid, &BTreeMap::new()).await.unwrap();

    let h = o.read(1, uuid, o.location()).await.unwrap();
    let before = gets(&o);
    assert_reads_back(&h, &src, 1000).await;
    // 1 + 1 + 4 + 16 + 16 (+ the rest) MiB: a handful of GETs, where 1 MiB ranges take 40.
    let sequential = gets(&o) - before;
    assert!(
        sequential <= 7,
        "{sequential} GETs for a sequential read of 40 MiB"
    );

    // A jump to the first entry of a block (where the index leads straight to it; others are
    // found by scanning the block from there) reads small ranges again: the range holding it and
    // one range of read-ahead, not megabytes.
    let blocks: Vec<i64> = h.index().entries.iter().map(|e| e.first_entry_id).collect();
    assert!(blocks.len() >= 4, "{blocks:?}");
    for entry in [blocks[3], blocks[1], blocks[2]] {
        // The previous read's read-ahead may still be fetching (its bytes are counted when its
        // GET answers, possibly after the seek below aborts it): count only this read's own.
        let (g, b) = settled_counts(&o).await;
        let got = h.read(entry, entry).await.unwrap();
        assert!(got[0] == src.entries[entry as usize]);
        assert!(gets(&o) - g <= 2, "entry {entry}: {} GETs", gets(&o) - g);
        assert!(
            get_bytes(&o) - b <= 2 * MIB,
            "entry {entry}: {} bytes",
            get_bytes(&o) - b
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_reader_reads_from_the_cache_with_no_get_also_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(ChunkCache::open(cache_dir.path(), 1 << 30, MIB).unwrap());
    let o = offloader(dir.path(), Some(Arc::clone(&cache))).await;
    let src = ledger(2);
    let uuid = Uuid::new_v4();
    o.offload(&src, uuid, &BTreeMap::new()).await.unwrap();

    let first = o.read(2, uuid, o.location()).await.unwrap();
    assert_reads_back(&first, &src, 1000).await;
    assert!(gets(&o) > 0);
    // The cache is written in the background: wait until all of the ledger is there.
    let data_len = first.index().data_object_len;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while cache.size_bytes() < data_len {
        assert!(std::time::Instant::now() < deadline, "cache never filled");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    // Another handle (another subscription), then a new cache over the same directory (a
    // restart): neither makes a request.
    let before = gets(&o);
    let second = o.read(2, uuid, o.location()).await.unwrap();
    assert_reads_back(&second, &src, 700).await;
    assert_eq!(gets(&o), before, "a re-read went to the store");
    drop(cache);
    let reopened = Arc::new(ChunkCache::open(cache_dir.path(), 1 << 30, MIB).unwrap());
    let o2 = offloader(dir.path(), Some(Arc::clone(&reopened))).await;
    let third = o2.read(2, uuid, o2.location()).await.unwrap();
    assert_reads_back(&third, &src, 333).await;
    assert_eq!(gets(&o2), 0, "after a restart a re-read went to the store");
    assert!(reopened.counters().hits.load(Relaxed) > 0);

    // A flipped byte in a cached chunk is caught: that chunk is fetched again, and every entry
    // still reads back as written.
    let chunk = cache_dir
        .path()
        .join(offload::keys::data_key(&uuid, 2))
        .join((3 * MIB).to_string());
    let mut bytes = std::fs::read(&chunk).unwrap();
    bytes[5000] ^= 0x01;
    std::fs::write(&chunk, bytes).unwrap();
    let fourth = o2.read(2, uuid, o2.location()).await.unwrap();
    assert_reads_back(&fourth, &src, 1000).await;
    assert_eq!(reopened.counters().corrupt.load(Relaxed), 1);
    assert!(gets(&o2) >= 1, "the damaged chunk was not fetched again");

    // Deleting the offload drops its chunks from the cache.
    o2.delete(2, uuid, o2.location()).await.unwrap();
    assert_eq!(reopened.size_bytes(), 0);
    assert!(
        !cache_dir
            .path()
            .join(offload::keys::data_key(&uuid, 2))
            .exists()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_smaller_than_the_data_keeps_the_newest_chunks_within_its_limit() {
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(ChunkCache::open(cache_dir.path(), 8 * MIB, MIB).unwrap());
    let o = offloader(dir.path(), Some(Arc::clone(&cache))).await;
    let src = ledger(3);
    let uuid = Uuid::new_v4();
    o.offload(&src, uuid, &BTreeMap::new()).await.unwrap();
    for _ in 0..2 {
        let h = o.read(3, uuid, o.location()).await.unwrap();
        assert_reads_back(&h, &src, 1000).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(cache.size_bytes() <= 8 * MIB, "{}", cache.size_bytes());
    assert!(cache.counters().evictions.load(Relaxed) > 0);
    let on_disk: u64 = walk(cache_dir.path());
    assert!(on_disk <= 8 * MIB + 64 * 16, "{on_disk} bytes on disk");
}

fn walk(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                walk(&e.path())
            } else {
                e.metadata().unwrap().len()
            }
        })
        .sum()
}

/// Entries as a Pulsar broker stores them: `[0x0e01][crc32c][body]`.
fn checksummed_ledger(id: i64) -> VecSource {
    let plain = VecSource::with_sizes(id, (0..3_000).map(|i| 2000 + i % 500));
    let entries = plain
        .entries
        .iter()
        .map(|body| {
            let mut e = vec![0x0e, 0x01];
            e.extend_from_slice(&crc32c(body).to_be_bytes());
            e.extend_from_slice(body);
            bytes::Bytes::from(e)
        })
        .collect();
    VecSource::new(id, entries)
}

/// CRC32C (Castagnoli), bitwise: the test checks the crate's use of it, not the crate.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_entry_is_fetched_again_and_a_damaged_stored_object_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(ChunkCache::open(cache_dir.path(), 1 << 30, MIB).unwrap());
    let o = offloader(dir.path(), Some(Arc::clone(&cache))).await;
    let src = checksummed_ledger(4);
    let uuid = Uuid::new_v4();
    let r = o.offload(&src, uuid, &BTreeMap::new()).await.unwrap();
    let h = o.read(4, uuid, o.location()).await.unwrap();
    assert_reads_back(&h, &src, 500).await;
    let data_len = h.index().data_object_len;
    while cache.size_bytes() < data_len {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    // Bytes damaged before they reached the cache (in transit): the chunk's own checksum is
    // right, the entries' are not. The read fetches them again and gets them right.
    let key = offload::keys::data_key(&uuid, 4);
    let chunk = cache.get_blocking(&key, MIB, Some(MIB)).unwrap();
    let mut damaged = chunk.to_vec();
    damaged[1234] ^= 0x40;
    cache.put_blocking(&key, MIB, &damaged);
    let before = gets(&o);
    let h = o.read(4, uuid, o.location()).await.unwrap();
    assert_reads_back(&h, &src, 500).await;
    assert!(gets(&o) > before, "the damaged range was not fetched again");
    // The cache keeps the bytes fetched again (written in the background).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(kept) = cache.get_blocking(&key, MIB, Some(MIB)) {
            assert_eq!(kept, chunk);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the chunk was not cached again"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    // Damaged in the store itself: both reads see it, and the error names the object, the entry
    // and the byte range.
    let path = dir.path().join(&r.data_key);
    let mut object = std::fs::read(&path).unwrap();
    let at = 3 * MIB as usize + 777;
    object[at] ^= 0x02;
    std::fs::write(&path, object).unwrap();
    cache.remove_object_blocking(&key);
    let h = o.read(4, uuid, o.location()).await.unwrap();
    let mut first = 0;
    let e = loop {
        match h.read(first, (first + 99).min(src.last_entry_id())).await {
            Ok(got) => first += got.len() as i64,
            Err(e) => break e,
        }
        assert!(
            first <= src.last_entry_id(),
            "the damaged byte was never noticed"
        );
    };
    match &e {
        offload::OffloadError::EntryChecksum {
            key: k, start, end, ..
        } => {
            assert_eq!(k, &r.data_key);
            assert!((*start..*end).contains(&(at as u64)), "{e}");
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains(&r.data_key), "{e}");
}

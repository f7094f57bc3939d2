//! Reads of sealed ledgers: the read-ahead of ledgers read in order (served from memory, never a
//! damaged window) and the offloader's background reads.

use bytes::Bytes;
use hot_tier::{HotTierError, LedgerStore, StoreOptions};

use crate::common;
use common::{damage_byte_at, ledger_file};

/// Options whose read-ahead windows hold three 1000-byte entries (16-byte record headers).
fn small_read_ahead() -> StoreOptions {
    StoreOptions {
        read_ahead_window_bytes: 3 * 1016,
        read_ahead_cache_bytes: 64 << 10,
        ..StoreOptions::default()
    }
}

fn kib_entry(i: u64) -> Bytes {
    Bytes::from(vec![(i % 251) as u8; 1000])
}

async fn sealed_kib_ledger(store: &LedgerStore, id: u64, entries: u64) {
    let w = store.create_ledger(id).unwrap();
    for i in 0..entries {
        w.append(kib_entry(i)).await.unwrap().await.unwrap();
    }
    w.seal().await.unwrap();
}

/// Damages a byte in the payload of entry `entry` of sealed ledger `id`, written by
/// [`sealed_kib_ledger`]: file header, the records before it, its record header, then mid-payload.
fn damage_kib_entry(dir: &std::path::Path, id: u64, entry: u64) {
    damage_byte_at(
        &ledger_file(dir, id, "sealed"),
        16 + entry * 1016 + 16 + 500,
    );
}

/// Polls the in-memory read of entry `first` for up to a second.
async fn read_ahead_of(store: &LedgerStore, id: u64, first: u64) -> Option<Vec<Bytes>> {
    for _ in 0..200 {
        if let Some(got) = store.read_ahead(id, first, first, usize::MAX) {
            return Some(got);
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_ledger_read_in_order_is_read_ahead_and_served_from_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = LedgerStore::open(dir.path(), small_read_ahead()).unwrap();
    sealed_kib_ledger(&store, 1, 20).await;
    assert!(
        store.read_ahead(1, 1, 1, usize::MAX).is_none(),
        "nothing read yet"
    );
    assert_eq!(store.read(1, 0, 0, usize::MAX).unwrap(), vec![kib_entry(0)]);
    assert_eq!(
        read_ahead_of(&store, 1, 1).await,
        Some(vec![kib_entry(1)]),
        "the entries after the first read are in memory"
    );
    // Reading on in order (a few entries at a time) finds every entry, in memory or not, and
    // the windows after it keep coming.
    let mut next = 2;
    let mut from_memory = 0;
    while next < 20 {
        let got = match read_ahead_of(&store, 1, next).await {
            Some(got) => {
                from_memory += 1;
                got
            }
            None => store.read(1, next, next, usize::MAX).unwrap(),
        };
        assert_eq!(got, vec![kib_entry(next)]);
        next += 1;
    }
    assert_eq!(
        from_memory, 18,
        "every entry after the first came from a read-ahead"
    );
    // A range read answered from memory keeps to its byte budget and to the window.
    let got = store.read_ahead(1, 18, 19, 1).unwrap();
    assert_eq!(got, vec![kib_entry(18)]);
    // Deleting the ledger drops what was read ahead.
    store.delete_ledger(1).unwrap();
    assert!(store.read_ahead(1, 18, 18, usize::MAX).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_out_of_order_start_no_read_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = LedgerStore::open(dir.path(), small_read_ahead()).unwrap();
    sealed_kib_ledger(&store, 1, 20).await;
    assert_eq!(
        store.read(1, 10, 10, usize::MAX).unwrap(),
        vec![kib_entry(10)]
    );
    assert_eq!(store.read(1, 5, 5, usize::MAX).unwrap(), vec![kib_entry(5)]);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(store.read_ahead(1, 11, 11, usize::MAX).is_none());
    assert!(store.read_ahead(1, 6, 6, usize::MAX).is_none());
    // The next read continuing the last one is in order.
    assert_eq!(store.read(1, 6, 6, usize::MAX).unwrap(), vec![kib_entry(6)]);
    assert_eq!(read_ahead_of(&store, 1, 7).await, Some(vec![kib_entry(7)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_entry_is_never_read_ahead_and_its_read_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = LedgerStore::open(dir.path(), small_read_ahead()).unwrap();
    sealed_kib_ledger(&store, 4, 10).await;
    drop(store);
    damage_kib_entry(dir.path(), 4, 2);
    let (store, _) = LedgerStore::open(dir.path(), small_read_ahead()).unwrap();
    assert_eq!(store.read(4, 0, 0, usize::MAX).unwrap(), vec![kib_entry(0)]);
    // The window of entries 1-3 holds the damaged entry 2: it is not kept.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(store.read_ahead(4, 1, 1, usize::MAX).is_none());
    assert_eq!(store.read(4, 1, 1, usize::MAX).unwrap(), vec![kib_entry(1)]);
    assert!(matches!(
        store.read(4, 2, 2, usize::MAX),
        Err(HotTierError::ChecksumMismatch {
            ledger_id: 4,
            entry_id: 2
        })
    ));
    assert_eq!(store.read(4, 3, 9, usize::MAX).unwrap().len(), 7);
}

/// Read-ahead windows map the file (see the hot tier's `mapped` module): a window that reaches
/// past the file's end — a sealed file truncated under the store — fails as a read and is not
/// kept, and does not end the process with `SIGBUS` when its checksums are computed; the entries
/// before it are still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_past_a_truncated_files_end_fails_as_a_read_would() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = LedgerStore::open(dir.path(), small_read_ahead()).unwrap();
    sealed_kib_ledger(&store, 5, 20).await;
    // Out of order: loads the ledger's index, starts no read-ahead.
    assert_eq!(
        store.read(5, 10, 10, usize::MAX).unwrap(),
        vec![kib_entry(10)]
    );
    // Entries 0-3 end at 16 + 4 * 1016 = 4080: the first page keeps them, the window of
    // entries 4-6 starts in it and ends past it.
    common::open_rw(&ledger_file(dir.path(), 5, "sealed"))
        .set_len(4096)
        .unwrap();
    assert_eq!(store.read(5, 0, 0, usize::MAX).unwrap(), vec![kib_entry(0)]);
    assert_eq!(
        read_ahead_of(&store, 5, 1).await,
        Some(vec![kib_entry(1)]),
        "the window within the file is read ahead"
    );
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        store.read_ahead(5, 4, 4, usize::MAX).is_none(),
        "the window past the end is not kept"
    );
    assert!(matches!(
        store.read(5, 4, 4, usize::MAX),
        Err(HotTierError::Io { .. })
    ));
}

/// Entries read ahead (through a mapping) and still held — queued on a stalled consumer's
/// connection, say — keep their bytes when their ledger is deleted: the deleter does not shorten
/// a file while a window of it is mapped, and frees it once the last one is dropped. Without
/// that, the file is shortened after the deleter's 2 s grace and touching the held bytes (as a
/// TLS connection encrypting them would) ends the process with `SIGBUS`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_held_across_their_ledgers_deletion_keep_their_bytes_until_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = LedgerStore::open(dir.path(), small_read_ahead()).unwrap();
    sealed_kib_ledger(&store, 6, 20).await;
    // A handle of our own, to watch the deleted file's length.
    let file = std::fs::File::open(ledger_file(dir.path(), 6, "sealed")).unwrap();
    let len = file.metadata().unwrap().len();
    assert_eq!(store.read(6, 0, 0, usize::MAX).unwrap(), vec![kib_entry(0)]);
    let held = read_ahead_of(&store, 6, 1)
        .await
        .expect("entry 1 read ahead");
    let store_ = store.clone();
    tokio::task::spawn_blocking(move || store_.delete_ledger(6))
        .await
        .unwrap()
        .unwrap();
    assert!(!ledger_file(dir.path(), 6, "sealed").exists());
    // Past the deleter's grace (2 s) and several of its looks at the pinned file.
    tokio::time::sleep(std::time::Duration::from_millis(3000)).await;
    assert_eq!(
        file.metadata().unwrap().len(),
        len,
        "the file was shortened under a mapped window"
    );
    assert_eq!(held, vec![kib_entry(1)], "the held entry's bytes changed");
    drop(held);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while file.metadata().unwrap().len() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the file was not freed once its windows were dropped ({} bytes left)",
            file.metadata().unwrap().len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

mod read_ahead_property {
    use super::*;
    use proptest::prelude::*;

    /// Entry `i` of the property's ledger: 1-3000 bytes, its bytes derived from `i`.
    fn sized_entry(i: u64) -> Bytes {
        let len = 1 + (i * 7919 % 3000) as usize;
        Bytes::from(
            (0..len)
                .map(|b| (i as usize + b) as u8)
                .collect::<Vec<u8>>(),
        )
    }

    const ENTRIES: u64 = 200;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// Whatever the order of reads — continuing, jumping, re-reading — and however the
        /// read-ahead windows are sized, evicted or still being read, every read returns the
        /// entries asked for from the first one on, at least one, within its byte budget.
        #[test]
        fn reads_with_read_ahead_return_exactly_the_stored_entries(
            window in 1usize..20_000,
            cache in 0usize..60_000,
            reads in proptest::collection::vec((any::<bool>(), 0u64..ENTRIES, 1u64..30, 1usize..40_000), 1..60),
        ) {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(async move {
                let dir = tempfile::tempdir().unwrap();
                let options = StoreOptions {
                    read_ahead_window_bytes: window,
                    read_ahead_cache_bytes: cache,
                    ..StoreOptions::default()
                };
                let (store, _) = LedgerStore::open(dir.path(), options).unwrap();
                let w = store.create_ledger(9).unwrap();
                for i in 0..ENTRIES {
                    w.append(sized_entry(i)).await.unwrap().await.unwrap();
                }
                w.seal().await.unwrap();
                let mut next = 0;
                for (in_order, jump, count, max_bytes) in reads {
                    let first = if in_order { next } else { jump };
                    if first >= ENTRIES {
                        next = 0;
                        continue;
                    }
                    let last = (first + count - 1).min(ENTRIES - 1);
                    let got = match store.read_ahead(9, first, last, max_bytes) {
                        Some(got) => got,
                        None => store.read(9, first, last, max_bytes).unwrap(),
                    };
                    assert!(!got.is_empty() && got.len() as u64 <= last - first + 1);
                    let expected: Vec<Bytes> = (first..first + got.len() as u64).map(sized_entry).collect();
                    assert_eq!(got, expected, "entries {first}..");
                    if got.len() > 1 {
                        let bytes: usize = got.iter().map(Bytes::len).sum();
                        assert!(bytes <= max_bytes, "{bytes} bytes over a budget of {max_bytes}");
                    }
                    next = first + got.len() as u64;
                }
            });
        }
    }
}

/// The offloader's reads (`read_in_background`: a descriptor of their own without the kernel's
/// read-ahead, `pread`s of at most 256 KiB) return what `read` does — entries larger than one
/// `pread`, an open ledger's durable entries, a damaged entry's checksum error — and neither use
/// nor start the store's read-ahead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_reads_return_what_reads_do_and_read_nothing_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = LedgerStore::open(dir.path(), small_read_ahead()).unwrap();
    sealed_kib_ledger(&store, 1, 20).await;
    let mut next = 0;
    while next < 20 {
        let got = store.read_in_background(1, next, 19, 2500).unwrap();
        assert!(!got.is_empty() && got.len() <= 2, "{} entries", got.len());
        for (i, e) in got.iter().enumerate() {
            assert_eq!(e, &kib_entry(next + i as u64));
        }
        next += got.len() as u64;
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    for id in [1, 3, 10, 19] {
        assert!(
            store.read_ahead(1, id, id, usize::MAX).is_none(),
            "entry {id} was read ahead"
        );
    }
    // The same reads through `read` do start one (so the check above can fail).
    assert_eq!(store.read(1, 0, 0, usize::MAX).unwrap(), vec![kib_entry(0)]);
    assert_eq!(read_ahead_of(&store, 1, 1).await, Some(vec![kib_entry(1)]));

    // Entries of 1.5 MiB: each spans several `pread`s, none starts on a piece boundary.
    let big: Vec<Bytes> = (0..3u8)
        .map(|i| {
            Bytes::from(
                (0..(3 << 19))
                    .map(|b: usize| (b % 253) as u8 ^ i)
                    .collect::<Vec<u8>>(),
            )
        })
        .collect();
    let w = store.create_ledger(2).unwrap();
    for e in &big {
        w.append(e.clone()).await.unwrap().await.unwrap();
    }
    // Open: read as any reader would.
    assert_eq!(store.read_in_background(2, 0, 2, usize::MAX).unwrap(), big);
    w.seal().await.unwrap();
    assert_eq!(store.read_in_background(2, 0, 2, usize::MAX).unwrap(), big);
    assert_eq!(store.read_in_background(2, 1, 2, 1).unwrap(), big[1..2]);

    assert!(matches!(
        store.read_in_background(99, 0, 0, usize::MAX),
        Err(HotTierError::NoSuchLedger(99))
    ));

    sealed_kib_ledger(&store, 4, 10).await;
    drop(store);
    damage_kib_entry(dir.path(), 4, 2);
    let (store, _) = LedgerStore::open(dir.path(), small_read_ahead()).unwrap();
    assert_eq!(
        store.read_in_background(4, 0, 1, usize::MAX).unwrap().len(),
        2
    );
    assert!(matches!(
        store.read_in_background(4, 2, 2, usize::MAX),
        Err(HotTierError::ChecksumMismatch {
            ledger_id: 4,
            entry_id: 2
        })
    ));
}

//! Functional tests of the ledger store: appends, group commit, seal, reads while writing,
//! corruption handling and recovery.

use std::os::unix::fs::FileExt;

use bytes::Bytes;
use hot_tier::{HotTierError, LedgerStore, StoreOptions};

use crate::common;
use common::{damage_byte_at, ledger_file, open_rw};

fn payload(i: u64) -> Bytes {
    Bytes::from(format!("entry-{i}-").repeat((i % 7 + 1) as usize))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_seal_read_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (store, recovered) = LedgerStore::open(dir.path(), StoreOptions::default()).unwrap();
    assert!(recovered.is_empty());
    let w = store.create_ledger(3).unwrap();
    let mut pending = Vec::new();
    for i in 0..100 {
        pending.push(w.append(payload(i)).await.unwrap());
    }
    for (i, p) in pending.into_iter().enumerate() {
        assert_eq!(p.await.unwrap(), i as u64);
    }
    // Read while the ledger is still open.
    let got = store.read(3, 10, 19, usize::MAX).unwrap();
    assert_eq!(got, (10..20).map(payload).collect::<Vec<_>>());
    let sealed = w.seal().await.unwrap();
    assert_eq!(sealed.entries, 100);
    let expected_size: u64 = (0..100).map(|i| payload(i).len() as u64).sum();
    assert_eq!(sealed.size_bytes, expected_size);
    assert!(ledger_file(dir.path(), 3, "sealed").exists());
    drop(store);

    let (store, recovered) = LedgerStore::open(dir.path(), StoreOptions::default()).unwrap();
    assert!(recovered.is_empty(), "a sealed ledger needs no recovery");
    let stat = store.stat(3).unwrap();
    assert!(stat.sealed);
    assert_eq!((stat.entries, stat.size_bytes), (100, expected_size));
    assert_eq!(
        store.read(3, 0, 99, usize::MAX).unwrap(),
        (0..100).map(payload).collect::<Vec<_>>()
    );
    assert!(matches!(
        store.read(3, 100, 100, usize::MAX),
        Err(HotTierError::NoSuchEntry {
            last_entry_id: 99,
            ..
        })
    ));
    assert!(matches!(
        store.create_ledger(3),
        Err(HotTierError::LedgerExists(3))
    ));
    store.delete_ledger(3).unwrap();
    assert!(matches!(
        store.read(3, 0, 0, usize::MAX),
        Err(HotTierError::NoSuchLedger(3))
    ));
    store.delete_ledger(3).unwrap(); // idempotent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_bytes_limits_a_range_read_but_returns_at_least_one_entry() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = LedgerStore::open(dir.path(), StoreOptions::default()).unwrap();
    let w = store.create_ledger(1).unwrap();
    for _ in 0..10 {
        w.append(Bytes::from(vec![7u8; 1000]))
            .await
            .unwrap()
            .await
            .unwrap();
    }
    assert_eq!(store.read(1, 0, 9, 1).unwrap().len(), 1);
    assert_eq!(store.read(1, 0, 9, 3 * 1016).unwrap().len(), 3);
    assert_eq!(store.read(1, 0, 9, usize::MAX).unwrap().len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = LedgerStore::open(dir.path(), StoreOptions::default()).unwrap();
    let w = std::sync::Arc::new(store.create_ledger(1).unwrap());
    // Queue many appends before awaiting any: they must complete with far fewer fsyncs.
    let mut pending = Vec::new();
    for i in 0..2000u64 {
        pending.push(w.append(payload(i)).await.unwrap());
    }
    for (i, p) in pending.into_iter().enumerate() {
        assert_eq!(p.await.unwrap(), i as u64);
    }
    let syncs = w.fsync_count();
    assert!(
        syncs < 1000,
        "2000 appends took {syncs} fsyncs: no group commit"
    );
    assert_eq!(store.read(1, 0, 1999, usize::MAX).unwrap().len(), 2000);
}

/// Flips one byte `back` bytes before the end of `path`.
fn flip_byte_from_end(path: &std::path::Path, back: u64) {
    let len = std::fs::metadata(path).unwrap().len();
    let f = open_rw(path);
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, len - back).unwrap();
    f.write_all_at(&[b[0] ^ 0x40], len - back).unwrap();
}

fn journal_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("journal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "journal"))
        .collect();
    files.sort();
    files
}

/// Copies `from` into `to` (both directories): the disk as a crash would leave it, taken while
/// the store that writes `from` is idle.
fn crash_image(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            crash_image(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Options under which one ledger's small rounds go through the journal.
fn journaled() -> StoreOptions {
    StoreOptions {
        direct_when_alone: false,
        ..StoreOptions::default()
    }
}

/// Appends entries `range` to ledger `id` one at a time (one round, one journal chunk each).
async fn append_each(w: &hot_tier::LedgerWriter, range: std::ops::Range<u64>) {
    for i in range {
        w.append(payload(i)).await.unwrap().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_before_any_checkpoint_recovers_every_entry_from_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let (live, image) = (dir.path().join("live"), dir.path().join("image"));
    let (store, _) = LedgerStore::open(&live, journaled()).unwrap();
    let w = store.create_ledger(9).unwrap();
    append_each(&w, 0..20).await;
    // Acknowledged, but only in the journal so far: the ledger file holds its header.
    crash_image(&live, &image);
    assert_eq!(
        std::fs::metadata(ledger_file(&image, 9, "open"))
            .unwrap()
            .len(),
        16
    );

    let (image_store, recovered) = LedgerStore::open(&image, StoreOptions::default()).unwrap();
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0].sealed.entries, 20);
    assert_eq!(
        image_store.read(9, 0, 19, usize::MAX).unwrap(),
        (0..20).map(payload).collect::<Vec<_>>()
    );
    assert!(ledger_file(&image, 9, "sealed").exists());
    assert_eq!(
        journal_files(&image).len(),
        1,
        "the replayed journal is gone"
    );
    // The live store still reads them (from memory: no checkpoint wrote them yet).
    assert_eq!(
        store.read(9, 0, 19, usize::MAX).unwrap(),
        (0..20).map(payload).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_clean_stop_the_ledger_file_alone_counts_and_a_corrupt_tail_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _) = LedgerStore::open(dir.path(), journaled()).unwrap();
        let w = store.create_ledger(9).unwrap();
        append_each(&w, 0..20).await;
        // Dropped without sealing: the last checkpoint writes the file and trims the journal.
    }
    flip_byte_from_end(&ledger_file(dir.path(), 9, "open"), 3);
    let (store, recovered) = LedgerStore::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(
        recovered[0].sealed.entries, 19,
        "the corrupt last entry is cut off, never served"
    );
    assert!(recovered[0].discarded_bytes > 0);
    assert_eq!(
        store.read(9, 0, 18, usize::MAX).unwrap(),
        (0..19).map(payload).collect::<Vec<_>>()
    );
    assert!(matches!(
        store.read(9, 19, 19, usize::MAX),
        Err(HotTierError::NoSuchEntry { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_write_the_files_and_trim_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    let options = StoreOptions {
        checkpoint_interval: std::time::Duration::from_millis(20),
        // A new journal file for nearly every round: checkpoints delete the old ones.
        journal_file_bytes: 64,
        ..journaled()
    };
    let (store, _) = LedgerStore::open(&live, options.clone()).unwrap();
    let w = store.create_ledger(3).unwrap();
    append_each(&w, 0..20).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        journal_files(&live).len() <= 2,
        "checkpoints delete the journal files before them: {:?}",
        journal_files(&live)
    );
    let file_len = std::fs::metadata(ledger_file(&live, 3, "open"))
        .unwrap()
        .len();
    assert!(
        file_len > 16 * 20,
        "the checkpoint wrote the entries into the file"
    );
    drop(w);
    drop(store);
    let (store, recovered) = LedgerStore::open(&live, options).unwrap();
    assert_eq!(recovered[0].sealed.entries, 20);
    assert_eq!(
        store.read(3, 0, 19, usize::MAX).unwrap(),
        (0..20).map(payload).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_write_cache_starts_a_checkpoint_before_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    let options = StoreOptions {
        // Only the cache's size can start a checkpoint during the test.
        checkpoint_interval: std::time::Duration::from_secs(3600),
        write_cache_bytes: 4 << 10,
        ..journaled()
    };
    let (store, _) = LedgerStore::open(&live, options).unwrap();
    let w = store.create_ledger(4).unwrap();
    let file_len = || {
        std::fs::metadata(ledger_file(&live, 4, "open"))
            .unwrap()
            .len()
    };
    let empty = file_len();
    // Under the cache's limit: the entries wait in it, nothing starts a checkpoint.
    append_each(&w, 0..20).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(file_len(), empty, "no checkpoint below the cache's limit");
    // Past it (~10 KiB cached in all): a checkpoint writes them into the file.
    append_each(&w, 20..200).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while file_len() < empty + (4 << 10) {
        assert!(
            std::time::Instant::now() < deadline,
            "a full write cache started no checkpoint"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_missing_from_the_journal_ends_the_ledger_before_the_gap() {
    let dir = tempfile::tempdir().unwrap();
    let (live, image) = (dir.path().join("live"), dir.path().join("image"));
    // One journal file per round (any chunk fills one), no checkpoint during the test.
    let options = StoreOptions {
        journal_file_bytes: 17,
        ..journaled()
    };
    let (store, _) = LedgerStore::open(&live, options).unwrap();
    let w = store.create_ledger(6).unwrap();
    append_each(&w, 0..5).await;
    crash_image(&live, &image);
    let journal = journal_files(&image);
    assert_eq!(journal.len(), 5, "{journal:?}");
    // Entry 2's chunk is damaged: replay stops reading its file, and the next file's entry 3
    // would follow a gap.
    flip_byte_from_end(&journal[2], 2);
    let (image_store, recovered) = LedgerStore::open(&image, StoreOptions::default()).unwrap();
    assert_eq!(recovered[0].sealed.entries, 2);
    assert_eq!(
        image_store.read(6, 0, 1, usize::MAX).unwrap(),
        (0..2).map(payload).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_journal_tail_ends_the_replay() {
    let dir = tempfile::tempdir().unwrap();
    let (live, image) = (dir.path().join("live"), dir.path().join("image"));
    let (store, _) = LedgerStore::open(&live, journaled()).unwrap();
    let w = store.create_ledger(4).unwrap();
    append_each(&w, 0..20).await;
    crash_image(&live, &image);
    // The journal's last chunk is torn.
    let journal = journal_files(&image);
    assert_eq!(journal.len(), 1);
    flip_byte_from_end(&journal[0], 2);

    let (image_store, recovered) = LedgerStore::open(&image, StoreOptions::default()).unwrap();
    assert_eq!(
        recovered[0].sealed.entries, 19,
        "all but the torn chunk's entry"
    );
    assert_eq!(
        image_store.read(4, 0, 18, usize::MAX).unwrap(),
        (0..19).map(payload).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_rounds_go_straight_to_their_file_after_what_the_journal_cached() {
    let dir = tempfile::tempdir().unwrap();
    let (live, image) = (dir.path().join("live"), dir.path().join("image"));
    let (store, _) = LedgerStore::open(&live, journaled()).unwrap();
    let w = store.create_ledger(5).unwrap();
    append_each(&w, 0..10).await;
    let big = Bytes::from(vec![7u8; 256 << 10]);
    assert_eq!(w.append(big.clone()).await.unwrap().await.unwrap(), 10);
    // The direct write put the ten cached entries into the file before the big one.
    let len = std::fs::metadata(ledger_file(&live, 5, "open"))
        .unwrap()
        .len();
    assert!(len > 256 << 10, "{len}");
    crash_image(&live, &image);
    for j in journal_files(&image) {
        std::fs::remove_file(j).unwrap();
    }
    let (image_store, recovered) = LedgerStore::open(&image, StoreOptions::default()).unwrap();
    assert_eq!(
        recovered[0].sealed.entries, 11,
        "all in the file, none from the journal"
    );
    let mut expected: Vec<Bytes> = (0..10).map(payload).collect();
    expected.push(big);
    assert_eq!(image_store.read(5, 0, 10, usize::MAX).unwrap(), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_open_ledgers_share_the_stores_threads_and_fsyncs() {
    fn threads() -> usize {
        std::fs::read_dir("/proc/self/task").unwrap().count()
    }
    let dir = tempfile::tempdir().unwrap();
    let before = threads();
    let (store, _) = LedgerStore::open(dir.path(), StoreOptions::default()).unwrap();
    let writers: Vec<_> = (0..1000)
        .map(|id| store.create_ledger(id).unwrap())
        .collect();
    let mut pending = Vec::new();
    for (i, w) in writers.iter().enumerate() {
        pending.push(w.append(payload(i as u64)).await.unwrap());
    }
    for p in pending {
        assert_eq!(p.await.unwrap(), 0);
    }
    let added = threads() - before;
    // Journal flush, sync, seal, checkpoint; read-ahead; deleter.
    assert!(added <= 6, "1000 open ledgers added {added} threads");
    let rounds: u64 = writers.iter().map(|w| w.fsync_count()).max().unwrap();
    assert_eq!(rounds, 1, "each ledger's entry took one round");
    for i in 0..writers.len() {
        assert_eq!(
            store.read(i as u64, 0, 0, usize::MAX).unwrap()[0],
            payload(i as u64)
        );
    }
    drop(writers);
    drop(store);
    let (_, recovered) = LedgerStore::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(recovered.len(), 1000);
    assert!(recovered.iter().all(|r| r.sealed.entries == 1));
}

/// Many ledgers with one append in flight each (a producer per topic waiting for each receipt)
/// bring their appends one or two at a time. While the syncer works they must collect into the
/// next round rather than into many small rounds the syncer then commits together: a ledger alone
/// in a small round is written directly, and the fsyncs of all those ledgers would add up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_commits_fsyncs_do_not_grow_with_the_ledgers_it_carries() {
    const MAX_DIRECT: u64 = 2;
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        max_direct_per_round: MAX_DIRECT as usize,
        ..StoreOptions::default()
    };
    let (store, _) = LedgerStore::open(dir.path(), options).unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for id in 0..300u64 {
        let w = store.create_ledger(id).unwrap();
        tasks.spawn(async move {
            for i in 0..20 {
                assert_eq!(w.append(payload(i)).await.unwrap().await.unwrap(), i);
            }
            w
        });
    }
    let writers = tasks.join_all().await;
    let stats = store.commit_stats();
    // Per group commit: the journal, at most MAX_DIRECT ledger files, the ledger directory.
    assert!(
        stats.fsyncs <= stats.group_commits * (1 + MAX_DIRECT + 1),
        "{stats:?}"
    );
    assert!(stats.group_commits < 300 * 20, "{stats:?}: no group commit");
    for (id, w) in writers.iter().enumerate() {
        assert_eq!(w.entries_accepted(), 20);
        assert_eq!(
            store.read(id as u64, 19, 19, usize::MAX).unwrap(),
            vec![payload(19)]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_tail_and_garbage_after_the_last_record_are_truncated() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _) = LedgerStore::open(dir.path(), StoreOptions::default()).unwrap();
        let w = store.create_ledger(2).unwrap();
        for i in 0..5 {
            w.append(payload(i)).await.unwrap().await.unwrap();
        }
    }
    let path = ledger_file(dir.path(), 2, "open");
    let len = std::fs::metadata(&path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    // Half a record header, then garbage: what a crash mid-write can leave behind.
    f.write_all_at(&[0x10, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 5], len)
        .unwrap();
    drop(f);
    let (store, recovered) = LedgerStore::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(recovered[0].sealed.entries, 5);
    assert_eq!(recovered[0].discarded_bytes, 9);
    assert_eq!(store.read(2, 0, 4, usize::MAX).unwrap().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_byte_in_sealed_ledger_fails_that_entry_with_checksum_error() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = LedgerStore::open(dir.path(), StoreOptions::default()).unwrap();
    let w = store.create_ledger(4).unwrap();
    for i in 0..10 {
        w.append(payload(i)).await.unwrap().await.unwrap();
    }
    w.seal().await.unwrap();
    drop(store);
    // Entry 0 starts after the 16-byte file header and its 16-byte record header.
    damage_byte_at(&ledger_file(dir.path(), 4, "sealed"), 16 + 16 + 2);

    let (store, recovered) = LedgerStore::open(dir.path(), StoreOptions::default()).unwrap();
    assert!(recovered.is_empty());
    let err = store.read(4, 0, 0, usize::MAX).unwrap_err();
    assert!(
        matches!(
            err,
            HotTierError::ChecksumMismatch {
                ledger_id: 4,
                entry_id: 0
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("checksum mismatch in ledger 4 entry 0")
    );
    // Other entries are unaffected.
    assert_eq!(
        store.read(4, 1, 9, usize::MAX).unwrap(),
        (1..10).map(payload).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_after_seal_and_oversized_entries_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        max_entry_bytes: 1024,
        ..StoreOptions::default()
    };
    let (store, _) = LedgerStore::open(dir.path(), options).unwrap();
    let w = store.create_ledger(1).unwrap();
    assert!(matches!(
        w.append(Bytes::from(vec![0u8; 1025])).await,
        Err(HotTierError::EntryTooLarge {
            size: 1025,
            max: 1024
        })
    ));
    w.append(Bytes::from_static(b"ok"))
        .await
        .unwrap()
        .await
        .unwrap();
    let sealed = w.seal().await.unwrap();
    assert_eq!(sealed.entries, 1);
    assert!(matches!(
        store.create_ledger(1),
        Err(HotTierError::LedgerExists(1))
    ));
}

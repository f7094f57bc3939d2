//! Managed-ledger behaviour over a real ledger store and a real redb metadata store.

use crate::common;

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use hot_tier::{LedgerStore, StoreOptions};
use ledger::{InitialPosition, ManagedLedgerConfig, ManagedLedgerFactory, Position, TestClock};
use meta::RedbStore;

const MIN: u64 = 60_000;

fn factory(dir: &Path, clock: &TestClock) -> ManagedLedgerFactory {
    let (store, _) = LedgerStore::open(dir.join("ledgers"), StoreOptions::default()).unwrap();
    let meta = Arc::new(RedbStore::open(&dir.join("meta.redb")).unwrap());
    ManagedLedgerFactory::new(store, meta, Arc::new(clock.clone()))
}

fn config(max_entries: u64) -> ManagedLedgerConfig {
    ManagedLedgerConfig {
        max_entries_per_ledger: max_entries,
        min_rollover_ms: 0,
        retention_time_ms: -1,
        retention_size_bytes: -1,
        ..ManagedLedgerConfig::default()
    }
}

fn entry(i: usize) -> Bytes {
    Bytes::from(format!("message-{i:05}"))
}

async fn append_n(ml: &ledger::ManagedLedger, range: std::ops::Range<usize>) -> Vec<Position> {
    let mut receipts = Vec::new();
    for i in range {
        receipts.push(ml.append(entry(i)).await.unwrap());
    }
    let mut out = Vec::new();
    for r in receipts {
        out.push(r.await.unwrap());
    }
    out
}

async fn read_all(ml: &ledger::ManagedLedger, from: Position) -> Vec<ledger::Entry> {
    common::read_from(ml, from, 7).await
}

fn closed_entry_counts(stats: &ledger::LedgerStats) -> Vec<i64> {
    stats.ledgers[..stats.ledgers.len() - 1]
        .iter()
        .map(|l| l.entries)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollover_by_entry_count_and_reads_across_ledgers() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(1_000_000);
    let f = factory(dir.path(), &clock);
    let ml = f.open("t/ns/persistent/a", config(10)).await.unwrap();
    let positions = append_n(&ml, 0..25).await;
    let stats = ml.stats().await;
    assert_eq!(closed_entry_counts(&stats), vec![10, 10], "{stats:?}");
    assert_eq!(stats.current_ledger_entries, 5);
    assert_eq!(stats.number_of_entries, 25);
    // Positions grow monotonically and entry ids restart at 0 in each ledger.
    assert!(positions.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(positions[10].entry_id, 0);
    assert_ne!(positions[9].ledger_id, positions[10].ledger_id);

    let all = read_all(&ml, Position::EARLIEST).await;
    assert_eq!(
        all.iter().map(|e| e.data.clone()).collect::<Vec<_>>(),
        (0..25).map(entry).collect::<Vec<_>>()
    );
    assert_eq!(
        all.iter().map(|e| e.position).collect::<Vec<_>>(),
        positions
    );
    // From the middle of a ledger.
    let tail = read_all(&ml, positions[13]).await;
    assert_eq!(tail.len(), 12);
    assert_eq!(ml.last_confirmed(), positions[24]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skipping_entries_and_backlog_bytes_across_ledgers() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(1_000_000);
    let f = factory(dir.path(), &clock);
    let ml = f.open("t/ns/persistent/skip", config(10)).await.unwrap();
    let positions = append_n(&ml, 0..25).await;
    let before_first = Position::new(positions[0].ledger_id, -1);
    for k in [1usize, 9, 10, 11, 20, 25] {
        assert_eq!(
            ml.skip_entries(before_first, k as i64),
            positions[k - 1],
            "{k}"
        );
    }
    assert_eq!(ml.skip_entries(positions[8], 3), positions[11]);
    // Past the end: the last entry.
    assert_eq!(ml.skip_entries(positions[20], 100), positions[24]);
    let total = ml.bytes_after(before_first);
    assert_eq!(total, ml.stats().await.total_size);
    assert_eq!(ml.bytes_after(positions[24]), 0);
    // Equal entries: bytes follow the entries left, within a ledger and across them.
    let per_entry = total / 25;
    assert_eq!(ml.bytes_after(positions[4]), per_entry * 20);
    assert_eq!(ml.bytes_after(positions[14]), per_entry * 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollover_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(1_000_000);
    let f = factory(dir.path(), &clock);
    let mut c = config(1_000_000);
    c.max_size_per_ledger_bytes = 1000;
    let ml = f.open("t/ns/persistent/size", c).await.unwrap();
    for _ in 0..25 {
        ml.append(Bytes::from(vec![1u8; 100]))
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let stats = ml.stats().await;
    assert_eq!(closed_entry_counts(&stats), vec![10, 10]);
    assert!(stats.ledgers[..2].iter().all(|l| l.size == 1000));
    assert_eq!(stats.current_ledger_size, 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollover_by_time_and_min_rollover_time() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(1_000_000);
    let f = factory(dir.path(), &clock);
    let c = ManagedLedgerConfig {
        max_entries_per_ledger: 5,
        min_rollover_ms: 10 * MIN,
        max_rollover_ms: 240 * MIN,
        retention_time_ms: -1,
        retention_size_bytes: -1,
        ..ManagedLedgerConfig::default()
    };
    let ml = f.open("t/ns/persistent/time", c).await.unwrap();
    // Full by count, but younger than the minimum rollover time: keeps growing.
    append_n(&ml, 0..8).await;
    assert_eq!(ml.stats().await.ledgers.len(), 1);
    clock.advance_ms(10 * MIN + 1);
    append_n(&ml, 8..9).await;
    let stats = ml.stats().await;
    assert_eq!(
        closed_entry_counts(&stats),
        vec![8],
        "rolled over once old enough"
    );
    assert_eq!(stats.current_ledger_entries, 1);

    // An idle ledger with entries rolls over at the maximum age on the periodic check.
    assert!(!ml.check_rollover().await.unwrap());
    clock.advance_ms(240 * MIN);
    assert!(ml.check_rollover().await.unwrap());
    let stats = ml.stats().await;
    assert_eq!(closed_entry_counts(&stats), vec![8, 1]);
    // An empty ledger never rolls over.
    clock.advance_ms(1000 * MIN);
    assert!(!ml.check_rollover().await.unwrap());
    assert_eq!(read_all(&ml, Position::EARLIEST).await.len(), 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursors_and_ledger_list_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(1_000_000);
    let name = "t/ns/persistent/restart";
    let (positions, ledgers_before) = {
        let f = factory(dir.path(), &clock);
        let ml = f.open(name, config(10)).await.unwrap();
        ml.open_cursor("sub-a", InitialPosition::Earliest)
            .await
            .unwrap();
        let positions = append_n(&ml, 0..25).await;
        ml.open_cursor("sub-latest", InitialPosition::Latest)
            .await
            .unwrap();
        ml.ack_cumulative("sub-a", positions[11]).await.unwrap();
        ml.ack("sub-a", &[positions[13], positions[14], positions[20]])
            .await
            .unwrap();
        let ledgers = ml.stats().await.ledgers;
        // No close: the process "dies" with the current ledger open.
        (positions, ledgers)
    };
    let f = factory(dir.path(), &clock);
    f.collect_garbage().await.unwrap();
    let ml = f.open(name, config(10)).await.unwrap();
    let stats = ml.stats().await;
    // Same ledgers (the open one now closed with its 5 entries), plus a fresh one for appends.
    assert_eq!(stats.ledgers.len(), ledgers_before.len() + 1);
    assert_eq!(
        stats.ledgers[..3]
            .iter()
            .map(|l| (l.ledger_id, l.entries))
            .collect::<Vec<_>>(),
        ledgers_before
            .iter()
            .zip([10, 10, 5])
            .map(|(l, n)| (l.ledger_id, n))
            .collect::<Vec<_>>()
    );
    let cursors = ml.cursors().await;
    let a = &cursors.iter().find(|(n, _)| n == "sub-a").unwrap().1;
    assert_eq!(a.mark_delete, positions[11]);
    assert_eq!(
        a.individually_deleted.iter().copied().collect::<Vec<_>>(),
        vec![positions[13], positions[14], positions[20]]
    );
    let latest = &cursors.iter().find(|(n, _)| n == "sub-latest").unwrap().1;
    assert_eq!(latest.mark_delete, positions[24]);
    assert_eq!(
        ml.cursor_read_position("sub-a").await.unwrap(),
        positions[12]
    );

    // Every entry is still there and appends continue in the fresh ledger.
    let p = append_n(&ml, 25..26).await[0];
    assert_eq!(p, Position::new(stats.ledgers.last().unwrap().ledger_id, 0));
    let all = read_all(&ml, Position::EARLIEST).await;
    assert_eq!(
        all.iter().map(|e| e.data.clone()).collect::<Vec<_>>(),
        (0..26).map(entry).collect::<Vec<_>>()
    );
    // Acking the gap moves mark-delete across the acknowledged ones.
    let md = ml.ack("sub-a", &[positions[12]]).await.unwrap();
    assert_eq!(md, positions[14]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_by_size_never_removes_what_a_cursor_needs() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(1_000_000);
    let f = factory(dir.path(), &clock);
    let mut c = config(10);
    c.retention_size_bytes = 0;
    c.retention_time_ms = 0;
    let ml = f.open("t/ns/persistent/ret", c.clone()).await.unwrap();
    ml.open_cursor("slow", InitialPosition::Earliest)
        .await
        .unwrap();
    let positions = append_n(&ml, 0..45).await;
    let ids: Vec<i64> = ml
        .stats()
        .await
        .ledgers
        .iter()
        .map(|l| l.ledger_id)
        .collect();
    assert_eq!(ids.len(), 5);
    // The cursor has consumed nothing: nothing goes, even with zero retention.
    assert!(ml.trim().await.unwrap().is_empty());
    // Consumed into the middle of the second ledger: only the first ledger goes.
    ml.ack_cumulative("slow", positions[14]).await.unwrap();
    assert_eq!(ml.trim().await.unwrap(), vec![ids[0]]);
    assert!(
        !dir.path()
            .join(format!("ledgers/{:020}.sealed", ids[0]))
            .exists()
    );
    assert!(
        dir.path()
            .join(format!("ledgers/{:020}.sealed", ids[1]))
            .exists()
    );

    // Everything consumed: size retention alone decides, keeping the newest bytes.
    ml.ack_cumulative("slow", positions[44]).await.unwrap();
    c.retention_time_ms = -1;
    c.retention_size_bytes = 2 * 10 * entry(0).len() as i64; // two ledgers' worth
    ml.set_config(c.clone());
    // Four closed ledgers of 10 entries + 5 in the current one: 35 entries left after the first
    // trim; keeping at least 20 entries' bytes removes only the oldest (25 remain).
    assert_eq!(ml.trim().await.unwrap(), vec![ids[1]]);
    // The ledger being written is never removed.
    c.retention_size_bytes = 0;
    ml.set_config(c);
    assert_eq!(ml.trim().await.unwrap(), vec![ids[2], ids[3]]);
    assert_eq!(ml.stats().await.ledgers.len(), 1);
    let left = read_all(&ml, Position::EARLIEST).await;
    assert_eq!(left.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_by_time_removes_only_expired_consumed_ledgers() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(1_000_000);
    let f = factory(dir.path(), &clock);
    let mut c = config(10);
    c.retention_time_ms = 60 * MIN as i64;
    c.retention_size_bytes = -1;
    let ml = f.open("t/ns/persistent/ret-time", c).await.unwrap();
    append_n(&ml, 0..10).await; // ledger 1 closed at t0
    clock.advance_ms(30 * MIN);
    append_n(&ml, 10..20).await; // ledger 2 closed at t0+30m
    let ids: Vec<i64> = ml
        .stats()
        .await
        .ledgers
        .iter()
        .map(|l| l.ledger_id)
        .collect();
    // No cursors: everything is consumed; nothing is old enough yet.
    clock.advance_ms(31 * MIN);
    assert_eq!(
        ml.trim().await.unwrap(),
        vec![ids[0]],
        "only the ledger closed 61 min ago"
    );
    clock.advance_ms(30 * MIN);
    assert_eq!(ml.trim().await.unwrap(), vec![ids[1]]);
    // A cursor created now at Latest needs nothing older either; the open ledger stays.
    assert!(ml.trim().await.unwrap().is_empty());
    assert_eq!(ml.stats().await.ledgers.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_close_then_reopen_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(1_000_000);
    let name = "t/ns/persistent/del";
    {
        let f = factory(dir.path(), &clock);
        let ml = f.open(name, config(10)).await.unwrap();
        append_n(&ml, 0..12).await;
        f.close_all().await.unwrap();
        assert!(
            ml.append(entry(99)).await.is_err(),
            "closed ledger refuses appends"
        );
    }
    let f = factory(dir.path(), &clock);
    assert!(f.collect_garbage().await.unwrap().is_empty());
    assert_eq!(f.names().await.unwrap(), vec![name.to_string()]);
    let ml = f.open(name, config(10)).await.unwrap();
    assert_eq!(read_all(&ml, Position::EARLIEST).await.len(), 12);
    ml.open_cursor("s", InitialPosition::Earliest)
        .await
        .unwrap();
    f.delete(name).await.unwrap();
    assert!(f.names().await.unwrap().is_empty());
    assert!(f.store().list_ledgers().unwrap().is_empty());
}

/// More cursors than one metadata transaction may carry: deletion still removes every key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_topic_with_hundreds_of_cursors_leaves_no_key() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(1_000_000);
    let name = "t/ns/persistent/many-cursors";
    {
        let f = factory(dir.path(), &clock);
        let ml = f.open(name, config(10)).await.unwrap();
        append_n(&ml, 0..3).await;
        for i in 0..300 {
            ml.open_cursor(&format!("s{i}"), InitialPosition::Earliest)
                .await
                .unwrap();
        }
        f.delete(name).await.unwrap();
        assert!(f.names().await.unwrap().is_empty());
        f.close_all().await.unwrap();
    }
    let meta = RedbStore::open(&dir.path().join("meta.redb")).unwrap();
    let left: Vec<_> = meta::MetadataStore::list(&meta, "/")
        .await
        .unwrap()
        .into_iter()
        .filter(|k| !k.starts_with("/counters/"))
        .collect();
    assert!(
        left.is_empty(),
        "{} keys left: {:?}",
        left.len(),
        left.first()
    );
}

/// In a cluster, a local ledger lives on the disk of the broker that wrote it: another broker
/// sharing the metadata refuses the managed ledger instead of serving it as empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_broker_refuses_a_managed_ledger_whose_hot_copy_it_does_not_hold() {
    let dir = tempfile::tempdir().unwrap();
    let meta: Arc<dyn meta::MetadataStore> =
        Arc::new(RedbStore::open(&dir.path().join("meta.redb")).unwrap());
    let on = |who: &str| {
        let (store, _) = LedgerStore::open(dir.path().join(who), StoreOptions::default()).unwrap();
        ManagedLedgerFactory::new(store, Arc::clone(&meta), Arc::new(ledger::SystemClock))
            .with_hot_tier_owner(who)
    };
    let name = "t/ns/persistent/local";
    let a = on("broker-a");
    let ml = a.open(name, config(10)).await.unwrap();
    append_n(&ml, 0..5).await;
    a.close_all().await.unwrap();
    let b = on("broker-b");
    match b.open(name, config(10)).await {
        Err(ledger::LedgerError::HotTierElsewhere { broker, .. }) => assert_eq!(broker, "broker-a"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("broker-b served broker-a's ledgers"),
    }
    drop(b);
    let a = on("broker-a");
    let ml = a.open(name, config(10)).await.unwrap();
    assert_eq!(read_all(&ml, Position::EARLIEST).await.len(), 5);
}

/// A managed ledger whose fence (its bundle's ownership key) moved writes nothing more: its
/// next ledger-list or cursor update fails the check, appends are refused from then on, and
/// the stored list is what the new owner would find.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_managed_ledger_whose_fence_moved_writes_nothing_more() {
    use meta::{Expected, MetadataStore};
    let dir = tempfile::tempdir().unwrap();
    let meta = Arc::new(RedbStore::open(&dir.path().join("meta.redb")).unwrap());
    let (store, _) =
        LedgerStore::open(dir.path().join("ledgers"), StoreOptions::default()).unwrap();
    let f = ManagedLedgerFactory::new(
        store,
        Arc::clone(&meta) as Arc<dyn MetadataStore>,
        Arc::new(ledger::SystemClock),
    );
    let owner_key = "/namespace/t/ns/0x00000000_0xffffffff";
    let token = meta
        .put(owner_key, b"a".to_vec(), Expected::Absent)
        .await
        .unwrap();
    let name = "t/ns/persistent/fenced";
    let ml = f.open(name, config(10)).await.unwrap();
    ml.set_fence(Some(ledger::Fence {
        key: owner_key.into(),
        version: token,
    }));
    append_n(&ml, 0..10).await;
    ml.open_cursor("s", InitialPosition::Earliest)
        .await
        .unwrap();

    // Another broker takes the bundle (a new ownership key, a new version).
    meta.delete(owner_key, Expected::Any).await.unwrap();
    meta.put(owner_key, b"b".to_vec(), Expected::Absent)
        .await
        .unwrap();
    let list_before = meta
        .get("/ml/t/ns/persistent/fenced")
        .await
        .unwrap()
        .unwrap();
    // Appends go on into the open ledger (no metadata) until one needs the ledger list
    // updated (the next rollover): that one fails the check.
    let mut failed_at = None;
    for i in 10..25 {
        match ml.append(entry(i)).await {
            Ok(_) => {}
            Err(err) => {
                assert!(matches!(err, ledger::LedgerError::Fenced { .. }), "{err}");
                failed_at = Some(i);
                break;
            }
        }
    }
    assert!(failed_at.is_some(), "no rollover met the fence");
    assert!(ml.is_fenced());
    let Err(err) = ml.append(entry(99)).await else {
        panic!("a fenced managed ledger took another append");
    };
    assert!(matches!(err, ledger::LedgerError::Fenced { .. }), "{err}");
    assert!(
        ml.open_cursor("t", InitialPosition::Earliest)
            .await
            .is_err()
    );
    assert_eq!(
        meta.get("/ml/t/ns/persistent/fenced")
            .await
            .unwrap()
            .unwrap(),
        list_before,
        "the fenced instance changed the ledger list"
    );
    assert!(
        meta.get("/cursors/t/ns/persistent/fenced/t")
            .await
            .unwrap()
            .is_none()
    );
}

/// A factory over a metadata store that can be slowed down for chosen keys.
fn slow_factory(dir: &Path) -> (ManagedLedgerFactory, Arc<testkit::slow_meta::SlowMeta>) {
    let (store, _) = LedgerStore::open(dir.join("ledgers"), StoreOptions::default()).unwrap();
    let redb = Arc::new(RedbStore::open(&dir.join("meta.redb")).unwrap());
    let slow = Arc::new(testkit::slow_meta::SlowMeta::new(
        redb,
        std::time::Duration::from_secs(2),
    ));
    let f = ManagedLedgerFactory::new(
        store,
        Arc::clone(&slow) as Arc<dyn meta::MetadataStore>,
        Arc::new(ledger::SystemClock),
    );
    (f, slow)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_a_slow_managed_ledger_does_not_hold_up_another() {
    let dir = tempfile::tempdir().unwrap();
    let (f, slow) = slow_factory(dir.path());
    let f = Arc::new(f);
    slow.slow_down("slow-topic");
    let opening = {
        let f = Arc::clone(&f);
        tokio::spawn(async move {
            f.open("public/default/persistent/slow-topic", config(10))
                .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    let fast = f
        .open("public/default/persistent/fast-topic", config(10))
        .await
        .unwrap();
    append_n(&fast, 0..20).await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "waited {:?} for another topic's open",
        started.elapsed()
    );
    assert!(!opening.is_finished(), "the slow open is still under way");
    opening.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_cursor_write_does_not_hold_up_other_cursors() {
    let dir = tempfile::tempdir().unwrap();
    let (f, slow) = slow_factory(dir.path());
    let ml = f
        .open("public/default/persistent/acks", config(100))
        .await
        .unwrap();
    let positions = append_n(&ml, 0..10).await;
    for c in ["slow-cursor", "fast-cursor"] {
        ml.open_cursor(c, InitialPosition::Earliest).await.unwrap();
    }
    slow.slow_down("slow-cursor");
    let acking = {
        let (ml, p) = (ml.clone(), positions[0]);
        tokio::spawn(async move { ml.ack("slow-cursor", &[p]).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    for p in &positions {
        ml.ack("fast-cursor", &[*p]).await.unwrap();
    }
    let other = f
        .open("public/default/persistent/other", config(100))
        .await
        .unwrap();
    other
        .open_cursor("c", InitialPosition::Earliest)
        .await
        .unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "waited {:?} behind another cursor's write",
        started.elapsed()
    );
    assert_eq!(acking.await.unwrap().unwrap(), positions[0]);
    assert_eq!(
        ml.cursor("fast-cursor").await.unwrap().mark_delete,
        positions[9]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursor_writes_never_go_back_in_time() {
    // An ack whose write is slow, then a seek back: after both, the stored state is the seek's,
    // whatever order the writes finished in.
    let dir = tempfile::tempdir().unwrap();
    let (f, slow) = slow_factory(dir.path());
    let name = "public/default/persistent/seek";
    {
        let ml = f.open(name, config(100)).await.unwrap();
        let positions = append_n(&ml, 0..10).await;
        ml.open_cursor("sub-x", InitialPosition::Earliest)
            .await
            .unwrap();
        slow.slow_down("sub-x");
        let acking = {
            let (ml, p) = (ml.clone(), positions[9]);
            tokio::spawn(async move { ml.ack_cumulative("sub-x", p).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        ml.reset_cursor("sub-x", positions[2]).await.unwrap();
        acking.await.unwrap().unwrap();
        ml.close().await.unwrap();
    }
    drop((f, slow));
    let f = factory(dir.path(), &TestClock::new(0));
    let ml = f.open(name, config(100)).await.unwrap();
    let c = ml.cursor("sub-x").await.unwrap();
    assert_eq!(
        c.mark_delete.entry_id, 1,
        "the seek's position, not the ack's"
    );
}

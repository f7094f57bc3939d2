//! Offload orchestration in the managed ledger over a real ledger store, a real redb metadata
//! store and a real filesystem offloader (Pulsar's object format in a directory).

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use hot_tier::{LedgerStore, StoreOptions};
use ledger::{
    LedgerError, ManagedLedger, ManagedLedgerConfig, ManagedLedgerFactory, Position, TestClock,
};
use meta::RedbStore;
use offload::{
    BlobStoreOffloader, LedgerOffloader, LedgerSource, Location, OffloadConfig, OffloadResult,
    OffloadedLedger, TierReader,
};
use uuid::Uuid;

/// Where an injected failure happens during an offload.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum FailAt {
    Never,
    BeforeUpload,
    AfterDataBeforeIndex,
    AfterIndexBeforeMetadata,
}

/// A real offloader with a failure injected at one step, and an optional gate to hold it.
struct Faulty {
    inner: BlobStoreOffloader,
    dir: std::path::PathBuf,
    fail: FailAt,
    gate: Option<Arc<tokio::sync::Notify>>,
    /// While set, deleting objects fails (an unreachable store).
    fail_deletes: Arc<std::sync::atomic::AtomicBool>,
}

#[async_trait::async_trait]
impl TierReader for Faulty {
    async fn read(
        &self,
        ledger_id: i64,
        uuid: Uuid,
        at: &Location,
    ) -> offload::Result<OffloadedLedger> {
        self.inner.read(ledger_id, uuid, at).await
    }
    async fn delete(&self, ledger_id: i64, uuid: Uuid, at: &Location) -> offload::Result<()> {
        if self.fail_deletes.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(offload::OffloadError::Task(
                "injected delete failure".into(),
            ));
        }
        self.inner.delete(ledger_id, uuid, at).await
    }
}

#[async_trait::async_trait]
impl LedgerOffloader for Faulty {
    fn location(&self) -> &Location {
        self.inner.location()
    }
    async fn offload(
        &self,
        ledger: &dyn LedgerSource,
        uuid: Uuid,
        extra: &BTreeMap<String, String>,
    ) -> offload::Result<OffloadResult> {
        if let Some(g) = &self.gate {
            g.notified().await;
        }
        let injected = |step: &str| offload::OffloadError::Task(format!("injected failure {step}"));
        if self.fail == FailAt::BeforeUpload {
            return Err(injected("before upload"));
        }
        let r = self.inner.offload(ledger, uuid, extra).await?;
        match self.fail {
            FailAt::AfterDataBeforeIndex => {
                std::fs::remove_file(self.dir.join(&r.index_key)).unwrap();
                Err(injected("after data"))
            }
            FailAt::AfterIndexBeforeMetadata => Err(injected("after index")),
            _ => Ok(r),
        }
    }
}

async fn offloader(
    dir: &Path,
    fail: FailAt,
    gate: Option<Arc<tokio::sync::Notify>>,
) -> Arc<dyn LedgerOffloader> {
    faulty(dir, fail, gate, Default::default()).await
}

async fn faulty(
    dir: &Path,
    fail: FailAt,
    gate: Option<Arc<tokio::sync::Notify>>,
    fail_deletes: Arc<std::sync::atomic::AtomicBool>,
) -> Arc<dyn LedgerOffloader> {
    let c = OffloadConfig::new(Location::filesystem(dir));
    Arc::new(Faulty {
        inner: BlobStoreOffloader::new(c).await.unwrap(),
        dir: dir.to_path_buf(),
        fail,
        gate,
        fail_deletes,
    })
}

fn factory(dir: &Path, clock: &TestClock, o: Arc<dyn LedgerOffloader>) -> ManagedLedgerFactory {
    let (store, _) = LedgerStore::open(dir.join("ledgers"), StoreOptions::default()).unwrap();
    let meta = Arc::new(RedbStore::open(&dir.join("meta.redb")).unwrap());
    ManagedLedgerFactory::new(store, meta, Arc::new(clock.clone())).with_offloader(o)
}

fn config() -> ManagedLedgerConfig {
    ManagedLedgerConfig {
        max_entries_per_ledger: 100,
        min_rollover_ms: 0,
        retention_time_ms: -1,
        retention_size_bytes: -1,
        offload_deletion_lag_ms: Some(0),
        ..ManagedLedgerConfig::default()
    }
}

fn entry(i: usize) -> Bytes {
    Bytes::from(format!("entry-{i:06}-").repeat(1 + i % 9))
}

async fn append(ml: &ManagedLedger, range: std::ops::Range<usize>) {
    let mut receipts = Vec::new();
    for i in range {
        receipts.push(ml.append(entry(i)).await.unwrap());
    }
    for r in receipts {
        r.await.unwrap();
    }
}

async fn read_all(ml: &ManagedLedger) -> Vec<Bytes> {
    common::read_payloads(ml, 97).await
}

fn objects(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// Ledger files (open or sealed) in the hot tier (its journal directory is beside them).
fn hot_files(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("ledgers"))
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_string_lossy();
            name.ends_with(".open") || name.ends_with(".sealed")
        })
        .count()
}

const NAME: &str = "public/default/persistent/tiered";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offload_delete_hot_copies_read_from_the_tier_and_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let tier = dir.path().join("tier");
    let clock = TestClock::new(1_000_000);
    {
        let f = factory(
            dir.path(),
            &clock,
            offloader(&tier, FailAt::Never, None).await,
        );
        let ml = f.open(NAME, config()).await.unwrap();
        append(&ml, 0..1000).await;
        let stats = ml.stats().await;
        assert_eq!(
            stats.ledgers.len(),
            11,
            "10 full ledgers and an empty current one"
        );
        let current = stats.ledgers.last().unwrap().ledger_id;
        let first_unoffloaded = ml.offload_prefix(Position::new(current, 0)).await.unwrap();
        assert_eq!(first_unoffloaded, Position::new(current, 0));
        let stats = ml.stats().await;
        assert!(stats.ledgers[..10].iter().all(|l| {
            l.offload
                .as_ref()
                .is_some_and(|o| o.complete && !o.hot_deleted)
        }));
        assert_eq!(objects(&tier), 20, "a data and an index object per ledger");
        // Nothing more to offload: a second call succeeds at once.
        assert_eq!(
            ml.offload_prefix(Position::new(current, 0)).await.unwrap(),
            Position::new(current, 0)
        );

        // Deletion lag 0: the next trim after the offload deletes the hot copies.
        clock.advance_ms(1);
        ml.trim().await.unwrap();
        assert_eq!(
            hot_files(dir.path()),
            1,
            "only the current ledger's file remains"
        );
        assert!(
            ml.stats().await.ledgers[..10]
                .iter()
                .all(|l| l.offload.as_ref().unwrap().hot_deleted)
        );
        assert_eq!(
            read_all(&ml).await,
            (0..1000).map(entry).collect::<Vec<_>>()
        );
        append(&ml, 1000..1010).await;
    }
    let f = factory(
        dir.path(),
        &clock,
        offloader(&tier, FailAt::Never, None).await,
    );
    let ml = f.open(NAME, config()).await.unwrap();
    assert_eq!(
        read_all(&ml).await,
        (0..1010).map(entry).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_failure_window_leaves_a_state_the_next_open_cleans_up() {
    for fail in [
        FailAt::BeforeUpload,
        FailAt::AfterDataBeforeIndex,
        FailAt::AfterIndexBeforeMetadata,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let tier = dir.path().join("tier");
        let clock = TestClock::new(1_000_000);
        let current = {
            let f = factory(dir.path(), &clock, offloader(&tier, fail, None).await);
            let ml = f.open(NAME, config()).await.unwrap();
            append(&ml, 0..250).await;
            let current = ml.stats().await.ledgers.last().unwrap().ledger_id;
            let e = ml
                .offload_prefix(Position::new(current, 0))
                .await
                .unwrap_err();
            assert!(e.to_string().contains("injected failure"), "{fail:?}: {e}");
            let stats = ml.stats().await;
            assert!(
                stats
                    .ledgers
                    .iter()
                    .all(|l| l.offload.as_ref().is_none_or(|o| !o.complete)),
                "{fail:?}: no ledger may be marked offloaded"
            );
            clock.advance_ms(1);
            ml.trim().await.unwrap();
            assert_eq!(
                read_all(&ml).await.len(),
                250,
                "{fail:?}: reads still come from the hot tier"
            );
            current
            // Dropped without close: as if the broker died here.
        };
        let f = factory(
            dir.path(),
            &clock,
            offloader(&tier, FailAt::Never, None).await,
        );
        let ml = f.open(NAME, config()).await.unwrap();
        assert!(
            ml.stats().await.ledgers.iter().all(|l| l.offload.is_none()),
            "{fail:?}: contexts cleared"
        );
        assert_eq!(objects(&tier), 0, "{fail:?}: orphaned objects removed");
        assert_eq!(
            read_all(&ml).await,
            (0..250).map(entry).collect::<Vec<_>>(),
            "{fail:?}"
        );
        // A later attempt (new uuid) succeeds.
        ml.offload_prefix(Position::new(current, 0)).await.unwrap();
        assert_eq!(objects(&tier), 4, "{fail:?}: two ledgers offloaded");
        clock.advance_ms(1);
        ml.trim().await.unwrap();
        assert_eq!(
            read_all(&ml).await,
            (0..250).map(entry).collect::<Vec<_>>(),
            "{fail:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_one_offload_runs_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(1_000_000);
    let gate = Arc::new(tokio::sync::Notify::new());
    let f = factory(
        dir.path(),
        &clock,
        offloader(
            &dir.path().join("tier"),
            FailAt::Never,
            Some(Arc::clone(&gate)),
        )
        .await,
    );
    let ml = f.open(NAME, config()).await.unwrap();
    append(&ml, 0..150).await;
    let current = ml.stats().await.ledgers.last().unwrap().ledger_id;
    let running = {
        let ml = ml.clone();
        tokio::spawn(async move { ml.offload_prefix(Position::new(current, 0)).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let second = ml
        .offload_prefix(Position::new(current, 0))
        .await
        .unwrap_err();
    assert!(matches!(second, LedgerError::OffloadInProgress), "{second}");
    assert_eq!(second.to_string(), "Offload already in progress");
    gate.notify_one();
    running.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_removing_an_offloaded_ledger_deletes_its_objects() {
    let dir = tempfile::tempdir().unwrap();
    let tier = dir.path().join("tier");
    let clock = TestClock::new(1_000_000);
    let f = factory(
        dir.path(),
        &clock,
        offloader(&tier, FailAt::Never, None).await,
    );
    let mut c = config();
    c.offload_deletion_lag_ms = None;
    let ml = f.open(NAME, c.clone()).await.unwrap();
    append(&ml, 0..300).await;
    let current = ml.stats().await.ledgers.last().unwrap().ledger_id;
    ml.offload_prefix(Position::new(current, 0)).await.unwrap();
    assert_eq!(objects(&tier), 6);
    assert_eq!(
        hot_files(dir.path()),
        4,
        "no deletion lag configured: hot copies stay"
    );
    c.retention_size_bytes = 0;
    c.retention_time_ms = 0;
    ml.set_config(c);
    assert_eq!(ml.trim().await.unwrap().len(), 3);
    assert_eq!(objects(&tier), 0, "objects of trimmed ledgers are deleted");
    assert_eq!(hot_files(dir.path()), 1);
}

async fn wait_until(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !f().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threshold_zero_offloads_each_ledger_after_rollover_and_negative_never() {
    let dir = tempfile::tempdir().unwrap();
    let tier = dir.path().join("tier");
    let clock = TestClock::new(1_000_000);
    let f = factory(
        dir.path(),
        &clock,
        offloader(&tier, FailAt::Never, None).await,
    );
    let mut c = config();
    c.offload_threshold_bytes = 0;
    let ml = f.open(NAME, c).await.unwrap();
    append(&ml, 0..500).await;
    wait_until("five ledgers offloaded", async || {
        ml.stats()
            .await
            .ledgers
            .iter()
            .filter(|l| l.offload.as_ref().is_some_and(|o| o.complete))
            .count()
            == 5
    })
    .await;
    assert_eq!(objects(&tier), 10);

    let mut c = config();
    c.offload_threshold_bytes = -1;
    let other = f.open("public/default/persistent/never", c).await.unwrap();
    append(&other, 0..500).await;
    assert!(other.auto_offload().await.unwrap().is_empty());
    assert!(
        other
            .stats()
            .await
            .ledgers
            .iter()
            .all(|l| l.offload.is_none())
    );
    assert_eq!(objects(&tier), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_removes_tier_objects_too_and_an_interrupted_deletion_is_finished() {
    let dir = tempfile::tempdir().unwrap();
    let tier = dir.path().join("tier");
    let clock = TestClock::new(1_000_000);
    let unreachable = Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let o = faulty(&tier, FailAt::Never, None, Arc::clone(&unreachable)).await;
        let f = factory(dir.path(), &clock, o);
        let mut c = config();
        c.offload_deletion_lag_ms = None;
        let ml = f.open(NAME, c).await.unwrap();
        append(&ml, 0..300).await;
        ml.open_cursor("sub", ledger::InitialPosition::Earliest)
            .await
            .unwrap();
        let current = ml.stats().await.ledgers.last().unwrap().ledger_id;
        ml.offload_prefix(Position::new(current, 0)).await.unwrap();
        assert_eq!(objects(&tier), 6);
        assert_eq!(hot_files(dir.path()), 4);

        // The store is unreachable: the deletion stops with that error and stays pending.
        unreachable.store(true, std::sync::atomic::Ordering::SeqCst);
        let e = f.delete(NAME).await.unwrap_err();
        assert!(e.to_string().contains("injected delete failure"), "{e}");
        assert!(
            f.exists(NAME).await.unwrap(),
            "the list stays until the end"
        );
        let e = f.open(NAME, config()).await.unwrap_err();
        assert!(matches!(e, LedgerError::Deleting(_)), "{e}");
        assert_eq!(objects(&tier), 6);
        // Dropped: as if the broker stopped here.
    }
    unreachable.store(false, std::sync::atomic::Ordering::SeqCst);
    let o = faulty(&tier, FailAt::Never, None, Arc::clone(&unreachable)).await;
    let f = factory(dir.path(), &clock, o);
    assert_eq!(f.finish_deletions().await.unwrap(), vec![NAME.to_string()]);
    assert_eq!(objects(&tier), 0, "offloaded objects deleted");
    assert_eq!(hot_files(dir.path()), 0, "hot files deleted");
    assert!(!f.exists(NAME).await.unwrap());
    assert!(f.finish_deletions().await.unwrap().is_empty());
    // Deleting again, or what never existed, succeeds.
    f.delete(NAME).await.unwrap();
    // The name is free: a new, empty topic with no cursor of the old one.
    let ml = f.open(NAME, config()).await.unwrap();
    assert!(read_all(&ml).await.is_empty());
    assert!(ml.cursors().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offloaded_ledgers_are_read_and_deleted_where_they_were_written() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (dir.path().join("first"), dir.path().join("second"));
    let clock = TestClock::new(1_000_000);
    {
        let f = factory(
            dir.path(),
            &clock,
            offloader(&first, FailAt::Never, None).await,
        );
        let ml = f.open(NAME, config()).await.unwrap();
        append(&ml, 0..300).await;
        let current = ml.stats().await.ledgers.last().unwrap().ledger_id;
        ml.offload_prefix(Position::new(current, 0)).await.unwrap();
        clock.advance_ms(1);
        ml.trim().await.unwrap();
        assert_eq!(
            hot_files(dir.path()),
            1,
            "hot copies gone: reads need the tier"
        );
        // Offload now goes elsewhere, then nowhere: the ledgers are read where they are.
        ml.set_offloader(Some(offloader(&second, FailAt::Never, None).await));
        assert_eq!(read_all(&ml).await, (0..300).map(entry).collect::<Vec<_>>());
        ml.set_offloader(None);
        assert_eq!(read_all(&ml).await, (0..300).map(entry).collect::<Vec<_>>());
    }
    // After a restart with offload going elsewhere.
    let f = factory(
        dir.path(),
        &clock,
        offloader(&second, FailAt::Never, None).await,
    );
    let ml = f.open(NAME, config()).await.unwrap();
    assert_eq!(read_all(&ml).await, (0..300).map(entry).collect::<Vec<_>>());
    // Retention removes them from where they were written.
    let mut c = config();
    c.retention_size_bytes = 0;
    c.retention_time_ms = 0;
    ml.set_config(c);
    assert_eq!(ml.trim().await.unwrap().len(), 3);
    assert_eq!(objects(&first), 0);
    assert_eq!(objects(&second), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offload_index_records_when_the_ledger_was_created() {
    let dir = tempfile::tempdir().unwrap();
    let tier = dir.path().join("tier");
    let clock = TestClock::new(1_700_000_000_000);
    let o = offloader(&tier, FailAt::Never, None).await;
    let f = factory(dir.path(), &clock, Arc::clone(&o));
    let ml = f.open(NAME, config()).await.unwrap();
    clock.advance_ms(5_000);
    append(&ml, 0..100).await;
    let first = ml.stats().await.ledgers[0].clone();
    assert_eq!(first.created_ms, 1_700_000_000_000);
    let current = ml.stats().await.ledgers.last().unwrap().ledger_id;
    ml.offload_prefix(Position::new(current, 0)).await.unwrap();
    let ctx = ml.stats().await.ledgers[0].offload.clone().unwrap();
    let h = o
        .read(
            first.ledger_id,
            ctx.uuid().unwrap(),
            &ctx.location().unwrap(),
        )
        .await
        .unwrap();
    let meta = h.index().metadata.clone().unwrap();
    assert_eq!(meta.ctime, Some(1_700_000_000_000));
}

/// A real offloader that uploads `parallel` ledgers at once and records how many it was asked
/// to upload at the same moment.
struct Concurrent {
    inner: BlobStoreOffloader,
    parallel: usize,
    active: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
}

common::tier_reader_through_inner!(Concurrent);

#[async_trait::async_trait]
impl LedgerOffloader for Concurrent {
    fn location(&self) -> &Location {
        self.inner.location()
    }
    fn max_parallel_ledgers(&self) -> usize {
        self.parallel
    }
    async fn offload(
        &self,
        ledger: &dyn LedgerSource,
        uuid: Uuid,
        extra: &BTreeMap<String, String>,
    ) -> offload::Result<OffloadResult> {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.active.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(now, SeqCst);
        // Long enough for the others to start if they are going to.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let r = self.inner.offload(ledger, uuid, extra).await;
        self.active.fetch_sub(1, SeqCst);
        r
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_managed_ledger_offloads_as_many_ledgers_at_once_as_its_offloader_takes() {
    for parallel in [1usize, 3] {
        let dir = tempfile::tempdir().unwrap();
        let clock = TestClock::new(1_000_000);
        let tier = dir.path().join("tier");
        let o = Arc::new(Concurrent {
            inner: BlobStoreOffloader::new(OffloadConfig::new(Location::filesystem(&tier)))
                .await
                .unwrap(),
            parallel,
            active: Default::default(),
            most: Default::default(),
        });
        let f = factory(
            dir.path(),
            &clock,
            Arc::clone(&o) as Arc<dyn LedgerOffloader>,
        );
        let ml = f.open(NAME, config()).await.unwrap();
        append(&ml, 0..550).await; // five full ledgers and the one being written
        let current = ml.stats().await.ledgers.last().unwrap().ledger_id;
        ml.offload_prefix(Position::new(current, 0)).await.unwrap();
        assert_eq!(
            o.most.load(std::sync::atomic::Ordering::SeqCst),
            parallel,
            "ledgers offloading at once"
        );
        let stats = ml.stats().await;
        let offloaded = stats
            .ledgers
            .iter()
            .filter(|l| l.offload.as_ref().is_some_and(|c| c.complete))
            .count();
        assert_eq!(offloaded, 5);
        // Every entry still reads back, from the tier once the hot copies go.
        assert_eq!(read_all(&ml).await, (0..550).map(entry).collect::<Vec<_>>());
    }
}

/// A real offloader that names a runtime of its own for the source's reads and counts the
/// threads that runtime starts.
struct WithBackground {
    inner: BlobStoreOffloader,
    runtime: &'static tokio::runtime::Runtime,
    threads_started: Arc<std::sync::atomic::AtomicUsize>,
}

common::tier_reader_through_inner!(WithBackground);

#[async_trait::async_trait]
impl LedgerOffloader for WithBackground {
    fn location(&self) -> &Location {
        self.inner.location()
    }
    fn background(&self) -> Option<tokio::runtime::Handle> {
        Some(self.runtime.handle().clone())
    }
    async fn offload(
        &self,
        ledger: &dyn LedgerSource,
        uuid: Uuid,
        extra: &BTreeMap<String, String>,
    ) -> offload::Result<OffloadResult> {
        self.inner.offload(ledger, uuid, extra).await
    }
}

/// An offload's reads of the hot copy run on the offloader's background runtime (whose threads
/// yield the CPUs to the broker's), not on the managed ledger's: there a ledger's worth of
/// copying and checksums delayed producers' acknowledgements.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offloads_reads_of_the_hot_copy_run_on_the_offloaders_background_runtime() {
    use std::sync::atomic::Ordering::SeqCst;
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(1_000_000);
    let threads_started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::clone(&threads_started);
    // Leaked: a runtime may not be dropped inside another one, and the test process ends here.
    let runtime: &'static tokio::runtime::Runtime = Box::leak(Box::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .on_thread_start(move || {
                counter.fetch_add(1, SeqCst);
            })
            .build()
            .unwrap(),
    ));
    // Its one worker thread has started (and been counted) once it has run a task.
    runtime.spawn(async {}).await.unwrap();
    let o = Arc::new(WithBackground {
        inner: BlobStoreOffloader::new(OffloadConfig::new(Location::filesystem(
            dir.path().join("tier"),
        )))
        .await
        .unwrap(),
        runtime,
        threads_started: Arc::clone(&threads_started),
    });
    let f = factory(
        dir.path(),
        &clock,
        Arc::clone(&o) as Arc<dyn LedgerOffloader>,
    );
    let ml = f.open(NAME, config()).await.unwrap();
    append(&ml, 0..250).await; // two full ledgers and the one being written
    let before = o.threads_started.load(SeqCst);
    let current = ml.stats().await.ledgers.last().unwrap().ledger_id;
    ml.offload_prefix(Position::new(current, 0)).await.unwrap();
    assert!(
        o.threads_started.load(SeqCst) > before,
        "the reads started a blocking thread of the offloader's runtime ({before} threads before)"
    );
    assert_eq!(read_all(&ml).await, (0..250).map(entry).collect::<Vec<_>>());
}

/// A crash after the ledger list recorded a hot copy deleted but before its file went (trim
/// persists first, deletes second): the file is garbage, and start-up's collection deletes it,
/// while the hot copies of offloaded ledgers still within their deletion lag stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_deletes_a_hot_copy_the_ledger_list_says_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let tier = dir.path().join("tier");
    let clock = TestClock::new(1_000_000);
    let mut c = config();
    c.offload_deletion_lag_ms = None;
    let first = {
        let f = factory(
            dir.path(),
            &clock,
            offloader(&tier, FailAt::Never, None).await,
        );
        let ml = f.open(NAME, c.clone()).await.unwrap();
        append(&ml, 0..300).await;
        let stats = ml.stats().await;
        let current = stats.ledgers.last().unwrap().ledger_id;
        ml.offload_prefix(Position::new(current, 0)).await.unwrap();
        f.close_all().await.unwrap();
        stats.ledgers[0].ledger_id
    };
    assert_eq!(hot_files(dir.path()), 4);
    // What trim persists before deleting the file, without the deletion: the crash window.
    {
        use meta::{Expected, MetadataStore};
        let meta = RedbStore::open(&dir.path().join("meta.redb")).unwrap();
        let key = ledger::info::ml_key(NAME);
        let v = meta.get(&key).await.unwrap().unwrap();
        let mut info: ledger::info::ManagedLedgerInfo =
            ledger::info::decode(&key, &v.value).unwrap();
        let o = info.ledgers[0].offload.as_mut().unwrap();
        assert!(o.complete && !o.hot_deleted);
        o.hot_deleted = true;
        meta.put(
            &key,
            ledger::info::encode(&info),
            Expected::Version(v.version),
        )
        .await
        .unwrap();
    }
    let f = factory(
        dir.path(),
        &clock,
        offloader(&tier, FailAt::Never, None).await,
    );
    assert_eq!(f.collect_garbage().await.unwrap(), vec![first as u64]);
    assert_eq!(
        hot_files(dir.path()),
        3,
        "the two offloaded ledgers within their lag and the open one keep their files"
    );
    let ml = f.open(NAME, c).await.unwrap();
    assert_eq!(read_all(&ml).await, (0..300).map(entry).collect::<Vec<_>>());
}

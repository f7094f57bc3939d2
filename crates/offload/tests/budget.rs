//! The broker-wide offload budget: offloaders sharing one store cache upload at most its number
//! of ledgers at once, whoever asks.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use bytes::Bytes;
use offload::{
    BlobStoreOffloader, LedgerOffloader, LedgerSource, Location, ObjectStores, OffloadBudget,
    OffloadConfig,
};

/// A ledger whose reads take a while and are counted: `active` is how many uploads are reading
/// at this moment.
struct Slow {
    id: i64,
    active: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl LedgerSource for Slow {
    fn ledger_id(&self) -> i64 {
        self.id
    }
    fn last_entry_id(&self) -> i64 {
        19
    }
    fn length(&self) -> u64 {
        20 * 100
    }
    fn created_ms(&self) -> u64 {
        1
    }
    async fn read(&self, first: i64, last: i64, _max: usize) -> Result<Vec<Bytes>, String> {
        let now = self.active.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(now, SeqCst);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        self.active.fetch_sub(1, SeqCst);
        Ok((first..=last.min(first))
            .map(|_| Bytes::from(vec![1u8; 100]))
            .collect())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offloaders_sharing_a_budget_upload_at_most_its_ledgers_at_once() {
    for max_ledgers in [1usize, 2] {
        let dir = tempfile::tempdir().unwrap();
        let stores = Arc::new(
            ObjectStores::default().with_offload_budget(OffloadBudget::new(max_ledgers, 8)),
        );
        // Two offloaders (two topics' policies, say) over the same stores.
        let mut offloaders = Vec::new();
        for sub in ["a", "b"] {
            let c = OffloadConfig::new(Location::filesystem(dir.path().join(sub)));
            offloaders.push(Arc::new(
                BlobStoreOffloader::with_stores(c, Arc::clone(&stores))
                    .await
                    .unwrap(),
            ));
        }
        // Twice the turns: one ledger may send its last parts while the next one reads.
        assert_eq!(offloaders[0].max_parallel_ledgers(), 2 * max_ledgers);
        let (active, most) = (Arc::<AtomicUsize>::default(), Arc::<AtomicUsize>::default());
        let mut tasks = Vec::new();
        for id in 0..6 {
            let o = Arc::clone(&offloaders[id as usize % 2]);
            let source = Slow {
                id,
                active: Arc::clone(&active),
                most: Arc::clone(&most),
            };
            tasks.push(tokio::spawn(async move {
                o.offload(&source, uuid::Uuid::new_v4(), &BTreeMap::new())
                    .await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(most.load(SeqCst), max_ledgers, "uploads reading at once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_offloads_and_reads_still_finish_and_read_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let stores = Arc::new(
        ObjectStores::default()
            .with_offload_budget(OffloadBudget::new(2, 10).with_upload_rate(100 << 20))
            .with_read_rate(100 << 20),
    );
    let mut c = OffloadConfig::new(Location::filesystem(dir.path()));
    c.max_block_size_bytes = 5 << 20;
    let o = BlobStoreOffloader::with_stores(c, stores).await.unwrap();
    // ~12 MiB in three blocks, with a rate of 10 MiB per 100 ms at most in a burst.
    let entries: Vec<Bytes> = (0..3000u32)
        .map(|i| Bytes::from(i.to_be_bytes().repeat(1024)))
        .collect();
    let source = Entries(entries.clone());
    let uuid = uuid::Uuid::new_v4();
    let r = o.offload(&source, uuid, &BTreeMap::new()).await.unwrap();
    assert_eq!(r.blocks, 3);
    let h = offload::TierReader::read(&o, 1, uuid, o.location())
        .await
        .unwrap();
    assert_eq!(h.read(0, 2999).await.unwrap(), entries);
}

struct Entries(Vec<Bytes>);

#[async_trait::async_trait]
impl LedgerSource for Entries {
    fn ledger_id(&self) -> i64 {
        1
    }
    fn last_entry_id(&self) -> i64 {
        self.0.len() as i64 - 1
    }
    fn length(&self) -> u64 {
        self.0.iter().map(|e| e.len() as u64).sum()
    }
    fn created_ms(&self) -> u64 {
        1
    }
    async fn read(&self, first: i64, last: i64, max: usize) -> Result<Vec<Bytes>, String> {
        Ok(up_to(&self.0[first as usize..=last as usize], max))
    }
}

/// The first of `entries` that fit in `max` bytes, at least one (as a ledger's reads answer).
fn up_to(entries: &[Bytes], max: usize) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut bytes = 0;
    for e in entries {
        if !out.is_empty() && bytes + e.len() > max {
            break;
        }
        bytes += e.len();
        out.push(e.clone());
    }
    out
}

/// A ledger of `n` entries of 4 KiB.
fn four_kib_entries(n: u32) -> Entries {
    Entries(
        (0..n)
            .map(|i| Bytes::from(i.to_be_bytes().repeat(1024)))
            .collect(),
    )
}

/// Namespace and topic rates (offload policies' `managedLedgerOffloadFlowPermitsPerSecond` and
/// `…ReadFlowPermitsPerSecond`) are shared by the offloads and reads of their scope only: two
/// topics of one namespace take twice as long as one, while a topic of another namespace, or
/// one without a limit, is not slowed by them. Lower bounds only: a rate can only slow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_and_topic_rates_limit_their_own_offloads_and_reads() {
    use offload::ScopedLimit;
    use std::time::{Duration, Instant};
    const RATE: u64 = 4_000_000;
    let dir = tempfile::tempdir().unwrap();
    let stores = Arc::new(ObjectStores::default());
    let offloader = |sub: &str, upload: Option<&str>, read: Option<&str>| {
        let mut c = OffloadConfig::new(Location::filesystem(dir.path().join(sub)));
        c.max_block_size_bytes = 5 << 20;
        let limit = |scope: &str| ScopedLimit {
            scope: scope.into(),
            bytes_per_second: RATE,
        };
        c.upload_limits = upload.map(limit).into_iter().collect();
        c.read_limits = read.map(limit).into_iter().collect();
        let stores = Arc::clone(&stores);
        async move { Arc::new(BlobStoreOffloader::with_stores(c, stores).await.unwrap()) }
    };
    // ~4 MB per ledger: about a second at the rate.
    let source = Arc::new(four_kib_entries(1000));
    let timed_offload = |o: Arc<BlobStoreOffloader>| {
        let source = Arc::clone(&source);
        tokio::spawn(async move {
            let start = Instant::now();
            let uuid = uuid::Uuid::new_v4();
            o.offload(source.as_ref(), uuid, &BTreeMap::new())
                .await
                .unwrap();
            (start.elapsed(), uuid)
        })
    };

    // Two topics of namespace a: 8 MB at 4 MB/s together (less the bucket's first 0.4 MB).
    let a1 = offloader("a1", Some("namespace t/a"), None).await;
    let a2 = offloader("a2", Some("namespace t/a"), None).await;
    let start = Instant::now();
    let (x, y) = (timed_offload(a1), timed_offload(a2));
    let (x, y) = (x.await.unwrap(), y.await.unwrap());
    let shared = start.elapsed();
    assert!(shared >= Duration::from_millis(1600), "{shared:?}");
    // Neither escapes the rate. (Not both ~2 s: the ledgers are read at the source pace first,
    // meanwhile the idle upload bucket saves up to a second of permits, which the first part
    // to ask spends.)
    assert!(
        x.0.min(y.0) >= Duration::from_millis(900),
        "both wait: {x:?} {y:?}"
    );

    // A topic of namespace b at the same time as one without a limit: b's 4 MB take about a
    // second, the other is not held back by anyone's rate.
    let b = offloader("b", Some("namespace t/b"), None).await;
    let free = offloader("free", None, Some("topic t/free/x")).await;
    let (b_run, free_run) = (timed_offload(b), timed_offload(Arc::clone(&free)));
    let (b_run, free_run) = (b_run.await.unwrap(), free_run.await.unwrap());
    assert!(b_run.0 >= Duration::from_millis(700), "{b_run:?}");
    assert!(free_run.0 < b_run.0, "{free_run:?} vs {b_run:?}");

    // Reads under the topic's read rate: 4 MB take about a second, and read back whole.
    let h = offload::TierReader::read(free.as_ref(), 1, free_run.1, free.location())
        .await
        .unwrap();
    let start = Instant::now();
    assert_eq!(h.read(0, 999).await.unwrap(), source.0);
    let read = start.elapsed();
    assert!(read >= Duration::from_millis(700), "{read:?}");
}

/// A ledger of 4 KiB entries that honours the read size asked for and records, for every read,
/// when it came (since the first) and how many bytes had been read before it.
struct Recorded {
    entries: Vec<Bytes>,
    reads: std::sync::Mutex<Reads>,
}

#[derive(Default)]
struct Reads {
    first: Option<std::time::Instant>,
    bytes: u64,
    /// Seconds since the first read, bytes read before it.
    log: Vec<(f64, u64)>,
}

#[async_trait::async_trait]
impl LedgerSource for Recorded {
    fn ledger_id(&self) -> i64 {
        1
    }
    fn last_entry_id(&self) -> i64 {
        self.entries.len() as i64 - 1
    }
    fn length(&self) -> u64 {
        self.entries.iter().map(|e| e.len() as u64).sum()
    }
    fn created_ms(&self) -> u64 {
        1
    }
    async fn read(&self, first: i64, last: i64, max: usize) -> Result<Vec<Bytes>, String> {
        let out = up_to(&self.entries[first as usize..=last as usize], max);
        let bytes: usize = out.iter().map(|e| e.len()).sum();
        let mut r = self.reads.lock().unwrap();
        let start = *r.first.get_or_insert_with(std::time::Instant::now);
        let before = r.bytes;
        r.log.push((start.elapsed().as_secs_f64(), before));
        r.bytes += bytes as u64;
        Ok(out)
    }
}

/// An offloader into `dir` with one ledger turn, 10 parts, 5 MiB blocks and uploads at `rate`.
async fn one_turn_offloader(dir: &std::path::Path, rate: u64) -> BlobStoreOffloader {
    let stores = Arc::new(
        ObjectStores::default()
            .with_offload_budget(OffloadBudget::new(1, 10).with_upload_rate(rate)),
    );
    let mut c = OffloadConfig::new(Location::filesystem(dir));
    c.max_block_size_bytes = 5 << 20;
    BlobStoreOffloader::with_stores(c, stores).await.unwrap()
}

/// An offload under a rate reads its ledger at that rate too, not as far ahead as its parts in
/// flight allow: read at disk speed, a ledger's blocks came in bursts of hundreds of MB that
/// slowed the producers sharing the disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_offload_reads_its_ledger_at_the_rate_not_ahead_of_it() {
    const RATE: u64 = 8 << 20;
    let dir = tempfile::tempdir().unwrap();
    let o = one_turn_offloader(dir.path(), RATE).await;
    // 12 MiB: three blocks, all of which four parts in flight would let be read at once.
    let source = Recorded {
        entries: four_kib_entries(3000).0,
        reads: Default::default(),
    };
    o.offload(&source, uuid::Uuid::new_v4(), &BTreeMap::new())
        .await
        .unwrap();
    let reads = source.reads.lock().unwrap().log.clone();
    assert!(reads.len() >= 8, "read in pieces: {} reads", reads.len());
    // Reads run at four times the upload rate at most, while fewer than two parts are
    // uploading (the uploads wait for a block); allowed: the bucket's first tenth of a second,
    // one read's size and rounding.
    let read_rate = 4 * RATE;
    let allowance = (read_rate / 10 + read_rate / 20 + (1 << 20)) as f64;
    for (at, before) in &reads {
        assert!(
            (*before as f64) <= read_rate as f64 * at + allowance,
            "{before} bytes read within {at:.3} s at {read_rate} B/s"
        );
    }
}

/// A ledger's turn ends when its last block is read, not when its last part is sent: the next
/// ledger reads meanwhile. While a turn lasted to the end, a throttled offload's reads stopped
/// at every ledger's end and its uploads then waited for the next ledger's first block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_ledger_reads_while_the_ledger_before_sends_its_last_parts() {
    // One turn; uploads at 2 MiB/s (a second of it may go at once).
    const RATE: u64 = 2 << 20;
    let dir = tempfile::tempdir().unwrap();
    let o = Arc::new(one_turn_offloader(dir.path(), RATE).await);
    let [a, b] = [(); 2].map(|()| {
        Arc::new(Recorded {
            entries: four_kib_entries(1000).0, // ~4 MiB: one block, sent over ~1 s
            reads: Default::default(),
        })
    });
    let offload = |source: Arc<Recorded>| {
        let o = Arc::clone(&o);
        tokio::spawn(async move {
            o.offload(source.as_ref(), uuid::Uuid::new_v4(), &BTreeMap::new())
                .await
                .unwrap();
            std::time::Instant::now()
        })
    };
    let a_task = offload(Arc::clone(&a));
    // `a` takes the turn first.
    while a.reads.lock().unwrap().first.is_none() {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let b_task = offload(Arc::clone(&b));
    let a_done = a_task.await.unwrap();
    b_task.await.unwrap();
    let a_reads = a.reads.lock().unwrap();
    let a_last_read =
        a_reads.first.unwrap() + std::time::Duration::from_secs_f64(a_reads.log.last().unwrap().0);
    let b_first_read = b.reads.lock().unwrap().first.unwrap();
    assert!(
        b_first_read >= a_last_read,
        "one turn: b read while a was reading"
    );
    // `a` still had about a second of parts to send after its last read; `b` started reading
    // within the first half of it (with the turn held to the end: at its very end).
    let (b_waited, a_sent_after) = (b_first_read - a_last_read, a_done - a_last_read);
    assert!(
        b_waited < a_sent_after / 2,
        "b waited {b_waited:?} after a was read; a's upload ended {a_sent_after:?} after it"
    );
}

/// Ledger `id` of a topic, with `entries`.
struct Ledger {
    id: i64,
    entries: Entries,
}

#[async_trait::async_trait]
impl LedgerSource for Ledger {
    fn ledger_id(&self) -> i64 {
        self.id
    }
    fn last_entry_id(&self) -> i64 {
        self.entries.last_entry_id()
    }
    fn length(&self) -> u64 {
        self.entries.length()
    }
    fn created_ms(&self) -> u64 {
        1
    }
    async fn read(&self, first: i64, last: i64, max: usize) -> Result<Vec<Bytes>, String> {
        self.entries.read(first, last, max).await
    }
}

/// Under a rate, two ledgers of one topic offloading at once send their parts oldest ledger
/// first: the older is done about halfway, not both at the end (when they shared the rate part
/// by part, neither was offloaded until the last part of both went). Two topics' offloads
/// still share the rate side by side: neither waits for the other to end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_rate_a_topics_older_ledger_goes_first_and_topics_share_the_rate() {
    use std::time::{Duration, Instant};
    const RATE: u64 = 16 << 20;
    let dir = tempfile::tempdir().unwrap();
    let stores = Arc::new(
        ObjectStores::default()
            .with_offload_budget(OffloadBudget::new(2, 10).with_upload_rate(RATE)),
    );
    let mut c = OffloadConfig::new(Location::filesystem(dir.path()));
    c.max_block_size_bytes = 5 << 20;
    let o = Arc::new(BlobStoreOffloader::with_stores(c, stores).await.unwrap());
    // Two ledgers of ~16 MiB (four parts each) at once: ~2 s at the rate.
    let offload = |id: i64, topic: &str, start: Instant| {
        let o = Arc::clone(&o);
        let extra = BTreeMap::from([(
            offload::keys::MANAGED_LEDGER_NAME.to_string(),
            topic.to_string(),
        )]);
        tokio::spawn(async move {
            let ledger = Ledger {
                id,
                entries: four_kib_entries(4000),
            };
            o.offload(&ledger, uuid::Uuid::new_v4(), &extra)
                .await
                .unwrap();
            start.elapsed()
        })
    };
    let both = |(a_topic, b_topic): (&'static str, &'static str)| async move {
        let start = Instant::now();
        let a = offload(1, a_topic, start);
        // Ledger 1 asks first, as a managed ledger starts its offloads oldest first.
        tokio::time::sleep(Duration::from_millis(30)).await;
        let b = offload(2, b_topic, start);
        (a.await.unwrap(), b.await.unwrap())
    };
    let (older, younger) = both(("t/ns/x", "t/ns/x")).await;
    assert!(younger >= Duration::from_millis(1500), "{younger:?}");
    assert!(
        older.as_secs_f64() <= 0.7 * younger.as_secs_f64(),
        "one topic: ledger 1 done at {older:?}, ledger 2 at {younger:?}"
    );
    let (x, y) = both(("t/ns/x", "t/ns/y")).await;
    // One after the other, the first would be done at half the time of the second; sharing
    // part by part, near the same time. A part is 5 MiB, ~0.3 s at the rate, and on a loaded
    // machine one topic may get a part's turn ahead (1.47 s against 1.98 s, 0.74, seen in CI):
    // the bound sits between the two shapes, not at the ideal.
    assert!(
        x.min(y).as_secs_f64() >= 0.6 * x.max(y).as_secs_f64(),
        "two topics: done at {x:?} and {y:?}"
    );
}

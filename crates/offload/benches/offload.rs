//! Offload and read-back throughput as ratios to raw object-store operations on the same server,
//! in the same run, without and with 20 ms of added latency per request.
//!
//! Run: `./scripts/bench offload` (or `cargo bench -p offload --bench offload` once `.venv` exists).
//! `TIERLOG_BENCH_MIB` sets the ledger size (default 512 MiB).
//!
//! - raw PUT: the same number of bytes as the data object, as one multipart upload with the same
//!   part size and the same number of parts in flight, straight through object_store;
//! - offload: a generated ledger of 4 KiB entries through the offloader (blocks, index);
//! - raw GET: one whole-object GET of the data object, streamed;
//! - read-back: every entry through a fresh read handle, 1000 entries per read: with 1 MiB ranges
//!   (as before long ranges), with ranges growing to 16 MiB, and again from the disk cache after
//!   a first read filled it; with the time to open a handle and read the first entry;
//! - peak RSS added during the offload (VmHWM after resetting it), the ledger being generated on
//!   the fly so that only the offload's own buffers count.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use offload::{
    BlobStoreOffloader, ChunkCache, LedgerOffloader, LedgerSource, Location, ObjectStores,
    OffloadConfig, TierReader,
};
use testkit::moto::MotoServer;
use testkit::proxy::HttpProxy;

const ENTRY: usize = 4096;
const BLOCK: u64 = 64 << 20;
const PARALLEL: usize = 4;

/// Ledger `id` of `entries` entries, generated when read (so peak RSS shows only the offload's
/// own buffers).
struct GeneratedLedger {
    id: i64,
    entries: i64,
}

#[async_trait::async_trait]
impl LedgerSource for GeneratedLedger {
    fn ledger_id(&self) -> i64 {
        self.id
    }
    fn last_entry_id(&self) -> i64 {
        self.entries - 1
    }
    fn length(&self) -> u64 {
        self.entries as u64 * ENTRY as u64
    }
    fn created_ms(&self) -> u64 {
        0
    }
    async fn read(&self, first: i64, last: i64, max_bytes: usize) -> Result<Vec<Bytes>, String> {
        let n = ((max_bytes / ENTRY).max(1) as i64).min(last - first + 1);
        Ok((first..first + n).map(entry).collect())
    }
}

/// Ten ledgers of one 64 MiB block each, offloaded at once as a managed ledger does (the budget
/// lets PARALLEL of them upload together: PARALLEL parts in flight), against ten raw one-part
/// multipart uploads of 64 MiB with as many in flight.
async fn many_ledgers(endpoint: &str, (key, secret): (&str, &str)) -> (f64, f64) {
    const LEDGERS: i64 = 10;
    let mut c = OffloadConfig::new(Location::s3_compatible("bench", endpoint));
    c.credentials.credential_id = Some(key.into());
    c.credentials.credential_secret = Some(secret.into());
    c.max_block_size_bytes = BLOCK;
    c.parallel_parts = PARALLEL;
    let stores = Arc::new(ObjectStores::default().with_offload_budget(
        offload::OffloadBudget::new(PARALLEL, PARALLEL * (PARALLEL + 1)),
    ));
    let o = Arc::new(
        BlobStoreOffloader::with_stores(c, stores)
            .await
            .expect("offloader"),
    );
    // Entries that fill exactly one block each: 64 MiB minus the block and record headers.
    let per_ledger = ((BLOCK - 128) / (ENTRY as u64 + 12)) as i64;
    let bytes = LEDGERS as u64 * BLOCK;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for id in 0..LEDGERS {
        let o = Arc::clone(&o);
        tasks.push(tokio::spawn(async move {
            let source = GeneratedLedger {
                id,
                entries: per_ledger,
            };
            o.offload(&source, uuid::Uuid::new_v4(), &BTreeMap::new())
                .await
                .expect("offload")
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("join").blocks, 1);
    }
    let offload = mb_s(bytes, start.elapsed());
    let store = o.store().await.expect("store");
    let start = Instant::now();
    let mut in_flight = VecDeque::new();
    for i in 0..LEDGERS {
        if in_flight.len() >= PARALLEL {
            let h: tokio::task::JoinHandle<()> = in_flight.pop_front().expect("upload");
            h.await.expect("join");
        }
        let store = Arc::clone(&store);
        in_flight.push_back(tokio::spawn(async move {
            let mut upload = store
                .put_multipart(&Path::from(format!("raw-ledger-{i}")))
                .await
                .expect("initiate");
            upload
                .put_part(PutPayload::from(vec![0x5au8; BLOCK as usize]))
                .await
                .expect("part");
            upload.complete().await.expect("complete");
        }));
    }
    for h in in_flight {
        h.await.expect("join");
    }
    (offload, mb_s(bytes, start.elapsed()))
}

fn entry(i: i64) -> Bytes {
    let mut v = vec![(i % 251) as u8; ENTRY];
    v[..8].copy_from_slice(&i.to_be_bytes());
    Bytes::from(v)
}

fn mb_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.to_string())
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn vm_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(|l| l.to_string())
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

async fn raw_put(store: &Arc<dyn ObjectStore>, key: &str, total: u64) -> Duration {
    let start = Instant::now();
    let mut upload = store
        .put_multipart(&Path::from(key))
        .await
        .expect("initiate");
    let mut in_flight = VecDeque::new();
    let mut left = total;
    while left > 0 {
        let n = left.min(BLOCK);
        if in_flight.len() >= PARALLEL {
            let h: tokio::task::JoinHandle<object_store::Result<()>> =
                in_flight.pop_front().expect("part");
            h.await.expect("join").expect("part");
        }
        let part = upload.put_part(PutPayload::from(vec![0x5au8; n as usize]));
        in_flight.push_back(tokio::spawn(part));
        left -= n;
    }
    for h in in_flight {
        h.await.expect("join").expect("part");
    }
    upload.complete().await.expect("complete");
    start.elapsed()
}

async fn raw_get(store: &Arc<dyn ObjectStore>, key: &str) -> (u64, Duration) {
    let start = Instant::now();
    let mut stream = store
        .get(&Path::from(key))
        .await
        .expect("get")
        .into_stream();
    let mut n = 0u64;
    while let Some(chunk) = stream.next().await {
        n += chunk.expect("chunk").len() as u64;
    }
    (n, start.elapsed())
}

/// One way of reading the ledger back.
struct ReadRow {
    label: &'static str,
    mb_s: f64,
    gets_per_gib: f64,
    /// Open a fresh handle and read entry 0 (median of several).
    first_entry_ms: f64,
}

struct Row {
    offload: f64,
    raw_put: f64,
    raw_get: f64,
    peak_rss_mib: f64,
    reads: Vec<ReadRow>,
}

/// Reads every entry through a fresh handle, 1000 entries per read.
async fn read_all(o: &BlobStoreOffloader, uuid: uuid::Uuid, entries: i64) -> (f64, f64) {
    let h = o.read(1, uuid, o.location()).await.expect("open");
    let gets_before = o.counters().gets();
    let start = Instant::now();
    let mut first = 0;
    while first < entries {
        let last = (first + 999).min(entries - 1);
        let got = h.read(first, last).await.expect("read");
        assert_eq!(got[0], entry(first));
        first = last + 1;
    }
    let bytes = entries as u64 * ENTRY as u64;
    let gets = o.counters().gets() - gets_before;
    (
        mb_s(bytes, start.elapsed()),
        gets as f64 * (1u64 << 30) as f64 / bytes as f64,
    )
}

/// Time to open a handle and read the first entry (no cache), median of 7.
async fn first_entry_ms(o: &BlobStoreOffloader, uuid: uuid::Uuid) -> f64 {
    let mut samples = Vec::new();
    for _ in 0..7 {
        let start = Instant::now();
        let h = o.read(1, uuid, o.location()).await.expect("open");
        let got = h.read(0, 0).await.expect("read");
        assert_eq!(got[0], entry(0));
        samples.push(start.elapsed().as_secs_f64() * 1e3);
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

async fn run(endpoint: &str, entries: i64, (key, secret): (&str, &str)) -> Row {
    let mut c = OffloadConfig::new(Location::s3_compatible("bench", endpoint));
    c.credentials.credential_id = Some(key.into());
    c.credentials.credential_secret = Some(secret.into());
    c.max_block_size_bytes = BLOCK;
    c.parallel_parts = PARALLEL;
    let o = BlobStoreOffloader::new(c.clone()).await.expect("offloader");
    // The baseline goes straight to the same object_store client (only a request counter
    // wraps it), without the offload format or the read handle.
    let raw_store = o.store().await.expect("store");
    let source = GeneratedLedger { id: 1, entries };

    let uuid = uuid::Uuid::new_v4();
    let rss_before = vm_rss_kib();
    reset_peak_rss();
    let start = Instant::now();
    let r = o
        .offload(&source, uuid, &BTreeMap::new())
        .await
        .expect("offload");
    let offload_time = start.elapsed();
    let peak_rss_mib = vm_hwm_kib().saturating_sub(rss_before) as f64 / 1024.0;
    let bytes = r.data_object_len;

    let put_time = raw_put(&raw_store, "raw-put-object", bytes).await;
    let (got, get_time) = raw_get(&raw_store, &r.data_key).await;
    assert_eq!(got, bytes);

    let mut reads = Vec::new();
    // Before long ranges: every GET one read buffer (1 MiB), 16 in flight.
    let mut fixed = c.clone();
    fixed.max_read_range_bytes = fixed.read_buffer_size_bytes;
    let fixed = BlobStoreOffloader::new(fixed).await.expect("offloader");
    let (mb, gets) = read_all(&fixed, uuid, entries).await;
    reads.push(ReadRow {
        label: "1 MiB ranges (before)",
        mb_s: mb,
        gets_per_gib: gets,
        first_entry_ms: first_entry_ms(&fixed, uuid).await,
    });
    // Now: ranges from 1 MiB growing to 16 MiB while sequential.
    let (mb, gets) = read_all(&o, uuid, entries).await;
    reads.push(ReadRow {
        label: "growing ranges",
        mb_s: mb,
        gets_per_gib: gets,
        first_entry_ms: first_entry_ms(&o, uuid).await,
    });
    // A re-read through the disk cache, filled by a first read.
    let cache_dir =
        std::env::temp_dir().join(format!("tierlog-bench-cache-{}", std::process::id()));
    let cache = Arc::new(
        ChunkCache::open(&cache_dir, 4 << 30, ChunkCache::DEFAULT_CHUNK_SIZE).expect("cache"),
    );
    let cached = BlobStoreOffloader::with_stores(
        c.clone(),
        Arc::new(ObjectStores::default().with_chunk_cache(Arc::clone(&cache))),
    )
    .await
    .expect("offloader");
    read_all(&cached, uuid, entries).await;
    while cache.size_bytes() < bytes {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (mb, gets) = read_all(&cached, uuid, entries).await;
    reads.push(ReadRow {
        label: "re-read from disk cache",
        mb_s: mb,
        gets_per_gib: gets,
        first_entry_ms: first_entry_ms(&cached, uuid).await,
    });
    drop(cached);
    drop(cache);
    let _ = std::fs::remove_dir_all(&cache_dir);
    Row {
        offload: mb_s(bytes, offload_time),
        raw_put: mb_s(bytes, put_time),
        raw_get: mb_s(bytes, get_time),
        peak_rss_mib,
        reads,
    }
}

fn print(label: &str, r: &Row) {
    println!("{label}");
    println!(
        "  offload            {:8.1} MB/s   raw multipart PUT {:8.1} MB/s   ratio {:.2}",
        r.offload,
        r.raw_put,
        r.offload / r.raw_put
    );
    println!(
        "  peak RSS added during offload {:.0} MiB (block {} MiB x {} parts in flight)",
        r.peak_rss_mib,
        BLOCK >> 20,
        PARALLEL
    );
    for read in &r.reads {
        println!(
            "  read, {:24} {:8.1} MB/s   raw whole GET {:8.1} MB/s   ratio {:.2}   GETs/GiB {:5.0}   first entry {:6.1} ms",
            read.label,
            read.mb_s,
            r.raw_get,
            read.mb_s / r.raw_get,
            read.gets_per_gib,
            read.first_entry_ms
        );
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let mib: i64 = std::env::var("TIERLOG_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    let entries = mib * (1 << 20) / ENTRY as i64;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // Prefer s3s-fs (disk-backed, serves ranges without copying the object); moto otherwise.
    let dir = std::env::temp_dir().join(format!("tierlog-bench-{}", std::process::id()));
    let (port, endpoint, creds, name, _guard): (
        u16,
        String,
        (&str, &str),
        &str,
        Box<dyn std::any::Any>,
    ) = match testkit::s3s_fs::binary() {
        Some(bin) => {
            let s = testkit::s3s_fs::S3sFs::start(&bin, &dir);
            s.create_bucket("bench");
            (
                s.port,
                s.endpoint(),
                (testkit::s3s_fs::ACCESS_KEY, testkit::s3s_fs::SECRET_KEY),
                "s3s-fs",
                Box::new(s),
            )
        }
        None => {
            let m = MotoServer::start();
            m.create_bucket("bench");
            (
                m.port,
                m.endpoint(),
                ("bench", "bench"),
                "moto",
                Box::new(m),
            )
        }
    };
    println!("offload benchmark: {mib} MiB ledger of {ENTRY}-byte entries, {name} on 127.0.0.1");
    let direct = rt.block_on(run(&endpoint, entries, creds));
    print("direct", &direct);
    let (many, raw_many) = rt.block_on(many_ledgers(&endpoint, creds));
    println!(
        "  offload 10 ledgers of 64 MiB {many:8.1} MB/s   raw 10 one-part uploads, {PARALLEL} in flight {raw_many:8.1} MB/s   ratio {:.2}",
        many / raw_many
    );
    let proxy = HttpProxy::start(port);
    let through = rt.block_on(run(&proxy.endpoint(), entries, creds));
    print("through the loopback proxy, no added latency", &through);
    proxy.set_delay(Duration::from_millis(20));
    let delayed = rt.block_on(run(&proxy.endpoint(), entries, creds));
    print("through the loopback proxy, +20 ms per request", &delayed);
    drop(proxy);
    let _ = std::fs::remove_dir_all(&dir);
}

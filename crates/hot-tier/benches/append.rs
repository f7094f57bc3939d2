//! Append throughput with fsync-before-ack, as a ratio to the raw durable write throughput of the
//! same disk measured in the same run.
//!
//! Run: `cargo bench -p hot-tier --bench append` (set `TIERLOG_BENCH_DIR` to choose the disk;
//! default `target/bench-tmp`, i.e. the disk of the checkout).
//!
//! - raw: sequential `write` + `fdatasync` of the same total bytes into one file, with 1, 4 and
//!   16 MiB per fsync, before and after the tierlog run; the best of these is the baseline (the
//!   disk's durable sequential throughput), so the ratio cannot flatter us;
//! - tierlog: 1 KiB entries appended by 4 producers that each keep up to 1000 appends in flight
//!   (as a Pulsar producer pipelines up to 1000 pending messages), acknowledged after fsync;
//! - the same total load spread over 1, 100, 1000 and 10 000 open ledgers (one journal serves
//!   them all), as throughput and as a ratio to the 1-ledger run;
//! - latency: 1000 appends of 2 KiB per second spread over 1000 ledgers for 10 s, each timed
//!   from `append` to durable (p50, p99), next to raw 2 KiB write+fdatasync at the same rate.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use hot_tier::{LedgerStore, StoreOptions};

const ENTRY_BYTES: usize = 1024;
const TOTAL_BYTES: usize = 512 << 20;
const PRODUCERS: usize = 4;
const WINDOW: usize = 1000;

fn bench_dir() -> std::path::PathBuf {
    let dir = std::env::var_os("TIERLOG_BENCH_DIR")
        .map(Into::into)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-tmp")
        });
    std::fs::create_dir_all(&dir).expect("bench directory");
    dir
}

fn raw_mb_s(dir: &std::path::Path, chunk: usize, total: usize) -> f64 {
    let path = dir.join("raw.bin");
    let mut f = std::fs::File::create(&path).expect("create raw file");
    let buf = vec![0x5au8; chunk];
    let start = Instant::now();
    for _ in 0..total / chunk {
        f.write_all(&buf).expect("write");
        f.sync_data().expect("fdatasync");
    }
    let secs = start.elapsed().as_secs_f64();
    drop(f);
    let _ = std::fs::remove_file(&path);
    total as f64 / secs / 1e6
}

/// Throughput of `total` bytes of 1 KiB entries spread round-robin over `ledgers` open ledgers
/// (4 producers, 1000 appends in flight each), and the group commits it took (most of any ledger).
fn spread_mb_s(dir: &std::path::Path, ledgers: usize, total: usize) -> (f64, u64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let path = dir.join("ledgers");
        let _ = std::fs::remove_dir_all(&path);
        let (store, _) = LedgerStore::open(&path, StoreOptions::default()).expect("store");
        let writers: Arc<Vec<_>> = Arc::new(
            (0..ledgers as u64)
                .map(|id| store.create_ledger(id).expect("ledger"))
                .collect(),
        );
        let payload = Bytes::from(vec![0x5au8; ENTRY_BYTES]);
        let per_producer = total / ENTRY_BYTES / PRODUCERS;
        let start = Instant::now();
        let mut tasks = Vec::new();
        for p in 0..PRODUCERS {
            let writers = Arc::clone(&writers);
            let payload = payload.clone();
            tasks.push(tokio::spawn(async move {
                let mut in_flight = std::collections::VecDeque::with_capacity(WINDOW);
                for i in 0..per_producer {
                    if in_flight.len() == WINDOW {
                        let p: hot_tier::PendingAppend = in_flight.pop_front().expect("window");
                        p.await.expect("durable");
                    }
                    let w = &writers[(i * PRODUCERS + p) % writers.len()];
                    in_flight.push_back(w.append(payload.clone()).await.expect("append"));
                }
                for p in in_flight {
                    p.await.expect("durable");
                }
            }));
        }
        for t in tasks {
            t.await.expect("producer");
        }
        let secs = start.elapsed().as_secs_f64();
        let rounds = writers.iter().map(|w| w.fsync_count()).max().unwrap_or(0);
        drop(writers);
        drop(store);
        let _ = std::fs::remove_dir_all(&path);
        (total as f64 / secs / 1e6, rounds)
    })
}

/// p50 and p99 (ms) of append→durable at `rate` appends/s of `size` bytes over `ledgers`.
fn latency_ms(
    dir: &std::path::Path,
    ledgers: usize,
    rate: u64,
    secs: u64,
    size: usize,
) -> (f64, f64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let path = dir.join("ledgers");
        let _ = std::fs::remove_dir_all(&path);
        let (store, _) = LedgerStore::open(&path, StoreOptions::default()).expect("store");
        let writers: Vec<_> = (0..ledgers as u64)
            .map(|id| store.create_ledger(id).expect("ledger"))
            .collect();
        let payload = Bytes::from(vec![0x5au8; size]);
        let mut tick = tokio::time::interval(std::time::Duration::from_micros(1_000_000 / rate));
        let mut timings = Vec::new();
        for i in 0..(rate * secs) as usize {
            tick.tick().await;
            let t0 = Instant::now();
            let p = writers[i % ledgers]
                .append(payload.clone())
                .await
                .expect("append");
            timings.push(tokio::spawn(async move {
                p.await.expect("durable");
                t0.elapsed().as_secs_f64() * 1e3
            }));
        }
        let mut ms = Vec::with_capacity(timings.len());
        for t in timings {
            ms.push(t.await.expect("timing"));
        }
        drop(writers);
        drop(store);
        let _ = std::fs::remove_dir_all(&path);
        percentiles(ms)
    })
}

/// p50 and p99 (ms) of raw `size`-byte write+fdatasync at `rate` per second into one file.
fn raw_latency_ms(dir: &std::path::Path, rate: u64, secs: u64, size: usize) -> (f64, f64) {
    let path = dir.join("raw-latency.bin");
    let mut f = std::fs::File::create(&path).expect("create raw file");
    let buf = vec![0x5au8; size];
    let period = std::time::Duration::from_micros(1_000_000 / rate);
    let start = Instant::now();
    let mut ms = Vec::new();
    for i in 0..(rate * secs) as u32 {
        let due = start + period * i;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let t0 = Instant::now();
        f.write_all(&buf).expect("write");
        f.sync_data().expect("fdatasync");
        ms.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    let _ = std::fs::remove_file(&path);
    percentiles(ms)
}

fn percentiles(mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 * q) as usize).min(ms.len() - 1)];
    (at(0.50), at(0.99))
}

fn tierlog_mb_s(dir: &std::path::Path) -> (f64, u64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let ledgers = dir.join("ledgers");
        let _ = std::fs::remove_dir_all(&ledgers);
        let (store, _) = LedgerStore::open(&ledgers, StoreOptions::default()).expect("store");
        let writer = Arc::new(store.create_ledger(1).expect("ledger"));
        let payload = Bytes::from(vec![0x5au8; ENTRY_BYTES]);
        let per_producer = TOTAL_BYTES / ENTRY_BYTES / PRODUCERS;
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..PRODUCERS {
            let writer = Arc::clone(&writer);
            let payload = payload.clone();
            tasks.push(tokio::spawn(async move {
                let mut in_flight = std::collections::VecDeque::with_capacity(WINDOW);
                for _ in 0..per_producer {
                    if in_flight.len() == WINDOW {
                        let p: hot_tier::PendingAppend = in_flight.pop_front().expect("window");
                        p.await.expect("durable");
                    }
                    in_flight.push_back(writer.append(payload.clone()).await.expect("append"));
                }
                for p in in_flight {
                    p.await.expect("durable");
                }
            }));
        }
        for t in tasks {
            t.await.expect("producer");
        }
        let secs = start.elapsed().as_secs_f64();
        let fsyncs = writer.fsync_count();
        let _ = std::fs::remove_dir_all(&ledgers);
        (TOTAL_BYTES as f64 / secs / 1e6, fsyncs)
    })
}

fn main() {
    // `cargo test --benches` runs this with --bench absent; keep that quick.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir = bench_dir();
    // TIERLOG_BENCH_LEDGERS=N runs only the spread over N ledgers (for profiling).
    if let Some(n) = std::env::var("TIERLOG_BENCH_LEDGERS")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
    {
        for _ in 0..3 {
            let (mb_s, rounds) = spread_mb_s(&dir, n, 256 << 20);
            println!("{n} ledgers: {mb_s:.1} MB/s, {rounds} group commits");
        }
        return;
    }
    println!("hot-tier append benchmark in {}", dir.display());
    let raw_small = raw_mb_s(&dir, ENTRY_BYTES, 16 << 20);
    let chunks = [1usize << 20, 4 << 20, 16 << 20];
    let before: Vec<f64> = chunks
        .iter()
        .map(|&c| raw_mb_s(&dir, c, TOTAL_BYTES))
        .collect();
    let (ours, fsyncs) = tierlog_mb_s(&dir);
    let after: Vec<f64> = chunks
        .iter()
        .map(|&c| raw_mb_s(&dir, c, TOTAL_BYTES))
        .collect();
    let raw_best = before.iter().chain(&after).fold(0.0f64, |a, &b| a.max(b));
    let entries = TOTAL_BYTES / ENTRY_BYTES;
    println!("raw write+fdatasync, 1 KiB per fsync (reference): {raw_small:9.1} MB/s");
    for (i, c) in chunks.iter().enumerate() {
        println!(
            "raw write+fdatasync, {:2} MiB per fsync          : {:9.1} MB/s before, {:9.1} MB/s after",
            c >> 20,
            before[i],
            after[i]
        );
    }
    println!(
        "tierlog append, 1 KiB entries, fsync before ack  : {ours:9.1} MB/s ({entries} entries, {fsyncs} fsyncs, {:.0} entries/fsync)",
        entries as f64 / fsyncs.max(1) as f64
    );
    println!("best raw                                        : {raw_best:9.1} MB/s");
    println!(
        "ratio (tierlog / best raw)                       : {:9.2}",
        ours / raw_best
    );

    // The same total load over more ledgers: one journal, a bounded number of threads.
    let spread_total = 256 << 20;
    let mut one = 0.0;
    for ledgers in [1usize, 100, 1000, 10_000] {
        let (mb_s, rounds) = spread_mb_s(&dir, ledgers, spread_total);
        if ledgers == 1 {
            one = mb_s;
        }
        println!(
            "{ledgers:>5} ledgers, 256 MiB of 1 KiB entries          : {mb_s:9.1} MB/s ({:.2} of 1 ledger, {rounds} group commits)",
            mb_s / one
        );
    }

    let (raw50, raw99) = raw_latency_ms(&dir, 1000, 10, 2048);
    let (p50, p99) = latency_ms(&dir, 1000, 1000, 10, 2048);
    println!(
        "raw 2 KiB write+fdatasync, 1000/s               : p50 {raw50:6.2} ms, p99 {raw99:6.2} ms"
    );
    println!(
        "tierlog 1000 x 2 KiB appends/s over 1000 ledgers: p50 {p50:6.2} ms, p99 {p99:6.2} ms"
    );
}

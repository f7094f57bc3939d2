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
//!   (as a Pulsar producer pipelines up to 1000 pending messages), acknowledged after fsync.

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
}

//! Object-tier ("diskless") topics on one `tierlog broker` (release binary) with etcd and
//! s3s-fs behind the testkit proxy, next to the raw PUTs of the same store measured in the
//! same run, with and without 20 ms added per request:
//!
//! - raw: p50/p99 of 300 sequential PUTs of the objects the latency runs flush (2000 msg/s ×
//!   1 KiB × the flush interval, 500 KiB; also shown for 64 KiB); p50/p99 of 300 one-key etcd
//!   commits (the other wait before an acknowledgement, not in the target); and, right before
//!   and right after each max run (the store as that run finds and leaves it), the bandwidth of
//!   96 PUTs of 8 MiB (flush-sized) with 4 in flight (the WAL's uploads in flight);
//! - latency: `tierlog perf produce` at a fixed rate (2000 msg/s of 1 KiB) over 1 and 100
//!   topics — p50/p99 publish latency; target p99 ≤ flush interval + 3 × raw PUT p99 (of the
//!   flush-sized objects: the PUT the WAL makes, like the throughput target's baseline);
//! - throughput: as fast as the broker takes them, over 1 and 100 topics; target ≥ 0.7 of the
//!   raw bandwidth (the mean of before and after) with 100 topics;
//! - PUTs per second of the broker (from /metrics) during each run, against one per flush
//!   interval: the count must not grow with the topic count.
//!
//! Run by `./scripts/bench cluster` (needs s3s-fs, which the script installs, and etcd). For a
//! quick look at some rows, `TIERLOG_BENCH_DELAYS_MS=0 TIERLOG_BENCH_TOPICS=100 cargo bench -p
//! tierlog --bench cluster` (with `TIERLOG_BIN` and `TIERLOG_S3S_FS` set; nothing recorded).

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use meta::{EtcdStore, Expected, MetadataStore, Op};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use testkit::etcd::EtcdServer;
use testkit::proxy::HttpProxy;
use testkit::s3s_fs::{self, S3sFs};
use testkit::standalone::Standalone;

const FLUSH_MS: u64 = 250;
const BUCKET: &str = "bench";

fn tierlog_bin() -> std::path::PathBuf {
    std::env::var_os("TIERLOG_BIN")
        .map(Into::into)
        .unwrap_or_else(|| testkit::workspace_root().join("target/release/tierlog"))
}

/// `s3ManagedLedgerOffloadPayloadChecksum` of the broker, and the same protection for the raw
/// PUTs: `crc64nvme` (s3s-fs checks it) unless `TIERLOG_BENCH_PAYLOAD_CHECKSUM=sha256`.
fn payload_checksum() -> String {
    std::env::var("TIERLOG_BENCH_PAYLOAD_CHECKSUM").unwrap_or_else(|_| "crc64nvme".into())
}

fn store(endpoint: &str) -> Arc<dyn ObjectStore> {
    let checksum = offload::S3PayloadChecksum::parse(&payload_checksum())
        .expect("TIERLOG_BENCH_PAYLOAD_CHECKSUM: sha256 or crc64nvme");
    Arc::new(
        checksum
            .apply(AmazonS3Builder::new())
            .with_bucket_name(BUCKET)
            .with_region("us-east-1")
            .with_endpoint(endpoint)
            .with_virtual_hosted_style_request(false)
            .with_access_key_id(s3s_fs::ACCESS_KEY)
            .with_secret_access_key(s3s_fs::SECRET_KEY)
            .with_client_options(object_store::ClientOptions::new().with_allow_http(true))
            .build()
            .expect("S3 client"),
    )
}

/// A comma-separated list of numbers from the environment (a subset of the runs, for a quick
/// look; `./scripts/bench cluster` records the whole table), or `default`.
fn list(var: &str, default: &[u64]) -> Vec<u64> {
    match std::env::var(var) {
        Ok(v) => v
            .split(',')
            .map(|n| {
                n.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{var}={v}: not numbers"))
            })
            .collect(),
        Err(_) => default.to_vec(),
    }
}

/// Binds every thread of process `pid` (and what it starts later) to `cpus`.
fn taskset(cpus: &str, pid: u32) {
    let ok = Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "taskset -a -p -c {cpus} {pid}");
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Messages per second and bytes per message of the latency runs.
const LATENCY_RATE: u64 = 2000;
const MESSAGE_BYTES: u64 = 1024;

/// Bytes of the object a latency run's flush writes: what arrives in one flush interval.
const LATENCY_FLUSH_BYTES: usize = (LATENCY_RATE * MESSAGE_BYTES * FLUSH_MS / 1000) as usize;

/// Raw PUT latency: (p50 ms, p99 ms) of PUTs of `size` bytes one at a time.
async fn raw_latency(store: Arc<dyn ObjectStore>, size: usize) -> (f64, f64) {
    let small = bytes::Bytes::from(vec![7u8; size]);
    let mut lat = Vec::new();
    // 300, so that p99 is not the second-slowest of a few.
    for i in 0..300 {
        let path = Path::from(format!("raw/small-{i}"));
        let t = Instant::now();
        store
            .put(&path, small.clone().into())
            .await
            .expect("raw PUT");
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        store.delete(&path).await.expect("raw DELETE");
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    (percentile(&lat, 0.5), percentile(&lat, 0.99))
}

/// Raw etcd commit latency: (p50 ms, p99 ms) of 300 transactions one at a time, each a check
/// and a put of one key (the smallest commit an acknowledgement waits for), on a fresh etcd.
async fn raw_commit_latency(endpoint: String) -> (f64, f64) {
    let etcd = EtcdStore::connect(&[endpoint]).await.expect("etcd");
    let fence = "/bench/fence";
    let version = etcd
        .put(fence, b"owner".to_vec(), Expected::Absent)
        .await
        .expect("fence key");
    let mut lat = Vec::new();
    for i in 0..300 {
        let key = format!("/bench/extent/{i:020}");
        let ops = vec![
            Op::check(fence.to_string(), Expected::Version(version)),
            Op::put(key.clone(), vec![b'x'; 170], Expected::Absent),
        ];
        let t = Instant::now();
        etcd.commit(ops).await.expect("raw commit");
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        etcd.delete(&key, Expected::Any).await.expect("raw delete");
    }
    etcd.delete(fence, Expected::Any).await.expect("raw delete");
    lat.sort_by(|a, b| a.total_cmp(b));
    (percentile(&lat, 0.5), percentile(&lat, 0.99))
}

/// Raw PUT bandwidth: MB/s of 96 PUTs of 8 MiB (a full flush), 4 in flight. Its objects are
/// deleted afterwards, so the store holds only what the broker wrote.
async fn raw_bandwidth(store: Arc<dyn ObjectStore>) -> f64 {
    let big = bytes::Bytes::from(vec![9u8; 8 << 20]);
    let n = 96;
    let t = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let sem = Arc::new(tokio::sync::Semaphore::new(4));
    for i in 0..n {
        let (store, big, sem) = (Arc::clone(&store), big.clone(), Arc::clone(&sem));
        tasks.spawn(async move {
            let _p = sem.acquire().await;
            store
                .put(&Path::from(format!("raw/big-{i}")), big.into())
                .await
                .expect("raw PUT");
        });
    }
    while tasks.join_next().await.is_some() {}
    let mbps = (n * (8 << 20)) as f64 / 1e6 / t.elapsed().as_secs_f64();
    for i in 0..n {
        store
            .delete(&Path::from(format!("raw/big-{i}")))
            .await
            .expect("raw DELETE");
    }
    mbps
}

/// The broker's object-store requests so far (`tierlog_offload_requests_total` in its
/// /metrics) whose `op` is in `ops`, or all of them for an empty `ops`.
fn store_requests(broker: &Standalone, ops: &[&str]) -> u64 {
    let (_, body) = broker.call("GET", "/metrics", None);
    body.lines()
        .filter_map(|l| l.strip_prefix("tierlog_offload_requests_total{op=\""))
        .filter(|l| ops.is_empty() || ops.iter().any(|op| l.starts_with(&format!("{op}\"}}"))))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// PUTs and part uploads the broker made so far.
fn puts(broker: &Standalone) -> u64 {
    store_requests(broker, &["put", "upload_part"])
}

/// Waits until the broker makes no object-store request for 2 s: the rewrite of the ledgers an
/// earlier run sealed is done, so it does not count against the next run (a run's own
/// rewrites do).
fn wait_idle(broker: &Standalone) {
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut last = store_requests(broker, &[]);
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < Duration::from_secs(2) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
        let now = store_requests(broker, &[]);
        if now != last {
            last = now;
            quiet_since = Instant::now();
        }
    }
}

struct Run {
    msg_per_sec: f64,
    mb_per_sec: f64,
    p50: f64,
    p99: f64,
    puts_per_sec: f64,
    /// CPU seconds per GB produced, of the broker and of the `tierlog perf` client: what the
    /// pipeline costs, whatever the store's speed in this run.
    broker_cpu_per_gb: f64,
    client_cpu_per_gb: f64,
}

/// Clock ticks per second of /proc's CPU times (USER_HZ, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// User + system CPU ticks of process `pid` (fields 14 and 15 of /proc/<pid>/stat), or with
/// `children`, of this process's waited-for children (fields 16 and 17).
fn cpu_ticks(pid: &str, children: bool) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let at = if children { 13 } else { 11 }; // field 14 is the 12th after the name
    fields
        .get(at..at + 2)
        .map(|f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum())
        .unwrap_or(0)
}

fn perf(broker: &Standalone, topics: &[String], args: &[&str]) -> Run {
    let before = puts(broker);
    let broker_pid = broker.pid().to_string();
    let broker_cpu = cpu_ticks(&broker_pid, false);
    // The client is the only child this process waits for meanwhile.
    let client_cpu = cpu_ticks("self", true);
    let t = Instant::now();
    let out = Command::new(tierlog_bin())
        .args([
            "perf",
            "produce",
            "-u",
            &broker.service_url(),
            "--output",
            "json",
        ])
        .args(["--stats-interval", "1000"])
        .args(args)
        .args(topics)
        .output()
        .expect("tierlog perf");
    let secs = t.elapsed().as_secs_f64();
    let broker_cpu =
        cpu_ticks(&broker_pid, false).saturating_sub(broker_cpu) as f64 / TICKS_PER_SEC;
    let client_cpu = cpu_ticks("self", true).saturating_sub(client_cpu) as f64 / TICKS_PER_SEC;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rfind(|l| l.starts_with('{'))
        .expect("perf JSON summary");
    let v: serde_json::Value = serde_json::from_str(line).expect("perf JSON");
    let after = puts(broker);
    let seconds = v["seconds"].as_f64().unwrap_or(1.0);
    let gb = (v["bytes"].as_f64().unwrap_or(0.0) / 1e9).max(1e-9);
    Run {
        broker_cpu_per_gb: broker_cpu / gb,
        client_cpu_per_gb: client_cpu / gb,
        msg_per_sec: v["msgPerSec"].as_f64().unwrap_or(0.0),
        mb_per_sec: v["bytes"].as_f64().unwrap_or(0.0) / 1e6 / seconds,
        p50: v["latencyMs"]["p50"].as_f64().unwrap_or(0.0),
        p99: v["latencyMs"]["p99"].as_f64().unwrap_or(0.0),
        puts_per_sec: after.saturating_sub(before) as f64 / secs,
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

fn main() {
    let Some(s3s_bin) = s3s_fs::binary() else {
        eprintln!("s3s-fs is not installed: ./scripts/bench cluster installs it");
        std::process::exit(1);
    };
    let work = tempfile::tempdir().expect("work dir");
    // The store's files in memory where there is a tmpfs: on this VM's disk the write speed
    // depends on the page cache's state more than on anything measured here.
    let s3_root = match std::path::Path::new("/dev/shm").is_dir() {
        true => tempfile::tempdir_in("/dev/shm").expect("s3s-fs root"),
        false => tempfile::tempdir_in(work.path()).expect("s3s-fs root"),
    };
    // TIERLOG_BENCH_PIN_STORE=1: the store on CPU 0, everything else (this process with its raw
    // client and proxy, etcd, the broker, perf) on the others, as if the store were remote.
    let pin = std::env::var("TIERLOG_BENCH_PIN_STORE").is_ok_and(|v| v == "1");
    if pin {
        taskset("1-1023", std::process::id());
    }
    let s3 = S3sFs::start(&s3s_bin, s3_root.path());
    if pin {
        taskset("0", s3.pid());
    }
    s3.create_bucket(BUCKET);
    let proxy = HttpProxy::start(s3.port);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    println!(
        "object-tier produce on one tierlog broker: etcd + s3s-fs behind the testkit proxy, 1 KiB messages, flush interval {FLUSH_MS} ms, uploads protected by {} (broker and raw PUTs){}",
        payload_checksum(),
        if pin { ", s3s-fs alone on CPU 0" } else { "" }
    );
    println!();
    println!(
        "| added per request | raw PUT p50 / p99: 64 KiB; {} KiB (a latency run's flush) | raw etcd commit p50 / p99 | raw 8 MiB PUTs, 4 in flight (before / after the max run) | topics | publish p50 / p99 at 2000 msg/s (target p99) | max produce (÷ raw) | CPU s per GB in the max run: broker, perf client | PUTs/s (latency run, max run) |",
        LATENCY_FLUSH_BYTES / 1024
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    // TIERLOG_BENCH_BROKER_LOG=wal=debug (a RUST_LOG filter) keeps each round's broker log in
    // target/bench/cluster-broker-<delay>ms.log, for a look at the WAL's flushes.
    let broker_log_filter = std::env::var("TIERLOG_BENCH_BROKER_LOG").ok();
    let broker_log = broker_log_filter.clone().unwrap_or_else(|| "warn".into());
    for delay_ms in list("TIERLOG_BENCH_DELAYS_MS", &[0, 20]) {
        proxy.set_delay(Duration::from_millis(delay_ms));
        // Each round starts from an empty bucket.
        let _ = std::fs::remove_dir_all(s3_root.path().join(BUCKET));
        s3.create_bucket(BUCKET);
        let (small50, small99) = rt.block_on(raw_latency(store(&proxy.endpoint()), 64 << 10));
        let (raw50, raw99) =
            rt.block_on(raw_latency(store(&proxy.endpoint()), LATENCY_FLUSH_BYTES));
        // A fresh etcd per round: the previous round's broker registration and bundles would
        // outlive it by a lease TTL.
        let etcd = EtcdServer::start();
        let (commit50, commit99) = rt.block_on(raw_commit_latency(etcd.endpoint()));
        let dir = work.path().join(format!("broker-{delay_ms}"));
        let env = [
            (
                "TIERLOG_metadataStoreUrl",
                format!("etcd:{}", etcd.endpoint()),
            ),
            ("TIERLOG_clusterName", format!("bench{delay_ms}")),
            ("TIERLOG_managedLedgerHotTier", "object".into()),
            (
                "TIERLOG_objectStorageWalFlushIntervalMs",
                FLUSH_MS.to_string(),
            ),
            ("TIERLOG_managedLedgerOffloadDriver", "S3".into()),
            (
                "TIERLOG_s3ManagedLedgerOffloadPayloadChecksum",
                payload_checksum(),
            ),
            ("TIERLOG_s3ManagedLedgerOffloadBucket", BUCKET.into()),
            ("TIERLOG_s3ManagedLedgerOffloadRegion", "us-east-1".into()),
            (
                "TIERLOG_s3ManagedLedgerOffloadServiceEndpoint",
                proxy.endpoint(),
            ),
            ("TIERLOG_defaultRetentionTimeInMinutes", "-1".into()),
            ("TIERLOG_defaultRetentionSizeInMB", "-1".into()),
            ("AWS_ACCESS_KEY_ID", s3s_fs::ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", s3s_fs::SECRET_KEY.into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("RUST_LOG", broker_log.clone()),
        ];
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let broker = Standalone::start_broker(&tierlog_bin(), &dir, &env);
        // Every latency run first: the rewrite of what a max-throughput run produced (its
        // sealed ledgers, into offload objects) would compete with a later latency run.
        let mut rows = Vec::new();
        for n in list("TIERLOG_BENCH_TOPICS", &[1, 100]) {
            let n = n as usize;
            let topics: Vec<String> = (0..n)
                .map(|i| format!("persistent://public/default/bench-{delay_ms}-{n}-{i}"))
                .collect();
            // Warm-up: topics looked up and loaded, producers created once.
            perf(
                &broker,
                &topics,
                &["-r", "1000", "-m", &(n * 10).to_string()],
            );
            wait_idle(&broker);
            let (rate, size) = (LATENCY_RATE.to_string(), MESSAGE_BYTES.to_string());
            let latency = perf(
                &broker,
                &topics,
                &["-r", &rate, "-s", &size, "--test-duration", "15"],
            );
            rows.push((n, topics, latency));
        }
        for (n, topics, latency) in rows {
            // 64 MiB in flight from the client, more than the WAL's own pipeline (4 flushes
            // uploading + the buffer): a shallower window measures the client's.
            let pending = (65536 / n).to_string();
            wait_idle(&broker);
            // The baseline brackets the max run, measured right before and right after it: on
            // this VM the store's speed drifts between 320 and 690 MB/s within minutes, with no
            // tierlog running too (s3s-fs on tmpfs; memory the VM touches first is written at
            // 360 MB/s, memory it touched before at 930), and the two show by how much.
            let raw_before = rt.block_on(raw_bandwidth(store(&proxy.endpoint())));
            let max = perf(
                &broker,
                &topics,
                // 1.5 GB: long enough that ramp-up and the last flush's wait do not count.
                &[
                    "-r",
                    "0",
                    "-s",
                    &MESSAGE_BYTES.to_string(),
                    "-m",
                    "1500000",
                    "--max-pending",
                    &pending,
                ],
            );
            let raw_after = rt.block_on(raw_bandwidth(store(&proxy.endpoint())));
            let raw_mbps = (raw_before + raw_after) / 2.0;
            let target = FLUSH_MS as f64 + 3.0 * raw99;
            let ratio = max.mb_per_sec / raw_mbps;
            println!(
                "| {delay_ms} ms | {small50:.1} / {small99:.1} ms; {raw50:.1} / {raw99:.1} ms | {commit50:.1} / {commit99:.1} ms | {raw_before:.0} / {raw_after:.0} MB/s | {n} | {:.1} / {:.1} ms (≤ {target:.0}: {}) | {:.0} msg/s, {:.0} MB/s ({ratio:.2}{}) | {:.2}, {:.2} | {:.1}, {:.1} |",
                latency.p50,
                latency.p99,
                verdict(latency.p99 <= target),
                max.msg_per_sec,
                max.mb_per_sec,
                if n == 100 {
                    format!(", ≥ 0.7: {}", verdict(ratio >= 0.7))
                } else {
                    String::new()
                },
                max.broker_cpu_per_gb,
                max.client_cpu_per_gb,
                latency.puts_per_sec,
                max.puts_per_sec,
            );
        }
        drop(broker);
        drop(etcd);
        if broker_log_filter.is_some() {
            let kept = testkit::workspace_root()
                .join(format!("target/bench/cluster-broker-{delay_ms}ms.log"));
            let _ = std::fs::create_dir_all(kept.parent().expect("target/bench"));
            let _ = std::fs::copy(dir.join("broker.log"), &kept);
        }
    }
    println!();
    println!(
        "PUTs/s counts every PUT and part upload of the broker: WAL objects (at most {} per second by time; more when 8 MiB fill sooner) and the rewrite of sealed ledgers into offload objects.",
        1000 / FLUSH_MS
    );
}

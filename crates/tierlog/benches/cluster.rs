//! Object-tier ("diskless") topics on one `tierlog broker` (release binary) with etcd and
//! s3s-fs behind the testkit proxy, next to the raw PUTs of the same store measured in the
//! same run, with and without 20 ms added per request:
//!
//! - raw: p50/p99 of sequential 64 KiB PUTs, and the bandwidth of 96 PUTs of 8 MiB
//!   (flush-sized) with 4 in flight (the WAL's flushes in flight);
//! - latency: `tierlog perf produce` at a fixed rate (2000 msg/s of 1 KiB) over 1 and 100
//!   topics — p50/p99 publish latency; target p99 ≤ flush interval + 3 × raw PUT p99;
//! - throughput: as fast as the broker takes them, over 1 and 100 topics; target ≥ 0.7 of the
//!   raw bandwidth with 100 topics;
//! - PUTs per second of the broker (from /metrics) during each run, against one per flush
//!   interval: the count must not grow with the topic count.
//!
//! Run by `./scripts/bench cluster` (needs s3s-fs, which the script installs, and etcd).

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

fn store(endpoint: &str) -> Arc<dyn ObjectStore> {
    Arc::new(
        AmazonS3Builder::new()
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

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Raw PUTs: (p50 ms, p99 ms) of 64 KiB PUTs one at a time, MB/s of 8 MiB PUTs 4 in flight.
async fn raw_puts(store: Arc<dyn ObjectStore>) -> (f64, f64, f64) {
    let small = bytes::Bytes::from(vec![7u8; 64 << 10]);
    let mut lat = Vec::new();
    for i in 0..100 {
        let t = Instant::now();
        store
            .put(&Path::from(format!("raw/small-{i}")), small.clone().into())
            .await
            .expect("raw PUT");
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    lat.sort_by(|a, b| a.total_cmp(b));
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
    (percentile(&lat, 0.5), percentile(&lat, 0.99), mbps)
}

/// PUTs and part uploads the broker made so far (its /metrics).
fn puts(broker: &Standalone) -> u64 {
    let (_, body) = broker.call("GET", "/metrics", None);
    body.lines()
        .filter(|l| {
            l.starts_with("tierlog_offload_requests_total{op=\"put\"}")
                || l.starts_with("tierlog_offload_requests_total{op=\"upload_part\"}")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

struct Run {
    msg_per_sec: f64,
    mb_per_sec: f64,
    p50: f64,
    p99: f64,
    puts_per_sec: f64,
}

fn perf(broker: &Standalone, topics: &[String], args: &[&str]) -> Run {
    let before = puts(broker);
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
    Run {
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
    let s3 = S3sFs::start(&s3s_bin, &work.path().join("s3"));
    s3.create_bucket(BUCKET);
    let proxy = HttpProxy::start(s3.port);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    println!(
        "object-tier produce on one tierlog broker: etcd + s3s-fs behind the testkit proxy, 1 KiB messages, flush interval {FLUSH_MS} ms"
    );
    println!();
    println!(
        "| added per request | raw 64 KiB PUT p50 / p99 | raw 8 MiB PUTs, 4 in flight | topics | publish p50 / p99 at 2000 msg/s (target p99) | max produce (÷ raw) | PUTs/s (latency run, max run) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for delay_ms in [0u64, 20] {
        proxy.set_delay(Duration::from_millis(delay_ms));
        let (raw50, raw99, raw_mbps) = rt.block_on(raw_puts(store(&proxy.endpoint())));
        // A fresh etcd per round: the previous round's broker registration and bundles would
        // outlive it by a lease TTL.
        let etcd = EtcdServer::start();
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
            ("RUST_LOG", "warn".into()),
        ];
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let broker = Standalone::start_broker(&tierlog_bin(), &dir, &env);
        // Every latency run first: the rewrite of what a max-throughput run produced (its
        // sealed ledgers, into offload objects) would compete with a later latency run.
        let mut rows = Vec::new();
        for n in [1usize, 100] {
            let topics: Vec<String> = (0..n)
                .map(|i| format!("persistent://public/default/bench-{delay_ms}-{n}-{i}"))
                .collect();
            // Warm-up: topics looked up and loaded, producers created once.
            perf(
                &broker,
                &topics,
                &["-r", "1000", "-m", &(n * 10).to_string()],
            );
            let latency = perf(&broker, &topics, &["-r", "2000", "--test-duration", "15"]);
            rows.push((n, topics, latency));
        }
        for (n, topics, latency) in rows {
            // 64 MiB in flight from the client, more than the WAL's own pipeline (4 flushes
            // uploading + the buffer): a shallower window measures the client's.
            let pending = (65536 / n).to_string();
            let max = perf(
                &broker,
                &topics,
                // 1.5 GB: long enough that ramp-up and the last flush's wait do not count.
                &["-r", "0", "-m", "1500000", "--max-pending", &pending],
            );
            let target = FLUSH_MS as f64 + 3.0 * raw99;
            let ratio = max.mb_per_sec / raw_mbps;
            println!(
                "| {delay_ms} ms | {raw50:.1} / {raw99:.1} ms | {raw_mbps:.0} MB/s | {n} | {:.1} / {:.1} ms (≤ {target:.0}: {}) | {:.0} msg/s, {:.0} MB/s ({ratio:.2}{}) | {:.1}, {:.1} |",
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
                latency.puts_per_sec,
                max.puts_per_sec,
            );
        }
        drop(broker);
        drop(etcd);
    }
    println!();
    println!(
        "PUTs/s counts every PUT and part upload of the broker: WAL objects (at most {} per second by time; more when 8 MiB fill sooner) and the rewrite of sealed ledgers into offload objects.",
        1000 / FLUSH_MS
    );
}

//! A broker with 10 000 topics, each holding an open ledger, runs on a bounded number of threads:
//! the hot tier's journal serves every ledger (no thread per ledger), blocking work has a bounded
//! pool. The thread count is sampled from /proc while the topics are created and written.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;

const TOPICS: usize = 10_000;
const MAX_THREADS: usize = 64;

fn threads_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_topics_with_open_ledgers_stay_under_64_broker_threads() {
    let dir = tempfile::tempdir().unwrap();
    let b = common::start(dir.path(), &[]);
    let pid = b.pid();

    // Sample the broker's threads every 50 ms for the whole run.
    let peak = Arc::new(AtomicUsize::new(threads_of(pid)));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (Arc::clone(&peak), Arc::clone(&done));
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(threads_of(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };

    let started = Instant::now();
    let conn = client::Connection::connect(&b.service_url()).await.unwrap();
    // Every topic gets a producer and one durable message: its managed ledger is open with an
    // open ledger in the hot tier. 64 topics are being set up at a time.
    let producers: Vec<_> = futures::stream::iter(0..TOPICS)
        .map(|i| {
            let conn = conn.clone();
            async move {
                let topic = format!("persistent://public/default/many-{i}");
                let (mut producer, mut receipts) = conn.producer(&topic).await.unwrap();
                producer.send(&[Bytes::from(format!("m{i}"))]).unwrap();
                receipts
                    .recv()
                    .await
                    .expect("a receipt")
                    .unwrap_or_else(|e| panic!("{topic}: {e}"));
                producer
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    assert_eq!(producers.len(), TOPICS);
    eprintln!(
        "{TOPICS} topics with a producer and a durable message in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let now = threads_of(pid);
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let peak = peak.load(Ordering::Relaxed).max(now);
    eprintln!("broker threads: {now} now, {peak} at most");
    assert!(
        peak < MAX_THREADS,
        "the broker ran {peak} threads for {TOPICS} topics (limit {MAX_THREADS})"
    );

    // The open ledgers are real: their files are in the hot tier.
    let open_files = std::fs::read_dir(dir.path().join("data/ledgers"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".open")
        })
        .count();
    assert!(
        open_files >= TOPICS,
        "{open_files} open ledger files for {TOPICS} topics"
    );
    drop(producers);
}

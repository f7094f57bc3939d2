//! Counters and latency histograms of a perf run, the periodic stats line and the summary, in
//! pulsar-perf's format.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;

/// Counters and histograms shared by the workers and the reporter.
pub(super) struct Stats {
    pub(super) messages: AtomicU64,
    pub(super) bytes: AtomicU64,
    pub(super) failures: AtomicU64,
    /// Latencies in microseconds since the last stats line; each line folds them into `total`.
    interval: Mutex<Histogram<u64>>,
    total: Mutex<Histogram<u64>>,
    record_after: Instant,
}

impl Stats {
    pub(super) fn new(warmup: Duration) -> anyhow::Result<Arc<Stats>> {
        let h = || Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).context("histogram");
        Ok(Arc::new(Stats {
            messages: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            interval: Mutex::new(h()?),
            total: Mutex::new(h()?),
            record_after: Instant::now() + warmup,
        }))
    }

    /// Records the latency of every message of one receipt, each handed over at its `starts`
    /// entry and acknowledged at `now`: one clock reading and one lock per receipt, not per
    /// message (at full speed those were a tenth of this tool's CPU).
    pub(super) fn record_since(&self, now: Instant, starts: &[Instant]) {
        if now < self.record_after {
            return;
        }
        let mut h = self.interval.lock().unwrap_or_else(|p| p.into_inner());
        for s in starts {
            let _ = h.record(Self::bounded((now - *s).as_micros() as u64));
        }
    }

    /// Records `count` messages of one latency.
    pub(super) fn record_n(&self, latency_us: u64, count: u64) {
        if count == 0 || Instant::now() < self.record_after {
            return;
        }
        let _ = self
            .interval
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record_n(Self::bounded(latency_us), count);
    }

    fn bounded(latency_us: u64) -> u64 {
        latency_us.clamp(1, 60_000_000)
    }

    /// Moves the interval's latencies into the total; returns the interval's latency line.
    fn close_interval(&self) -> String {
        let mut h = self.interval.lock().unwrap_or_else(|p| p.into_inner());
        let line = latency_line(&h);
        let _ = self
            .total
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .add(&*h);
        h.reset();
        line
    }
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

fn latency_line(h: &Histogram<u64>) -> String {
    format!(
        "Latency: mean: {:7.3} ms - med: {:7.3} - 95pct: {:7.3} - 99pct: {:7.3} - 99.9pct: {:7.3} - 99.99pct: {:7.3} - Max: {:7.3}",
        h.mean() / 1000.0,
        ms(h, 0.5),
        ms(h, 0.95),
        ms(h, 0.99),
        ms(h, 0.999),
        ms(h, 0.9999),
        h.max() as f64 / 1000.0
    )
}

/// Prints a stats line every `every` until `done`.
pub(super) async fn report(
    stats: Arc<Stats>,
    every: Duration,
    what: &'static str,
    failures: bool,
    done: Arc<AtomicBool>,
) {
    let (mut last_msgs, mut last_bytes, mut last_fail) = (0u64, 0u64, 0u64);
    let mut last = Instant::now();
    loop {
        tokio::time::sleep(every).await;
        if done.load(Ordering::Relaxed) {
            return;
        }
        let (m, b, f) = (
            stats.messages.load(Ordering::Relaxed),
            stats.bytes.load(Ordering::Relaxed),
            stats.failures.load(Ordering::Relaxed),
        );
        let secs = last.elapsed().as_secs_f64();
        last = Instant::now();
        let line = stats.close_interval();
        let fail = if failures {
            format!(" --- failure {:8.1} msg/s", (f - last_fail) as f64 / secs)
        } else {
            String::new()
        };
        println!(
            "Throughput {what}: {m:7} msg --- {:8.1} msg/s --- {:8.1} Mbit/s{fail} --- {line}",
            (m - last_msgs) as f64 / secs,
            (b - last_bytes) as f64 * 8.0 / 1024.0 / 1024.0 / secs,
        );
        (last_msgs, last_bytes, last_fail) = (m, b, f);
    }
}

pub(super) fn summary(
    stats: &Stats,
    started: Instant,
    verb: &str,
    output: &str,
) -> anyhow::Result<()> {
    let secs = started.elapsed().as_secs_f64();
    let m = stats.messages.load(Ordering::Relaxed);
    let b = stats.bytes.load(Ordering::Relaxed);
    stats.close_interval();
    let h = stats.total.lock().unwrap_or_else(|p| p.into_inner());
    let rate = m as f64 / secs;
    let mbit = b as f64 * 8.0 / 1024.0 / 1024.0 / secs;
    if output == "json" {
        let v = serde_json::json!({
            "messages": m,
            "bytes": b,
            "failures": stats.failures.load(Ordering::Relaxed),
            "seconds": secs,
            "msgPerSec": rate,
            "mbitPerSec": mbit,
            "mbytePerSec": b as f64 / 1048576.0 / secs,
            "latencyMs": {
                "mean": h.mean() / 1000.0,
                "p50": ms(&h, 0.5), "p95": ms(&h, 0.95), "p99": ms(&h, 0.99),
                "p999": ms(&h, 0.999), "p9999": ms(&h, 0.9999), "p99999": ms(&h, 0.99999),
                "max": h.max() as f64 / 1000.0,
                "samples": h.len(),
            }
        });
        println!("{v}");
    } else {
        println!(
            "Aggregated throughput stats --- {m} records {verb} --- {rate:.3} msg/s --- {mbit:.3} Mbit/s"
        );
        println!(
            "Aggregated latency stats --- Latency: mean: {:7.3} ms - med: {:7.3} - 95pct: {:7.3} - 99pct: {:7.3} - 99.9pct: {:7.3} - 99.99pct: {:7.3} - 99.999pct: {:7.3} - Max: {:7.3}",
            h.mean() / 1000.0,
            ms(&h, 0.5),
            ms(&h, 0.95),
            ms(&h, 0.99),
            ms(&h, 0.999),
            ms(&h, 0.9999),
            ms(&h, 0.99999),
            h.max() as f64 / 1000.0
        );
    }
    Ok(())
}

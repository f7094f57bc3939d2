//! `tierlog perf produce|consume`: pulsar-perf's load generator over the binary protocol. A
//! stats line every interval (10 s by default) and an aggregated summary with HdrHistogram
//! percentiles when `-m` is reached, the duration ends or on Ctrl-C; `--output json` for the
//! summary.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::{Args, Subcommand};
use hdrhistogram::Histogram;

#[derive(Debug, Subcommand)]
pub enum PerfCommand {
    /// Publish messages at a rate and measure publish latency (send → durable receipt).
    Produce(ProduceArgs),
    /// Consume topics and measure throughput and end-to-end latency (publish time → receipt).
    Consume(ConsumeArgs),
}

#[derive(Debug, Args)]
pub struct Common {
    /// Broker service URL.
    #[arg(
        long = "service-url",
        short = 'u',
        default_value = "pulsar://localhost:6650"
    )]
    service_url: String,
    /// Seconds between stats lines.
    #[arg(long = "stats-interval", default_value_t = 10)]
    stats_interval: u64,
    /// Stop after this many seconds (0 = until -m or Ctrl-C).
    #[arg(long = "test-duration", visible_alias = "time", default_value_t = 0)]
    test_duration: u64,
    /// Summary format: human lines or one JSON object.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    output: String,
    topics: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// Messages per second over all producers (0 = as fast as possible).
    #[arg(long, short = 'r', default_value_t = 100)]
    rate: u64,
    /// Payload size in bytes.
    #[arg(long, short = 's', default_value_t = 1024)]
    size: usize,
    /// Producers per topic.
    #[arg(long = "num-producers", short = 'n', default_value_t = 1)]
    producers: usize,
    /// Stop after this many messages (0 = no limit).
    #[arg(long = "num-messages", short = 'm', default_value_t = 0)]
    total: u64,
    #[arg(long = "batch-max-messages", default_value_t = 1000)]
    batch_max_messages: usize,
    #[arg(long = "batch-delay-ms", default_value_t = 1)]
    batch_delay_ms: u64,
    /// Send every message as its own entry.
    #[arg(long = "disable-batching", short = 'd')]
    disable_batching: bool,
    /// Messages in flight per producer before sending waits (pulsar-perf's --max-outstanding;
    /// several batches in flight keep the broker's group commit busy).
    #[arg(
        long = "max-pending",
        visible_alias = "max-outstanding",
        default_value_t = 10000
    )]
    max_pending: usize,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Args)]
pub struct ConsumeArgs {
    #[arg(long = "subscriber-name", short = 's', default_value = "sub")]
    subscription: String,
    #[arg(long = "subscription-type", short = 't', default_value = "Exclusive",
          value_parser = ["Exclusive", "Shared", "Failover", "Key_Shared"])]
    sub_type: String,
    #[arg(long = "subscription-position", short = 'p', default_value = "Latest",
          value_parser = ["Latest", "Earliest"])]
    position: String,
    /// Stop after this many messages (0 = no limit).
    #[arg(long = "num-messages", short = 'm', default_value_t = 0)]
    total: u64,
    #[arg(long = "receiver-queue-size", short = 'q', default_value_t = 1000)]
    queue: u32,
    #[command(flatten)]
    common: Common,
}

/// Counters and histograms shared by the workers and the reporter.
struct Stats {
    messages: AtomicU64,
    bytes: AtomicU64,
    failures: AtomicU64,
    /// Latencies in microseconds since the last stats line; each line folds them into `total`.
    interval: Mutex<Histogram<u64>>,
    total: Mutex<Histogram<u64>>,
    record_after: Instant,
}

impl Stats {
    fn new(warmup: Duration) -> anyhow::Result<Arc<Stats>> {
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
    fn record_since(&self, now: Instant, starts: &[Instant]) {
        if now < self.record_after {
            return;
        }
        let mut h = self.interval.lock().unwrap_or_else(|p| p.into_inner());
        for s in starts {
            let _ = h.record(Self::bounded((now - *s).as_micros() as u64));
        }
    }

    /// Records `count` messages of one latency.
    fn record_n(&self, latency_us: u64, count: u64) {
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
async fn report(
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

fn summary(stats: &Stats, started: Instant, verb: &str, output: &str) -> anyhow::Result<()> {
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

/// Waits for Ctrl-C or the test duration, whichever comes first (duration 0 = no limit).
async fn stop_signal(duration: u64) {
    let timer = async {
        if duration == 0 {
            std::future::pending::<()>().await
        } else {
            tokio::time::sleep(Duration::from_secs(duration)).await
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = timer => {}
    }
}

/// Topic names as pulsar-perf expands them: partitions of a partitioned topic separately.
async fn expand_topics(
    conn: &client::Connection,
    topics: &[String],
) -> anyhow::Result<Vec<String>> {
    if topics.is_empty() {
        bail!("no topic given");
    }
    let mut out = Vec::new();
    for t in topics {
        let n = conn
            .partitions(t)
            .await
            .with_context(|| format!("partitions of {t}"))?;
        if n == 0 {
            out.push(t.clone());
        } else {
            let base = protocol::TopicName::parse(t)?;
            out.extend((0..n).map(|i| base.partition(i).to_string()));
        }
    }
    Ok(out)
}

/// A smooth token bucket: `rate` permits per second shared by every producer.
struct RateLimiter {
    interval_ns: u64,
    next: Mutex<Instant>,
}

impl RateLimiter {
    fn new(rate: u64) -> Option<Arc<RateLimiter>> {
        (rate > 0).then(|| {
            Arc::new(RateLimiter {
                interval_ns: 1_000_000_000 / rate,
                next: Mutex::new(Instant::now()),
            })
        })
    }

    /// Reserves the next permit; returns when it may be used.
    fn reserve(&self) -> Instant {
        self.reserve_at(Instant::now())
    }

    /// [`Self::reserve`] as of `now`.
    fn reserve_at(&self, now: Instant) -> Instant {
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        // Permits not taken on time are kept for at most RATE_CREDIT: a sender that wakes late
        // (a timer fires up to a millisecond after its deadline) catches up, while one back
        // from idling gets no burst beyond that. With one interval of credit instead, a
        // single producer at 2000 msg/s lost every late wake-up and sent about 1000.
        if *next + RATE_CREDIT < now {
            *next = now;
        }
        let at = *next;
        *next += Duration::from_nanos(self.interval_ns);
        at
    }
}

/// How far behind its schedule [`RateLimiter`] lets senders fall and still catch up.
const RATE_CREDIT: Duration = Duration::from_millis(10);

pub async fn run(cmd: PerfCommand) -> anyhow::Result<()> {
    match cmd {
        PerfCommand::Produce(a) => produce(a).await,
        PerfCommand::Consume(a) => consume(a).await,
    }
}

async fn produce(a: ProduceArgs) -> anyhow::Result<()> {
    let conn = client::Connection::connect(&a.common.service_url)
        .await
        .with_context(|| format!("connecting to {}", a.common.service_url))?;
    let topics = expand_topics(&conn, &a.common.topics).await?;
    // pulsar-perf's payload: random upper-case letters, one buffer reused for every message.
    let payload: Bytes = {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        (0..a.size)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b'A' + (x % 26) as u8
            })
            .collect::<Vec<u8>>()
            .into()
    };
    let stats = Stats::new(Duration::from_secs(1))?;
    let limiter = RateLimiter::new(a.rate);
    let remaining = Arc::new(AtomicU64::new(if a.total == 0 {
        u64::MAX
    } else {
        a.total
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let batch = if a.disable_batching {
        1
    } else {
        a.batch_max_messages.max(1)
    };
    let mut workers = Vec::new();
    for topic in &topics {
        conn.lookup(topic)
            .await
            .with_context(|| format!("looking up {topic}"))?;
        for _ in 0..a.producers {
            let (producer, receipts) = conn
                .producer(topic)
                .await
                .with_context(|| format!("creating a producer on {topic}"))?;
            workers.push(tokio::spawn(produce_loop(
                producer,
                receipts,
                payload.clone(),
                batch,
                Duration::from_millis(a.batch_delay_ms),
                a.max_pending,
                limiter.clone(),
                Arc::clone(&remaining),
                Arc::clone(&stop),
                Arc::clone(&stats),
            )));
        }
    }
    eprintln!(
        "Producing to {} topic(s) with {} producer(s) at {} msg/s, {} bytes per message",
        topics.len(),
        workers.len(),
        if a.rate == 0 {
            "max".to_string()
        } else {
            a.rate.to_string()
        },
        a.size
    );
    let done = Arc::new(AtomicBool::new(false));
    let reporter = tokio::spawn(report(
        Arc::clone(&stats),
        Duration::from_secs(a.common.stats_interval.max(1)),
        "produced",
        true,
        Arc::clone(&done),
    ));
    let all = futures_join(workers);
    tokio::select! {
        r = all => r?,
        _ = stop_signal(a.common.test_duration) => {
            stop.store(true, Ordering::Relaxed);
        }
    }
    done.store(true, Ordering::Relaxed);
    reporter.abort();
    summary(&stats, started, "sent", &a.common.output)
}

async fn futures_join(
    workers: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
) -> anyhow::Result<()> {
    for w in workers {
        w.await.context("producer task")??;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn produce_loop(
    mut producer: client::Producer,
    mut receipts: tokio::sync::mpsc::UnboundedReceiver<client::Result<client::Receipt>>,
    payload: Bytes,
    batch: usize,
    batch_delay: Duration,
    max_pending: usize,
    limiter: Option<Arc<RateLimiter>>,
    remaining: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    stats: Arc<Stats>,
) -> anyhow::Result<()> {
    // Sends in flight, in order: (sequence id, when each of its messages was handed over).
    let mut inflight: VecDeque<(u64, Vec<Instant>)> = VecDeque::new();
    let mut pending_msgs = 0usize;
    let mut current: Vec<Instant> = Vec::with_capacity(batch);
    let mut batch_started = Instant::now();
    let len = payload.len() as u64;
    let settle = |r: client::Result<client::Receipt>,
                  inflight: &mut VecDeque<(u64, Vec<Instant>)>,
                  pending: &mut usize|
     -> anyhow::Result<()> {
        let Some((seq, starts)) = inflight.pop_front() else {
            bail!("receipt without a pending send");
        };
        *pending -= starts.len();
        match r {
            Ok(rc) if rc.sequence_id == seq => {
                stats.record_since(Instant::now(), &starts);
                stats
                    .messages
                    .fetch_add(starts.len() as u64, Ordering::Relaxed);
                stats
                    .bytes
                    .fetch_add(len * starts.len() as u64, Ordering::Relaxed);
                Ok(())
            }
            Ok(rc) => bail!(
                "receipt for sequence {} while {seq} was expected",
                rc.sequence_id
            ),
            Err(e) => {
                stats
                    .failures
                    .fetch_add(starts.len() as u64, Ordering::Relaxed);
                tracing::warn!(error = %e, "send failed");
                Ok(())
            }
        }
    };
    loop {
        let finished = stop.load(Ordering::Relaxed)
            || remaining
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| r.checked_sub(1))
                .is_err();
        if !finished && let Some(at) = limiter.as_ref().map(|l| l.reserve()) {
            // A waiting batch leaves when its delay ends, not when the next message comes:
            // on the timer's tick at or before that (tokio rounds deadlines up to the next
            // millisecond, which held every lone message 1-2 ms for a 1 ms batch delay).
            let deadline = batch_started + batch_delay;
            if !current.is_empty() && deadline < at {
                let tick = deadline
                    .checked_sub(Duration::from_micros(999))
                    .unwrap_or(deadline);
                settle_until(tick, &mut receipts, &mut |r| {
                    settle(r, &mut inflight, &mut pending_msgs)
                })
                .await?;
                send_batch(
                    &mut producer,
                    &payload,
                    &mut current,
                    &mut inflight,
                    &mut pending_msgs,
                )?;
            }
            settle_until(at, &mut receipts, &mut |r| {
                settle(r, &mut inflight, &mut pending_msgs)
            })
            .await?;
        }
        // One clock reading per message: when it is handed over, and for the batch's age.
        let now = Instant::now();
        if !finished {
            if current.is_empty() {
                batch_started = now;
            }
            current.push(now);
        }
        let flush = !current.is_empty()
            && (finished || current.len() >= batch || now - batch_started >= batch_delay);
        if flush {
            send_batch(
                &mut producer,
                &payload,
                &mut current,
                &mut inflight,
                &mut pending_msgs,
            )?;
        }
        // Collect receipts that arrived; wait when the window is full.
        while pending_msgs >= max_pending || (finished && !inflight.is_empty()) {
            match receipts.recv().await {
                Some(r) => settle(r, &mut inflight, &mut pending_msgs)?,
                None => bail!("connection closed"),
            }
        }
        while let Ok(r) = receipts.try_recv() {
            settle(r, &mut inflight, &mut pending_msgs)?;
        }
        if finished && inflight.is_empty() {
            return Ok(());
        }
    }
}

/// Waits until `at`, handing every receipt that arrives meanwhile to `settle`: a receipt's
/// latency is taken when it arrives, not when this producer's next send is due (with many
/// producers sharing one rate, that is tens of milliseconds later).
async fn settle_until(
    at: Instant,
    receipts: &mut tokio::sync::mpsc::UnboundedReceiver<client::Result<client::Receipt>>,
    settle: &mut impl FnMut(client::Result<client::Receipt>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(at.into()) => return Ok(()),
            r = receipts.recv() => match r {
                Some(r) => settle(r)?,
                None => bail!("connection closed"),
            },
        }
    }
}

/// Sends the messages collected in `current` as one entry and tracks it until its receipt.
fn send_batch(
    producer: &mut client::Producer,
    payload: &Bytes,
    current: &mut Vec<Instant>,
    inflight: &mut VecDeque<(u64, Vec<Instant>)>,
    pending_msgs: &mut usize,
) -> anyhow::Result<()> {
    let payloads = vec![payload.clone(); current.len()];
    let seq = producer.send(&payloads).context("send")?;
    *pending_msgs += current.len();
    inflight.push_back((seq, std::mem::take(current)));
    Ok(())
}

async fn consume(a: ConsumeArgs) -> anyhow::Result<()> {
    let conn = client::Connection::connect(&a.common.service_url)
        .await
        .with_context(|| format!("connecting to {}", a.common.service_url))?;
    let topics = expand_topics(&conn, &a.common.topics).await?;
    let sub_type = match a.sub_type.as_str() {
        "Shared" => 1,
        "Failover" => 2,
        "Key_Shared" => 3,
        _ => 0,
    };
    let initial = i32::from(a.position == "Earliest");
    let stats = Stats::new(Duration::ZERO)?;
    let remaining = Arc::new(AtomicU64::new(if a.total == 0 {
        u64::MAX
    } else {
        a.total
    }));
    let started = Instant::now();
    let mut workers = Vec::new();
    for topic in &topics {
        conn.lookup(topic)
            .await
            .with_context(|| format!("looking up {topic}"))?;
        let (consumer, deliveries) = conn
            .subscribe(topic, &a.subscription, sub_type, initial)
            .await
            .with_context(|| format!("subscribing to {topic}"))?;
        workers.push(tokio::spawn(consume_loop(
            consumer,
            deliveries,
            a.queue,
            Arc::clone(&remaining),
            Arc::clone(&stats),
        )));
    }
    let done = Arc::new(AtomicBool::new(false));
    let reporter = tokio::spawn(report(
        Arc::clone(&stats),
        Duration::from_secs(a.common.stats_interval.max(1)),
        "received",
        false,
        Arc::clone(&done),
    ));
    tokio::select! {
        r = futures_join(workers) => r?,
        _ = stop_signal(a.common.test_duration) => {}
    }
    done.store(true, Ordering::Relaxed);
    reporter.abort();
    summary(&stats, started, "received", &a.common.output)
}

async fn consume_loop(
    consumer: client::Consumer,
    mut deliveries: tokio::sync::mpsc::UnboundedReceiver<client::Delivery>,
    queue: u32,
    remaining: Arc<AtomicU64>,
    stats: Arc<Stats>,
) -> anyhow::Result<()> {
    consumer.flow(queue).context("flow")?;
    let mut consumed_since_flow = 0u32;
    let mut acks = Vec::with_capacity(100);
    while let Some(d) = deliveries.recv().await {
        let (count, payload_bytes, publish_ms) = match protocol::parse_entry(&d.entry) {
            Ok((meta, at)) => (
                protocol::entry::message_count(&meta),
                (d.entry.len() - at) as u64,
                meta.publish_time,
            ),
            Err(_) => (1, d.entry.len() as u64, 0),
        };
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|t| t.as_millis() as u64)
            .unwrap_or(0);
        stats.record_n(now_ms.saturating_sub(publish_ms) * 1000, u64::from(count));
        stats
            .messages
            .fetch_add(u64::from(count), Ordering::Relaxed);
        stats.bytes.fetch_add(payload_bytes, Ordering::Relaxed);
        acks.push(d.id);
        consumed_since_flow += count;
        let left = remaining
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| {
                Some(r.saturating_sub(u64::from(count)))
            })
            .unwrap_or(0)
            .saturating_sub(u64::from(count));
        if acks.len() >= 100 || deliveries.is_empty() || left == 0 {
            consumer.ack(std::mem::take(&mut acks)).context("ack")?;
        }
        if consumed_since_flow >= queue / 2 {
            consumer.flow(consumed_since_flow).context("flow")?;
            consumed_since_flow = 0;
        }
        if left == 0 {
            return Ok(());
        }
    }
    bail!("connection closed")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sender that sleeps until each permit and wakes `late` after it (as timers do), when
    /// the permit is still ahead: how long `n` permits take.
    fn paced(rate: u64, late: Duration, n: usize) -> Duration {
        let limiter = RateLimiter::new(rate).expect("a rate");
        let start = *limiter.next.lock().unwrap();
        let mut now = start;
        for _ in 0..n {
            let at = limiter.reserve_at(now);
            if at > now {
                now = at + late;
            }
        }
        now - start
    }

    #[test]
    fn a_sender_woken_late_by_its_timer_still_gets_the_whole_rate() {
        // 2000 permits at 2000/s, each wake-up 1.3 ms late: one second, not two.
        let took = paced(2000, Duration::from_micros(1300), 2000);
        assert!(took < Duration::from_millis(1050), "{took:?}");
        assert!(took >= Duration::from_millis(999), "{took:?}");
    }

    #[test]
    fn after_idling_a_sender_gets_no_burst_beyond_the_credit() {
        let limiter = RateLimiter::new(1000).expect("a rate");
        let later = Instant::now() + Duration::from_secs(5);
        let first = limiter.reserve_at(later);
        assert_eq!(first, later, "no permits saved up over 5 s of idling");
        assert_eq!(limiter.reserve_at(later), later + Duration::from_millis(1));
    }
}

//! `tierlog perf consume`: one subscription per topic, latency from publish time to receipt.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::stats::{Stats, report, summary};
use super::{ConsumeArgs, expand_topics, futures_join, stop_signal};

pub(super) async fn consume(a: ConsumeArgs) -> anyhow::Result<()> {
    let conn = a.common.connect().await?;
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
            Duration::from_millis(a.acks_delay_ms),
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

/// Most acknowledgements sent in one go (the Pulsar client's group size).
const MAX_ACK_GROUP: usize = 1000;

async fn consume_loop(
    consumer: client::Consumer,
    mut deliveries: tokio::sync::mpsc::UnboundedReceiver<client::Delivery>,
    queue: u32,
    acks_delay: Duration,
    remaining: Arc<AtomicU64>,
    stats: Arc<Stats>,
) -> anyhow::Result<()> {
    consumer.flow(queue).context("flow")?;
    let mut consumed_since_flow = 0u32;
    let mut acks = Vec::with_capacity(MAX_ACK_GROUP);
    // When the oldest acknowledgement waiting must go.
    let mut ack_deadline: Option<tokio::time::Instant> = None;
    loop {
        let d = tokio::select! {
            d = deliveries.recv() => match d {
                Some(d) => d,
                None => bail!("connection closed"),
            },
            _ = sleep_until(ack_deadline) => {
                consumer.ack(std::mem::take(&mut acks)).context("ack")?;
                ack_deadline = None;
                continue;
            }
        };
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
        ack_deadline.get_or_insert_with(|| tokio::time::Instant::now() + acks_delay);
        consumed_since_flow += count;
        let left = remaining
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| {
                Some(r.saturating_sub(u64::from(count)))
            })
            .unwrap_or(0)
            .saturating_sub(u64::from(count));
        if acks.len() >= MAX_ACK_GROUP || acks_delay.is_zero() || left == 0 {
            consumer.ack(std::mem::take(&mut acks)).context("ack")?;
            ack_deadline = None;
        }
        if consumed_since_flow >= queue / 2 {
            consumer.flow(consumed_since_flow).context("flow")?;
            consumed_since_flow = 0;
        }
        if left == 0 {
            return Ok(());
        }
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

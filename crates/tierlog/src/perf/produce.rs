//! `tierlog perf produce`: producers in batches at a shared rate, latency per message from
//! hand-over to receipt.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;

use super::rate::RateLimiter;
use super::stats::{Stats, report, summary};
use super::{ProduceArgs, expand_topics, futures_join, numbered_topics, stop_signal};

pub(super) async fn produce(a: ProduceArgs) -> anyhow::Result<()> {
    let conn = a.common.connect().await?;
    let named = numbered_topics(&a.common.topics, a.num_topics, &a.separator)?;
    let topics = expand_topics(&conn, &named).await?;
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
    let batch = if a.disable_batching {
        1
    } else {
        a.batch_max_messages.max(1)
    };
    // Producers are set up 64 at a time: with thousands of topics one by one takes long.
    let mut producers = Vec::with_capacity(topics.len() * a.producers);
    let mut setting_up = tokio::task::JoinSet::new();
    for topic in topics
        .iter()
        .flat_map(|t| std::iter::repeat_n(t, a.producers))
    {
        if setting_up.len() >= 64
            && let Some(done) = setting_up.join_next().await
        {
            producers.push(done.context("producer set-up task")??);
        }
        let (conn, topic) = (conn.clone(), topic.clone());
        setting_up.spawn(async move {
            conn.lookup(&topic)
                .await
                .with_context(|| format!("looking up {topic}"))?;
            conn.producer(&topic)
                .await
                .with_context(|| format!("creating a producer on {topic}"))
        });
    }
    while let Some(done) = setting_up.join_next().await {
        producers.push(done.context("producer set-up task")??);
    }
    // The rate counts from here: setting up thousands of producers is not producing.
    let started = Instant::now();
    let mut workers = Vec::new();
    for (producer, receipts) in producers {
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
        // Messages waiting in the batch count against --max-pending too (as in Pulsar's
        // producer queue): a full window sends the batch and waits, instead of filling a
        // batch of `batch` messages per producer whatever the window.
        let room = max_pending.saturating_sub(pending_msgs).max(1);
        let flush = !current.is_empty()
            && (finished || current.len() >= batch.min(room) || now - batch_started >= batch_delay);
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

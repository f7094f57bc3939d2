//! `tierlog perf produce`: producers in batches at a shared rate, latency per message from
//! hand-over to receipt.
//!
//! As in pulsar-perf, a few sending tasks (`--num-test-threads`, default 1) each hand messages
//! to their share of the producers in turn (skipping those whose window is full) and collect the
//! receipts of all of them from one channel. With a task per producer, 10 000 producers cost a
//! task wake-up per message: 4.7-5.2 µs of the load generator's CPU per message against 3.0-3.5
//! this way (one message per entry, 10 000 in flight).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use tokio::sync::mpsc;

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
    let shared = Shared {
        limiter: RateLimiter::new(a.rate),
        remaining: AtomicU64::new(if a.total == 0 { u64::MAX } else { a.total }),
        stop: AtomicBool::new(false),
        stats: Arc::clone(&stats),
    };
    let shared = Arc::new(shared);
    let batch = if a.disable_batching {
        1
    } else {
        a.batch_max_messages.max(1)
    };
    let assignments: Vec<&String> = topics
        .iter()
        .flat_map(|t| std::iter::repeat_n(t, a.producers))
        .collect();
    // Producer i belongs to sending task i % tasks.
    let tasks = a.threads.clamp(1, assignments.len().max(1));
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..tasks).map(|_| mpsc::unbounded_channel()).unzip();
    // Producers are set up 64 at a time: with thousands of topics one by one takes long.
    let mut producers: Vec<Vec<client::Producer>> = (0..tasks).map(|_| Vec::new()).collect();
    let mut setting_up: tokio::task::JoinSet<anyhow::Result<(usize, client::Producer)>> =
        tokio::task::JoinSet::new();
    for (i, topic) in assignments.into_iter().enumerate() {
        if setting_up.len() >= 64
            && let Some(done) = setting_up.join_next().await
        {
            let (task, producer) = done.context("producer set-up task")??;
            producers[task].push(producer);
        }
        let (conn, topic, receipts) = (conn.clone(), topic.clone(), senders[i % tasks].clone());
        setting_up.spawn(async move {
            conn.lookup(&topic)
                .await
                .with_context(|| format!("looking up {topic}"))?;
            let producer = conn
                .producer_sharing(&topic, receipts)
                .await
                .with_context(|| format!("creating a producer on {topic}"))?;
            Ok((i % tasks, producer))
        });
    }
    while let Some(done) = setting_up.join_next().await {
        let (task, producer) = done.context("producer set-up task")??;
        producers[task].push(producer);
    }
    // Only the connection holds the senders now: a closed connection ends every channel.
    drop(senders);
    // The rate counts from here: setting up thousands of producers is not producing.
    let started = Instant::now();
    let count = producers.iter().map(Vec::len).sum::<usize>();
    let mut workers = Vec::new();
    for (producers, receipts) in producers.into_iter().zip(receivers) {
        let group = Group::new(
            producers,
            receipts,
            payload.clone(),
            batch,
            Duration::from_millis(a.batch_delay_ms),
            a.max_pending,
            Arc::clone(&shared),
        );
        workers.push(tokio::spawn(group.run()));
    }
    eprintln!(
        "Producing to {} topic(s) with {count} producer(s) at {} msg/s, {} bytes per message",
        topics.len(),
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
            shared.stop.store(true, Ordering::Relaxed);
        }
    }
    done.store(true, Ordering::Relaxed);
    reporter.abort();
    summary(&stats, started, "sent", &a.common.output)
}

/// tokio's timers fire on the first millisecond tick at or after their deadline: one set this
/// much before a batch's deadline fires in the millisecond before it, not up to one after.
const TICK: Duration = Duration::from_micros(999);

/// What every sending task shares: the rate, the messages left, the stop flag, the counters.
struct Shared {
    limiter: Option<Arc<RateLimiter>>,
    remaining: AtomicU64,
    stop: AtomicBool,
    stats: Arc<Stats>,
}

impl Shared {
    /// Takes one message of the run, or says the run is over.
    fn take_one(&self) -> bool {
        !self.stop.load(Ordering::Relaxed)
            && self
                .remaining
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| r.checked_sub(1))
                .is_ok()
    }
}

/// One producer as its sending task sees it.
struct Slot {
    producer: client::Producer,
    /// Sends in flight, in order: (sequence id, when each of its messages was handed over).
    inflight: VecDeque<(u64, Vec<Instant>)>,
    /// Messages in `inflight`.
    pending: usize,
    /// When each message of the batch being collected was handed over.
    current: Vec<Instant>,
    /// Whether it is in `Group::ready` (its window has room).
    ready: bool,
}

/// A sending task: its producers, their receipts and the batches waiting for their delay.
struct Group {
    slots: Vec<Slot>,
    /// Producer id → index in `slots`.
    index: HashMap<u64, usize>,
    receipts: mpsc::UnboundedReceiver<(u64, client::Result<client::Receipt>)>,
    /// Slots whose window has room, in the order they get the next messages: each goes to the
    /// back after a message, and when a receipt makes room in its full window. A full window
    /// then holds up only its own producer, not the turn of every other.
    ready: VecDeque<usize>,
    /// Batches being collected, oldest first: (when its delay ends, slot). A slot whose batch
    /// left sooner (full, or its window) may still be listed; `current[0]` tells.
    deadlines: VecDeque<(Instant, usize)>,
    /// Sends in flight over all slots.
    inflight: usize,
    payload: Bytes,
    batch: usize,
    batch_delay: Duration,
    max_pending: usize,
    shared: Arc<Shared>,
}

impl Group {
    fn new(
        producers: Vec<client::Producer>,
        receipts: mpsc::UnboundedReceiver<(u64, client::Result<client::Receipt>)>,
        payload: Bytes,
        batch: usize,
        batch_delay: Duration,
        max_pending: usize,
        shared: Arc<Shared>,
    ) -> Group {
        let index = producers
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id(), i))
            .collect();
        let slots = producers
            .into_iter()
            .map(|producer| Slot {
                producer,
                inflight: VecDeque::new(),
                pending: 0,
                current: Vec::new(),
                ready: true,
            })
            .collect::<Vec<_>>();
        Group {
            ready: (0..slots.len()).collect(),
            slots,
            index,
            receipts,
            deadlines: VecDeque::new(),
            inflight: 0,
            payload,
            batch,
            batch_delay,
            max_pending: max_pending.max(1),
            shared,
        }
    }

    /// Hands one message at a time to the next producer with room in its window until the run
    /// is over, then sends what is collected and waits for every receipt.
    async fn run(mut self) -> anyhow::Result<()> {
        while !self.slots.is_empty() && self.shared.take_one() {
            if let Some(at) = self.shared.limiter.as_ref().map(|l| l.reserve()) {
                while Instant::now() < at {
                    self.wait(Some(at)).await?;
                }
            }
            // Every window full: wait for receipts (pulsar-perf's send blocks likewise).
            let i = loop {
                match self.ready.pop_front() {
                    Some(i) => break i,
                    None => self.wait(None).await?,
                }
            };
            // One clock reading per message: when it is handed over, and for the batch's age.
            let now = Instant::now();
            let slot = &mut self.slots[i];
            if slot.current.is_empty() && self.batch > 1 {
                self.deadlines.push_back((now + self.batch_delay, i));
            }
            slot.current.push(now);
            // Messages waiting in the batch count against --max-pending too (as in Pulsar's
            // producer queue): a full window sends the batch, instead of filling a batch of
            // `batch` messages per producer whatever the window.
            let room = self.max_pending.saturating_sub(slot.pending).max(1);
            if slot.current.len() >= self.batch.min(room)
                || now - slot.current[0] >= self.batch_delay
            {
                self.send_batch(i)?;
            }
            let slot = &mut self.slots[i];
            if slot.pending < self.max_pending {
                self.ready.push_back(i);
            } else {
                slot.ready = false;
            }
            self.settle_arrived()?;
            self.send_due_batches(now)?;
        }
        for i in 0..self.slots.len() {
            if !self.slots[i].current.is_empty() {
                self.send_batch(i)?;
            }
        }
        self.deadlines.clear();
        while self.inflight > 0 {
            self.wait(None).await?;
        }
        Ok(())
    }

    /// Waits for receipts, until `until` if given, and for the next batch's delay to end;
    /// settles what arrived and sends the batches whose delay ended.
    async fn wait(&mut self, until: Option<Instant>) -> anyhow::Result<()> {
        // A batch leaves on the timer's tick at or before its deadline: tokio rounds deadlines
        // up to the next millisecond, which held every lone message 1-2 ms for a 1 ms delay.
        let tick = self
            .deadlines
            .front()
            .map(|(d, _)| d.checked_sub(TICK).unwrap_or(*d));
        let wake = match (until, tick) {
            (Some(u), Some(t)) => Some(u.min(t)),
            (u, t) => u.or(t),
        };
        let mut arrived = Vec::new();
        tokio::select! {
            _ = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now).into()), if wake.is_some() => {
                // This is the tick of the batches due within the next millisecond.
                self.send_due_batches(Instant::now() + TICK)
            }
            n = self.receipts.recv_many(&mut arrived, 1024) => {
                if n == 0 {
                    bail!("connection closed");
                }
                let now = Instant::now();
                for (id, r) in arrived {
                    self.settle(id, r, now)?;
                }
                self.send_due_batches(now)
            }
        }
    }

    /// Settles the receipts that have arrived, without waiting.
    fn settle_arrived(&mut self) -> anyhow::Result<()> {
        let mut now = None;
        while let Ok((id, r)) = self.receipts.try_recv() {
            let now = *now.get_or_insert_with(Instant::now);
            self.settle(id, r, now)?;
        }
        Ok(())
    }

    /// Counts one receipt that arrived at `now` against its producer's oldest send.
    fn settle(
        &mut self,
        producer_id: u64,
        r: client::Result<client::Receipt>,
        now: Instant,
    ) -> anyhow::Result<()> {
        if let Err(client::ClientError::Closed) = r {
            bail!("connection closed");
        }
        let Some(&i) = self.index.get(&producer_id) else {
            bail!("receipt for producer {producer_id}, which this task does not drive");
        };
        let slot = &mut self.slots[i];
        let Some((seq, starts)) = slot.inflight.pop_front() else {
            bail!("receipt without a pending send");
        };
        slot.pending -= starts.len();
        self.inflight -= 1;
        if !slot.ready && slot.pending < self.max_pending {
            slot.ready = true;
            self.ready.push_back(i);
        }
        let stats = &self.shared.stats;
        let n = starts.len() as u64;
        match r {
            Ok(rc) if rc.sequence_id == seq => {
                stats.record_since(now, &starts);
                stats.messages.fetch_add(n, Ordering::Relaxed);
                stats
                    .bytes
                    .fetch_add(self.payload.len() as u64 * n, Ordering::Relaxed);
            }
            Ok(rc) => bail!(
                "receipt for sequence {} while {seq} was expected",
                rc.sequence_id
            ),
            Err(e) => {
                stats.failures.fetch_add(n, Ordering::Relaxed);
                tracing::warn!(error = %e, "send failed");
            }
        }
        if slot.current.capacity() == 0 {
            let mut reused = starts;
            reused.clear();
            slot.current = reused;
        }
        Ok(())
    }

    /// Sends the batches whose delay ends at or before `cutoff`.
    fn send_due_batches(&mut self, cutoff: Instant) -> anyhow::Result<()> {
        while let Some(&(deadline, i)) = self.deadlines.front() {
            if deadline > cutoff {
                break;
            }
            self.deadlines.pop_front();
            // Only if the batch listed is still the one collected (it may have left sooner and
            // a younger one started, with its own deadline further back in the queue).
            if self.slots[i]
                .current
                .first()
                .is_some_and(|first| *first + self.batch_delay == deadline)
            {
                self.send_batch(i)?;
            }
        }
        Ok(())
    }

    /// Sends slot `i`'s collected messages as one entry and tracks it until its receipt.
    fn send_batch(&mut self, i: usize) -> anyhow::Result<()> {
        let slot = &mut self.slots[i];
        let payloads = vec![self.payload.clone(); slot.current.len()];
        let seq = slot.producer.send(&payloads).context("send")?;
        slot.pending += slot.current.len();
        // The next batch gets the vector of a settled one back (see `settle`): an allocation
        // per batch of 10 000 producers was 160 MB of fresh pages to zero at the start.
        slot.inflight
            .push_back((seq, std::mem::take(&mut slot.current)));
        self.inflight += 1;
        Ok(())
    }
}

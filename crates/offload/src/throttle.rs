//! Byte-per-second limits on the tier's traffic (offload uploads, cold reads): one shared by
//! every topic of a broker, and one per namespace or topic whose offload policies set one
//! ([`ScopedLimit`]; a transfer passes when every rate it is under has let it: [`Rates`]). A token bucket (the `leaky-bucket` crate) refilled every 100 ms, with fair
//! scheduling: waiting uploads (or reads) are served in the order they asked, a chunk at a time,
//! so one topic's large offload cannot starve another's. A throttled transfer is slowed, never
//! failed.

use std::sync::Arc;
use std::time::Duration;

/// A broker-wide byte rate.
#[derive(Debug)]
pub struct ByteRate {
    limiter: leaky_bucket::RateLimiter,
    /// Permits are taken in pieces of at most one refill, so the waiters take turns.
    chunk: usize,
    bytes_per_second: u64,
}

const REFILL_EVERY: Duration = Duration::from_millis(100);

/// A byte rate that the transfers of one scope share, as an offload policy sets it: `scope`
/// names the namespace (all its topics together) or the topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ScopedLimit {
    pub scope: String,
    pub bytes_per_second: u64,
}

/// Every rate one transfer is under (the broker's, its namespace's, its topic's).
#[derive(Debug, Clone, Default)]
pub struct Rates(Vec<Arc<ByteRate>>);

impl Rates {
    pub fn new(rates: Vec<Arc<ByteRate>>) -> Self {
        Rates(rates)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The lowest of the rates (`None`: no limit).
    pub fn slowest_bytes_per_second(&self) -> Option<u64> {
        self.0.iter().map(|r| r.bytes_per_second()).min()
    }

    /// Waits until every rate has let `bytes` more pass.
    pub async fn take(&self, bytes: u64) {
        for rate in &self.0 {
            rate.take(bytes).await;
        }
    }
}

/// The rates of one offload: its parts' (`parts`, which the store client paces) and its reads
/// of the ledger (`source`, the same limits in buckets without bursts); under them, the lines
/// its topic's offloads read and send in (`order`; none for an offload of no topic).
#[derive(Debug, Clone, Default)]
pub struct OffloadRates {
    pub parts: Rates,
    pub source: Rates,
    pub order: Option<Arc<crate::topic_order::TopicOrder>>,
}

impl ByteRate {
    /// `bytes_per_second` on average. Unused permits accumulate up to one second's worth, so
    /// the time a transfer spends between its pieces (an offload reading and building its next
    /// block) does not go unused; a transfer still goes out in pieces of its own size (a block,
    /// a range), whatever the burst allowance.
    pub fn per_second(bytes_per_second: u64) -> Self {
        Self::keeping(bytes_per_second, 10)
    }

    /// `bytes_per_second` with no more than a tenth of a second of unused permits kept: for
    /// pacing work that must not come in bursts (an offload's disk reads).
    pub fn smooth(bytes_per_second: u64) -> Self {
        Self::keeping(bytes_per_second, 1)
    }

    /// A bucket refilled every [`REFILL_EVERY`] that keeps at most `refills` refills unused.
    fn keeping(bytes_per_second: u64, refills: usize) -> Self {
        let refill = (bytes_per_second / 10).max(1) as usize;
        ByteRate {
            limiter: leaky_bucket::RateLimiter::builder()
                .initial(refill)
                .refill(refill)
                .max(refills * refill)
                .interval(REFILL_EVERY)
                .fair(true)
                .build(),
            chunk: refill,
            bytes_per_second,
        }
    }

    pub fn bytes_per_second(&self) -> u64 {
        self.bytes_per_second
    }

    /// Waits until `bytes` more may pass.
    pub async fn take(&self, bytes: u64) {
        let mut left = bytes;
        while left > 0 {
            let piece = left.min(self.chunk as u64);
            self.limiter.acquire(piece as usize).await;
            left -= piece;
            // Let the other waiters (woken by the same refill) queue before this one asks again.
            tokio::task::yield_now().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn transfers_average_the_rate_and_waiters_take_turns() {
        let rate = std::sync::Arc::new(ByteRate::per_second(1_000_000));
        let start = tokio::time::Instant::now();
        // Two transfers of 2 MB at once: 4 MB at 1 MB/s take about 4 s (less the initial
        // refill), and both end near the end: neither waits for the other to finish.
        let a = tokio::spawn({
            let rate = std::sync::Arc::clone(&rate);
            async move {
                rate.take(2_000_000).await;
                start.elapsed()
            }
        });
        let b = tokio::spawn({
            let rate = std::sync::Arc::clone(&rate);
            async move {
                rate.take(2_000_000).await;
                start.elapsed()
            }
        });
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        let last = a.max(b);
        assert!(
            last >= Duration::from_millis(3_800) && last <= Duration::from_millis(4_100),
            "{last:?}"
        );
        assert!(a.min(b) >= Duration::from_millis(3_500), "{a:?} {b:?}");
    }
}

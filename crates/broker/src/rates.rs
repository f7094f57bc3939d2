//! Rates and latency buckets as Pulsar's stats and metrics report them: counters are sampled
//! every `statsUpdateFrequencyInSecs`, a rate is a counter's change over the last interval,
//! and the write-latency buckets count the entries written in that interval.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The rates of `N` counters over the last sampling interval.
#[derive(Debug, Clone)]
pub(crate) struct RateMeter<const N: usize> {
    last: Option<(Instant, [u64; N])>,
    rates: [f64; N],
    deltas: [u64; N],
}

impl<const N: usize> Default for RateMeter<N> {
    fn default() -> Self {
        RateMeter {
            last: None,
            rates: [0.0; N],
            deltas: [0; N],
        }
    }
}

impl<const N: usize> RateMeter<N> {
    /// A meter whose first interval starts at `now` with these values (a topic just loaded:
    /// its first rates come one interval later, not two).
    pub(crate) fn starting(now: Instant, values: [u64; N]) -> Self {
        RateMeter {
            last: Some((now, values)),
            ..Self::default()
        }
    }

    /// Takes the counters' values at `now`: the rates become their change per second since
    /// the previous sample (a counter that went down, a subscription removed say, counts 0).
    pub(crate) fn sample(&mut self, now: Instant, values: [u64; N]) {
        if let Some((then, before)) = self.last {
            let secs = now.saturating_duration_since(then).as_secs_f64();
            if secs > 0.0 {
                for i in 0..N {
                    self.deltas[i] = values[i].saturating_sub(before[i]);
                    self.rates[i] = self.deltas[i] as f64 / secs;
                }
            }
        }
        self.last = Some((now, values));
    }

    pub(crate) fn rates(&self) -> [f64; N] {
        self.rates
    }

    /// How much each counter grew over the last interval.
    pub(crate) fn deltas(&self) -> [u64; N] {
        self.deltas
    }
}

/// Upper bounds (ms) of Pulsar's storage write latency buckets; a last bucket takes the rest
/// (`pulsar_storage_write_latency_le_0_5` … `_le_1000`, `_le_overflow`).
pub const WRITE_LATENCY_BOUNDS_MS: [f64; 9] =
    [0.5, 1.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 1000.0];

/// Write latencies recorded as they happen.
#[derive(Debug, Default)]
pub(crate) struct LatencyBuckets {
    counts: [AtomicU64; 10],
    sum_us: AtomicU64,
}

/// One interval of [`LatencyBuckets`]: entries per bucket, and their latencies' sum.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LatencySnapshot {
    /// Per bucket of [`WRITE_LATENCY_BOUNDS_MS`], then the overflow bucket.
    pub counts: [u64; 10],
    pub sum_ms: f64,
}

impl LatencySnapshot {
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

impl LatencyBuckets {
    pub(crate) fn record(&self, d: Duration) {
        let ms = d.as_secs_f64() * 1000.0;
        let i = WRITE_LATENCY_BOUNDS_MS
            .iter()
            .position(|b| ms <= *b)
            .unwrap_or(WRITE_LATENCY_BOUNDS_MS.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// The counts since the previous call, which start again from zero.
    pub(crate) fn take(&self) -> LatencySnapshot {
        let mut s = LatencySnapshot::default();
        for (out, c) in s.counts.iter_mut().zip(&self.counts) {
            *out = c.swap(0, Ordering::Relaxed);
        }
        s.sum_ms = self.sum_us.swap(0, Ordering::Relaxed) as f64 / 1000.0;
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_is_the_change_over_the_last_interval() {
        let mut m = RateMeter::<2>::default();
        let t = Instant::now();
        m.sample(t, [10, 100]);
        assert_eq!(m.rates(), [0.0, 0.0], "one sample has no rate yet");
        m.sample(t + Duration::from_secs(2), [30, 100]);
        assert_eq!(m.rates(), [10.0, 0.0]);
        assert_eq!(m.deltas(), [20, 0]);
        m.sample(t + Duration::from_secs(4), [5, 300]);
        assert_eq!(m.rates(), [0.0, 100.0], "a counter that went down counts 0");
    }

    #[test]
    fn latencies_fall_into_pulsars_buckets_and_each_interval_starts_empty() {
        let b = LatencyBuckets::default();
        b.record(Duration::from_micros(400));
        b.record(Duration::from_micros(500));
        b.record(Duration::from_millis(3));
        b.record(Duration::from_secs(2));
        let s = b.take();
        assert_eq!(s.counts, [2, 0, 1, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(s.count(), 4);
        assert!((s.sum_ms - 2003.9).abs() < 1e-9, "{}", s.sum_ms);
        assert_eq!(b.take().count(), 0);
    }
}

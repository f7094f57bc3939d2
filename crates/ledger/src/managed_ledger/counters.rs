//! What a managed ledger did since it was opened, for metrics: Pulsar's `pulsar_ml_*`
//! (appends and reads) and `brk_ledgeroffloader_*` (offloads, tier reads, deletes) families.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds (µs; Pulsar's offloader summaries observe microseconds) of
/// [`LatencyHistogram`]'s buckets; a last bucket takes the rest.
pub const LATENCY_BOUNDS_US: [u64; 8] = [
    1_000, 5_000, 10_000, 50_000, 100_000, 500_000, 1_000_000, 5_000_000,
];

/// Latencies recorded as they happen, in buckets.
#[derive(Debug, Default)]
pub(super) struct LatencyHistogram {
    counts: [AtomicU64; 9],
    sum_us: AtomicU64,
}

/// A [`LatencyHistogram`] read at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LatencySnapshot {
    /// Per bucket of [`LATENCY_BOUNDS_US`] (not cumulative), then the rest.
    pub counts: [u64; 9],
    pub sum_us: u64,
}

impl LatencySnapshot {
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

impl std::ops::AddAssign for LatencySnapshot {
    fn add_assign(&mut self, o: Self) {
        for (a, b) in self.counts.iter_mut().zip(o.counts) {
            *a += b;
        }
        self.sum_us += o.sum_us;
    }
}

impl LatencyHistogram {
    pub(super) fn record(&self, d: Duration) {
        let us = d.as_micros().min(u128::from(u64::MAX)) as u64;
        let i = LATENCY_BOUNDS_US
            .iter()
            .position(|b| us <= *b)
            .unwrap_or(LATENCY_BOUNDS_US.len());
        self.counts[i].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
    }

    fn snapshot(&self) -> LatencySnapshot {
        let mut s = LatencySnapshot::default();
        for (out, c) in s.counts.iter_mut().zip(&self.counts) {
            *out = c.load(Relaxed);
        }
        s.sum_us = self.sum_us.load(Relaxed);
        s
    }
}

/// Counters bumped as things happen.
#[derive(Debug, Default)]
pub(super) struct IoCounters {
    pub(super) add_bytes: AtomicU64,
    pub(super) add_errors: AtomicU64,
    pub(super) read_entries: AtomicU64,
    pub(super) read_bytes: AtomicU64,
    pub(super) read_errors: AtomicU64,
    pub(super) tier_read_entries: AtomicU64,
    pub(super) tier_read_bytes: AtomicU64,
    pub(super) offloaded_bytes: AtomicU64,
    pub(super) offload_errors: AtomicU64,
    pub(super) offload_deletes_ok: AtomicU64,
    pub(super) offload_deletes_failed: AtomicU64,
    /// Tier reads of entries, tier handle opens (the index), reads of the hot copy while
    /// offloading, and whole ledger offloads.
    pub(super) tier_read_latency: LatencyHistogram,
    pub(super) tier_open_latency: LatencyHistogram,
    pub(super) offload_source_read_latency: LatencyHistogram,
    pub(super) offload_latency: LatencyHistogram,
}

/// [`IoCounters`] read at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoStats {
    /// Bytes of entries accepted for appending, and appends refused.
    pub add_bytes: u64,
    pub add_errors: u64,
    /// Entries and bytes read (from either tier), and reads that failed.
    pub read_entries: u64,
    pub read_bytes: u64,
    pub read_errors: u64,
    /// Entries and bytes read from tiered storage.
    pub tier_read_entries: u64,
    pub tier_read_bytes: u64,
    /// Bytes of ledgers offloaded, and offloads of a ledger that failed.
    pub offloaded_bytes: u64,
    pub offload_errors: u64,
    /// Deletions of offloaded objects that succeeded and that failed.
    pub offload_deletes_ok: u64,
    pub offload_deletes_failed: u64,
    /// Latencies of tier reads, tier handle opens (index reads), hot-copy reads while
    /// offloading, and whole ledger offloads.
    pub tier_read_latency: LatencySnapshot,
    pub tier_open_latency: LatencySnapshot,
    pub offload_source_read_latency: LatencySnapshot,
    pub offload_latency: LatencySnapshot,
}

impl IoCounters {
    pub(super) fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Relaxed);
    }

    pub(super) fn snapshot(&self) -> IoStats {
        IoStats {
            add_bytes: self.add_bytes.load(Relaxed),
            add_errors: self.add_errors.load(Relaxed),
            read_entries: self.read_entries.load(Relaxed),
            read_bytes: self.read_bytes.load(Relaxed),
            read_errors: self.read_errors.load(Relaxed),
            tier_read_entries: self.tier_read_entries.load(Relaxed),
            tier_read_bytes: self.tier_read_bytes.load(Relaxed),
            offloaded_bytes: self.offloaded_bytes.load(Relaxed),
            offload_errors: self.offload_errors.load(Relaxed),
            offload_deletes_ok: self.offload_deletes_ok.load(Relaxed),
            offload_deletes_failed: self.offload_deletes_failed.load(Relaxed),
            tier_read_latency: self.tier_read_latency.snapshot(),
            tier_open_latency: self.tier_open_latency.snapshot(),
            offload_source_read_latency: self.offload_source_read_latency.snapshot(),
            offload_latency: self.offload_latency.snapshot(),
        }
    }
}

/// Sums the counters of several managed ledgers (a namespace's, for metrics).
impl std::ops::AddAssign for IoStats {
    fn add_assign(&mut self, o: Self) {
        self.add_bytes += o.add_bytes;
        self.add_errors += o.add_errors;
        self.read_entries += o.read_entries;
        self.read_bytes += o.read_bytes;
        self.read_errors += o.read_errors;
        self.tier_read_entries += o.tier_read_entries;
        self.tier_read_bytes += o.tier_read_bytes;
        self.offloaded_bytes += o.offloaded_bytes;
        self.offload_errors += o.offload_errors;
        self.offload_deletes_ok += o.offload_deletes_ok;
        self.offload_deletes_failed += o.offload_deletes_failed;
        self.tier_read_latency += o.tier_read_latency;
        self.tier_open_latency += o.tier_open_latency;
        self.offload_source_read_latency += o.offload_source_read_latency;
        self.offload_latency += o.offload_latency;
    }
}

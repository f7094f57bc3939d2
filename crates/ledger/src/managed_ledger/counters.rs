//! What a managed ledger did since it was opened, for metrics: Pulsar's `pulsar_ml_*`
//! (appends and reads) and `brk_ledgeroffloader_*` (offloads, tier reads, deletes) families.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

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
        }
    }
}

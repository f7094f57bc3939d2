//! What the offloader reads a ledger from: any sealed ledger that can hand out its entries.

use bytes::Bytes;

/// A sealed ledger to offload. Implemented by the managed ledger over the hot tier.
#[async_trait::async_trait]
pub trait LedgerSource: Send + Sync {
    fn ledger_id(&self) -> i64;
    /// Id of the last entry; -1 for an empty ledger (which cannot be offloaded).
    fn last_entry_id(&self) -> i64;
    /// Sum of the payload lengths of all entries.
    fn length(&self) -> u64;
    /// When the ledger was created (ms); goes into the index's ledger metadata.
    fn created_ms(&self) -> u64;
    /// Entries `first..=last`; may return fewer (at least one) when `max_bytes` is reached.
    async fn read(&self, first: i64, last: i64, max_bytes: usize) -> Result<Vec<Bytes>, String>;
}

//! The broker-wide budget of offloads: how many ledgers upload at once, and how many parts (each
//! a block held in memory) are built or in flight at once over all of them. One budget is shared
//! by every offloader of a broker (it lives in [`crate::ObjectStores`]), so several topics — and
//! several ledgers of one topic — offload in parallel without their memory adding up unbounded:
//! at most `parts` blocks exist at any moment, whatever the number of offloads.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::throttle::ByteRate;

/// Limits shared by every offload of a broker.
#[derive(Debug, Clone)]
pub struct OffloadBudget {
    ledgers: Arc<Semaphore>,
    max_ledgers: usize,
    parts: Arc<Semaphore>,
    /// `managedLedgerOffloadFlowPermitsPerSecond`: bytes per second all uploads share.
    upload_rate: Option<Arc<ByteRate>>,
}

impl OffloadBudget {
    /// `managedLedgerOffloadMaxThreads` (Pulsar's default 2) ledgers at once, and `parts` blocks
    /// built or uploading at once over all of them.
    pub fn new(max_ledgers: usize, parts: usize) -> Self {
        let max_ledgers = max_ledgers.max(1);
        OffloadBudget {
            ledgers: Arc::new(Semaphore::new(max_ledgers)),
            max_ledgers,
            parts: Arc::new(Semaphore::new(parts.max(1))),
            upload_rate: None,
        }
    }

    /// All uploads together send at most `bytes_per_second` (on average, over ~0.2 s).
    pub fn with_upload_rate(mut self, bytes_per_second: u64) -> Self {
        self.upload_rate = Some(Arc::new(ByteRate::per_second(bytes_per_second)));
        self
    }

    /// Waits until a block of `bytes` may be sent (at once when no rate is set).
    pub async fn pace_upload(&self, bytes: u64) {
        if let Some(rate) = &self.upload_rate {
            rate.take(bytes).await;
        }
    }

    /// How many ledgers may upload at once.
    pub fn max_ledgers(&self) -> usize {
        self.max_ledgers
    }

    /// Waits for a ledger's turn; the offload holds the permit until it ends.
    pub async fn ledger(&self) -> OwnedSemaphorePermit {
        // The semaphores are never closed, so acquiring cannot fail.
        match Arc::clone(&self.ledgers).acquire_owned().await {
            Ok(p) => p,
            Err(_) => unreachable_closed(),
        }
    }

    /// Waits for room for one more block; released when its part is uploaded (or dropped).
    pub async fn part(&self) -> OwnedSemaphorePermit {
        match Arc::clone(&self.parts).acquire_owned().await {
            Ok(p) => p,
            Err(_) => unreachable_closed(),
        }
    }
}

impl Default for OffloadBudget {
    /// Pulsar's `managedLedgerOffloadMaxThreads` (2), each with tierlog's default of 4 parts in
    /// flight plus the one being built.
    fn default() -> Self {
        OffloadBudget::new(2, 2 * 5)
    }
}

#[cold]
fn unreachable_closed() -> ! {
    // Only `Semaphore::close` makes acquiring fail, and nothing here calls it.
    panic!("offload budget semaphore closed")
}

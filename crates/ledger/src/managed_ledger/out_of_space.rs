//! The out-of-space state: once the file system says it is full (or read-only), appends are
//! refused outright for a while, then after a probe of the free space, and no ledger is
//! created meanwhile (a client retrying its sends must not create one per send). Reported once
//! when entered and once when space returns.

use super::ManagedLedger;
use crate::error::{LedgerError, Result};

/// How long appends are refused after the file system said it is full, before a probe.
const SPACE_RETRY_MS: u64 = 1000;
/// Free bytes a probe wants before appends resume.
const MIN_FREE_BYTES: u64 = 1 << 20;

impl ManagedLedger {
    fn space_guard(&self) -> std::sync::MutexGuard<'_, Option<u64>> {
        self.shared
            .out_of_space_until
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Refuses appends while the file system is out of space: outright until the retry time,
    /// then after a probe of the free space (which ends the state when there is room again).
    pub(super) fn refuse_if_out_of_space(&self) -> Result<()> {
        let mut until = self.space_guard();
        let Some(retry_at) = *until else {
            return Ok(());
        };
        let now = self.shared.clock.now_ms();
        if now < retry_at {
            return Err(self.storage_full("appends are refused until space returns"));
        }
        match self.shared.store.free_bytes() {
            Ok(free) if free >= MIN_FREE_BYTES => {
                *until = None;
                tracing::info!(ledger = %self.shared.name, free, "space is back: appends resume");
                Ok(())
            }
            _ => {
                *until = Some(now + SPACE_RETRY_MS);
                Err(self.storage_full("appends are refused until space returns"))
            }
        }
    }

    /// Enters the out-of-space state (reported once, not per refused append).
    pub(super) fn out_of_space(&self, cause: &dyn std::fmt::Display) -> LedgerError {
        let mut until = self.space_guard();
        if until.is_none() {
            tracing::warn!(ledger = %self.shared.name, %cause, "the file system is out of space: appends are refused, no ledger is created, until space returns");
        }
        *until = Some(self.shared.clock.now_ms() + SPACE_RETRY_MS);
        self.storage_full(&cause.to_string())
    }

    fn storage_full(&self, detail: &str) -> LedgerError {
        LedgerError::StorageFull {
            ledger: self.shared.name.clone(),
            detail: detail.to_string(),
        }
    }

    /// Whether appends are refused for lack of space now (checks for room again once the retry
    /// time has passed).
    pub fn is_out_of_space(&self) -> bool {
        self.refuse_if_out_of_space().is_err()
    }
}

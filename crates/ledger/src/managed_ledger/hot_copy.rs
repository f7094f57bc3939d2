//! A ledger's hot copy, wherever its [`HotTier`] puts it: a file of the local hot tier, or
//! extents of the broker's object-storage WAL. The managed ledger writes, reads, stats and
//! deletes hot copies only through here.

use bytes::Bytes;
use hot_tier::{HotTierError, LedgerWriter, PendingAppend};
use meta::Fence;
use wal::{WalAppend, WalLedger};

use super::ManagedLedger;
use crate::config::HotTier;
use crate::error::{LedgerError, Result};
use crate::info::LedgerInfo;

/// Who reads a hot copy, which decides how a local one reads its disk.
#[derive(Debug, Clone)]
pub(super) enum HotReader {
    /// Consumers, and reads the tier cannot serve: the shared file handle, with read-ahead.
    Dispatch,
    /// The offloader's copy: in small reads off the kernel's read-ahead, so producers'
    /// `fdatasync`s do not queue behind it (`LedgerStore::read_in_background`), on the
    /// offloader's background runtime if it has one (`LedgerOffloader::background`).
    Offload(Option<tokio::runtime::Handle>),
}

/// The writer of the ledger being written.
pub(super) enum HotWriter {
    Local(LedgerWriter),
    Object(WalLedger),
}

impl HotWriter {
    pub async fn append(&self, data: Bytes, fence: Option<Fence>) -> Result<HotAppend> {
        Ok(match self {
            HotWriter::Local(w) => HotAppend::Local(w.append(data).await?),
            HotWriter::Object(w) => HotAppend::Object(w.append(data, fence).await?),
        })
    }

    /// Entries and bytes of the sealed ledger.
    pub async fn seal(self) -> Result<(u64, u64)> {
        Ok(match self {
            HotWriter::Local(w) => {
                let s = w.seal().await?;
                (s.entries, s.size_bytes)
            }
            HotWriter::Object(w) => w.seal().await?,
        })
    }

    /// Whether the ledger should roll over whatever the managed ledger's own limits say (an
    /// object-tier ledger with as many extents as a ledger may have).
    pub fn wants_rollover(&self) -> bool {
        match self {
            HotWriter::Local(_) => false,
            HotWriter::Object(w) => w.wants_rollover(),
        }
    }
}

/// An accepted append of either tier.
pub(super) enum HotAppend {
    Local(PendingAppend),
    Object(WalAppend),
}

impl HotAppend {
    pub fn entry_id(&self) -> u64 {
        match self {
            HotAppend::Local(p) => p.entry_id(),
            HotAppend::Object(p) => p.entry_id(),
        }
    }
}

impl std::future::Future for HotAppend {
    type Output = Result<u64>;
    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match self.get_mut() {
            HotAppend::Local(p) => std::pin::Pin::new(p).poll(cx).map_err(Into::into),
            HotAppend::Object(p) => std::pin::Pin::new(p).poll(cx).map_err(Into::into),
        }
    }
}

impl ManagedLedger {
    fn wal(&self) -> Result<&wal::Wal> {
        self.shared
            .wal
            .as_ref()
            .ok_or_else(|| LedgerError::ObjectTierNotConfigured {
                ledger: self.shared.name.clone(),
            })
    }

    /// A writer for the new ledger `id` in `tier`.
    pub(super) fn create_hot_copy(&self, id: i64, tier: HotTier) -> Result<HotWriter> {
        Ok(match tier {
            HotTier::Local => HotWriter::Local(self.shared.store.create_ledger(id as u64)?),
            HotTier::Object => HotWriter::Object(self.wal()?.create_ledger(&self.shared.name, id)),
        })
    }

    /// Refuses to start a ledger in `tier` when this broker cannot write it.
    pub(super) fn check_tier_available(&self, tier: HotTier) -> Result<()> {
        match tier {
            HotTier::Local => Ok(()),
            HotTier::Object => self.wal().map(|_| ()),
        }
    }

    /// Entries and bytes of a ledger's durable part as this broker knows it now; a ledger
    /// without a hot copy here is empty (the current ledger before its writer exists).
    pub(super) fn durable_stat(&self, l: &LedgerInfo) -> Result<(u64, u64)> {
        match l.hot_tier {
            HotTier::Local => match self.shared.store.stat(l.ledger_id as u64) {
                Ok(s) => Ok((s.entries, s.size_bytes)),
                Err(HotTierError::NoSuchLedger(_)) => Ok((0, 0)),
                Err(e) => Err(e.into()),
            },
            HotTier::Object => Ok(self
                .shared
                .wal
                .as_ref()
                .and_then(|w| w.durable(l.ledger_id))
                .unwrap_or((0, 0))),
        }
    }

    /// Where a ledger that is no longer written ends: for an object-tier ledger written by a
    /// broker that stopped, from its committed extents (fenced: nobody extends them any more).
    pub(super) async fn recovered_stat(&self, l: &LedgerInfo) -> Result<(u64, u64)> {
        match l.hot_tier {
            HotTier::Local => self.durable_stat(l),
            HotTier::Object => Ok(self.wal()?.recover(&self.shared.name, l.ledger_id).await?),
        }
    }

    /// Entries `start..=last` of a ledger's hot copy (up to `budget` bytes, at least one), for
    /// `reader`.
    pub(super) async fn read_hot(
        &self,
        l: &LedgerInfo,
        start: i64,
        last: i64,
        budget: usize,
        reader: HotReader,
    ) -> Result<Vec<Bytes>> {
        match l.hot_tier {
            HotTier::Local => {
                let store = self.shared.store.clone();
                let id = l.ledger_id as u64;
                let (start, last) = (start as u64, last as u64);
                // Entries read ahead are in memory: no trip to a blocking thread for them.
                if let Some(entries) = store.read_ahead(id, start, last, budget) {
                    return Ok(entries);
                }
                let read = match reader {
                    HotReader::Dispatch => {
                        tokio::task::spawn_blocking(move || store.read(id, start, last, budget))
                    }
                    HotReader::Offload(background) => {
                        let read = move || store.read_in_background(id, start, last, budget);
                        match background {
                            Some(rt) => rt.spawn_blocking(read),
                            None => tokio::task::spawn_blocking(read),
                        }
                    }
                };
                read.await
                    .map_err(|e| LedgerError::Task(e.to_string()))?
                    .map_err(Into::into)
            }
            HotTier::Object => Ok(self
                .wal()?
                .read(
                    &self.shared.name,
                    l.ledger_id,
                    start as u64,
                    last as u64,
                    budget,
                )
                .await?),
        }
    }

    /// Deletes a ledger's hot copy.
    pub(super) async fn try_delete_hot_copy(&self, l: &LedgerInfo) -> Result<()> {
        match l.hot_tier {
            HotTier::Local => {
                // Unlinks, a directory fsync and the last close (which frees the file's blocks:
                // tens of ms for a large ledger) — none of it on an async thread, where it held
                // up every producer served by that thread.
                let store = self.shared.store.clone();
                let id = l.ledger_id as u64;
                tokio::task::spawn_blocking(move || store.delete_ledger(id))
                    .await
                    .map_err(|e| LedgerError::Task(e.to_string()))??;
                Ok(())
            }
            HotTier::Object => {
                match &self.shared.wal {
                    Some(w) => w.delete_ledger(&self.shared.name, l.ledger_id).await?,
                    None => {
                        let meta = self.shared.meta.as_ref();
                        wal::delete_extents(meta, &self.shared.name, l.ledger_id).await?
                    }
                }
                Ok(())
            }
        }
    }

    /// [`try_delete_hot_copy`](Self::try_delete_hot_copy) of a ledger already out of the
    /// list: a failure leaves garbage (files are collected at start-up, extents with the
    /// managed ledger's deletion), so it is logged, not returned.
    pub(super) async fn delete_hot_copy(&self, l: &LedgerInfo) {
        if let Err(e) = self.try_delete_hot_copy(l).await {
            tracing::warn!(ledger = %self.shared.name, ledger_id = l.ledger_id, error = %e, "could not delete a ledger's hot copy");
        }
    }

    /// Drops what the WAL keeps in memory for this managed ledger's object-tier ledgers (it
    /// was released: another broker may own them next).
    pub(crate) fn forget_hot_copies(&self) {
        if let Some(w) = &self.shared.wal {
            for l in self.view().ledgers.iter() {
                if l.hot_tier == HotTier::Object {
                    w.forget(l.ledger_id);
                }
            }
        }
    }

    /// Whether an error of a hot copy read means it is not there (rather than failing).
    pub(super) fn is_missing_hot_copy(e: &LedgerError) -> bool {
        matches!(
            e,
            LedgerError::HotTier(HotTierError::NoSuchLedger(_))
                | LedgerError::Wal(wal::WalError::NoSuchEntries { .. })
        )
    }
}

//! Opens managed ledgers over one ledger store and one metadata store, and keeps one instance
//! per name so every user of a topic shares its state. Opening one managed ledger (metadata
//! reads, recovery of its last ledger) never holds up opening another.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use hot_tier::LedgerStore;
use meta::MetadataStore;
use offload::{BlobStoreReader, Credentials, LedgerOffloader, ObjectStores, TierReader};
use once_map::OnceMap;

use crate::clock::Clock;
use crate::compression::Compression;
use crate::config::ManagedLedgerConfig;
use crate::error::{LedgerError, Result};
use crate::ids::LedgerIdAllocator;
use crate::info::{self, ManagedLedgerInfo};
use crate::managed_ledger::ManagedLedger;

/// What every managed ledger of a factory shares.
pub(crate) struct Deps {
    pub store: LedgerStore,
    /// The broker's object-storage WAL, if it has one (object-tier ledgers need it).
    pub wal: Option<wal::Wal>,
    pub meta: Arc<dyn MetadataStore>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<LedgerIdAllocator>,
    /// Reads offloaded ledgers of managed ledgers that have no offloader.
    pub reader: Arc<dyn TierReader>,
    /// In a cluster, this broker's id: recorded with every ledger it creates, and a managed
    /// ledger whose hot data is on another broker's disk is refused.
    pub hot_tier_owner: Option<String>,
    /// How ledger lists and cursors are stored (compressed above a size).
    pub ledger_info_compression: Compression,
    pub cursor_info_compression: Compression,
}

pub struct ManagedLedgerFactory {
    deps: Deps,
    open: OnceMap<String, ManagedLedger>,
    /// The offloader of managed ledgers opened without one of their own.
    offloader: Option<Arc<dyn LedgerOffloader>>,
}

impl ManagedLedgerFactory {
    pub fn new(store: LedgerStore, meta: Arc<dyn MetadataStore>, clock: Arc<dyn Clock>) -> Self {
        let reader = BlobStoreReader::new(
            Credentials::default(),
            offload::ReadSizes::default(),
            Arc::new(ObjectStores::default()),
        );
        ManagedLedgerFactory {
            deps: Deps {
                ids: Arc::new(LedgerIdAllocator::new(Arc::clone(&meta))),
                store,
                wal: None,
                meta,
                clock,
                reader: Arc::new(reader),
                hot_tier_owner: None,
                ledger_info_compression: Compression::default(),
                cursor_info_compression: Compression::default(),
            },
            open: OnceMap::new(),
            offloader: None,
        }
    }

    /// Ledger lists and cursors are stored compressed as these say (both LZ4 above 16 KiB
    /// unless set).
    pub fn with_metadata_compression(
        mut self,
        ledger_info: Compression,
        cursor_info: Compression,
    ) -> Self {
        self.deps.ledger_info_compression = ledger_info;
        self.deps.cursor_info_compression = cursor_info;
        self
    }

    /// Managed ledgers opened with [`open`](Self::open) offload through `offloader`.
    pub fn with_offloader(mut self, offloader: Arc<dyn LedgerOffloader>) -> Self {
        self.offloader = Some(offloader);
        self
    }

    /// This factory runs on broker `id` of a cluster, whose local disk holds the hot copies of
    /// the ledgers it creates (see [`crate::LedgerError::HotTierElsewhere`]).
    pub fn with_hot_tier_owner(mut self, id: impl Into<String>) -> Self {
        self.deps.hot_tier_owner = Some(id.into());
        self
    }

    /// Object-tier ledgers are written through `wal` (one per broker).
    pub fn with_wal(mut self, wal: wal::Wal) -> Self {
        self.deps.wal = Some(wal);
        self
    }

    /// Offloaded ledgers of managed ledgers without an offloader are read through `reader`
    /// (the broker's store cache and credentials).
    pub fn with_reader(mut self, reader: Arc<dyn TierReader>) -> Self {
        self.deps.reader = reader;
        self
    }

    pub fn store(&self) -> &LedgerStore {
        &self.deps.store
    }

    /// Opens (creating if needed) the managed ledger `name` with the factory's offloader.
    pub async fn open(&self, name: &str, config: ManagedLedgerConfig) -> Result<ManagedLedger> {
        self.open_with(name, config, self.offloader.clone()).await
    }

    /// Opens (creating if needed) the managed ledger `name` with `config` and `offloader`; an
    /// already open one gets them. A managed ledger being deleted does not open.
    pub async fn open_with(
        &self,
        name: &str,
        config: ManagedLedgerConfig,
        offloader: Option<Arc<dyn LedgerOffloader>>,
    ) -> Result<ManagedLedger> {
        let ml = self.instance(name, &config, &offloader).await?;
        if ml.is_deleting().await {
            return Err(LedgerError::Deleting(name.to_string()));
        }
        ml.set_config(config);
        ml.set_offloader(offloader);
        Ok(ml)
    }

    /// The one instance of `name`, opened if needed (also one being deleted).
    async fn instance(
        &self,
        name: &str,
        config: &ManagedLedgerConfig,
        offloader: &Option<Arc<dyn LedgerOffloader>>,
    ) -> Result<ManagedLedger> {
        self.open
            .get_or_try_init(name.to_string(), || {
                ManagedLedger::open(name, config.clone(), &self.deps, offloader.clone())
            })
            .await
    }

    /// The managed ledger `name` if it is open.
    pub async fn get_open(&self, name: &str) -> Option<ManagedLedger> {
        self.open.get(&name.to_string())
    }

    /// Every managed ledger open in this process.
    pub async fn open_ledgers(&self) -> Vec<ManagedLedger> {
        self.open.values()
    }

    /// Names of every managed ledger in the metadata store.
    pub async fn names(&self) -> Result<Vec<String>> {
        Ok(self
            .deps
            .meta
            .list(info::ML_PREFIX)
            .await?
            .into_iter()
            .map(|k| k[info::ML_PREFIX.len()..].to_string())
            .collect())
    }

    /// Whether a managed ledger of this name exists (open or not).
    pub async fn exists(&self, name: &str) -> Result<bool> {
        Ok(self.deps.meta.get(&info::ml_key(name)).await?.is_some())
    }

    /// Deletes a managed ledger and everything it stored: hot files, tier objects, cursors and
    /// its ledger list ([`ManagedLedger::delete`]). Deleting one that does not exist succeeds;
    /// repeating an interrupted deletion finishes it.
    pub async fn delete(&self, name: &str) -> Result<()> {
        if !self.exists(name).await? {
            self.open.remove(&name.to_string());
            return Ok(());
        }
        let ml = self
            .instance(name, &ManagedLedgerConfig::default(), &self.offloader)
            .await?;
        let result = ml.delete().await;
        self.open.remove(&name.to_string());
        result
    }

    /// Finishes the deletions a crash interrupted (managed ledgers still marked `deleting`).
    /// Run at start-up, before [`collect_garbage`](Self::collect_garbage).
    pub async fn finish_deletions(&self) -> Result<Vec<String>> {
        let mut finished = Vec::new();
        for (key, v) in self.deps.meta.scan(info::ML_PREFIX).await? {
            let ml_info: ManagedLedgerInfo = info::decode(&key, &v.value)?;
            if ml_info.deleting {
                let name = &key[info::ML_PREFIX.len()..];
                self.delete(name).await?;
                finished.push(name.to_string());
            }
        }
        if !finished.is_empty() {
            tracing::info!(?finished, "finished interrupted deletions");
        }
        Ok(finished)
    }

    /// Every managed ledger's ledgers whose hot copy is still needed (all listed ledgers but
    /// those recorded as offloaded with the hot copy deleted), by managed-ledger name.
    async fn ledgers_with_hot_copies(&self) -> Result<HashMap<String, HashSet<i64>>> {
        let mut needed = HashMap::new();
        for (key, v) in self.deps.meta.scan(info::ML_PREFIX).await? {
            let Some(name) = key.strip_prefix(info::ML_PREFIX) else {
                continue;
            };
            let ml_info: ManagedLedgerInfo = info::decode(&key, &v.value)?;
            let ids = ml_info
                .ledgers
                .iter()
                .filter(|l| !l.hot_copy_deleted())
                .map(|l| l.ledger_id)
                .collect();
            needed.insert(name.to_string(), ids);
        }
        Ok(needed)
    }

    /// Deletes ledger files that no ledger list references, or whose ledger the list says is
    /// offloaded with its hot copy deleted (left by a crash between a list update and a file
    /// deletion: retention's, or the deletion lag's). Run at start-up, before any managed
    /// ledger is opened: a ledger being created concurrently could otherwise look unreferenced.
    pub async fn collect_garbage(&self) -> Result<Vec<u64>> {
        let referenced: BTreeSet<u64> = self
            .ledgers_with_hot_copies()
            .await?
            .into_values()
            .flatten()
            .map(|id| id as u64)
            .collect();
        let mut removed = Vec::new();
        for id in self.deps.store.list_ledgers()? {
            if !referenced.contains(&id) {
                self.deps.store.delete_ledger(id)?;
                removed.push(id);
            }
        }
        if !removed.is_empty() {
            tracing::info!(?removed, "deleted unreferenced ledger files");
        }
        Ok(removed)
    }

    /// Deletes the WAL extent keys no ledger needs any more: those of ledgers no list names
    /// (retention or a topic deletion removed them and the process stopped before their
    /// extents went) or that their list records as offloaded with the hot copy deleted (a crash
    /// between trim's list update and the extents' deletion). Their objects then go to the
    /// WAL's sweeper, which keeps every object an extent names. Returns how many keys went.
    ///
    /// Safe beside brokers writing meanwhile: a ledger is listed before its first extent is
    /// committed, and the extents are listed here *before* the ledger lists are read, so an
    /// extent seen here belongs to a ledger that is still listed when the lists are read
    /// unless it was removed in between (garbage then too); a ledger recorded hot-deleted
    /// never gets an extent again. A list that cannot be read stops the pass before any
    /// deletion.
    pub async fn collect_stale_extents(&self) -> Result<usize> {
        let meta = &self.deps.meta;
        // Flush records left unindexed (a writer stopped after a commit) become extent keys
        // first, so that those of ledgers no longer needed are collected in this pass.
        wal::index_records(meta.as_ref(), |_| true).await?;
        let extents = meta.list(wal::keys::EXTENT_PREFIX).await?;
        if extents.is_empty() {
            return Ok(0);
        }
        // The ledgers whose extents are still needed, by their managed ledger's key segment.
        let needed: HashMap<String, HashSet<i64>> = self
            .ledgers_with_hot_copies()
            .await?
            .into_iter()
            .map(|(name, ids)| (meta::key_segment(&name), ids))
            .collect();
        let stale: Vec<String> = extents
            .into_iter()
            .filter(|key| {
                let mut parts = key
                    .strip_prefix(wal::keys::EXTENT_PREFIX)
                    .unwrap_or_default()
                    .split('/');
                let (Some(segment), Some(Ok(ledger_id))) =
                    (parts.next(), parts.next().map(str::parse::<i64>))
                else {
                    return false; // not an extent key: not ours to judge
                };
                !needed
                    .get(segment)
                    .is_some_and(|ids| ids.contains(&ledger_id))
            })
            .collect();
        for chunk in stale.chunks(meta::MAX_TXN_OPS) {
            let ops = chunk
                .iter()
                .map(|k| meta::Op::delete(k.clone(), meta::Expected::Any))
                .collect();
            meta.commit(ops).await?;
        }
        if !stale.is_empty() {
            tracing::info!(
                keys = stale.len(),
                "deleted WAL extents of ledgers no longer needed"
            );
        }
        Ok(stale.len())
    }

    /// Closes the managed ledger `name` if it is open and forgets it: the next open reads it
    /// from the metadata store again. For a topic this broker stops serving (its bundle was
    /// unloaded or its session lost): another broker may write it meanwhile, so nothing of
    /// this instance's state may be used again. The close is best effort (a fenced ledger or
    /// an unreachable metadata store fails it; the next owner seals what was left open).
    pub async fn release(&self, name: &str) {
        if let Some(ml) = self.open.remove(&name.to_string()) {
            if let Err(e) = ml.close().await {
                tracing::info!(ledger = name, error = %e, "closing a released managed ledger failed; its next owner recovers it");
            }
            ml.forget_hot_copies();
        }
    }

    /// [`release`](Self::release) without sealing: the session was lost, this broker may not
    /// write the managed ledger's metadata any more (its next owner seals what is open).
    pub fn forget(&self, name: &str) {
        if let Some(ml) = self.open.remove(&name.to_string()) {
            ml.forget_hot_copies();
        }
    }

    /// Closes every open managed ledger (seals their current ledgers).
    pub async fn close_all(&self) -> Result<()> {
        for ml in self.open.drain() {
            ml.close().await?;
        }
        Ok(())
    }
}

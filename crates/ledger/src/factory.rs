//! Opens managed ledgers over one ledger store and one metadata store, and keeps one instance
//! per name so every user of a topic shares its state.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use hot_tier::LedgerStore;
use meta::{Expected, MetadataStore};

use crate::clock::Clock;
use crate::config::ManagedLedgerConfig;
use crate::error::Result;
use crate::ids::LedgerIdAllocator;
use crate::info::{self, ManagedLedgerInfo};
use crate::managed_ledger::ManagedLedger;

pub struct ManagedLedgerFactory {
    store: LedgerStore,
    meta: Arc<dyn MetadataStore>,
    clock: Arc<dyn Clock>,
    ids: Arc<LedgerIdAllocator>,
    open: tokio::sync::Mutex<HashMap<String, ManagedLedger>>,
    offloader: Option<Arc<dyn offload::LedgerOffloader>>,
}

impl ManagedLedgerFactory {
    pub fn new(store: LedgerStore, meta: Arc<dyn MetadataStore>, clock: Arc<dyn Clock>) -> Self {
        ManagedLedgerFactory {
            ids: Arc::new(LedgerIdAllocator::new(Arc::clone(&meta))),
            store,
            meta,
            clock,
            open: tokio::sync::Mutex::new(HashMap::new()),
            offloader: None,
        }
    }

    /// Managed ledgers opened from now on offload through `offloader`.
    pub fn with_offloader(mut self, offloader: Arc<dyn offload::LedgerOffloader>) -> Self {
        self.offloader = Some(offloader);
        self
    }

    pub fn store(&self) -> &LedgerStore {
        &self.store
    }

    /// Opens (creating if needed) the managed ledger `name`. An already open one is returned as is
    /// (its config is updated).
    pub async fn open(&self, name: &str, config: ManagedLedgerConfig) -> Result<ManagedLedger> {
        let mut open = self.open.lock().await;
        if let Some(ml) = open.get(name) {
            ml.set_config(config);
            return Ok(ml.clone());
        }
        let ml = ManagedLedger::open(
            name,
            config,
            self.store.clone(),
            Arc::clone(&self.meta),
            Arc::clone(&self.clock),
            Arc::clone(&self.ids),
            self.offloader.clone(),
        )
        .await?;
        open.insert(name.to_string(), ml.clone());
        Ok(ml)
    }

    /// The managed ledger `name` if it is open.
    pub async fn get_open(&self, name: &str) -> Option<ManagedLedger> {
        self.open.lock().await.get(name).cloned()
    }

    /// Every managed ledger open in this process.
    pub async fn open_ledgers(&self) -> Vec<ManagedLedger> {
        self.open.lock().await.values().cloned().collect()
    }

    /// Names of every managed ledger in the metadata store.
    pub async fn names(&self) -> Result<Vec<String>> {
        Ok(self
            .meta
            .list(info::ML_PREFIX)
            .await?
            .into_iter()
            .map(|k| k[info::ML_PREFIX.len()..].to_string())
            .collect())
    }

    /// Whether a managed ledger of this name exists (open or not).
    pub async fn exists(&self, name: &str) -> Result<bool> {
        Ok(self.meta.get(&info::ml_key(name)).await?.is_some())
    }

    /// Deletes a managed ledger: its ledgers' files, its cursors, its ledger list.
    pub async fn delete(&self, name: &str) -> Result<()> {
        if let Some(ml) = self.open.lock().await.remove(name) {
            ml.close().await?;
        }
        let key = info::ml_key(name);
        if let Some(v) = self.meta.get(&key).await? {
            let ml_info: ManagedLedgerInfo = info::decode(&key, &v.value)?;
            for ck in self.meta.list(&info::cursor_prefix(name)).await? {
                self.meta.delete(&ck, Expected::Any).await?;
            }
            self.meta.delete(&key, Expected::Version(v.version)).await?;
            for l in ml_info.ledgers {
                self.store.delete_ledger(l.ledger_id as u64)?;
            }
        }
        Ok(())
    }

    /// Deletes ledger files that no ledger list references (left by a crash between a list update
    /// and a file deletion). Run at start-up, before any managed ledger is opened: a ledger being
    /// created concurrently could otherwise look unreferenced.
    pub async fn collect_garbage(&self) -> Result<Vec<u64>> {
        let mut referenced = BTreeSet::new();
        for key in self.meta.list(info::ML_PREFIX).await? {
            if let Some(v) = self.meta.get(&key).await? {
                let ml_info: ManagedLedgerInfo = info::decode(&key, &v.value)?;
                referenced.extend(ml_info.ledgers.iter().map(|l| l.ledger_id as u64));
            }
        }
        let mut removed = Vec::new();
        for id in self.store.list_ledgers()? {
            if !referenced.contains(&id) {
                self.store.delete_ledger(id)?;
                removed.push(id);
            }
        }
        if !removed.is_empty() {
            tracing::info!(?removed, "deleted unreferenced ledger files");
        }
        Ok(removed)
    }

    /// Closes every open managed ledger (seals their current ledgers).
    pub async fn close_all(&self) -> Result<()> {
        let all: Vec<ManagedLedger> = self.open.lock().await.drain().map(|(_, v)| v).collect();
        for ml in all {
            ml.close().await?;
        }
        Ok(())
    }
}

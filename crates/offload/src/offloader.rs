//! The offloader: one implementation over `object_store` serves every storage family.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::path::Path;
use uuid::Uuid;

use crate::counting::{CountingStore, RequestCounters};
use crate::driver::{Driver, DriverMetadata, OffloadConfig};
use crate::error::{OffloadError, Result};
use crate::keys;
use crate::read::{OffloadedLedger, ReadOptions};
use crate::source::LedgerSource;
use crate::upload::{OffloadResult, offload_ledger};

/// Copies sealed ledgers to long-term storage and reads them back.
#[async_trait::async_trait]
pub trait LedgerOffloader: Send + Sync {
    /// The configured driver's name (`aws-s3`, `S3`, …).
    fn driver_name(&self) -> &str;
    /// Where ledgers offloaded now go; stored with each ledger.
    fn driver_metadata(&self) -> DriverMetadata;
    /// Writes the ledger under `uuid` (data object, then index).
    async fn offload(
        &self,
        ledger: &dyn LedgerSource,
        uuid: Uuid,
        extra: &BTreeMap<String, String>,
    ) -> Result<OffloadResult>;
    /// Opens a read handle on a ledger offloaded under `uuid` to the location in `driver`.
    async fn read(
        &self,
        ledger_id: i64,
        uuid: Uuid,
        driver: &DriverMetadata,
    ) -> Result<OffloadedLedger>;
    /// Deletes both objects of an offload attempt. Deleting what is not there succeeds.
    async fn delete(&self, ledger_id: i64, uuid: Uuid, driver: &DriverMetadata) -> Result<()>;
}

/// The offloader for every object store family.
pub struct BlobStoreOffloader {
    config: OffloadConfig,
    store: Arc<dyn ObjectStore>,
    counters: Arc<RequestCounters>,
    /// Stores for other locations (ledgers offloaded under an earlier configuration).
    others: tokio::sync::Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
}

impl std::fmt::Debug for BlobStoreOffloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStoreOffloader")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl BlobStoreOffloader {
    /// Builds the object store from `config`.
    pub async fn new(config: OffloadConfig) -> Result<Self> {
        let store = config.build_store().await?;
        Ok(Self::with_store(config, store))
    }

    /// Uses `store` for the configured location (tests wrap stores with fault injection).
    pub fn with_store(config: OffloadConfig, store: Arc<dyn ObjectStore>) -> Self {
        let (counting, counters) = CountingStore::new(store);
        BlobStoreOffloader {
            config,
            store: Arc::new(counting),
            counters,
            others: Default::default(),
        }
    }

    pub fn config(&self) -> &OffloadConfig {
        &self.config
    }

    /// Request counters of the configured location's store.
    pub fn counters(&self) -> &Arc<RequestCounters> {
        &self.counters
    }

    /// The configured location's store (for tooling such as `offload dump`).
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    fn read_options(&self) -> ReadOptions {
        ReadOptions {
            read_buffer_size_bytes: self.config.read_buffer_size_bytes.max(1),
            read_ahead_requests: self.config.read_ahead_requests,
            verify_format_version: self.config.driver != Driver::Filesystem,
            attempts: 3,
        }
    }

    /// The store and location name for a ledger's recorded driver metadata.
    async fn store_for(
        &self,
        driver: &DriverMetadata,
    ) -> Result<(Arc<dyn ObjectStore>, OffloadConfig)> {
        let here = self.config.at_location(driver);
        let same = here.location() == self.config.location()
            && here.endpoint == self.config.endpoint
            && here.region == self.config.region;
        if driver.properties.is_empty() || same {
            return Ok((Arc::clone(&self.store), self.config.clone()));
        }
        let key = format!("{}|{:?}|{:?}", here.location(), here.endpoint, here.region);
        let mut others = self.others.lock().await;
        if let Some(s) = others.get(&key) {
            return Ok((Arc::clone(s), here));
        }
        let s = here.build_store().await?;
        others.insert(key, Arc::clone(&s));
        Ok((s, here))
    }
}

#[async_trait::async_trait]
impl LedgerOffloader for BlobStoreOffloader {
    fn driver_name(&self) -> &str {
        self.config.driver.name()
    }

    fn driver_metadata(&self) -> DriverMetadata {
        self.config.driver_metadata()
    }

    async fn offload(
        &self,
        ledger: &dyn LedgerSource,
        uuid: Uuid,
        extra: &BTreeMap<String, String>,
    ) -> Result<OffloadResult> {
        let started = std::time::Instant::now();
        let result = offload_ledger(&self.config, &self.store, ledger, uuid, extra).await;
        match &result {
            Ok(r) => tracing::info!(
                ledger_id = ledger.ledger_id(),
                key = %r.data_key,
                blocks = r.blocks,
                bytes = r.data_object_len,
                ms = started.elapsed().as_millis() as u64,
                "offloaded ledger"
            ),
            Err(e) => tracing::warn!(ledger_id = ledger.ledger_id(), error = %e, "offload failed"),
        }
        result
    }

    async fn read(
        &self,
        ledger_id: i64,
        uuid: Uuid,
        driver: &DriverMetadata,
    ) -> Result<OffloadedLedger> {
        let (store, config) = self.store_for(driver).await?;
        let mut options = self.read_options();
        options.verify_format_version = config.driver != Driver::Filesystem;
        OffloadedLedger::open(store, &config.location(), ledger_id, &uuid, options).await
    }

    async fn delete(&self, ledger_id: i64, uuid: Uuid, driver: &DriverMetadata) -> Result<()> {
        let (store, config) = self.store_for(driver).await?;
        for key in [
            keys::index_key(&uuid, ledger_id),
            keys::data_key(&uuid, ledger_id),
        ] {
            match object_store::ObjectStoreExt::delete(store.as_ref(), &Path::from(key.as_str()))
                .await
            {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(OffloadError::store("deleting", &config.location(), &key, e)),
            }
        }
        Ok(())
    }
}

//! Offloaders and readers: one implementation over `object_store` serves every storage family.
//!
//! A [`TierReader`] reaches ledgers offloaded earlier *at the location recorded with them*;
//! a [`LedgerOffloader`] is also a reader and in addition writes new offloads to its target.
//! Both take their clients from the broker's one [`ObjectStores`] cache.

use std::collections::BTreeMap;
use std::sync::Arc;

use object_store::path::Path;
use uuid::Uuid;

use crate::config::{Credentials, OffloadConfig, S3Encryption};
use crate::counting::RequestCounters;
use crate::error::{OffloadError, Result};
use crate::keys;
use crate::location::Location;
use crate::read::{OffloadedLedger, ReadOptions, ReadSizes};
use crate::source::LedgerSource;
use crate::stores::{Direction, ObjectStores};
use crate::throttle::{OffloadRates, ScopedLimit};
use crate::upload::{OffloadResult, offload_ledger};

/// Reads and deletes offloaded ledgers wherever they were written.
#[async_trait::async_trait]
pub trait TierReader: Send + Sync {
    /// Opens a read handle on a ledger offloaded under `uuid` to `at`.
    async fn read(&self, ledger_id: i64, uuid: Uuid, at: &Location) -> Result<OffloadedLedger>;
    /// Deletes both objects of an offload attempt at `at`. Deleting what is not there succeeds.
    async fn delete(&self, ledger_id: i64, uuid: Uuid, at: &Location) -> Result<()>;
}

/// Copies sealed ledgers to long-term storage (and reads them back, as a [`TierReader`]).
#[async_trait::async_trait]
pub trait LedgerOffloader: TierReader {
    /// Where ledgers offloaded now go; recorded with each ledger.
    fn location(&self) -> &Location;
    /// How many ledgers a managed ledger hands this offloader at once (the offloader may
    /// still take them in turns, broker-wide).
    fn max_parallel_ledgers(&self) -> usize {
        1
    }
    /// The runtime a source should read on for this offloader (its blocking threads): threads
    /// at a lower CPU priority than the broker's, so that an offload's reads of whole ledgers
    /// wait for producers and consumers rather than delay them. `None`: the caller's runtime.
    fn background(&self) -> Option<tokio::runtime::Handle> {
        None
    }
    /// Writes the ledger under `uuid` (data object, then index).
    async fn offload(
        &self,
        ledger: &dyn LedgerSource,
        uuid: Uuid,
        extra: &BTreeMap<String, String>,
    ) -> Result<OffloadResult>;
}

/// How a reader reaches stores: the credentials and read sizes it applies at any location.
#[derive(Debug, Clone)]
struct Access {
    credentials: Credentials,
    sizes: ReadSizes,
    /// The namespace's and topic's read rates (none for a reader that serves no topic).
    read_limits: Vec<ScopedLimit>,
}

impl Access {
    async fn read(
        &self,
        stores: &ObjectStores,
        ledger_id: i64,
        uuid: Uuid,
        at: &Location,
    ) -> Result<OffloadedLedger> {
        let store = stores.get(at, &self.credentials).await?;
        let options = ReadOptions {
            sizes: self.sizes,
            verify_format_version: at.has_object_metadata(),
            cache: stores.chunk_cache().cloned(),
            rates: stores.rates(Direction::Read, &self.read_limits),
        };
        OffloadedLedger::open(store, at, ledger_id, &uuid, options)
            .await
            .map_err(|e| match (e, &self.credentials.s3_encryption) {
                // With SSE-C a refusal most often means another key: say so, naming the file.
                (
                    OffloadError::AccessDenied { bucket, detail },
                    S3Encryption::SseC { key_file },
                ) => OffloadError::SseCustomerKeyRefused {
                    location: bucket,
                    key_file: key_file.clone(),
                    detail,
                },
                (e, _) => e,
            })
    }

    async fn delete(
        &self,
        stores: &ObjectStores,
        ledger_id: i64,
        uuid: Uuid,
        at: &Location,
    ) -> Result<()> {
        let store = stores.get(at, &self.credentials).await?;
        if let Some(cache) = stores.chunk_cache() {
            let cache = Arc::clone(cache);
            let keys = [
                keys::index_key(&uuid, ledger_id),
                keys::data_key(&uuid, ledger_id),
            ];
            let _ = tokio::task::spawn_blocking(move || {
                for k in keys {
                    cache.remove_object_blocking(&k);
                }
            })
            .await;
        }
        for key in [
            keys::index_key(&uuid, ledger_id),
            keys::data_key(&uuid, ledger_id),
        ] {
            match object_store::ObjectStoreExt::delete(store.as_ref(), &Path::from(key.as_str()))
                .await
            {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(OffloadError::on_write("deleting", at, &key, e)),
            }
        }
        Ok(())
    }
}

/// A reader with the broker's default credentials and read sizes, for topics that offload
/// nowhere now but still hold offloaded ledgers.
pub struct BlobStoreReader {
    access: Access,
    stores: Arc<ObjectStores>,
}

impl BlobStoreReader {
    pub fn new(credentials: Credentials, sizes: ReadSizes, stores: Arc<ObjectStores>) -> Self {
        BlobStoreReader {
            access: Access {
                credentials,
                sizes,
                read_limits: Vec::new(),
            },
            stores,
        }
    }
}

#[async_trait::async_trait]
impl TierReader for BlobStoreReader {
    async fn read(&self, ledger_id: i64, uuid: Uuid, at: &Location) -> Result<OffloadedLedger> {
        self.access.read(&self.stores, ledger_id, uuid, at).await
    }

    async fn delete(&self, ledger_id: i64, uuid: Uuid, at: &Location) -> Result<()> {
        self.access.delete(&self.stores, ledger_id, uuid, at).await
    }
}

/// The offloader for every object store family.
pub struct BlobStoreOffloader {
    config: OffloadConfig,
    access: Access,
    stores: Arc<ObjectStores>,
}

impl std::fmt::Debug for BlobStoreOffloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStoreOffloader")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl BlobStoreOffloader {
    /// An offloader with a store cache of its own (tools, tests); builds the target's client now
    /// so a bad configuration fails here.
    pub async fn new(config: OffloadConfig) -> Result<Self> {
        Self::with_stores(config, Arc::new(ObjectStores::default())).await
    }

    /// An offloader sharing the broker's store cache; builds (or finds) the target's client now.
    pub async fn with_stores(config: OffloadConfig, stores: Arc<ObjectStores>) -> Result<Self> {
        config.validate()?;
        stores.get(&config.location, &config.credentials).await?;
        let access = Access {
            credentials: config.credentials.clone(),
            sizes: config.read_sizes(),
            read_limits: config.read_limits.clone(),
        };
        Ok(BlobStoreOffloader {
            config,
            access,
            stores,
        })
    }

    pub fn config(&self) -> &OffloadConfig {
        &self.config
    }

    /// Request counters of every store this offloader's cache holds.
    pub fn counters(&self) -> &Arc<RequestCounters> {
        self.stores.counters()
    }

    /// The target location's client (for tooling such as `offload dump`).
    pub async fn store(&self) -> Result<Arc<dyn object_store::ObjectStore>> {
        self.stores
            .get(&self.config.location, &self.config.credentials)
            .await
    }
}

#[async_trait::async_trait]
impl TierReader for BlobStoreOffloader {
    async fn read(&self, ledger_id: i64, uuid: Uuid, at: &Location) -> Result<OffloadedLedger> {
        self.access.read(&self.stores, ledger_id, uuid, at).await
    }

    async fn delete(&self, ledger_id: i64, uuid: Uuid, at: &Location) -> Result<()> {
        self.access.delete(&self.stores, ledger_id, uuid, at).await
    }
}

#[async_trait::async_trait]
impl LedgerOffloader for BlobStoreOffloader {
    fn location(&self) -> &Location {
        &self.config.location
    }

    /// Twice the budget's turns: under an upload rate a ledger reads during its turn and sends
    /// its last parts after it, while another ledger, already waiting, takes the turn.
    fn max_parallel_ledgers(&self) -> usize {
        2 * self.stores.offload_budget().max_ledgers()
    }

    fn background(&self) -> Option<tokio::runtime::Handle> {
        self.stores.offload_budget().background()
    }

    async fn offload(
        &self,
        ledger: &dyn LedgerSource,
        uuid: Uuid,
        extra: &BTreeMap<String, String>,
    ) -> Result<OffloadResult> {
        let budget = self.stores.offload_budget();
        let limits = &self.config.upload_limits;
        let parts = self.stores.rates(Direction::Upload, limits);
        // Under a rate a topic's ledgers go oldest first (`topic_order`); the topic is the
        // managed ledger the objects record.
        let order = match extra.get(keys::MANAGED_LEDGER_NAME) {
            Some(name) if !parts.is_empty() => Some(budget.topic_order(name)),
            _ => None,
        };
        let turn = match &order {
            Some(order) => budget.ledger_in_order(order, ledger.ledger_id()).await,
            None => budget.ledger().await,
        };
        let started = std::time::Instant::now();
        let store = self
            .stores
            .get(&self.config.location, &self.config.credentials)
            .await?;
        let rates = OffloadRates {
            parts,
            source: self.stores.rates(Direction::SourceRead, limits),
            order,
        };
        let result = offload_ledger(&self.config, &store, ledger, uuid, extra, rates, turn).await;
        match &result {
            Ok(r) => tracing::info!(
                ledger_id = ledger.ledger_id(),
                key = %r.data_key,
                location = %self.config.location,
                blocks = r.blocks,
                bytes = r.data_object_len,
                ms = started.elapsed().as_millis() as u64,
                "offloaded ledger"
            ),
            Err(e) => tracing::warn!(ledger_id = ledger.ledger_id(), error = %e, "offload failed"),
        }
        result
    }
}

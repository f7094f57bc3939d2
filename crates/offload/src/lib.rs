//! # offload — tiered storage in Pulsar's format
//!
//! Copies sealed ledgers to long-term storage as Pulsar's block-aware data object plus index
//! object (`<uuid>-ledger-<id>` and `<uuid>-ledger-<id>-index`), and reads them back. Objects
//! written here are readable by Pulsar and the other way round (see `format`).
//!
//! - [`location`]: where objects go (`aws-s3`, `S3`, `google-cloud-storage`, `azureblob`,
//!   `filesystem` and their bucket, container or directory), recorded with every ledger;
//! - [`config`]: one offloader's target, credentials and limits;
//! - [`stores`]: the broker's one cache of object-store clients, keyed by location and
//!   credentials, and how each family's client is built (all over `object_store`);
//! - [`credentials`]: the AWS credential chain and STS AssumeRole, cached until near expiry;
//! - [`upload`]: multipart upload with parallel parts, abort on failure, index written last;
//! - [`read`]: read handles with growing ranged GETs and read-ahead;
//! - [`cache`]: the local disk cache of chunks read from the tier (its read buffers reused:
//!   `buffer_pool`);
//! - [`budget`]: how many ledgers and blocks all offloads of a broker use at once, and at what
//!   byte rate they upload ([`throttle`]; under a rate a topic's parts go oldest ledger first:
//!   [`topic_order`]);
//! - [`inventory`]: the offload attempts a location holds and what their indexes say;
//! - [`scrub`]: every object of a location or a topic read back and checked;
//! - [`gc`]: orphan collection (unreferenced objects, incomplete uploads; [`s3_uploads`]);
//! - [`offloader`]: the [`TierReader`] and [`LedgerOffloader`] traits and their object-store
//!   implementations.

pub mod budget;
mod buffer_pool;
pub mod cache;
pub mod config;
pub mod counting;
pub mod credentials;
pub mod error;
pub mod format;
pub mod gc;
pub mod inventory;
pub mod keys;
pub mod location;
pub mod offloader;
mod paced_upload;
pub mod read;
pub mod s3_multipart;
pub(crate) mod s3_signing;
pub mod s3_uploads;
pub mod scrub;
pub mod source;
pub mod stores;
pub mod throttle;
pub mod topic_order;
pub mod upload;

pub use budget::{LedgerTurn, OffloadBudget};
pub use cache::{CacheCounters, ChunkCache};
pub use config::{Credentials, OffloadConfig, S3Encryption};
pub use error::{FormatError, OffloadError, Result};
pub use location::{Driver, DriverMetadata, Location, S3Flavor};
pub use offloader::{BlobStoreOffloader, BlobStoreReader, LedgerOffloader, TierReader};
pub use read::{OffloadedLedger, ReadSizes};
pub use source::LedgerSource;
pub use stores::{ClientSettings, Direction, ObjectStores, S3PayloadChecksum};
pub use throttle::{Rates, ScopedLimit};
pub use upload::OffloadResult;

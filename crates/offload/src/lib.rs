//! # offload — tiered storage in Pulsar's format
//!
//! Copies sealed ledgers to long-term storage as Pulsar's block-aware data object plus index
//! object (`<uuid>-ledger-<id>` and `<uuid>-ledger-<id>-index`), and reads them back. Objects
//! written here are readable by Pulsar and the other way round (see `format`).
//!
//! - [`driver`]: which store (`aws-s3`, `S3`, `google-cloud-storage`, `azureblob`, `filesystem`)
//!   and its limits, all over `object_store`;
//! - [`credentials`]: the AWS credential chain and STS AssumeRole, cached until near expiry;
//! - [`upload`]: multipart upload with parallel parts, abort on failure, index written last;
//! - [`read`]: read handles with ranged GETs, read-ahead and retries;
//! - [`offloader`]: the [`LedgerOffloader`] trait and its object-store implementation.

pub mod counting;
pub mod credentials;
pub mod driver;
pub mod error;
pub mod format;
pub mod keys;
pub mod offloader;
pub mod read;
pub mod source;
pub mod upload;

pub use driver::{Driver, DriverMetadata, OffloadConfig};
pub use error::{FormatError, OffloadError, Result};
pub use offloader::{BlobStoreOffloader, LedgerOffloader};
pub use read::OffloadedLedger;
pub use source::LedgerSource;
pub use upload::OffloadResult;

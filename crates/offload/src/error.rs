//! Errors of the offload crate. Codec errors ([`FormatError`]) say what is wrong with bytes;
//! operation errors ([`OffloadError`]) say which object, where, and what the caller can do.
//! They are classified from object_store's error variants, never from message text.

use crate::location::Location;

/// A malformed data block or index.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    #[error("bad {what} magic 0x{found:08x}")]
    BadMagic { what: &'static str, found: u32 },
    #[error("truncated {what}: need {need} bytes, have {have}")]
    Truncated {
        what: &'static str,
        need: u64,
        have: u64,
    },
    #[error("{0}")]
    Invalid(String),
}

pub type FormatResult<T> = Result<T, FormatError>;

/// Errors of offloading, reading and deleting offloaded ledgers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OffloadError {
    /// The driver configuration is unusable; fix it and restart.
    #[error("invalid offload configuration: {0}")]
    Config(String),
    /// The bucket (or container) does not exist or is not reachable under that name.
    #[error("bucket {bucket:?} does not exist or is not accessible: {detail}")]
    NoSuchBucket { bucket: String, detail: String },
    /// The store refused the credentials.
    #[error("object store rejected the credentials for bucket {bucket:?}: {detail}")]
    AccessDenied { bucket: String, detail: String },
    /// An object store request failed (after object_store's retries).
    #[error("{op} of {key} in {location} failed: {source}")]
    Store {
        op: &'static str,
        location: String,
        key: String,
        #[source]
        source: Box<object_store::Error>,
    },
    /// A read was refused while the offload uses SSE-C: S3 refuses a customer key other than
    /// the one the object was written with (HTTP 403), as it refuses missing read rights.
    #[error(
        "reading {location} was refused and the offload uses SSE-C: the key in \
         s3ManagedLedgerOffloadSseCustomerKeyFile ({}) may not be the one the objects were \
         written with, or the credentials may not read the bucket: {detail}",
        key_file.display()
    )]
    SseCustomerKeyRefused {
        location: String,
        key_file: std::path::PathBuf,
        detail: String,
    },
    /// An offloaded object is missing: the ledger is not (or no longer) offloaded.
    #[error("offloaded object {key} not found in {location}")]
    NotFound { location: String, key: String },
    /// An offloaded object is not in Pulsar's format.
    #[error("offloaded object {key} is corrupt: {source}")]
    Corrupt {
        key: String,
        #[source]
        source: FormatError,
    },
    /// An entry read from the tier does not match its own checksum, also when fetched again
    /// from the store: the stored object is damaged.
    #[error(
        "entry {ledger_id}:{entry_id} in bytes {start}..{end} of offloaded object {key} does not \
         match its checksum (read twice from the store)"
    )]
    EntryChecksum {
        key: String,
        ledger_id: i64,
        entry_id: i64,
        start: u64,
        end: u64,
    },
    /// The object's `s3managedledgeroffloaderformatversion` metadata is missing or not "1".
    #[error("offloaded object {key} has format version {found:?}, expected \"1\"")]
    BadFormatVersion { key: String, found: Option<String> },
    /// The ledger cannot be offloaded as it is (open, empty, entry larger than a block).
    #[error("ledger {ledger_id} cannot be offloaded: {reason}")]
    InvalidLedger { ledger_id: i64, reason: String },
    /// Reading the ledger's entries from the hot tier failed.
    #[error("reading ledger {ledger_id} for offload failed: {reason}")]
    Source { ledger_id: i64, reason: String },
    /// The requested entries are outside the offloaded ledger.
    #[error(
        "entries {first}..={last} are not in offloaded ledger {ledger_id} (last entry {last_entry_id})"
    )]
    NoSuchEntry {
        ledger_id: i64,
        first: i64,
        last: i64,
        last_entry_id: i64,
    },
    /// Credentials could not be obtained (environment, profile, STS, metadata service).
    #[error("cannot obtain credentials: {0}")]
    Credentials(String),
    /// Listing or aborting incomplete multipart uploads failed.
    #[error("{op} in {location} failed: {detail}")]
    Multipart {
        op: &'static str,
        location: String,
        detail: String,
    },
    /// A background task failed.
    #[error("internal task failed: {0}")]
    Task(String),
}

impl OffloadError {
    /// Classifies a failed write (upload, part, index, delete) from object_store's typed errors.
    /// A write's target cannot be missing, so "not found" means the bucket (or container) is.
    pub(crate) fn on_write(
        op: &'static str,
        location: &Location,
        key: &str,
        source: object_store::Error,
    ) -> Self {
        Self::classify(op, location, key, source, |source| {
            OffloadError::NoSuchBucket {
                bucket: location.to_string(),
                detail: source.to_string(),
            }
        })
    }

    /// Classifies a failed read: a missing object is [`OffloadError::NotFound`].
    pub(crate) fn on_read(
        op: &'static str,
        location: &Location,
        key: &str,
        source: object_store::Error,
    ) -> Self {
        Self::classify(op, location, key, source, |_| OffloadError::NotFound {
            location: location.to_string(),
            key: key.to_string(),
        })
    }

    fn classify(
        op: &'static str,
        location: &Location,
        key: &str,
        source: object_store::Error,
        not_found: impl FnOnce(object_store::Error) -> Self,
    ) -> Self {
        match source {
            object_store::Error::NotFound { .. } => not_found(source),
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => OffloadError::AccessDenied {
                bucket: location.to_string(),
                detail: source.to_string(),
            },
            other => OffloadError::Store {
                op,
                location: location.to_string(),
                key: key.to_string(),
                source: Box::new(other),
            },
        }
    }
}

pub type Result<T, E = OffloadError> = std::result::Result<T, E>;

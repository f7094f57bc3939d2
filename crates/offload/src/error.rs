//! Errors of the offload crate. Codec errors ([`FormatError`]) say what is wrong with bytes;
//! operation errors ([`OffloadError`]) say which object, where, and what the caller can do.

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
    /// An object store request failed (after the store's own retries).
    #[error("{op} of {key} in {location} failed: {source}")]
    Store {
        op: &'static str,
        location: String,
        key: String,
        #[source]
        source: Box<object_store::Error>,
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
    /// A background task failed.
    #[error("internal task failed: {0}")]
    Task(String),
}

impl OffloadError {
    /// Wraps an object_store error, recognising a missing bucket and refused credentials so the
    /// message names the bucket and says what to fix.
    pub(crate) fn store(
        op: &'static str,
        bucket: &str,
        key: &str,
        source: object_store::Error,
    ) -> Self {
        let text = source.to_string();
        if text.contains("NoSuchBucket")
            || text.contains("ContainerNotFound")
            || text.contains("The specified bucket does not exist")
        {
            return OffloadError::NoSuchBucket {
                bucket: bucket.to_string(),
                detail: text,
            };
        }
        if text.contains("InvalidAccessKeyId")
            || text.contains("SignatureDoesNotMatch")
            || text.contains("AuthenticationFailed")
            || text.contains("AccessDenied")
            || matches!(
                source,
                object_store::Error::PermissionDenied { .. }
                    | object_store::Error::Unauthenticated { .. }
            )
        {
            return OffloadError::AccessDenied {
                bucket: bucket.to_string(),
                detail: text,
            };
        }
        if matches!(source, object_store::Error::NotFound { .. }) {
            return OffloadError::NotFound {
                location: bucket.to_string(),
                key: key.to_string(),
            };
        }
        OffloadError::Store {
            op,
            location: bucket.to_string(),
            key: key.to_string(),
            source: Box::new(source),
        }
    }
}

pub type Result<T, E = OffloadError> = std::result::Result<T, E>;

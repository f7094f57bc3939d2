//! The embedded metadata store on `redb` (pure Rust, ACID, one file under the data directory).
//!
//! Each value is stored as `version:u64 (LE) ‖ bytes`. Every write is one redb write transaction,
//! committed durably (fsync) before the call returns. redb is blocking, so calls run on tokio's
//! blocking pool.
//!
//! After an I/O error (a full or read-only disk) redb refuses every later transaction until the
//! database is opened again. So the store drops a database that failed that way and the next
//! call reopens it (redb repairs the file on open if the failed commit left it dirty): a disk that
//! fills up and is freed costs the failed calls, not a restart. A commit that failed is not
//! visible after the reopen; one that returned `Ok` is.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use redb::{Database, ReadableTable, TableDefinition};

use crate::{Expected, MetaError, MetadataStore, Result, Versioned};

const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// Metadata in a redb database file.
#[derive(Clone)]
pub struct RedbStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// The open database; `None` after an I/O failure until the next call reopens it.
    db: Mutex<Option<Arc<Database>>>,
}

/// What an operation on the database failed with: a store-level error (a conflict, a bad
/// value) or redb's own, whose kind decides whether the database must be reopened.
enum OpError {
    Meta(MetaError),
    Redb(Box<redb::Error>),
}

impl From<MetaError> for OpError {
    fn from(e: MetaError) -> Self {
        OpError::Meta(e)
    }
}

fn redb_err(e: impl Into<redb::Error>) -> OpError {
    OpError::Redb(Box::new(e.into()))
}

type Op<T> = std::result::Result<T, OpError>;

fn backend(op: &'static str, key: &str, e: impl std::fmt::Display) -> MetaError {
    MetaError::Backend {
        op,
        key: key.to_string(),
        detail: e.to_string(),
    }
}

fn decode(key: &str, raw: &[u8]) -> Result<Versioned> {
    let (v, value) = raw
        .split_first_chunk::<8>()
        .ok_or_else(|| backend("decode", key, "stored value shorter than its version"))?;
    Ok(Versioned {
        value: value.to_vec(),
        version: u64::from_le_bytes(*v),
    })
}

fn check(key: &str, expected: Expected, found: Option<u64>) -> Result<()> {
    let ok = match expected {
        Expected::Any => true,
        Expected::Absent => found.is_none(),
        Expected::Version(v) => found == Some(v),
    };
    if ok {
        Ok(())
    } else {
        Err(MetaError::Conflict {
            key: key.to_string(),
            expected,
            found,
        })
    }
}

/// Opens (creating, or repairing after a crash or failed commit) the database and its table.
fn open_db(path: &Path) -> Op<Database> {
    let db = Database::create(path).map_err(redb_err)?;
    let tx = db.begin_write().map_err(redb_err)?;
    tx.open_table(TABLE).map_err(redb_err)?;
    tx.commit().map_err(redb_err)?;
    Ok(db)
}

impl RedbStore {
    /// Opens or creates the database file at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let key = path.display().to_string();
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| backend("open", &key, e))?;
        }
        let db = open_db(path).map_err(|e| Self::describe("open", &key, e))?;
        Ok(RedbStore {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                db: Mutex::new(Some(Arc::new(db))),
            }),
        })
    }

    fn describe(op: &'static str, key: &str, e: OpError) -> MetaError {
        match e {
            OpError::Meta(e) => e,
            OpError::Redb(e) => backend(op, key, e),
        }
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Arc<Database>>> {
        self.inner.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The open database, reopening it if an I/O failure dropped it (blocking).
    fn database(&self) -> Op<Arc<Database>> {
        if let Some(db) = self.slot().clone() {
            return Ok(db);
        }
        // Opened without the lock held; a concurrent reopen makes one of the two fail with
        // "already open", and that call fails as the call before it did.
        let db = Arc::new(open_db(&self.inner.path)?);
        let mut slot = self.slot();
        let db = slot.get_or_insert(db).clone();
        tracing::info!(path = %self.inner.path.display(), "metadata store reopened after an I/O failure");
        Ok(db)
    }

    /// Forgets `db` if it failed with an I/O error: redb takes no more transactions on it.
    fn drop_if_poisoned(&self, db: &Arc<Database>, e: &OpError) {
        if let OpError::Redb(e) = e
            && matches!(**e, redb::Error::Io(_) | redb::Error::PreviousIo)
        {
            let mut slot = self.slot();
            if slot.as_ref().is_some_and(|cur| Arc::ptr_eq(cur, db)) {
                tracing::warn!(path = %self.inner.path.display(), "metadata store I/O failed: it is reopened on the next call");
                *slot = None;
            }
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        op: &'static str,
        key: &str,
        f: impl FnOnce(&Database) -> Op<T> + Send + 'static,
    ) -> Result<T> {
        let this = self.clone();
        let k = key.to_string();
        tokio::task::spawn_blocking(move || {
            let db = this.database().map_err(|e| Self::describe(op, &k, e))?;
            let r = f(&db);
            if let Err(e) = &r {
                this.drop_if_poisoned(&db, e);
            }
            r.map_err(|e| Self::describe(op, &k, e))
        })
        .await
        .map_err(|e| backend(op, key, e))?
    }
}

#[async_trait::async_trait]
impl MetadataStore for RedbStore {
    async fn get(&self, key: &str) -> Result<Option<Versioned>> {
        let k = key.to_string();
        self.blocking("get", key, move |db| {
            let tx = db.begin_read().map_err(redb_err)?;
            let table = tx.open_table(TABLE).map_err(redb_err)?;
            match table.get(k.as_str()).map_err(redb_err)? {
                Some(raw) => Ok(Some(decode(&k, raw.value())?)),
                None => Ok(None),
            }
        })
        .await
    }

    async fn put(&self, key: &str, value: Vec<u8>, expected: Expected) -> Result<u64> {
        let k = key.to_string();
        self.blocking("put", key, move |db| {
            let tx = db.begin_write().map_err(redb_err)?;
            let version = {
                let mut table = tx.open_table(TABLE).map_err(redb_err)?;
                let found = match table.get(k.as_str()).map_err(redb_err)? {
                    Some(raw) => Some(decode(&k, raw.value())?.version),
                    None => None,
                };
                check(&k, expected, found)?;
                let version = found.unwrap_or(0) + 1;
                let mut raw = Vec::with_capacity(8 + value.len());
                raw.extend_from_slice(&version.to_le_bytes());
                raw.extend_from_slice(&value);
                table.insert(k.as_str(), raw.as_slice()).map_err(redb_err)?;
                version
            };
            tx.commit().map_err(redb_err)?;
            Ok(version)
        })
        .await
    }

    async fn delete(&self, key: &str, expected: Expected) -> Result<()> {
        let k = key.to_string();
        self.blocking("delete", key, move |db| {
            let tx = db.begin_write().map_err(redb_err)?;
            {
                let mut table = tx.open_table(TABLE).map_err(redb_err)?;
                let found = match table.get(k.as_str()).map_err(redb_err)? {
                    Some(raw) => Some(decode(&k, raw.value())?.version),
                    None => None,
                };
                check(&k, expected, found)?;
                table.remove(k.as_str()).map_err(redb_err)?;
            }
            tx.commit().map_err(redb_err)?;
            Ok(())
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let p = prefix.to_string();
        self.blocking("list", prefix, move |db| {
            let tx = db.begin_read().map_err(redb_err)?;
            let table = tx.open_table(TABLE).map_err(redb_err)?;
            let mut out = Vec::new();
            for item in table.range(p.as_str()..).map_err(redb_err)? {
                let (k, _) = item.map_err(redb_err)?;
                let k = k.value();
                if !k.starts_with(p.as_str()) {
                    break;
                }
                out.push(k.to_string());
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The store's contract is checked in `tests/contract.rs` (on redb and etcd); here only
    /// what is redb's own: values and versions survive reopening the file.
    #[tokio::test]
    async fn values_and_versions_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        {
            let s = RedbStore::open(&path).unwrap();
            s.put("/a", b"1".to_vec(), Expected::Absent).await.unwrap();
            s.put("/a", b"2".to_vec(), Expected::Version(1))
                .await
                .unwrap();
            s.put("/ab/c", b"".to_vec(), Expected::Any).await.unwrap();
            s.put("/b", b"".to_vec(), Expected::Any).await.unwrap();
            s.delete("/b", Expected::Version(1)).await.unwrap();
        }
        let s = RedbStore::open(&path).unwrap();
        assert_eq!(
            s.get("/a").await.unwrap(),
            Some(Versioned {
                value: b"2".to_vec(),
                version: 2
            })
        );
        assert_eq!(s.list("/").await.unwrap(), vec!["/a", "/ab/c"]);
    }
}

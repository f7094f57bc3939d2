//! The embedded metadata store on `redb` (pure Rust, ACID, one file under the data directory).
//!
//! Each value is stored as `version:u64 (LE) ‖ bytes`. Every write is one redb write transaction,
//! committed durably (fsync) before the call returns. redb is blocking, so calls run on tokio's
//! blocking pool.

use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableTable, TableDefinition};

use crate::{Expected, MetaError, MetadataStore, Result, Versioned};

const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// Metadata in a redb database file.
#[derive(Clone)]
pub struct RedbStore {
    db: Arc<Database>,
}

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

impl RedbStore {
    /// Opens or creates the database file at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let key = path.display().to_string();
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| backend("open", &key, e))?;
        }
        let db = Database::create(path).map_err(|e| backend("open", &key, e))?;
        let tx = db.begin_write().map_err(|e| backend("open", &key, e))?;
        tx.open_table(TABLE).map_err(|e| backend("open", &key, e))?;
        tx.commit().map_err(|e| backend("open", &key, e))?;
        Ok(RedbStore { db: Arc::new(db) })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        op: &'static str,
        key: &str,
        f: impl FnOnce(&Database) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| backend(op, key, e))?
    }
}

#[async_trait::async_trait]
impl MetadataStore for RedbStore {
    async fn get(&self, key: &str) -> Result<Option<Versioned>> {
        let k = key.to_string();
        self.blocking("get", key, move |db| {
            let tx = db.begin_read().map_err(|e| backend("get", &k, e))?;
            let table = tx.open_table(TABLE).map_err(|e| backend("get", &k, e))?;
            match table.get(k.as_str()).map_err(|e| backend("get", &k, e))? {
                Some(raw) => decode(&k, raw.value()).map(Some),
                None => Ok(None),
            }
        })
        .await
    }

    async fn put(&self, key: &str, value: Vec<u8>, expected: Expected) -> Result<u64> {
        let k = key.to_string();
        self.blocking("put", key, move |db| {
            let tx = db.begin_write().map_err(|e| backend("put", &k, e))?;
            let version = {
                let mut table = tx.open_table(TABLE).map_err(|e| backend("put", &k, e))?;
                let found = match table.get(k.as_str()).map_err(|e| backend("put", &k, e))? {
                    Some(raw) => Some(decode(&k, raw.value())?.version),
                    None => None,
                };
                check(&k, expected, found)?;
                let version = found.unwrap_or(0) + 1;
                let mut raw = Vec::with_capacity(8 + value.len());
                raw.extend_from_slice(&version.to_le_bytes());
                raw.extend_from_slice(&value);
                table
                    .insert(k.as_str(), raw.as_slice())
                    .map_err(|e| backend("put", &k, e))?;
                version
            };
            tx.commit().map_err(|e| backend("put", &k, e))?;
            Ok(version)
        })
        .await
    }

    async fn delete(&self, key: &str, expected: Expected) -> Result<()> {
        let k = key.to_string();
        self.blocking("delete", key, move |db| {
            let tx = db.begin_write().map_err(|e| backend("delete", &k, e))?;
            {
                let mut table = tx.open_table(TABLE).map_err(|e| backend("delete", &k, e))?;
                let found = match table
                    .get(k.as_str())
                    .map_err(|e| backend("delete", &k, e))?
                {
                    Some(raw) => Some(decode(&k, raw.value())?.version),
                    None => None,
                };
                check(&k, expected, found)?;
                table
                    .remove(k.as_str())
                    .map_err(|e| backend("delete", &k, e))?;
            }
            tx.commit().map_err(|e| backend("delete", &k, e))?;
            Ok(())
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let p = prefix.to_string();
        self.blocking("list", prefix, move |db| {
            let tx = db.begin_read().map_err(|e| backend("list", &p, e))?;
            let table = tx.open_table(TABLE).map_err(|e| backend("list", &p, e))?;
            let mut out = Vec::new();
            for item in table
                .range(p.as_str()..)
                .map_err(|e| backend("list", &p, e))?
            {
                let (k, _) = item.map_err(|e| backend("list", &p, e))?;
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

    #[tokio::test]
    async fn versions_conflicts_list_and_persistence() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        {
            let s = RedbStore::open(&path).unwrap();
            assert_eq!(s.get("/a").await.unwrap(), None);
            assert_eq!(
                s.put("/a", b"1".to_vec(), Expected::Absent).await.unwrap(),
                1
            );
            assert!(matches!(
                s.put("/a", b"x".to_vec(), Expected::Absent).await,
                Err(MetaError::Conflict { found: Some(1), .. })
            ));
            assert_eq!(
                s.put("/a", b"2".to_vec(), Expected::Version(1))
                    .await
                    .unwrap(),
                2
            );
            assert!(matches!(
                s.put("/a", b"3".to_vec(), Expected::Version(1)).await,
                Err(MetaError::Conflict { .. })
            ));
            s.put("/ab/c", b"".to_vec(), Expected::Any).await.unwrap();
            s.put("/b", b"".to_vec(), Expected::Any).await.unwrap();
            assert_eq!(s.list("/a").await.unwrap(), vec!["/a", "/ab/c"]);
            assert!(matches!(
                s.delete("/b", Expected::Version(7)).await,
                Err(MetaError::Conflict { .. })
            ));
            s.delete("/b", Expected::Version(1)).await.unwrap();
            s.delete("/b", Expected::Any).await.unwrap();
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

//! The embedded metadata store on `redb` (pure Rust, ACID, one file under the data directory).
//!
//! Each value is stored as `version:u64 (LE) ‖ bytes`, the version being the store's revision
//! at the write (kept in its own table, one increment per transaction that writes). Every write
//! transaction is committed durably (fsync) before the call returns. redb is blocking, so calls
//! run on tokio's blocking pool.
//!
//! Leases live in memory: they belong to this process, so the keys written with one are listed
//! in a table of their own and deleted when the lease ends — when it expires (checked at the
//! start of every call), is revoked, or the process dies (the next open deletes them, before
//! anything can read them). Watches are a broadcast of the changes of every committed
//! transaction, sent after the commit.
//!
//! After an I/O error (a full or read-only disk) redb refuses every later transaction until the
//! database is opened again. So the store drops a database that failed that way and the next
//! call reopens it (redb repairs the file on open if the failed commit left it dirty): a disk that
//! fills up and is freed costs the failed calls, not a restart. A commit that returned `Ok` is
//! there after the reopen; one that failed has an unknown outcome (redb can fail after its
//! commit record reached the file, seen on a full tmpfs), exactly as an etcd request that timed
//! out: callers re-read rather than assume it did not happen.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redb::{Database, ReadableTable, TableDefinition};
use tokio::sync::broadcast;

use crate::{LeaseId, MetaError, MetadataStore, Op, Result, Versioned, WatchEvent, WatchStream};

const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Keys written with a lease, and the lease.
const LEASED: TableDefinition<&str, i64> = TableDefinition::new("meta_leased");
/// One row, [`REVISION_KEY`]: the revision of the last transaction that wrote.
const REVISION: TableDefinition<&str, u64> = TableDefinition::new("meta_revision");
const REVISION_KEY: &str = "revision";

/// How many changes a watcher may fall behind before its watch is lost.
const WATCH_BUFFER: usize = 4096;

/// Metadata in a redb database file.
#[derive(Clone)]
pub struct RedbStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// The open database; `None` after an I/O failure until the next call reopens it.
    db: Mutex<Option<Arc<Database>>>,
    /// Live leases of this process: id → (deadline, TTL).
    leases: Mutex<Leases>,
    events: broadcast::Sender<WatchEvent>,
}

#[derive(Default)]
struct Leases {
    next: i64,
    live: HashMap<i64, (Instant, Duration)>,
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

type OpResult<T> = std::result::Result<T, OpError>;

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

/// Deletes every key written with one of `leases` (in `tx`), returning the keys.
fn delete_leased(tx: &redb::WriteTransaction, leases: &[i64]) -> OpResult<Vec<String>> {
    let mut leased = tx.open_table(LEASED).map_err(redb_err)?;
    let mut gone = Vec::new();
    for item in leased.iter().map_err(redb_err)? {
        let (k, l) = item.map_err(redb_err)?;
        if leases.contains(&l.value()) {
            gone.push(k.value().to_string());
        }
    }
    let mut table = tx.open_table(TABLE).map_err(redb_err)?;
    for k in &gone {
        leased.remove(k.as_str()).map_err(redb_err)?;
        table.remove(k.as_str()).map_err(redb_err)?;
    }
    Ok(gone)
}

/// Opens (creating, or repairing after a crash or failed commit) the database and its tables,
/// deleting the keys of the leases of an earlier process (they ended with it).
fn open_db(path: &Path) -> OpResult<Database> {
    let db = Database::create(path).map_err(redb_err)?;
    let tx = db.begin_write().map_err(redb_err)?;
    {
        let table = tx.open_table(TABLE).map_err(redb_err)?;
        let mut revision = tx.open_table(REVISION).map_err(redb_err)?;
        if revision.get(REVISION_KEY).map_err(redb_err)?.is_none() {
            // A store written before revisions were global: start above every version in it.
            let mut max = 0;
            for item in table.iter().map_err(redb_err)? {
                let (k, raw) = item.map_err(redb_err)?;
                max = max.max(decode(k.value(), raw.value())?.version);
            }
            revision.insert(REVISION_KEY, max).map_err(redb_err)?;
        }
    }
    let stale: Vec<i64> = {
        let leased = tx.open_table(LEASED).map_err(redb_err)?;
        let mut ids = Vec::new();
        for item in leased.iter().map_err(redb_err)? {
            ids.push(item.map_err(redb_err)?.1.value());
        }
        ids
    };
    delete_leased(&tx, &stale)?;
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
                leases: Mutex::new(Leases::default()),
                events: broadcast::channel(WATCH_BUFFER).0,
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

    fn leases(&self) -> std::sync::MutexGuard<'_, Leases> {
        self.inner.leases.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The open database, reopening it if an I/O failure dropped it (blocking).
    fn database(&self) -> OpResult<Arc<Database>> {
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

    fn publish(&self, events: Vec<WatchEvent>) {
        for e in events {
            // No receiver is not an error: nobody watches.
            let _ = self.inner.events.send(e);
        }
    }

    /// Deletes the keys of `leases` in a transaction of its own and tells the watchers.
    fn end_leases(&self, db: &Database, leases: &[i64]) -> OpResult<()> {
        let tx = db.begin_write().map_err(redb_err)?;
        let gone = delete_leased(&tx, leases)?;
        if !gone.is_empty() {
            bump_revision(&tx)?;
        }
        tx.commit().map_err(redb_err)?;
        self.publish(
            gone.into_iter()
                .map(|key| WatchEvent::Delete { key })
                .collect(),
        );
        Ok(())
    }

    /// Ends the leases whose deadline passed (blocking).
    fn expire_leases(&self, db: &Database) -> OpResult<()> {
        let now = Instant::now();
        let expired: Vec<i64> = self
            .leases()
            .live
            .iter()
            .filter(|(_, (deadline, _))| *deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        if expired.is_empty() {
            return Ok(());
        }
        self.end_leases(db, &expired)?;
        // Forgotten only once their keys are gone: a failed sweep is retried by the next call.
        let mut leases = self.leases();
        for id in &expired {
            leases.live.remove(id);
        }
        Ok(())
    }

    fn lease_is_live(&self, lease: LeaseId) -> bool {
        self.leases()
            .live
            .get(&lease.0)
            .is_some_and(|(deadline, _)| *deadline > Instant::now())
    }

    async fn blocking<T: Send + 'static>(
        &self,
        op: &'static str,
        key: &str,
        f: impl FnOnce(&RedbStore, &Database) -> OpResult<T> + Send + 'static,
    ) -> Result<T> {
        let this = self.clone();
        let k = key.to_string();
        tokio::task::spawn_blocking(move || {
            let db = this.database().map_err(|e| Self::describe(op, &k, e))?;
            let r = this.expire_leases(&db).and_then(|()| f(&this, &db));
            if let Err(e) = &r {
                this.drop_if_poisoned(&db, e);
            }
            r.map_err(|e| Self::describe(op, &k, e))
        })
        .await
        .map_err(|e| backend(op, key, e))?
    }

    /// Every key under `prefix` in key order, each with what `value` makes of its stored
    /// bytes, from one read transaction.
    async fn range<T: Send + 'static>(
        &self,
        op: &'static str,
        prefix: &str,
        value: fn(&str, &[u8]) -> Result<T>,
    ) -> Result<Vec<(String, T)>> {
        let p = prefix.to_string();
        self.blocking(op, prefix, move |_, db| {
            let tx = db.begin_read().map_err(redb_err)?;
            let table = tx.open_table(TABLE).map_err(redb_err)?;
            let mut out = Vec::new();
            for item in table.range(p.as_str()..).map_err(redb_err)? {
                let (k, v) = item.map_err(redb_err)?;
                let k = k.value();
                if !k.starts_with(p.as_str()) {
                    break;
                }
                out.push((k.to_string(), value(k, v.value())?));
            }
            Ok(out)
        })
        .await
    }
}

/// The next revision, stored (in `tx`).
fn bump_revision(tx: &redb::WriteTransaction) -> OpResult<u64> {
    let mut revision = tx.open_table(REVISION).map_err(redb_err)?;
    let next = revision
        .get(REVISION_KEY)
        .map_err(redb_err)?
        .map_or(0, |v| v.value())
        + 1;
    revision.insert(REVISION_KEY, next).map_err(redb_err)?;
    Ok(next)
}

fn current_revision(tx: &redb::WriteTransaction) -> OpResult<u64> {
    let revision = tx.open_table(REVISION).map_err(redb_err)?;
    Ok(revision
        .get(REVISION_KEY)
        .map_err(redb_err)?
        .map_or(0, |v| v.value()))
}

#[async_trait::async_trait]
impl MetadataStore for RedbStore {
    async fn get(&self, key: &str) -> Result<Option<Versioned>> {
        let k = key.to_string();
        self.blocking("get", key, move |_, db| {
            let tx = db.begin_read().map_err(redb_err)?;
            let table = tx.open_table(TABLE).map_err(redb_err)?;
            match table.get(k.as_str()).map_err(redb_err)? {
                Some(raw) => Ok(Some(decode(&k, raw.value())?)),
                None => Ok(None),
            }
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(self
            .range("list", prefix, |_, _| Ok(()))
            .await?
            .into_iter()
            .map(|(k, ())| k)
            .collect())
    }

    async fn scan(&self, prefix: &str) -> Result<Vec<(String, Versioned)>> {
        self.range("scan", prefix, decode).await
    }

    async fn commit(&self, ops: Vec<Op>) -> Result<u64> {
        crate::check_distinct_keys(&ops)?;
        let first = ops.first().map(|o| o.key().to_string()).unwrap_or_default();
        self.blocking("commit", &first, move |this, db| {
            let tx = db.begin_write().map_err(redb_err)?;
            let mut events = Vec::new();
            let revision = {
                let mut table = tx.open_table(TABLE).map_err(redb_err)?;
                // Every precondition first, in order: the first that fails is the conflict.
                for op in &ops {
                    let found = match table.get(op.key()).map_err(redb_err)? {
                        Some(raw) => Some(decode(op.key(), raw.value())?.version),
                        None => None,
                    };
                    if !crate::holds(op.expected(), found) {
                        return Err(MetaError::Conflict {
                            key: op.key().to_string(),
                            expected: op.expected(),
                            found,
                        }
                        .into());
                    }
                }
                if ops.iter().all(|o| matches!(o, Op::Check { .. })) {
                    drop(table);
                    return current_revision(&tx);
                }
                let revision = bump_revision(&tx)?;
                let mut leased = tx.open_table(LEASED).map_err(redb_err)?;
                for op in ops {
                    match op {
                        Op::Put {
                            key, value, lease, ..
                        } => {
                            match lease {
                                Some(l) if !this.lease_is_live(l) => {
                                    return Err(MetaError::LeaseExpired { lease: l }.into());
                                }
                                Some(l) => {
                                    leased.insert(key.as_str(), l.0).map_err(redb_err)?;
                                }
                                None => {
                                    leased.remove(key.as_str()).map_err(redb_err)?;
                                }
                            }
                            let mut raw = Vec::with_capacity(8 + value.len());
                            raw.extend_from_slice(&revision.to_le_bytes());
                            raw.extend_from_slice(&value);
                            table
                                .insert(key.as_str(), raw.as_slice())
                                .map_err(redb_err)?;
                            events.push(WatchEvent::Put {
                                key,
                                version: revision,
                            });
                        }
                        Op::Delete { key, .. } => {
                            leased.remove(key.as_str()).map_err(redb_err)?;
                            if table.remove(key.as_str()).map_err(redb_err)?.is_some() {
                                events.push(WatchEvent::Delete { key });
                            }
                        }
                        Op::Check { .. } => {}
                    }
                }
                revision
            };
            tx.commit().map_err(redb_err)?;
            this.publish(events);
            Ok(revision)
        })
        .await
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId> {
        let mut leases = self.leases();
        leases.next += 1;
        let id = leases.next;
        leases.live.insert(id, (Instant::now() + ttl, ttl));
        Ok(LeaseId(id))
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<()> {
        let now = Instant::now();
        let mut leases = self.leases();
        match leases.live.get_mut(&lease.0) {
            Some((deadline, ttl)) if *deadline > now => {
                *deadline = now + *ttl;
                Ok(())
            }
            _ => Err(MetaError::LeaseExpired { lease }),
        }
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<()> {
        let key = lease.to_string();
        self.blocking("revoke lease", &key, move |this, db| {
            this.end_leases(db, &[lease.0])?;
            this.leases().live.remove(&lease.0);
            Ok(())
        })
        .await
    }

    async fn watch(&self, prefix: &str) -> Result<WatchStream> {
        let rx = self.inner.events.subscribe();
        let prefix = prefix.to_string();
        let stream = futures::stream::unfold(Some((rx, prefix)), |state| async move {
            let (mut rx, prefix) = state?;
            loop {
                match rx.recv().await {
                    Ok(ev) if ev.key().starts_with(prefix.as_str()) => {
                        return Some((Ok(ev), Some((rx, prefix))));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let detail = match e {
                            broadcast::error::RecvError::Lagged(n) => {
                                format!("the watcher fell {n} changes behind")
                            }
                            broadcast::error::RecvError::Closed => "the store was closed".into(),
                        };
                        return Some((Err(MetaError::WatchLost { prefix, detail }), None));
                    }
                }
            }
        });
        Ok(Box::pin(stream))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Expected;

    /// The store's contract is checked in `tests/contract.rs` (on redb and etcd); here only
    /// what is redb's own: values, versions and the revision survive reopening the file, and
    /// the keys of the leases of the process that wrote them do not.
    #[tokio::test]
    async fn values_and_versions_survive_reopening_and_leased_keys_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        {
            let s = RedbStore::open(&path).unwrap();
            let v1 = s.put("/a", b"1".to_vec(), Expected::Absent).await.unwrap();
            let v2 = s
                .put("/a", b"2".to_vec(), Expected::Version(v1))
                .await
                .unwrap();
            assert_eq!(v2, 2);
            s.put("/ab/c", b"".to_vec(), Expected::Any).await.unwrap();
            let vb = s.put("/b", b"".to_vec(), Expected::Any).await.unwrap();
            s.delete("/b", Expected::Version(vb)).await.unwrap();
            let lease = s.grant_lease(Duration::from_secs(60)).await.unwrap();
            s.commit(vec![Op::put_leased(
                "/eph",
                b"x".to_vec(),
                Expected::Absent,
                lease,
            )])
            .await
            .unwrap();
            assert!(s.get("/eph").await.unwrap().is_some());
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
        // Versions are never reused, across reopening too.
        assert!(s.put("/b", b"".to_vec(), Expected::Absent).await.unwrap() > 6);
    }
}

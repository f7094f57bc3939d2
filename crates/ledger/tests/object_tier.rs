//! Object-tier managed ledgers ("diskless" topics) against a real S3 server (moto): entries are
//! durable once their WAL flush is committed, sealed ledgers are rewritten into the offload
//! format and their extents dropped, and a broker that lost its whole data directory finds
//! every acknowledged entry again from the metadata store and the bucket.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hot_tier::{LedgerStore, StoreOptions};
use ledger::{HotTier, ManagedLedgerConfig, ManagedLedgerFactory, SystemClock};
use meta::{MetadataStore, RedbStore};
use offload::{BlobStoreOffloader, Location, OffloadConfig};
use testkit::moto::MotoServer;
use wal::{Wal, WalConfig};

const NAME: &str = "public/default/persistent/diskless";

struct Broker {
    factory: ManagedLedgerFactory,
    wal: Wal,
}

async fn broker(moto: &MotoServer, meta: Arc<dyn MetadataStore>, data: &std::path::Path) -> Broker {
    let mut c = OffloadConfig::new(Location::s3_compatible("tier", &moto.endpoint()));
    c.credentials.credential_id = Some("k".into());
    c.credentials.credential_secret = Some(testkit::audit::s3_secret_key().into());
    let offloader = Arc::new(BlobStoreOffloader::new(c).await.unwrap());
    let wal = Wal::start(
        offloader.store().await.unwrap(),
        Arc::clone(&meta),
        WalConfig {
            flush_interval: Duration::from_millis(20),
            ..WalConfig::new("standalone", "b1")
        },
    );
    let (store, _) = LedgerStore::open(data.join("ledgers"), StoreOptions::default()).unwrap();
    let factory = ManagedLedgerFactory::new(store, meta, Arc::new(SystemClock))
        .with_offloader(offloader)
        .with_wal(wal.clone());
    Broker { factory, wal }
}

fn config() -> ManagedLedgerConfig {
    ManagedLedgerConfig {
        max_entries_per_ledger: 100,
        min_rollover_ms: 0,
        retention_time_ms: -1,
        retention_size_bytes: -1,
        hot_tier: HotTier::Object,
        ..ManagedLedgerConfig::default()
    }
}

fn entry(i: usize) -> Bytes {
    Bytes::from(format!("diskless-{i}-").repeat(1 + i % 5))
}

/// A moto server with the tier's bucket, and a metadata store in a directory of its own.
fn tier_and_meta() -> (MotoServer, tempfile::TempDir, Arc<dyn MetadataStore>) {
    let moto = MotoServer::start();
    moto.create_bucket("tier");
    let dir = tempfile::tempdir().unwrap();
    let meta: Arc<dyn MetadataStore> =
        Arc::new(RedbStore::open(&dir.path().join("meta.redb")).unwrap());
    (moto, dir, meta)
}

/// Appends `range` and waits for every receipt: appends of many entries resolve together, a
/// flush at a time.
async fn append_all(ml: &ledger::ManagedLedger, range: std::ops::Range<usize>) {
    let mut receipts = Vec::new();
    for i in range {
        receipts.push(ml.append(entry(i)).await.unwrap());
    }
    for r in receipts {
        r.await.unwrap();
    }
}

async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    for _ in 0..200 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_survive_the_loss_of_the_data_directory_and_sealed_ledgers_are_rewritten() {
    let (moto, _meta_dir, meta) = tier_and_meta();
    let data = tempfile::tempdir().unwrap();
    let b = broker(&moto, Arc::clone(&meta), data.path()).await;
    let ml = b.factory.open(NAME, config()).await.unwrap();
    append_all(&ml, 0..250).await;
    let stats = ml.stats().await;
    assert_eq!(stats.ledgers.len(), 3, "{:?}", stats.ledgers);
    assert!(stats.ledgers.iter().all(|l| l.hot_tier == HotTier::Object));
    assert!(stats.ledgers.iter().all(|l| l.hot_tier_broker.is_none()));
    assert_eq!(
        common::read_payloads(&ml, 64).await,
        (0..250).map(entry).collect::<Vec<_>>()
    );

    // The two sealed ledgers are rewritten into Pulsar's offload format, then their extents go.
    let sealed: Vec<i64> = stats.ledgers[..2].iter().map(|l| l.ledger_id).collect();
    wait_for("the rewrite of the sealed ledgers", async || {
        let s = ml.stats().await;
        s.ledgers[..2].iter().all(|l| {
            l.offload
                .as_ref()
                .is_some_and(|o| o.complete && o.hot_deleted)
        })
    })
    .await;
    let extents = meta.list(wal::keys::EXTENT_PREFIX).await.unwrap();
    for id in &sealed {
        assert!(
            !extents.iter().any(|k| k.contains(&format!("/{id:020}/"))),
            "extents of rewritten ledger {id} remain: {extents:?}"
        );
    }
    assert!(!extents.is_empty(), "the current ledger's extents stay");
    let keys = moto.list_keys("tier");
    assert_eq!(
        keys.iter().filter(|k| k.ends_with("-index")).count(),
        2,
        "{keys:?}"
    );

    // The broker dies with its whole data directory; a new one on the same metadata and
    // bucket finds everything, the last (unsealed) ledger from its extents.
    b.wal.shutdown().await;
    drop(ml);
    drop(b);
    drop(data);
    let data = tempfile::tempdir().unwrap();
    let b = broker(&moto, Arc::clone(&meta), data.path()).await;
    let ml = b.factory.open(NAME, config()).await.unwrap();
    assert_eq!(
        common::read_payloads(&ml, 64).await,
        (0..250).map(entry).collect::<Vec<_>>()
    );
    // And it continues after them.
    ml.append(entry(250)).await.unwrap().await.unwrap();
    assert_eq!(
        common::read_payloads(&ml, 64).await,
        (0..251).map(entry).collect::<Vec<_>>()
    );
    // The recovered ledger is rewritten too.
    wait_for("the rewrite of the recovered ledger", async || {
        let s = ml.stats().await;
        s.ledgers[..3].iter().all(|l| {
            l.offload
                .as_ref()
                .is_some_and(|o| o.complete && o.hot_deleted)
        })
    })
    .await;
    assert_eq!(
        common::read_payloads(&ml, 64).await,
        (0..251).map(entry).collect::<Vec<_>>()
    );
    b.factory.delete(NAME).await.unwrap();
    assert!(
        meta.list(wal::keys::EXTENT_PREFIX)
            .await
            .unwrap()
            .is_empty()
    );
    b.wal.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zombie_owner_cannot_append_after_another_broker_took_the_topic_over() {
    let (moto, _meta_dir, meta) = tier_and_meta();
    let owner_key = "/namespace/public/default/0x00000000_0xffffffff";
    let fence_of = |version| {
        Some(meta::Fence {
            key: owner_key.to_string(),
            version,
        })
    };
    let v1 = meta
        .put(owner_key, b"a".to_vec(), meta::Expected::Absent)
        .await
        .unwrap();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = broker(&moto, Arc::clone(&meta), dir_a.path()).await;
    let zombie = a.factory.open(NAME, config()).await.unwrap();
    zombie.set_fence(fence_of(v1));
    for i in 0..10 {
        zombie.append(entry(i)).await.unwrap().await.unwrap();
    }
    // Broker b takes the bundle (a's lease ended: a new ownership key) and opens the topic:
    // a's ledger is sealed at its committed entries, b continues in a new ledger.
    meta.delete(owner_key, meta::Expected::Any).await.unwrap();
    let v2 = meta
        .put(owner_key, b"b".to_vec(), meta::Expected::Absent)
        .await
        .unwrap();
    let b = broker(&moto, Arc::clone(&meta), dir_b.path()).await;
    let ml = b.factory.open(NAME, config()).await.unwrap();
    ml.set_fence(fence_of(v2));
    ml.append(entry(10)).await.unwrap().await.unwrap();
    // The zombie wakes up and appends into its (now sealed) ledger: nothing is acknowledged,
    // and it is fenced from then on.
    let late = match zombie.append(entry(99)).await {
        Ok(receipt) => receipt.await,
        Err(e) => Err(e),
    };
    assert!(
        matches!(late, Err(ledger::LedgerError::Fenced { .. })),
        "{late:?}"
    );
    assert!(zombie.is_fenced());
    // The new owner's log: a's ten entries, then b's, nothing of the zombie's — read by a
    // broker that opens the topic after b let it go (b's background work, such as rewriting
    // sealed ledgers, writes the topic's metadata until then: an open racing it would meet a
    // version conflict, as a broker that has not taken the bundle over should).
    ml.append(entry(11)).await.unwrap().await.unwrap();
    ml.close().await.unwrap();
    b.wal.shutdown().await;
    let b2 = broker(
        &moto,
        Arc::clone(&meta),
        tempfile::tempdir().unwrap().path(),
    )
    .await;
    let fresh = b2.factory.open(NAME, config()).await.unwrap();
    assert_eq!(
        common::read_payloads(&fresh, 64).await,
        (0..12).map(entry).collect::<Vec<_>>()
    );
    a.wal.shutdown().await;
    b2.wal.shutdown().await;
}

/// Extent keys no ledger needs — of a ledger its list records as rewritten with the hot copy
/// deleted (a crash between trim's list update and the extents' deletion), of a ledger no list
/// names, of a managed ledger that is gone — are deleted by the collection; the extents of the
/// ledger being written stay, and every entry still reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_extents_are_collected_and_needed_ones_kept() {
    let (moto, _meta_dir, meta) = tier_and_meta();
    let data = tempfile::tempdir().unwrap();
    let b = broker(&moto, Arc::clone(&meta), data.path()).await;
    let ml = b.factory.open(NAME, config()).await.unwrap();
    append_all(&ml, 0..150).await;
    let stats = ml.stats().await;
    let (sealed, current) = (stats.ledgers[0].ledger_id, stats.ledgers[1].ledger_id);
    // Rewritten, recorded hot-deleted, and then (trim's next step) its extents deleted.
    wait_for("the rewrite of the sealed ledger", async || {
        ml.stats().await.ledgers[0]
            .offload
            .as_ref()
            .is_some_and(|o| o.complete && o.hot_deleted)
            && meta
                .list(&wal::keys::ledger_prefix(NAME, sealed))
                .await
                .unwrap()
                .is_empty()
    })
    .await;
    assert_eq!(b.factory.collect_stale_extents().await.unwrap(), 0);
    let needed = meta.list(wal::keys::EXTENT_PREFIX).await.unwrap();
    assert!(
        !needed.is_empty()
            && needed
                .iter()
                .all(|k| k.starts_with(&wal::keys::ledger_prefix(NAME, current)))
    );
    // Stale keys as the crash windows leave them (any valid extent value will do).
    let value = meta.get(&needed[0]).await.unwrap().unwrap().value;
    let stale = [
        wal::keys::extent_key(NAME, sealed, 0),
        wal::keys::extent_key(NAME, current + 1000, 0),
        wal::keys::extent_key("public/default/persistent/gone", 5, 0),
    ];
    for key in &stale {
        meta.put(key, value.clone(), meta::Expected::Absent)
            .await
            .unwrap();
    }
    assert_eq!(b.factory.collect_stale_extents().await.unwrap(), 3);
    assert_eq!(meta.list(wal::keys::EXTENT_PREFIX).await.unwrap(), needed);
    assert_eq!(
        common::read_payloads(&ml, 64).await,
        (0..150).map(entry).collect::<Vec<_>>()
    );
    b.wal.shutdown().await;
}

//! Offload from a managed ledger to a real S3 server (moto): a missing bucket fails the offload
//! with a reason naming the bucket, the topic keeps working, and once the bucket exists a later
//! offload succeeds and reads come from the bucket.

use crate::common;

use std::sync::Arc;

use bytes::Bytes;
use hot_tier::{LedgerStore, StoreOptions};
use ledger::{ManagedLedgerConfig, ManagedLedgerFactory, Position, TestClock};
use meta::RedbStore;
use offload::{BlobStoreOffloader, Location, OffloadConfig};
use testkit::moto::MotoServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_bucket_then_bucket_created() {
    let moto = MotoServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut c = OffloadConfig::new(Location::s3_compatible("tier-bucket", &moto.endpoint()));
    c.credentials.credential_id = Some("k".into());
    c.credentials.credential_secret = Some(testkit::audit::s3_secret_key().into());
    c.max_block_size_bytes = 5 << 20;
    let offloader = Arc::new(BlobStoreOffloader::new(c).await.unwrap());
    let (store, _) =
        LedgerStore::open(dir.path().join("ledgers"), StoreOptions::default()).unwrap();
    let meta = Arc::new(RedbStore::open(&dir.path().join("meta.redb")).unwrap());
    let clock = TestClock::new(1_000_000);
    let f =
        ManagedLedgerFactory::new(store, meta, Arc::new(clock.clone())).with_offloader(offloader);
    let config = ManagedLedgerConfig {
        max_entries_per_ledger: 200,
        min_rollover_ms: 0,
        retention_time_ms: -1,
        retention_size_bytes: -1,
        offload_deletion_lag_ms: Some(0),
        ..ManagedLedgerConfig::default()
    };
    let ml = f
        .open("public/default/persistent/s3", config)
        .await
        .unwrap();
    let entry = |i: usize| Bytes::from(format!("s3-entry-{i}").repeat(20));
    for i in 0..600 {
        ml.append(entry(i)).await.unwrap().await.unwrap();
    }
    let current = ml.stats().await.ledgers.last().unwrap().ledger_id;
    let e = ml
        .offload_prefix(Position::new(current, 0))
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("bucket \"tier-bucket\" does not exist"),
        "{e}"
    );
    assert!(
        ml.stats()
            .await
            .ledgers
            .iter()
            .all(|l| l.offload.as_ref().is_none_or(|o| !o.complete))
    );

    // The topic keeps working.
    for i in 600..650 {
        ml.append(entry(i)).await.unwrap().await.unwrap();
    }
    moto.create_bucket("tier-bucket");
    let current = ml.stats().await.ledgers.last().unwrap().ledger_id;
    ml.offload_prefix(Position::new(current, 0)).await.unwrap();
    clock.advance_ms(1);
    ml.trim().await.unwrap();
    assert_eq!(
        moto.list_keys("tier-bucket").len(),
        6,
        "three ledgers: data + index each"
    );
    let got = common::read_payloads(&ml, 128).await;
    assert_eq!(got, (0..650).map(entry).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledgers_offloaded_to_s3_stay_readable_and_deletable_after_the_driver_changes() {
    let moto = MotoServer::start();
    moto.create_bucket("was-s3");
    let dir = tempfile::tempdir().unwrap();
    let credentials = offload::Credentials {
        credential_id: Some("k".into()),
        credential_secret: Some(testkit::audit::s3_secret_key().into()),
        ..Default::default()
    };
    let mut s3 = OffloadConfig::new(Location::s3_compatible("was-s3", &moto.endpoint()));
    s3.credentials = credentials.clone();
    s3.max_block_size_bytes = 5 << 20;
    let mut fs = OffloadConfig::new(Location::filesystem(dir.path().join("fs-tier")));
    fs.credentials = credentials;
    let config = ManagedLedgerConfig {
        max_entries_per_ledger: 100,
        min_rollover_ms: 0,
        retention_time_ms: -1,
        retention_size_bytes: -1,
        offload_deletion_lag_ms: Some(0),
        ..ManagedLedgerConfig::default()
    };
    let entry = |i: usize| Bytes::from(format!("moved-{i}").repeat(10));
    let clock = TestClock::new(1_000_000);
    let factory = |o: BlobStoreOffloader| {
        let (store, _) =
            LedgerStore::open(dir.path().join("ledgers"), StoreOptions::default()).unwrap();
        let meta = Arc::new(RedbStore::open(&dir.path().join("meta.redb")).unwrap());
        ManagedLedgerFactory::new(store, meta, Arc::new(clock.clone())).with_offloader(Arc::new(o))
    };
    {
        let f = factory(BlobStoreOffloader::new(s3.clone()).await.unwrap());
        let ml = f
            .open("public/default/persistent/moved", config.clone())
            .await
            .unwrap();
        for i in 0..300 {
            ml.append(entry(i)).await.unwrap().await.unwrap();
        }
        let current = ml.stats().await.ledgers.last().unwrap().ledger_id;
        ml.offload_prefix(Position::new(current, 0)).await.unwrap();
        clock.advance_ms(1);
        ml.trim().await.unwrap();
        assert_eq!(moto.list_keys("was-s3").len(), 6);
    }
    // The driver is now the filesystem (an S3 policy was removed): after a restart the S3
    // ledgers are read from S3, not looked for in the local directory.
    let f = factory(BlobStoreOffloader::new(fs).await.unwrap());
    let ml = f
        .open("public/default/persistent/moved", config.clone())
        .await
        .unwrap();
    let got = common::read_payloads(&ml, 64).await;
    assert_eq!(got, (0..300).map(entry).collect::<Vec<_>>());
    // Retention deletes them where they are.
    ml.set_config(ManagedLedgerConfig {
        retention_time_ms: 0,
        retention_size_bytes: 0,
        ..config
    });
    assert_eq!(ml.trim().await.unwrap().len(), 3);
    assert!(moto.list_keys("was-s3").is_empty(), "S3 objects deleted");
}

//! Offload from a managed ledger to a real S3 server (moto): a missing bucket fails the offload
//! with a reason naming the bucket, the topic keeps working, and once the bucket exists a later
//! offload succeeds and reads come from the bucket.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use hot_tier::{LedgerStore, StoreOptions};
use ledger::{ManagedLedgerConfig, ManagedLedgerFactory, Position, TestClock};
use meta::RedbStore;
use offload::{BlobStoreOffloader, Driver, OffloadConfig};
use testkit::moto::MotoServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_bucket_then_bucket_created() {
    let moto = MotoServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut c = OffloadConfig::new(Driver::S3, "tier-bucket");
    c.endpoint = Some(moto.endpoint());
    c.credential_id = Some("k".into());
    c.credential_secret = Some("s".into());
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

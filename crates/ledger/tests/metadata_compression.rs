//! Ledger lists and cursors stored compressed above a size, and read back by brokers of any
//! setting (Pulsar's `managedLedgerInfoCompressionType` / `managedCursorInfoCompressionType`).

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use hot_tier::{LedgerStore, StoreOptions};
use ledger::info::{cursor_key, ml_key};
use ledger::{
    Codec, Compression, InitialPosition, ManagedLedgerConfig, ManagedLedgerFactory, Position,
    TestClock,
};
use meta::{MetadataStore, RedbStore};

const NAME: &str = "t/ns/persistent/kept-forever";

fn factory(
    dir: &Path,
    meta: &Arc<RedbStore>,
    ledger_info: Compression,
    cursor_info: Compression,
) -> ManagedLedgerFactory {
    let (store, _) = LedgerStore::open(dir.join("ledgers"), StoreOptions::default()).unwrap();
    ManagedLedgerFactory::new(store, meta.clone(), Arc::new(TestClock::new(1_000_000)))
        .with_metadata_compression(ledger_info, cursor_info)
}

fn config() -> ManagedLedgerConfig {
    // A ledger per entry, kept forever: the list grows with every append.
    ManagedLedgerConfig {
        max_entries_per_ledger: 1,
        min_rollover_ms: 0,
        retention_time_ms: -1,
        retention_size_bytes: -1,
        ..ManagedLedgerConfig::default()
    }
}

async fn append(ml: &ledger::ManagedLedger, n: usize) -> Vec<Position> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(
            ml.append(Bytes::from(format!("m{i}")))
                .await
                .unwrap()
                .await
                .unwrap(),
        );
    }
    out
}

async fn stored(meta: &RedbStore, key: &str) -> Vec<u8> {
    meta.get(key).await.unwrap().unwrap().value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_lists_and_cursors_are_stored_compressed_and_read_by_any_setting() {
    let dir = tempfile::tempdir().unwrap();
    let meta = Arc::new(RedbStore::open(&dir.path().join("meta.redb")).unwrap());
    let lz4 = Compression {
        codec: Some(Codec::Lz4),
        threshold_bytes: 2048,
    };
    let zlib_always = Compression {
        codec: Some(Codec::Zlib),
        threshold_bytes: 0,
    };
    let (cursor_before, ledgers) = {
        let f = factory(dir.path(), &meta, lz4, zlib_always);
        let ml = f.open(NAME, config()).await.unwrap();
        ml.open_cursor("sub", InitialPosition::Earliest)
            .await
            .unwrap();
        // Small: plain JSON, readable by any etcd tool.
        append(&ml, 3).await;
        assert_eq!(stored(&meta, &ml_key(NAME)).await[0], b'{');
        let positions = append(&ml, 60).await;
        // Every other entry acknowledged: 30 ranges in the cursor.
        ml.ack(
            "sub",
            &positions.iter().step_by(2).copied().collect::<Vec<_>>(),
        )
        .await
        .unwrap();
        let cursor = ml.cursor("sub").await.unwrap();
        assert_eq!(cursor.individually_deleted.len(), 30);
        ml.close().await.unwrap();
        let list = stored(&meta, &ml_key(NAME)).await;
        assert!(list.starts_with(b"\0TLZ"), "the list is compressed");
        assert!(
            stored(&meta, &cursor_key(NAME, "sub"))
                .await
                .starts_with(b"\0TLZ")
        );
        let ledgers = ml.stats().await.ledgers.len();
        assert!(ledgers > 60, "{ledgers}");
        (cursor, ledgers)
    };
    // A broker that writes plain JSON reads them, and writes plain JSON from then on.
    let f = factory(dir.path(), &meta, Compression::NONE, Compression::NONE);
    let ml = f.open(NAME, config()).await.unwrap();
    // Every ledger listed before, and a fresh one to append to.
    assert_eq!(ml.stats().await.ledgers.len(), ledgers + 1);
    let cursor = ml.cursor("sub").await.unwrap();
    assert_eq!(cursor.mark_delete, cursor_before.mark_delete);
    assert_eq!(
        cursor.individually_deleted.iter().collect::<Vec<_>>(),
        cursor_before
            .individually_deleted
            .iter()
            .collect::<Vec<_>>()
    );
    append(&ml, 1).await;
    assert_eq!(stored(&meta, &ml_key(NAME)).await[0], b'{');
}

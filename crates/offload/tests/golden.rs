//! The golden vector in `tests/golden/` (built from the format spec by `make_golden.py`, not by
//! tierlog): it decodes to the expected entries, and tierlog's writer reproduces it byte for byte.

use crate::common;

use std::collections::BTreeMap;

use bytes::Bytes;
use common::VecSource;
use offload::format::index::decode_index;
use offload::keys::MANAGED_LEDGER_NAME;
use offload::{BlobStoreOffloader, LedgerOffloader, Location, OffloadConfig, TierReader};
use uuid::Uuid;

const GOLDEN_DATA: &[u8] = include_bytes!("golden/ledger-3.data");
const GOLDEN_INDEX: &[u8] = include_bytes!("golden/ledger-3.index");

fn entries() -> Vec<Bytes> {
    vec![
        Bytes::from_static(b"hello"),
        Bytes::from_static(b"abc"),
        Bytes::new(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_objects_decode_to_the_expected_entries() {
    let index = decode_index(GOLDEN_INDEX).unwrap();
    assert_eq!(index.last_entry_id, 2);
    assert_eq!(index.length, 8);
    assert_eq!(index.data_object_len, 172);
    assert!(index.closed);

    let dir = tempfile::tempdir().unwrap();
    let uuid = Uuid::parse_str("6f1c2b9e-0d4a-4c2e-9b7a-3e5f8d1c2a40").unwrap();
    std::fs::write(
        dir.path().join(offload::keys::data_key(&uuid, 3)),
        GOLDEN_DATA,
    )
    .unwrap();
    std::fs::write(
        dir.path().join(offload::keys::index_key(&uuid, 3)),
        GOLDEN_INDEX,
    )
    .unwrap();
    let c = OffloadConfig::new(Location::filesystem(dir.path()));
    let o = BlobStoreOffloader::new(c).await.unwrap();
    let h = o.read(3, uuid, o.location()).await.unwrap();
    assert_eq!(h.read(0, 2).await.unwrap(), entries());
    assert_eq!(
        h.read(1, 1).await.unwrap(),
        vec![Bytes::from_static(b"abc")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_reproduces_the_golden_objects() {
    let dir = tempfile::tempdir().unwrap();
    let c = OffloadConfig::new(Location::filesystem(dir.path()));
    let o = BlobStoreOffloader::new(c).await.unwrap();
    let extra = BTreeMap::from([(
        MANAGED_LEDGER_NAME.to_string(),
        "public/default/persistent/golden".to_string(),
    )]);
    let r = o
        .offload(&VecSource::new(3, entries()), Uuid::new_v4(), &extra)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(dir.path().join(&r.data_key)).unwrap(),
        GOLDEN_DATA
    );
    assert_eq!(
        std::fs::read(dir.path().join(&r.index_key)).unwrap(),
        GOLDEN_INDEX
    );
}

//! The azureblob driver against a real Azurite blob server on 127.0.0.1.

use crate::common;

use std::collections::BTreeMap;

use common::{VecSource, assert_reads_back};
use offload::{
    BlobStoreOffloader, Driver, LedgerOffloader, Location, OffloadConfig, OffloadError, TierReader,
};
use testkit::azurite::{ACCOUNT, Azurite, KEY};
use uuid::Uuid;

#[test]
fn round_trip_and_missing_container() {
    let azurite = Azurite::start();
    azurite.create_container("offload");
    for (k, v) in [
        ("AZURE_STORAGE_USE_EMULATOR", "true"),
        ("AZURITE_BLOB_STORAGE_URL", azurite.url().as_str()),
        ("AZURE_STORAGE_ACCOUNT", ACCOUNT),
        ("AZURE_STORAGE_ACCESS_KEY", KEY),
    ] {
        // SAFETY: set before any thread of this test process starts (nextest: one test per process).
        unsafe { std::env::set_var(k, v) };
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let container = |name: &str| {
            Location::new(
                Driver::AzureBlob,
                Some(name.into()),
                None,
                None,
                Default::default(),
            )
        };
        let mut c = OffloadConfig::new(container("offload"));
        c.max_block_size_bytes = 5 << 20;
        let o = BlobStoreOffloader::new(c.clone()).await.unwrap();
        for src in [
            VecSource::with_sizes(1, [0]),
            VecSource::with_sizes(2, (0..30_000).map(|i| i % 700)),
        ] {
            let uuid = Uuid::new_v4();
            let r = o.offload(&src, uuid, &BTreeMap::new()).await.unwrap();
            assert!(r.blocks >= 1);
            let h = o.read(src.id, uuid, o.location()).await.unwrap();
            assert_reads_back(&h, &src, 3000).await;
            o.delete(src.id, uuid, o.location()).await.unwrap();
            assert!(matches!(
                o.read(src.id, uuid, o.location()).await,
                Err(OffloadError::NotFound { .. })
            ));
        }
        c.location = container("no-such-container");
        let o = BlobStoreOffloader::new(c).await.unwrap();
        let e = o
            .offload(
                &VecSource::with_sizes(3, [10]),
                Uuid::new_v4(),
                &BTreeMap::new(),
            )
            .await
            .unwrap_err();
        assert!(e.to_string().contains("no-such-container"), "{e}");
    });
}

//! The redb store on a file system that fills up: writes fail with an error while it is full,
//! every write acknowledged before stays, and once space returns the same store object takes
//! writes again (redb refuses all transactions after an I/O error until it is reopened).
//!
//! Needs root to mount a small tmpfs; without it the test says so and does nothing.

use meta::{Expected, MetaError, MetadataStore, RedbStore};
use testkit::tmpfs::Tmpfs;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_writes_keeps_acknowledged_ones_and_recovers_without_restart() {
    let Some(fs) = Tmpfs::mount("2m") else {
        return;
    };
    let path = fs.path().join("meta.redb");
    let store = RedbStore::open(&path).unwrap();
    let value = vec![7u8; 32 * 1024];
    let mut acked = Vec::new();
    let mut failure = None;
    for i in 0..1000 {
        let key = format!("/k/{i:04}");
        match store.put(&key, value.clone(), Expected::Absent).await {
            Ok(_) => acked.push(key),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let failure = failure.expect("a 2 MiB file system fills up");
    assert!(matches!(failure, MetaError::Backend { .. }), "{failure}");
    assert!(failure.to_string().contains("No space left"), "{failure}");
    assert!(acked.len() > 10, "some writes fit: {}", acked.len());
    // Still full: writes keep failing, reads of what was acknowledged work.
    assert!(
        store
            .put("/more", vec![1; 64 * 1024], Expected::Any)
            .await
            .is_err()
    );

    fs.remount("size=32m");
    let v = store
        .put("/after", b"space is back".to_vec(), Expected::Absent)
        .await
        .expect("the same store takes writes once space returns");
    assert!(
        v > acked.len() as u64,
        "versions go on from the acknowledged writes: {v}"
    );
    for key in &acked {
        assert!(store.get(key).await.unwrap().is_some(), "{key} kept");
    }
    drop(store);
    let reopened = RedbStore::open(&path).unwrap();
    // Every acknowledged write is there. The write that failed has an unknown outcome (redb can
    // fail a commit after its commit record reached the file, as etcd can time out after
    // applying one): it may be there too, nothing else.
    let mut found = reopened.list("/k/").await.unwrap();
    if found.len() == acked.len() + 1 {
        assert_eq!(found.pop(), Some(format!("/k/{:04}", acked.len())));
    }
    assert_eq!(found, acked);
    assert!(reopened.get("/after").await.unwrap().is_some());
}

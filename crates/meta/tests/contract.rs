//! The contract every metadata store keeps, checked on the embedded redb store and on a real
//! etcd: versions, compare-and-set conflicts that report what was found, deletes, prefix
//! listing in key order, concurrent writers of one key (exactly one wins each round), and, for
//! etcd, that a second client sees the first one's writes and a wrong address is refused.

use std::sync::Arc;

use meta::{EtcdStore, Expected, MetaError, MetadataStore, RedbStore, Versioned};
use testkit::etcd::EtcdServer;

async fn contract(s: Arc<dyn MetadataStore>) {
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
        Err(MetaError::Conflict { found: Some(2), .. })
    ));
    assert!(matches!(
        s.put("/nope", b"3".to_vec(), Expected::Version(1)).await,
        Err(MetaError::Conflict { found: None, .. })
    ));
    assert_eq!(s.put("/a", b"4".to_vec(), Expected::Any).await.unwrap(), 3);
    assert_eq!(
        s.get("/a").await.unwrap(),
        Some(Versioned {
            value: b"4".to_vec(),
            version: 3
        })
    );
    s.put("/ab/c", b"".to_vec(), Expected::Any).await.unwrap();
    s.put("/b", b"".to_vec(), Expected::Any).await.unwrap();
    s.put("/a%2Fz", b"".to_vec(), Expected::Any).await.unwrap();
    assert_eq!(s.list("/a").await.unwrap(), vec!["/a", "/a%2Fz", "/ab/c"]);
    assert_eq!(s.list("/ab/").await.unwrap(), vec!["/ab/c"]);
    assert!(s.list("/zz").await.unwrap().is_empty());
    assert!(matches!(
        s.delete("/b", Expected::Version(7)).await,
        Err(MetaError::Conflict { found: Some(1), .. })
    ));
    s.delete("/b", Expected::Version(1)).await.unwrap();
    s.delete("/b", Expected::Any).await.unwrap();
    s.delete("/b", Expected::Absent).await.unwrap();
    assert_eq!(s.get("/b").await.unwrap(), None);
    // A key created again starts over at version 1.
    assert_eq!(
        s.put("/b", b"".to_vec(), Expected::Absent).await.unwrap(),
        1
    );

    // Eight writers doing read-modify-write on one counter: every increment lands once.
    let s2 = Arc::clone(&s);
    s2.put("/counter", b"0".to_vec(), Expected::Absent)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = Arc::clone(&s);
        tasks.push(tokio::spawn(async move {
            let mut done = 0;
            while done < 10 {
                let cur = s.get("/counter").await.unwrap().unwrap();
                let n: u64 = String::from_utf8(cur.value).unwrap().parse().unwrap();
                match s
                    .put(
                        "/counter",
                        (n + 1).to_string().into_bytes(),
                        Expected::Version(cur.version),
                    )
                    .await
                {
                    Ok(_) => done += 1,
                    Err(MetaError::Conflict { .. }) => {}
                    Err(e) => panic!("{e}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let end = s.get("/counter").await.unwrap().unwrap();
    assert_eq!(end.value, b"80");
    assert_eq!(end.version, 81);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    contract(Arc::new(
        RedbStore::open(&dir.path().join("m.redb")).unwrap(),
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_keeps_the_contract_and_shares_it_between_clients() {
    let etcd = EtcdServer::start();
    let endpoints = vec![etcd.endpoint()];
    let s = Arc::new(EtcdStore::connect(&endpoints).await.unwrap());
    contract(s).await;
    let other = EtcdStore::connect(&endpoints).await.unwrap();
    assert_eq!(other.get("/counter").await.unwrap().unwrap().value, b"80");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_etcd_fails_requests_with_a_backend_error_naming_the_key() {
    let mut etcd = EtcdServer::start();
    let s = EtcdStore::connect(&[etcd.endpoint()]).await.unwrap();
    s.put("/k", b"v".to_vec(), Expected::Any).await.unwrap();
    etcd.kill();
    let err = s
        .put("/k", b"w".to_vec(), Expected::Version(1))
        .await
        .unwrap_err();
    assert!(matches!(err, MetaError::Backend { .. }), "{err}");
    assert!(err.to_string().contains("/k"), "{err}");
    let port = testkit::free_port();
    let err = EtcdStore::connect(&[format!("http://127.0.0.1:{port}")])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("etcd"), "{err}");
}

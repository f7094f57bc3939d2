//! The contract every metadata store keeps, checked on the embedded redb store and on a real
//! etcd: versions, compare-and-set conflicts that report what was found, deletes, prefix
//! listing in key order, concurrent writers of one key (exactly one wins each round), and, for
//! etcd, that a second client sees the first one's writes and a wrong address is refused.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use meta::{
    EtcdStore, Expected, MetaError, MetadataStore, Op, RedbStore, Session, Versioned, WatchEvent,
    WatchStream,
};
use testkit::etcd::EtcdServer;

async fn contract(s: Arc<dyn MetadataStore>) {
    assert_eq!(s.get("/a").await.unwrap(), None);
    let v1 = s.put("/a", b"1".to_vec(), Expected::Absent).await.unwrap();
    assert!(matches!(
        s.put("/a", b"x".to_vec(), Expected::Absent).await,
        Err(MetaError::Conflict { found: Some(f), .. }) if f == v1
    ));
    let v2 = s
        .put("/a", b"2".to_vec(), Expected::Version(v1))
        .await
        .unwrap();
    assert!(v2 > v1);
    assert!(matches!(
        s.put("/a", b"3".to_vec(), Expected::Version(v1)).await,
        Err(MetaError::Conflict { found: Some(f), .. }) if f == v2
    ));
    assert!(matches!(
        s.put("/nope", b"3".to_vec(), Expected::Version(v1)).await,
        Err(MetaError::Conflict { found: None, .. })
    ));
    let v3 = s.put("/a", b"4".to_vec(), Expected::Any).await.unwrap();
    assert!(v3 > v2);
    assert_eq!(
        s.get("/a").await.unwrap(),
        Some(Versioned {
            value: b"4".to_vec(),
            version: v3
        })
    );
    s.put("/ab/c", b"".to_vec(), Expected::Any).await.unwrap();
    let vb = s.put("/b", b"".to_vec(), Expected::Any).await.unwrap();
    s.put("/a%2Fz", b"".to_vec(), Expected::Any).await.unwrap();
    assert_eq!(s.list("/a").await.unwrap(), vec!["/a", "/a%2Fz", "/ab/c"]);
    assert_eq!(s.list("/ab/").await.unwrap(), vec!["/ab/c"]);
    let scanned = s.scan("/a").await.unwrap();
    assert_eq!(
        scanned.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        vec!["/a", "/a%2Fz", "/ab/c"]
    );
    assert_eq!(scanned[0].1, s.get("/a").await.unwrap().unwrap());
    assert!(s.scan("/zz").await.unwrap().is_empty());
    assert!(s.list("/zz").await.unwrap().is_empty());
    assert!(matches!(
        s.delete("/b", Expected::Version(vb + 1000)).await,
        Err(MetaError::Conflict { found: Some(f), .. }) if f == vb
    ));
    s.delete("/b", Expected::Version(vb)).await.unwrap();
    s.delete("/b", Expected::Any).await.unwrap();
    s.delete("/b", Expected::Absent).await.unwrap();
    assert_eq!(s.get("/b").await.unwrap(), None);
    // A key created again gets a version never seen before: a writer holding the version of
    // the old incarnation cannot overwrite the new one.
    let vb2 = s.put("/b", b"".to_vec(), Expected::Absent).await.unwrap();
    assert!(vb2 > vb);
    assert!(matches!(
        s.put("/b", b"stale".to_vec(), Expected::Version(vb)).await,
        Err(MetaError::Conflict { .. })
    ));

    // Eight writers doing read-modify-write on one counter: every increment lands once.
    s.put("/counter", b"0".to_vec(), Expected::Absent)
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

    transactions(&*s).await;
    leases_and_watches(Arc::clone(&s)).await;
}

/// All or nothing: one failed precondition (a write's or a pure check's) writes nothing and
/// names the key; every written key gets the transaction's one revision.
async fn transactions(s: &dyn MetadataStore) {
    let fence = s
        .put("/t/fence", b"owner-1".to_vec(), Expected::Absent)
        .await
        .unwrap();
    let cursor = s
        .put("/t/cursor", b"0".to_vec(), Expected::Absent)
        .await
        .unwrap();
    s.put("/t/doomed", b"".to_vec(), Expected::Absent)
        .await
        .unwrap();
    let rev = s
        .commit(vec![
            Op::check("/t/fence", Expected::Version(fence)),
            Op::put("/t/ledgers", b"[1]".to_vec(), Expected::Absent),
            Op::put("/t/cursor", b"1".to_vec(), Expected::Version(cursor)),
            Op::delete("/t/doomed", Expected::Any),
        ])
        .await
        .unwrap();
    assert_eq!(s.get("/t/ledgers").await.unwrap().unwrap().version, rev);
    assert_eq!(s.get("/t/cursor").await.unwrap().unwrap().version, rev);
    assert_eq!(s.get("/t/doomed").await.unwrap(), None);

    // The fence moved (a new owner): the old owner's transaction changes nothing.
    let fence2 = s
        .put("/t/fence", b"owner-2".to_vec(), Expected::Version(fence))
        .await
        .unwrap();
    let err = s
        .commit(vec![
            Op::put("/t/cursor", b"2".to_vec(), Expected::Version(rev)),
            Op::check("/t/fence", Expected::Version(fence)),
            Op::put("/t/new", b"".to_vec(), Expected::Absent),
        ])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, MetaError::Conflict { key, found: Some(f), .. } if key == "/t/fence" && *f == fence2),
        "{err}"
    );
    assert_eq!(s.get("/t/cursor").await.unwrap().unwrap().value, b"1");
    assert_eq!(s.get("/t/new").await.unwrap(), None);
    // A pure check changes nothing and answers the current revision.
    assert!(
        s.commit(vec![Op::check("/t/fence", Expected::Version(fence2))])
            .await
            .unwrap()
            >= fence2
    );
    // A key twice in one transaction is refused before anything is sent.
    assert!(matches!(
        s.commit(vec![
            Op::put("/t/x", b"".to_vec(), Expected::Any),
            Op::delete("/t/x", Expected::Any),
        ])
        .await,
        Err(MetaError::Invalid { .. })
    ));
}

async fn next_event(w: &mut WatchStream) -> WatchEvent {
    tokio::time::timeout(Duration::from_secs(10), w.next())
        .await
        .expect("a watch event within 10 s")
        .expect("the watch goes on")
        .unwrap()
}

/// Watches see every change under their prefix in order, and only those; a key written with a
/// lease vanishes (and its watchers hear so) when the lease is revoked or not renewed.
async fn leases_and_watches(s: Arc<dyn MetadataStore>) {
    let mut w = s.watch("/w/").await.unwrap();
    let v = s
        .put("/w/a", b"1".to_vec(), Expected::Absent)
        .await
        .unwrap();
    s.put("/other", b"".to_vec(), Expected::Any).await.unwrap();
    s.delete("/w/a", Expected::Any).await.unwrap();
    assert_eq!(
        next_event(&mut w).await,
        WatchEvent::Put {
            key: "/w/a".into(),
            version: v
        }
    );
    assert_eq!(
        next_event(&mut w).await,
        WatchEvent::Delete { key: "/w/a".into() }
    );

    // Revoked: gone at once.
    let lease = s.grant_lease(Duration::from_secs(30)).await.unwrap();
    s.commit(vec![Op::put_leased(
        "/w/broker-1",
        b"up".to_vec(),
        Expected::Absent,
        lease,
    )])
    .await
    .unwrap();
    assert!(matches!(next_event(&mut w).await, WatchEvent::Put { .. }));
    s.keep_alive(lease).await.unwrap();
    s.revoke_lease(lease).await.unwrap();
    assert_eq!(
        next_event(&mut w).await,
        WatchEvent::Delete {
            key: "/w/broker-1".into()
        }
    );
    assert_eq!(s.get("/w/broker-1").await.unwrap(), None);
    assert!(matches!(
        s.keep_alive(lease).await,
        Err(MetaError::LeaseExpired { .. })
    ));
    assert!(matches!(
        s.commit(vec![Op::put_leased(
            "/w/late",
            vec![],
            Expected::Any,
            lease
        )])
        .await,
        Err(MetaError::LeaseExpired { .. })
    ));
    assert_eq!(s.get("/w/late").await.unwrap(), None);

    // A session keeps its lease alive well past the TTL; once dropped (the holder died), the
    // key goes within about a TTL (etcd's minimum is about 2 s).
    let ttl = Duration::from_secs(2);
    let session = Session::start(Arc::clone(&s), ttl).await.unwrap();
    s.commit(vec![Op::put_leased(
        "/w/owner",
        b"me".to_vec(),
        Expected::Absent,
        session.lease(),
    )])
    .await
    .unwrap();
    assert!(matches!(next_event(&mut w).await, WatchEvent::Put { .. }));
    tokio::time::sleep(ttl * 3).await;
    assert!(session.is_alive());
    assert!(s.get("/w/owner").await.unwrap().is_some());
    drop(session);
    let started = std::time::Instant::now();
    loop {
        // redb notices expiry on the next call; etcd on its own.
        if s.get("/w/owner").await.unwrap().is_none() {
            break;
        }
        assert!(started.elapsed() < ttl * 4, "leased key outlived its lease");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        next_event(&mut w).await,
        WatchEvent::Delete {
            key: "/w/owner".into()
        }
    );

    // Closing a session deletes its keys now.
    let session = Session::start(Arc::clone(&s), Duration::from_secs(30))
        .await
        .unwrap();
    s.commit(vec![Op::put_leased(
        "/w/owner",
        b"me".to_vec(),
        Expected::Absent,
        session.lease(),
    )])
    .await
    .unwrap();
    session.close().await.unwrap();
    assert_eq!(s.get("/w/owner").await.unwrap(), None);
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
    let mut w = s.watch("/").await.unwrap();
    let session = Session::start(Arc::new(s.clone()), Duration::from_secs(2))
        .await
        .unwrap();
    etcd.kill();
    // The watch ends with an error (the watcher must re-list), the session is declared lost.
    let end = tokio::time::timeout(Duration::from_secs(10), w.next())
        .await
        .unwrap();
    assert!(
        matches!(end, Some(Err(MetaError::WatchLost { .. }))),
        "{end:?}"
    );
    tokio::time::timeout(Duration::from_secs(10), session.lost())
        .await
        .unwrap();
    let err = s.put("/k", b"w".to_vec(), Expected::Any).await.unwrap_err();
    assert!(matches!(err, MetaError::Backend { .. }), "{err}");
    assert!(err.to_string().contains("/k"), "{err}");
    let port = testkit::free_port();
    let err = EtcdStore::connect(&[format!("http://127.0.0.1:{port}")])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("etcd"), "{err}");
}

/// Keys and values of a listing larger than one etcd answer carries (gRPC's 4 MiB): 24 000
/// keys of ~220 bytes with 220-byte values, ~10 MB listed with values, ~5 MB keys alone.
async fn many_large_keys(s: &dyn MetadataStore) -> Vec<String> {
    let pad = "k".repeat(200);
    let keys: Vec<String> = (0..24_000).map(|i| format!("/big/{pad}/{i:08}")).collect();
    for chunk in keys.chunks(128) {
        let ops = chunk
            .iter()
            .map(|k| Op::put(k.clone(), k.as_bytes().to_vec(), Expected::Absent))
            .collect();
        s.commit(ops).await.unwrap();
    }
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_lists_more_keys_than_one_answer_carries() {
    let etcd = EtcdServer::start();
    let s = EtcdStore::connect(&[etcd.endpoint()]).await.unwrap();
    let keys = many_large_keys(&s).await;
    let listed = s.list("/big/").await.unwrap();
    assert_eq!(listed.len(), keys.len());
    assert_eq!(listed, keys);
    let scanned = s.scan("/big/").await.unwrap();
    assert_eq!(scanned.len(), keys.len());
    assert!(
        scanned
            .iter()
            .zip(&keys)
            .all(|((k, v), want)| k == want && v.value == want.as_bytes())
    );
}

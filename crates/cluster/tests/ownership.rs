//! Membership, placement, redirects, takeover and fencing of bundles between "brokers"
//! (`Cluster`s) on one real etcd.

use std::sync::Arc;
use std::time::Duration;

use cluster::{BrokerInfo, Cluster, ClusterError, Owner};
use meta::{EtcdStore, Expected, MetaError, MetadataStore, Op};
use protocol::TopicName;
use testkit::etcd::EtcdServer;

fn info(i: u16) -> BrokerInfo {
    BrokerInfo {
        id: format!("127.0.0.1:{}", 8080 + i),
        broker_url: format!("pulsar://127.0.0.1:{}", 6650 + i),
        web_url: format!("http://127.0.0.1:{}", 8080 + i),
        ..Default::default()
    }
}

fn topic(i: usize) -> TopicName {
    TopicName::parse(&format!("persistent://public/default/t-{i}")).unwrap()
}

async fn store(etcd: &EtcdServer) -> Arc<dyn MetadataStore> {
    Arc::new(EtcdStore::connect(&[etcd.endpoint()]).await.unwrap())
}

/// Follows a lookup as a client does: a redirect is asked again, authoritatively, at the
/// broker it names.
async fn resolve(brokers: &[&Cluster], first: usize, t: &TopicName) -> usize {
    let mut at = first;
    let mut authoritative = false;
    for _ in 0..4 {
        match brokers[at].lookup(t, authoritative).await.unwrap() {
            Owner::This => return at,
            Owner::Other(b) => {
                at = brokers.iter().position(|c| c.me().id == b.id).unwrap();
                authoritative = true;
            }
        }
    }
    panic!("lookup of {t} did not settle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundles_spread_over_brokers_lookups_redirect_and_leaving_frees_them() {
    let etcd = EtcdServer::start();
    let ttl = Duration::from_secs(2);
    let a = Cluster::join(store(&etcd).await, info(0), ttl, 4)
        .await
        .unwrap();
    let b = Cluster::join(store(&etcd).await, info(1), ttl, 4)
        .await
        .unwrap();
    let c = Cluster::join(store(&etcd).await, info(2), ttl, 4)
        .await
        .unwrap();
    assert_eq!(a.brokers().await.unwrap(), vec![info(0), info(1), info(2)]);

    // Every lookup goes to broker a first, as clients given one URL do.
    let brokers = [&a, &b, &c];
    let mut owner_of = Vec::new();
    for i in 0..30 {
        owner_of.push(resolve(&brokers, 0, &topic(i)).await);
    }
    for (i, cl) in brokers.iter().enumerate() {
        assert!(!cl.owned_bundles().is_empty(), "broker {i} owns no bundle");
        for (t, o) in owner_of.iter().enumerate() {
            assert_eq!(cl.owns(&topic(t)).is_some(), *o == i, "topic {t}");
        }
    }
    let total: usize = brokers.iter().map(|c| c.owned_bundles().len()).sum();
    assert_eq!(total, 4, "each of the 4 bundles has exactly one owner");
    // A second lookup anywhere answers the same owner, without moving anything.
    for (t, o) in owner_of.iter().enumerate() {
        assert_eq!(resolve(&brokers, 2, &topic(t)).await, *o);
    }

    // A released bundle (an unload) goes back to the broker that had it: local-tier topics
    // keep their data on that broker's disk.
    let t0 = owner_of.iter().position(|o| *o == 0).unwrap();
    let bundle = a.bundle_of(&topic(t0));
    a.release(&bundle).await.unwrap();
    assert!(a.owns(&topic(t0)).is_none());
    assert_eq!(resolve(&brokers, 2, &topic(t0)).await, 0);

    // Leaving deletes the registration and the ownerships at once.
    let left: Vec<_> = b.owned_bundles();
    b.leave().await.unwrap();
    assert_eq!(a.brokers().await.unwrap(), vec![info(0), info(2)]);
    let keys: Vec<String> = a
        .ownerships()
        .await
        .unwrap()
        .into_iter()
        .map(|(_, o)| o)
        .collect();
    assert!(!keys.contains(&info(1).id), "{keys:?}");
    // Its bundles are placed again on the next lookup.
    let brokers = [&a, &c];
    for (t, o) in owner_of.iter().enumerate() {
        if *o == 1 {
            let now = resolve(&brokers, 0, &topic(t)).await;
            assert!(brokers[now].owns(&topic(t)).is_some());
        }
    }
    assert!(!left.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_brokers_bundles_are_taken_over_and_its_old_token_fences_its_writes() {
    let etcd = EtcdServer::start();
    let ttl = Duration::from_secs(2);
    let a = Cluster::join(store(&etcd).await, info(0), ttl, 1)
        .await
        .unwrap();
    let t = topic(1);
    assert_eq!(a.lookup(&t, false).await.unwrap(), Owner::This);
    let (fence_key, old_token) = a.fence(&t).unwrap();
    let meta = store(&etcd).await;
    // A write of the owner, fenced by its token, goes through.
    meta.commit(vec![
        Op::check(fence_key.clone(), Expected::Version(old_token)),
        Op::put("/ml/x", b"1".to_vec(), Expected::Any),
    ])
    .await
    .unwrap();

    // Broker a "dies" (its session stops renewing: dropped without leaving).
    drop(a);
    let b = Cluster::join(store(&etcd).await, info(1), ttl, 1)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    loop {
        match b.lookup(&t, false).await.unwrap() {
            Owner::This => break,
            Owner::Other(o) => assert_eq!(o.id, info(0).id),
        }
        assert!(
            started.elapsed() < ttl * 3,
            "bundle not freed within the lease TTL"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, new_token) = b.fence(&t).unwrap();
    assert_ne!(new_token, old_token);
    // The old owner's fenced write fails now, and changes nothing.
    let err = meta
        .commit(vec![
            Op::check(fence_key, Expected::Version(old_token)),
            Op::put("/ml/x", b"zombie".to_vec(), Expected::Any),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, MetaError::Conflict { .. }), "{err}");
    assert_eq!(meta.get("/ml/x").await.unwrap().unwrap().value, b"1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_broker_waits_for_its_old_registration_and_does_not_claim_old_bundles() {
    let etcd = EtcdServer::start();
    let ttl = Duration::from_secs(2);
    let first = Cluster::join(store(&etcd).await, info(0), ttl, 1)
        .await
        .unwrap();
    let t = topic(0);
    assert_eq!(first.lookup(&t, false).await.unwrap(), Owner::This);
    drop(first); // killed: its keys live until the lease runs out
    let started = std::time::Instant::now();
    let again = Cluster::join(store(&etcd).await, info(0), ttl, 1)
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "joined over a live registration"
    );
    // The old run's ownership went with its lease (the registration outlived neither).
    match again.lookup(&t, false).await {
        Ok(Owner::This) => {}
        Err(ClusterError::StaleOwnership { .. }) => {
            tokio::time::sleep(ttl * 2).await;
            assert_eq!(again.lookup(&t, false).await.unwrap(), Owner::This);
        }
        other => panic!("{other:?}"),
    }
}

/// An acquisition whose answer was lost (the ownership key was written on this broker's lease,
/// but the broker never heard so): the next lookup recognises the key as its own and serves
/// the bundle, with the key's version as token, instead of answering "this broker" while
/// refusing its producers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ownership_written_but_not_heard_of_is_taken_up_by_the_next_lookup() {
    let etcd = EtcdServer::start();
    let meta = store(&etcd).await;
    let a = Cluster::join(Arc::clone(&meta), info(0), Duration::from_secs(10), 1)
        .await
        .unwrap();
    let t = topic(7);
    let record = serde_json::json!({
        "nativeUrl": info(0).broker_url,
        "httpUrl": info(0).web_url,
        "brokerId": info(0).id,
        "lease": a.lease().0,
    });
    let version = meta
        .commit(vec![Op::put_leased(
            "/namespace/public/default/0x00000000_0xffffffff",
            serde_json::to_vec(&record).unwrap(),
            Expected::Absent,
            a.lease(),
        )])
        .await
        .unwrap();
    assert!(a.owns(&t).is_none());
    assert_eq!(a.lookup(&t, false).await.unwrap(), Owner::This);
    assert_eq!(a.owns(&t), Some(version));
}

//! One topic whose metadata answers slowly does not hold up another topic: the whole path a
//! PRODUCER takes (broker service → policy service → managed-ledger factory → metadata store)
//! runs over real sockets with tierlog's own client, and only the slow topic waits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hot_tier::{LedgerStore, StoreOptions};
use ledger::{ManagedLedgerFactory, SystemClock};
use meta::{MetadataStore, RedbStore};
use offload::ObjectStores;
use policy::{BrokerConfig, PolicyService, Properties};
use testkit::slow_meta::SlowMeta;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_whose_open_is_slow_does_not_delay_another_topics_produce() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) =
        LedgerStore::open(dir.path().join("ledgers"), StoreOptions::default()).unwrap();
    let redb: Arc<dyn MetadataStore> =
        Arc::new(RedbStore::open(&dir.path().join("meta.redb")).unwrap());
    let slow = Arc::new(SlowMeta::new(redb, Duration::from_secs(2)));
    let meta: Arc<dyn MetadataStore> = Arc::clone(&slow) as _;
    let factory = Arc::new(ManagedLedgerFactory::new(
        store,
        Arc::clone(&meta),
        Arc::new(SystemClock),
    ));
    let (config, _) = BrokerConfig::from_properties(
        Properties::parse("test.conf", "managedLedgerOffloadDriver=none\n").unwrap(),
    )
    .unwrap();
    let policy = Arc::new(PolicyService::new(
        meta,
        factory,
        &config,
        Arc::new(ObjectStores::default()),
    ));
    policy
        .ensure_defaults("standalone", &Default::default())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("pulsar://{}", listener.local_addr().unwrap());
    let service = broker::BrokerService::new(
        policy,
        broker::BrokerServiceConfig {
            server_version: "test".into(),
            service_url: Some(url.clone()),
            service_url_tls: None,
            listeners: Default::default(),
            max_message_size: 5 << 20,
            cluster_name: "standalone".into(),
            delivery: Default::default(),
            receive_buffer_bytes: 64 << 20,
            keepalive: std::time::Duration::from_secs(30),
            max_connections_per_ip: 0,
            max_concurrent_lookups: 50_000,
            dedup_snapshot_interval: 1000,
        },
    );
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(Arc::clone(&service).serve(
        vec![broker::Listener {
            tcp: listener,
            tls: None,
        }],
        stopped,
    ));

    // Every metadata operation of `slow-topic` (its ledger list, its cursors) takes 2 s.
    slow.slow_down("slow-topic");
    let slow_producer = {
        let url = url.clone();
        tokio::spawn(async move {
            let conn = client::Connection::connect(&url).await.unwrap();
            conn.producer("slow-topic").await.map(|_| ())
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;

    let started = Instant::now();
    let conn = client::Connection::connect(&url).await.unwrap();
    let (mut producer, mut receipts) = conn.producer("fast-topic").await.unwrap();
    for i in 0..10 {
        producer.send(&[Bytes::from(format!("m{i}"))]).unwrap();
    }
    for _ in 0..10 {
        receipts.recv().await.unwrap().unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "another topic's produce waited {:?} for the slow topic",
        started.elapsed()
    );
    assert!(
        !slow_producer.is_finished(),
        "the slow topic is still opening"
    );
    slow_producer.abort();
}

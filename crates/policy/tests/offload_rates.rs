//! Offload and cold-read rates set by a namespace's and a topic's offload policies
//! (`managedLedgerOffloadFlowPermitsPerSecond`, `managedLedgerOffloadReadFlowPermitsPerSecond`)
//! reach the topic's effective offload configuration, each under its own scope (the namespace's
//! topics share the namespace's; the topic's is its own), on top of the broker's.

use std::sync::Arc;

use hot_tier::{LedgerStore, StoreOptions};
use ledger::{ManagedLedgerFactory, SystemClock};
use meta::{MetadataStore, RedbStore};
use offload::{ObjectStores, ScopedLimit};
use policy::{BrokerConfig, OffloadPolicies, PolicyService, Properties};
use protocol::names::{NamespaceName, TopicName};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_and_topic_rates_reach_the_effective_offload_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) =
        LedgerStore::open(dir.path().join("ledgers"), StoreOptions::default()).unwrap();
    let meta: Arc<dyn MetadataStore> =
        Arc::new(RedbStore::open(&dir.path().join("meta.redb")).unwrap());
    let factory = Arc::new(ManagedLedgerFactory::new(
        store,
        Arc::clone(&meta),
        Arc::new(SystemClock),
    ));
    // The broker-wide limit of the same key stays the broker's (all topics together).
    let conf = format!(
        "managedLedgerOffloadDriver=filesystem\nfileSystemURI={}\n\
         managedLedgerOffloadFlowPermitsPerSecond=90000000\n",
        dir.path().join("tier").display()
    );
    let (config, _) =
        BrokerConfig::from_properties(Properties::parse("test.conf", &conf).unwrap()).unwrap();
    let policy = PolicyService::new(meta, factory, &config, Arc::new(ObjectStores::default()));
    policy
        .ensure_defaults("standalone", &Default::default())
        .await
        .unwrap();
    let ns = NamespaceName::new("public", "default").unwrap();
    let a = TopicName::parse("persistent://public/default/a").unwrap();
    let b = TopicName::parse("persistent://public/default/b").unwrap();

    // Nothing set: no scoped limits.
    let s = policy.effective(&a).await.unwrap();
    let c = s.offload.expect("offload is on");
    assert!(
        c.upload_limits.is_empty() && c.read_limits.is_empty(),
        "{c:?}"
    );

    let ns_policy: OffloadPolicies = serde_json::from_str(
        r#"{"managedLedgerOffloadFlowPermitsPerSecond": 20000000,
            "managedLedgerOffloadReadFlowPermitsPerSecond": 30000000}"#,
    )
    .unwrap();
    policy
        .store()
        .update_policies(&ns, |p| p.offload_policies = Some(ns_policy.clone()))
        .await
        .unwrap();
    let topic_policy: OffloadPolicies =
        serde_json::from_str(r#"{"managedLedgerOffloadFlowPermitsPerSecond": 5000000}"#).unwrap();
    policy
        .store()
        .update_topic_policies(&b, |p| p.offload_policies = Some(topic_policy.clone()))
        .await
        .unwrap();

    let namespace = |bytes_per_second| ScopedLimit {
        scope: "namespace public/default".into(),
        bytes_per_second,
    };
    let c = policy.effective(&a).await.unwrap().offload.unwrap();
    assert_eq!(c.upload_limits, vec![namespace(20_000_000)]);
    assert_eq!(c.read_limits, vec![namespace(30_000_000)]);
    let c = policy.effective(&b).await.unwrap().offload.unwrap();
    assert_eq!(
        c.upload_limits,
        vec![
            namespace(20_000_000),
            ScopedLimit {
                scope: "topic persistent://public/default/b".into(),
                bytes_per_second: 5_000_000,
            }
        ]
    );
    assert_eq!(c.read_limits, vec![namespace(30_000_000)]);

    // <= 0 sets no limit, as the broker-wide key.
    let off: OffloadPolicies =
        serde_json::from_str(r#"{"managedLedgerOffloadFlowPermitsPerSecond": -1}"#).unwrap();
    policy
        .store()
        .update_policies(&ns, |p| p.offload_policies = Some(off.clone()))
        .await
        .unwrap();
    let c = policy.effective(&a).await.unwrap().offload.unwrap();
    assert!(c.upload_limits.is_empty(), "{c:?}");
}

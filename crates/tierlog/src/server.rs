//! The broker process, in its two forms:
//!
//! - `tierlog standalone`: one process with the hot tier, the embedded metadata store (or
//!   etcd), the managed ledgers, the binary protocol and the web port; it serves every topic.
//! - `tierlog broker`: one broker of a cluster sharing its metadata in etcd. It registers under
//!   its session lease, serves only the topics of the bundles it owns, and answers lookups
//!   with the owner. If its session is lost it owns nothing any more (another broker may own
//!   its bundles by then): with `zookeeperSessionExpiredPolicy=reconnect` (Pulsar's default)
//!   it drops every topic, disconnecting their clients, and registers anew as soon as the
//!   metadata store answers; with `shutdown` it exits non-zero.
//!
//! Both shut down cleanly on SIGINT/SIGTERM: stop listening, close the topics (a cluster
//! broker then gives up its bundles and registration at once), seal every open ledger (flush +
//! fsync), close the stores.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hot_tier::{LedgerStore, StoreOptions};
use ledger::{ManagedLedgerFactory, SystemClock};
use meta::{EtcdStore, RedbStore};
use offload::ObjectStores;
use policy::{BrokerConfig, MetadataBackend, PolicyService};
use tokio::sync::watch;

use crate::web::{WebState, router};

/// Which process this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Standalone,
    ClusterBroker,
}

/// The metadata store the configuration names: the embedded one in the data directory, or etcd.
pub async fn open_metadata_store(
    config: &BrokerConfig,
) -> anyhow::Result<Arc<dyn meta::MetadataStore>> {
    Ok(match &config.metadata_store {
        MetadataBackend::Embedded => {
            let meta_path = config.data_directory.join("metadata.redb");
            Arc::new(
                RedbStore::open(&meta_path)
                    .with_context(|| format!("opening metadata {}", meta_path.display()))?,
            )
        }
        MetadataBackend::Etcd(endpoints) => {
            let store = EtcdStore::connect(endpoints)
                .await
                .context("connecting to the metadata store (metadataStoreUrl)")?;
            tracing::info!(endpoints = %endpoints.join(","), "metadata in etcd");
            Arc::new(store)
        }
    })
}

pub async fn run(config: BrokerConfig, mode: Mode) -> anyhow::Result<()> {
    if mode == Mode::ClusterBroker && config.metadata_store == MetadataBackend::Embedded {
        anyhow::bail!(
            "tierlog broker needs a shared metadata store: set metadataStoreUrl=etcd:http://host:2379 (tierlog standalone runs on the embedded one)"
        );
    }
    if mode == Mode::ClusterBroker
        && (config.security.broker_port.is_none() || config.security.web_port.is_none())
    {
        anyhow::bail!(
            "tierlog broker needs brokerServicePort and webServicePort (the plain ports brokers redirect to); TLS-only cluster brokers are not supported yet"
        );
    }
    let started = std::time::Instant::now();
    let sec = &config.security;
    // Certificates and keys are read before anything else: a bad one stops start-up.
    let tls_binary = match &sec.tls {
        Some(t) if sec.broker_port_tls.is_some() => Some(
            security::TlsServer::load(t.clone(), &[])
                .context("loading the TLS certificate and key")?,
        ),
        _ => None,
    };
    let tls_web = match &sec.tls {
        Some(t) if sec.web_port_tls.is_some() => Some(
            security::TlsServer::load(t.clone(), &["http/1.1"])
                .context("loading the TLS certificate and key")?,
        ),
        _ => None,
    };
    let authenticator = Arc::new(
        security::Authenticator::new(&sec.authentication)
            .context("setting up authentication (authenticationProviders)")?,
    );
    let data = &config.data_directory;
    std::fs::create_dir_all(data)
        .with_context(|| format!("creating data directory {}", data.display()))?;
    let store_options = StoreOptions {
        // A stored entry is the message from its magic number on, slightly above the payload.
        max_entry_bytes: config.max_message_size as usize + 64 * 1024,
        journal_dir: config.hot_tier.directory.clone(),
        journal_file_bytes: config.hot_tier.max_file_bytes,
        checkpoint_interval: config.hot_tier.checkpoint_interval,
        write_cache_bytes: config.hot_tier.write_cache_bytes,
        read_ahead_cache_bytes: config.hot_tier.read_ahead_cache_bytes,
        read_ahead_window_bytes: config.hot_tier.read_ahead_window_bytes,
        ..StoreOptions::default()
    };
    let ledgers_dir = data.join("ledgers");
    let (store, recovered) = LedgerStore::open(&ledgers_dir, store_options)
        .with_context(|| format!("opening the hot tier in {}", ledgers_dir.display()))?;
    for r in &recovered {
        tracing::info!(
            ledger_id = r.sealed.ledger_id,
            entries = r.sealed.entries,
            discarded_bytes = r.discarded_bytes,
            "recovered ledger left open by the previous run"
        );
    }
    let meta = open_metadata_store(&config).await?;
    if let (MetadataBackend::Etcd(endpoints), Some(every)) = (
        &config.metadata_store,
        config.cluster.etcd_compaction_interval,
    ) {
        // Compaction is etcd's own API, which the shared store's trait does not carry: a
        // client of its own.
        let etcd = EtcdStore::connect(endpoints)
            .await
            .context("connecting to the metadata store (metadataStoreUrl)")?;
        tokio::spawn(meta::compact_history(etcd, every));
    }
    let gc_meta = Arc::clone(&meta);

    // One cache of object-store clients for every offloader and reader of the broker.
    let mut object_stores = ObjectStores::new(config.object_store_client.clone())
        .with_offload_budget(config.offload_defaults.budget());
    if let Some(rate) = config.offload_defaults.read_bytes_per_second {
        object_stores = object_stores.with_read_rate(rate);
    }
    if let Some(c) = &config.offload_cache {
        let cache = offload::ChunkCache::open(
            &c.directory,
            c.size_bytes,
            offload::ChunkCache::DEFAULT_CHUNK_SIZE,
        )
        .context("opening the offload cache (managedLedgerOffloadCacheDirectory)")?;
        tracing::info!(
            directory = %c.directory.display(),
            limit_mb = c.size_bytes >> 20,
            held_mb = cache.size_bytes() >> 20,
            "offload cache"
        );
        object_stores = object_stores.with_chunk_cache(Arc::new(cache));
    }
    let object_stores = Arc::new(object_stores);
    let gc_stores = Arc::clone(&object_stores);
    let target = config.offload_target();
    // Pulsar's broker id: the advertised address and the web port (the TLS one without a
    // plain one).
    let web_port_for_id = sec.web_port.or(sec.web_port_tls).unwrap_or_default();
    let broker_id = format!("{}:{}", config.advertised_address, web_port_for_id);
    // The object-storage WAL (hot tier of object-tier topics) writes to the broker's offload
    // location, so a namespace can switch to the object tier whenever offload is configured.
    let wal = match &target {
        Some(t) => {
            // Build the client now, so an unusable driver setting stops start-up.
            let offloader =
                offload::BlobStoreOffloader::with_stores(t.clone(), Arc::clone(&object_stores))
                    .await
                    .with_context(|| {
                        format!("setting up the {} offload driver", t.location.driver())
                    })?;
            tracing::info!(driver = %t.location.driver(), location = %t.location, "tiered storage configured");
            let store = offloader
                .store()
                .await
                .context("the object store of the offload location")?;
            let w = &config.wal;
            Some(wal::Wal::start(
                store,
                Arc::clone(&meta),
                wal::WalConfig {
                    flush_interval: w.flush_interval,
                    flush_max_bytes: w.flush_max_bytes,
                    max_extents_per_ledger: w.max_extents_per_ledger,
                    ..wal::WalConfig::new(&config.cluster_name, &broker_id)
                },
            ))
        }
        None => {
            tracing::info!("no offload driver configured (so no object hot tier either)");
            None
        }
    };
    // Topics without an offloader still read (and delete) what they offloaded before.
    let reader = config.tier_reader(Arc::clone(&object_stores));
    let hot_tier = store.clone();
    let mut factory = ManagedLedgerFactory::new(store, Arc::clone(&meta), Arc::new(SystemClock))
        .with_reader(Arc::new(reader))
        .with_metadata_compression(
            config.ledger_info_compression,
            config.cursor_info_compression,
        );
    if mode == Mode::ClusterBroker {
        // Local ledgers live on this broker's disk: another broker must not serve them.
        factory = factory.with_hot_tier_owner(broker_id.clone());
    }
    if let Some(w) = &wal {
        factory = factory.with_wal(w.clone());
    }
    let factory = Arc::new(factory);
    factory
        .finish_deletions()
        .await
        .context("finishing interrupted topic deletions")?;
    factory
        .collect_garbage()
        .await
        .context("collecting unreferenced ledger files")?;
    // WAL extents no ledger needs (left by a crash between a ledger list update and their
    // deletion): housekeeping, so a failure is only reported; the periodic pass retries.
    if let Err(e) = factory.collect_stale_extents().await {
        tracing::warn!(error = %e, "collecting stale WAL extents failed");
    }
    let meta_for_cluster = Arc::clone(&meta);
    let policy = Arc::new(PolicyService::new(
        meta,
        Arc::clone(&factory),
        &config,
        Arc::clone(&object_stores),
    ));

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let bind = |port: u16| -> anyhow::Result<SocketAddr> {
        format!("{}:{}", config.bind_address, port)
            .parse()
            .with_context(|| format!("bindAddress {:?} is not an IP address", config.bind_address))
    };
    let mut broker_listeners = Vec::new();
    for (port, tls, key) in [
        (sec.broker_port, None, "brokerServicePort"),
        (
            sec.broker_port_tls,
            tls_binary.clone(),
            "brokerServicePortTls",
        ),
    ] {
        let Some(port) = port else { continue };
        let addr = bind(port)?;
        let tcp = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {key} {addr}"))?;
        broker_listeners.push(broker::Listener { tcp, tls });
    }
    let host = &config.advertised_address;
    // With advertisedListeners the internal listener's addresses are the broker's own.
    let internal = config.listeners.internal();
    let service_url = match internal {
        Some(l) => l.broker_url.clone(),
        None => sec.broker_port.map(|p| format!("pulsar://{host}:{p}")),
    };
    let service_url_tls = match internal {
        Some(l) => l.broker_url_tls.clone(),
        None => sec
            .broker_port_tls
            .map(|p| format!("pulsar+ssl://{host}:{p}")),
    };
    let web_service_url = format!("http://{host}:{}", sec.web_port.unwrap_or_default());
    let web_service_url_tls = sec.web_port_tls.map(|p| format!("https://{host}:{p}"));
    let cluster_data = policy::types::ClusterData {
        service_url: Some(web_service_url.clone()),
        service_url_tls: web_service_url_tls.clone(),
        broker_service_url: service_url.clone(),
        broker_service_url_tls: service_url_tls.clone(),
    };
    policy
        .ensure_defaults(&config.cluster_name, &cluster_data)
        .await
        .context("creating the cluster record and public/default")?;
    let cluster = match mode {
        Mode::Standalone => None,
        Mode::ClusterBroker => {
            let me = cluster::BrokerInfo {
                id: broker_id.clone(),
                broker_url: service_url.clone().unwrap_or_default(),
                web_url: web_service_url.clone(),
                broker_url_tls: service_url_tls.clone(),
                web_url_tls: web_service_url_tls.clone(),
                advertised_listeners: config.listeners.listeners.clone(),
            };
            let joined = cluster::Cluster::join(
                Arc::clone(&meta_for_cluster),
                me,
                config.cluster.session_timeout,
                config.cluster.bundles_per_namespace,
            )
            .await
            .context("joining the cluster (registering this broker in the metadata store)")?;
            Some(Arc::new(joined))
        }
    };
    let service = broker::BrokerService::with_cluster(
        Arc::clone(&policy) as Arc<dyn broker::TopicStore>,
        broker::BrokerServiceConfig {
            server_version: format!("tierlog-{}", env!("CARGO_PKG_VERSION")),
            listeners: config.listeners.listeners.clone(),
            service_url,
            service_url_tls,
            max_message_size: u32::try_from(config.max_message_size).unwrap_or(u32::MAX),
            cluster_name: config.cluster_name.clone(),
            delivery: broker::DeliveryRules {
                unacked_limits: broker::UnackedLimits {
                    per_consumer: config.max_unacked_messages_per_consumer,
                    per_subscription: config.max_unacked_messages_per_subscription,
                },
                delayed_delivery: config.delayed_delivery_enabled,
                batch_index_acks: config.acknowledgment_at_batch_index_level_enabled,
            },
            receive_buffer_bytes: usize::try_from(config.max_message_publish_buffer_size_bytes)
                .unwrap_or(usize::MAX),
            keepalive: config.keep_alive_interval,
            max_connections_per_ip: config.max_connections_per_ip,
            max_concurrent_lookups: config.max_concurrent_lookup_requests,
            dedup_snapshot_interval: config.deduplication_entries_interval,
        },
        cluster.clone(),
        Arc::clone(&authenticator),
    );
    let binary = tokio::spawn(Arc::clone(&service).serve(broker_listeners, shutdown_rx.clone()));
    let app = router(Arc::new(WebState {
        policy,
        broker: Arc::clone(&service),
        object_stores,
        hot_tier,
        web_service_url,
        web_service_url_tls,
        broker_id: broker_id.clone(),
        authenticator,
        metrics: config.metrics.clone(),
        metadata_store_url: match &config.metadata_store {
            MetadataBackend::Embedded => format!(
                "redb:{}",
                config.data_directory.join("metadata.redb").display()
            ),
            MetadataBackend::Etcd(endpoints) => format!("etcd:{}", endpoints.join(",")),
        },
    }));
    let mut web = Vec::new();
    if let Some(port) = sec.web_port {
        let addr = bind(port)?;
        let tcp = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding webServicePort {addr}"))?;
        web.push(spawn_web(
            crate::web::auth::PlainListener(tcp),
            app.clone(),
            shutdown_rx.clone(),
        ));
    }
    if let (Some(port), Some(tls)) = (sec.web_port_tls, &tls_web) {
        let addr = bind(port)?;
        let tcp = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding webServicePortTls {addr}"))?;
        let listener =
            crate::web::auth::TlsListener::new(tcp, Arc::clone(tls), config.keep_alive_interval)?;
        web.push(spawn_web(listener, app.clone(), shutdown_rx.clone()));
    }
    // Renewed certificates are picked up without a restart.
    for tls in [&tls_binary, &tls_web].into_iter().flatten() {
        let mut stop = shutdown_rx.clone();
        tokio::spawn(Arc::clone(tls).watch_files(async move {
            let _ = stop.wait_for(|s| *s).await;
        }));
    }

    // Orphan collection in the broker's offload location.
    if let (Some(interval), Some(t)) = (config.orphan_gc.interval, &target) {
        let settings = offload::gc::GcSettings {
            grace: config.orphan_gc.grace,
            cluster_name: config.cluster_name.clone(),
            dry_run: false,
            max_deletes_per_second: config.orphan_gc.deletes_per_second,
        };
        tokio::spawn(crate::orphan_gc::run_periodically(
            gc_meta,
            gc_stores,
            t.clone(),
            settings,
            interval,
            shutdown_rx.clone(),
        ));
    }
    let maintenance = tokio::spawn(maintenance_loop(
        Arc::clone(&factory),
        Duration::from_secs(config.retention_check_interval_in_seconds),
        shutdown_rx.clone(),
    ));
    if wal.is_some() {
        let factory = Arc::clone(&factory);
        tokio::spawn(every(
            STALE_EXTENTS_INTERVAL,
            shutdown_rx.clone(),
            move || {
                let factory = Arc::clone(&factory);
                async move {
                    if let Err(e) = factory.collect_stale_extents().await {
                        tracing::warn!(error = %e, "collecting stale WAL extents failed (retried later)");
                    }
                }
            },
        ));
    }
    // Rates (stats and metrics) over the last statsUpdateFrequencyInSecs.
    {
        let svc = Arc::clone(&service);
        tokio::spawn(every(
            config.metrics.stats_update_interval,
            shutdown_rx.clone(),
            move || {
                let svc = Arc::clone(&svc);
                async move { svc.sample_stats().await }
            },
        ));
    }
    // Message TTL and backlog quotas, checked on the loaded topics as Pulsar checks them.
    {
        let svc = Arc::clone(&service);
        tokio::spawn(every(
            config.backlog.expiry_check_interval,
            shutdown_rx.clone(),
            move || {
                let svc = Arc::clone(&svc);
                async move { svc.check_message_expiry().await }
            },
        ));
    }
    {
        let svc = Arc::clone(&service);
        tokio::spawn(every(
            config.backlog.compaction_check_interval,
            shutdown_rx.clone(),
            move || {
                let svc = Arc::clone(&svc);
                async move { svc.check_compaction().await }
            },
        ));
    }
    if let Some(interval) = config.backlog.quota_check_interval {
        let svc = Arc::clone(&service);
        tokio::spawn(every(interval, shutdown_rx.clone(), move || {
            let svc = Arc::clone(&svc);
            async move { svc.check_backlog_quotas().await }
        }));
    }

    tracing::info!(
        web = ?sec.web_port,
        web_tls = ?sec.web_port_tls,
        broker = ?sec.broker_port,
        broker_tls = ?sec.broker_port_tls,
        authentication = sec.authentication.enabled,
        authorization = sec.authorization.enabled,
        advertised = %config.advertised_address,
        data = %data.display(),
        startup_ms = started.elapsed().as_millis() as u64,
        "tierlog {} ready",
        match mode {
            Mode::Standalone => "standalone",
            Mode::ClusterBroker => "broker",
        }
    );
    let mut signal = std::pin::pin!(wait_for_signal());
    let lost = 'serving: loop {
        let session_lost = async {
            match &cluster {
                Some(c) => c.session_lost().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = &mut signal => { r?; break false }
            _ = session_lost => {}
        }
        let Some(c) = &cluster else { break false };
        if config.cluster.session_expired == policy::SessionExpiredPolicy::Shutdown {
            tracing::error!(
                "the metadata session was lost: this broker owns nothing any more; shutting down (zookeeperSessionExpiredPolicy=shutdown)"
            );
            break true;
        }
        let dropped = service.drop_all().await;
        tracing::error!(
            dropped,
            "the metadata session was lost: this broker owns nothing any more; every topic was dropped and its clients disconnected; registering again once the metadata store answers"
        );
        loop {
            tokio::select! {
                r = &mut signal => { r?; break 'serving false }
                joined = c.rejoin() => match joined {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "registering again failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                },
            }
        }
        tracing::info!("registered again: serving the bundles lookups give this broker");
    };
    tracing::info!("shutting down");
    let _ = shutdown_tx.send(true);
    let _ = maintenance.await;
    // Connections close and pending acknowledgements are persisted before the ledgers seal.
    if let Err(e) = binary.await {
        tracing::warn!(error = %e, "broker service task failed");
    }
    for http in web {
        match http.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "web service ended with an error"),
            Err(e) => tracing::warn!(error = %e, "web service task failed"),
        }
    }
    factory.close_all().await.context("sealing open ledgers")?;
    if let Some(w) = &wal {
        w.shutdown().await;
    }
    if let Some(c) = &cluster
        && !lost
    {
        // The topics are closed: their bundles can go to other brokers now, not after the TTL.
        c.leave().await.context("leaving the cluster")?;
    }
    if lost {
        anyhow::bail!(
            "the metadata session was lost (etcd unreachable for longer than metadataStoreSessionTimeoutMillis?)"
        );
    }
    tracing::info!("shut down cleanly");
    Ok(())
}

/// Serves the web API on `listener` until shutdown; handlers see who connected
/// ([`crate::web::auth::PeerInfo`]).
fn spawn_web<L>(
    listener: L,
    app: axum::Router,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<std::io::Result<()>>
where
    L: axum::serve::Listener<Addr = crate::web::auth::PeerInfo>,
    crate::web::auth::PeerInfo:
        for<'a> axum::extract::connect_info::Connected<axum::serve::IncomingStream<'a, L>>,
{
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<crate::web::auth::PeerInfo>(),
        )
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|s| *s).await;
        })
        .await
    })
}

/// Rolls over idle ledgers that reached their maximum age and applies retention, periodically.
async fn maintenance_loop(
    factory: Arc<ManagedLedgerFactory>,
    every_: Duration,
    shutdown: watch::Receiver<bool>,
) {
    every(every_, shutdown, move || {
        let factory = Arc::clone(&factory);
        async move {
            for ml in factory.open_ledgers().await {
                if let Err(e) = ml.check_rollover().await {
                    tracing::warn!(ledger = ml.name(), error = %e, "periodic rollover/retention check failed");
                }
            }
        }
    })
    .await
}

/// How often a broker with the object hot tier looks for WAL extents no ledger needs (a
/// listing of every extent key and every ledger list, so not often).
const STALE_EXTENTS_INTERVAL: Duration = Duration::from_secs(600);

/// Runs `f` every `interval` (the first time one interval after start) until shutdown.
pub(crate) async fn every<F, Fut>(interval: Duration, mut shutdown: watch::Receiver<bool>, f: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        f().await;
    }
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => tracing::info!("received SIGTERM"),
        _ = int.recv() => tracing::info!("received SIGINT"),
    }
    Ok(())
}

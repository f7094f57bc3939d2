//! `tierlog standalone`: one process with the hot tier, the embedded metadata store, the managed
//! ledgers and the HTTP port (metrics, health). Shuts down cleanly on SIGINT/SIGTERM: stops
//! listening, seals every open ledger (flush + fsync), closes the stores.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use hot_tier::{LedgerStore, StoreOptions};
use ledger::{ManagedLedgerFactory, SystemClock};
use meta::RedbStore;
use offload::BlobStoreOffloader;
use tokio::sync::watch;

use crate::config::BrokerConfig;
use crate::metrics;

struct Broker {
    factory: Arc<ManagedLedgerFactory>,
    /// Tiered storage, when a driver is configured (also handed to every managed ledger).
    offloader: Option<Arc<BlobStoreOffloader>>,
    /// Settings of topics in namespaces with default policies.
    ml_defaults: ledger::ManagedLedgerConfig,
}

pub async fn run(config: BrokerConfig) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let data = &config.data_directory;
    std::fs::create_dir_all(data)
        .with_context(|| format!("creating data directory {}", data.display()))?;
    let store_options = StoreOptions {
        // A stored entry is the message from its magic number on, slightly above the payload.
        max_entry_bytes: config.max_message_size as usize + 64 * 1024,
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
    let meta_path = data.join("metadata.redb");
    let meta = RedbStore::open(&meta_path)
        .with_context(|| format!("opening metadata {}", meta_path.display()))?;
    let offloader = match &config.offload {
        Some(c) => {
            let o = BlobStoreOffloader::new(c.clone())
                .await
                .with_context(|| format!("setting up the {} offload driver", c.driver.name()))?;
            tracing::info!(driver = c.driver.name(), location = %c.location(), "tiered storage configured");
            Some(Arc::new(o))
        }
        None => None,
    };
    // One metadata store for ledgers, cursors and admin policies.
    let meta_store: Arc<dyn meta::MetadataStore> = Arc::new(meta);
    let mut factory =
        ManagedLedgerFactory::new(store, Arc::clone(&meta_store), Arc::new(SystemClock));
    if let Some(o) = &offloader {
        factory = factory.with_offloader(Arc::clone(o) as Arc<dyn offload::LedgerOffloader>);
    }
    let factory = Arc::new(factory);
    factory
        .collect_garbage()
        .await
        .context("collecting unreferenced ledger files")?;
    let admin_state = Arc::new(crate::admin::AdminState {
        factory: Arc::clone(&factory),
        policies: crate::admin::PolicyStore::new(meta_store),
        defaults: config.managed_ledger_config(),
        offload_status: Default::default(),
        broker: Default::default(),
        offload_base: config.offload.clone(),
        broker_offloader: offloader.clone(),
        policy_offloaders: Default::default(),
        web_service_url: format!(
            "http://{}:{}",
            config.advertised_address, config.web_service_port
        ),
    });
    admin_state
        .policies
        .ensure_defaults(&config.cluster_name)
        .await
        .map_err(|e| anyhow::anyhow!("creating public/default: {}", e.reason))?;
    let broker = Arc::new(Broker {
        factory: Arc::clone(&factory),
        offloader,
        ml_defaults: config.managed_ledger_config(),
    });
    tracing::debug!(defaults = ?broker.ml_defaults, "managed ledger defaults");

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let broker_addr: SocketAddr = format!("{}:{}", config.bind_address, config.broker_service_port)
        .parse()
        .with_context(|| format!("bindAddress {:?} is not an IP address", config.bind_address))?;
    let broker_listener = tokio::net::TcpListener::bind(broker_addr)
        .await
        .with_context(|| format!("binding the broker service port {broker_addr}"))?;
    let service = broker::BrokerService::new(
        Arc::new(crate::admin::AdminTopics(Arc::clone(&admin_state))),
        broker::BrokerServiceConfig {
            server_version: format!("tierlog-{}", env!("CARGO_PKG_VERSION")),
            service_url: format!(
                "pulsar://{}:{}",
                config.advertised_address, config.broker_service_port
            ),
            max_message_size: u32::try_from(config.max_message_size).unwrap_or(u32::MAX),
            cluster_name: config.cluster_name.clone(),
        },
    );
    let _ = admin_state.broker.set(Arc::clone(&service));
    let binary = tokio::spawn(Arc::clone(&service).serve(broker_listener, shutdown_rx.clone()));
    let web_addr: SocketAddr = format!("{}:{}", config.bind_address, config.web_service_port)
        .parse()
        .with_context(|| format!("bindAddress {:?} is not an IP address", config.bind_address))?;
    let listener = tokio::net::TcpListener::bind(web_addr)
        .await
        .with_context(|| format!("binding the web service port {web_addr}"))?;
    let app = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/admin/v2/brokers/health", get(|| async { "ok" }))
        .with_state(Arc::clone(&broker))
        .merge(crate::admin::router(admin_state));
    let mut http_shutdown = shutdown_rx.clone();
    let http = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = http_shutdown.wait_for(|s| *s).await;
            })
            .await
    });

    let maintenance = tokio::spawn(maintenance_loop(
        Arc::clone(&factory),
        Duration::from_secs(config.retention_check_interval_in_seconds),
        shutdown_rx.clone(),
    ));

    tracing::info!(
        web = %web_addr,
        broker = %broker_addr,
        advertised = %config.advertised_address,
        data = %data.display(),
        startup_ms = started.elapsed().as_millis() as u64,
        "tierlog standalone ready"
    );
    wait_for_signal().await?;
    tracing::info!("shutting down");
    let _ = shutdown_tx.send(true);
    let _ = maintenance.await;
    // Connections close and pending acknowledgements are persisted before the ledgers seal.
    if let Err(e) = binary.await {
        tracing::warn!(error = %e, "broker service task failed");
    }
    match http.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "web service ended with an error"),
        Err(e) => tracing::warn!(error = %e, "web service task failed"),
    }
    factory.close_all().await.context("sealing open ledgers")?;
    tracing::info!("shut down cleanly");
    Ok(())
}

async fn metrics_handler(State(broker): State<Arc<Broker>>) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics::render(&broker.factory, broker.offloader.as_deref()).await,
    )
}

/// Rolls over idle ledgers that reached their maximum age and applies retention, periodically.
async fn maintenance_loop(
    factory: Arc<ManagedLedgerFactory>,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        for ml in factory.open_ledgers().await {
            if let Err(e) = ml.check_rollover().await {
                tracing::warn!(ledger = ml.name(), error = %e, "periodic rollover/retention check failed");
            }
        }
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

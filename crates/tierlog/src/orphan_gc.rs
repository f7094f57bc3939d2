//! Orphan collection in the broker's offload location, shared by the broker's periodic pass and
//! `tierlog offload gc`: the offload attempts every ledger list references are read from the
//! metadata store, then `offload::gc` removes the rest that is old enough and this cluster's.

use std::sync::Arc;

use anyhow::Context;
use offload::gc::{GcReport, GcSettings, collect_orphans};
use offload::{Credentials, Location, ObjectStores};

/// One pass over `location`.
pub async fn pass(
    meta: &dyn meta::MetadataStore,
    stores: &ObjectStores,
    location: &Location,
    credentials: &Credentials,
    settings: &GcSettings,
) -> anyhow::Result<GcReport> {
    let referenced = ledger::restore::referenced_offloads(meta)
        .await
        .context("reading which offloads the ledger lists reference")?;
    Ok(collect_orphans(stores, location, credentials, &referenced, settings).await?)
}

/// The broker's periodic pass over its offload location, every `interval`, until shutdown.
pub async fn run_periodically(
    meta: Arc<dyn meta::MetadataStore>,
    stores: Arc<ObjectStores>,
    target: offload::OffloadConfig,
    settings: GcSettings,
    interval: std::time::Duration,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    crate::server::every(interval, shutdown, move || {
        let (meta, stores, target, settings) = (
            Arc::clone(&meta),
            Arc::clone(&stores),
            target.clone(),
            settings.clone(),
        );
        async move {
            let location = &target.location;
            match pass(meta.as_ref(), &stores, location, &target.credentials, &settings).await {
                Ok(r) => tracing::info!(
                    %location,
                    deleted = r.deleted_objects.len(),
                    aborted_uploads = r.aborted_uploads.len(),
                    kept_young = r.kept_young,
                    kept_foreign = r.kept_foreign,
                    referenced = r.referenced,
                    "orphan collection pass"
                ),
                Err(e) => tracing::warn!(%location, error = %format!("{e:#}"), "orphan collection pass failed"),
            }
        }
    })
    .await
}

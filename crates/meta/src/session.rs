//! A session: one lease kept alive in the background, the way a broker holds its registration
//! and its bundle ownerships. Keys written with [`Session::lease`] live as long as the session.
//!
//! The session counts as lost from the moment it can no longer be sure the lease is live: the
//! store said it ended, or no renewal succeeded for a whole TTL measured from when the last
//! successful renewal was *sent* (the store's own deadline is at least that late, so the
//! holder gives up first). Being told is for prompt reaction only; correctness never rests on
//! clocks: writes that need the lease check it in the same transaction (fencing).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::{LeaseId, MetaError, MetadataStore, Result};

/// A live lease and the task renewing it.
pub struct Session {
    store: Arc<dyn MetadataStore>,
    lease: LeaseId,
    alive: watch::Receiver<bool>,
    /// Until when the lease is surely live: the last successful renewal's send time + TTL.
    valid_until: Arc<std::sync::Mutex<Instant>>,
    renewer: JoinHandle<()>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("lease", &self.lease)
            .field("alive", &*self.alive.borrow())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Grants a lease of `ttl` and renews it every third of it.
    pub async fn start(store: Arc<dyn MetadataStore>, ttl: Duration) -> Result<Session> {
        let sent = Instant::now();
        let lease = store.grant_lease(ttl).await?;
        let (tx, alive) = watch::channel(true);
        let valid_until = Arc::new(std::sync::Mutex::new(sent + ttl));
        let renewer = tokio::spawn(renew(
            Arc::clone(&store),
            lease,
            ttl,
            Arc::clone(&valid_until),
            tx,
        ));
        Ok(Session {
            store,
            lease,
            alive,
            valid_until,
            renewer,
        })
    }

    pub fn lease(&self) -> LeaseId {
        self.lease
    }

    /// Whether the lease is still known to be live: not given up, and renewed within its TTL
    /// by this process's clock (a process paused past its TTL sees this false at once on
    /// resuming, before the renewer has run).
    pub fn is_alive(&self) -> bool {
        *self.alive.borrow()
            && Instant::now() < *self.valid_until.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A receiver that turns `false` when the session is lost.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.alive.clone()
    }

    /// Resolves when the session is lost.
    pub async fn lost(&self) {
        let mut rx = self.alive.clone();
        // An error means the renewer is gone, which happens only once it gave up.
        let _ = rx.wait_for(|alive| !alive).await;
    }

    /// Stops renewing and revokes the lease: its keys are deleted now, not after the TTL.
    pub async fn close(self) -> Result<()> {
        self.renewer.abort();
        self.store.revoke_lease(self.lease).await
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Without `close` the lease simply runs out.
        self.renewer.abort();
    }
}

async fn renew(
    store: Arc<dyn MetadataStore>,
    lease: LeaseId,
    ttl: Duration,
    valid_until: Arc<std::sync::Mutex<Instant>>,
    alive: watch::Sender<bool>,
) {
    let period = ttl / 3;
    loop {
        tokio::time::sleep(period).await;
        let sent = Instant::now();
        let deadline = *valid_until.lock().unwrap_or_else(|p| p.into_inner());
        let outcome = tokio::time::timeout(
            deadline.saturating_duration_since(sent),
            store.keep_alive(lease),
        )
        .await;
        match outcome {
            Ok(Ok(())) => *valid_until.lock().unwrap_or_else(|p| p.into_inner()) = sent + ttl,
            Ok(Err(MetaError::LeaseExpired { .. })) => {
                tracing::warn!(%lease, "metadata session lost: the lease ended");
                break;
            }
            Ok(Err(e)) if Instant::now() < deadline => {
                tracing::warn!(%lease, error = %e, "renewing the metadata session failed; retrying");
            }
            Ok(Err(_)) | Err(_) => {
                tracing::warn!(%lease, ?ttl, "metadata session lost: not renewed within its TTL");
                break;
            }
        }
    }
    let _ = alive.send(false);
}

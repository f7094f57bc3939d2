//! A metadata store that answers slowly for chosen keys, to show that one slow topic or cursor
//! does not hold up the others.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use meta::{LeaseId, MetadataStore, Op, Versioned, WatchStream};

/// Delays every operation on a key containing the marker (none until one is set).
pub struct SlowMeta {
    inner: Arc<dyn MetadataStore>,
    delay: Duration,
    marker: Mutex<Option<String>>,
}

impl SlowMeta {
    pub fn new(inner: Arc<dyn MetadataStore>, delay: Duration) -> Self {
        SlowMeta {
            inner,
            delay,
            marker: Mutex::new(None),
        }
    }

    /// From now on, operations on keys containing `marker` take `delay` longer.
    pub fn slow_down(&self, marker: &str) {
        *self.marker.lock().unwrap() = Some(marker.to_string());
    }

    async fn wait_if_slow(&self, key: &str) {
        let slow = self
            .marker
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(|m| key.contains(m.as_str()));
        if slow {
            tokio::time::sleep(self.delay).await;
        }
    }
}

#[async_trait::async_trait]
impl MetadataStore for SlowMeta {
    async fn get(&self, key: &str) -> meta::Result<Option<Versioned>> {
        self.wait_if_slow(key).await;
        self.inner.get(key).await
    }
    async fn commit(&self, ops: Vec<Op>) -> meta::Result<u64> {
        for op in &ops {
            self.wait_if_slow(op.key()).await;
        }
        self.inner.commit(ops).await
    }
    async fn list(&self, prefix: &str) -> meta::Result<Vec<String>> {
        self.wait_if_slow(prefix).await;
        self.inner.list(prefix).await
    }
    async fn scan(&self, prefix: &str) -> meta::Result<Vec<(String, Versioned)>> {
        self.wait_if_slow(prefix).await;
        self.inner.scan(prefix).await
    }
    async fn grant_lease(&self, ttl: Duration) -> meta::Result<LeaseId> {
        self.inner.grant_lease(ttl).await
    }
    async fn keep_alive(&self, lease: LeaseId) -> meta::Result<()> {
        self.inner.keep_alive(lease).await
    }
    async fn revoke_lease(&self, lease: LeaseId) -> meta::Result<()> {
        self.inner.revoke_lease(lease).await
    }
    async fn watch(&self, prefix: &str) -> meta::Result<WatchStream> {
        self.wait_if_slow(prefix).await;
        self.inner.watch(prefix).await
    }
}

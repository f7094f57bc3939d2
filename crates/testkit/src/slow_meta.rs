//! A metadata store that answers slowly for chosen keys, to show that one slow topic or cursor
//! does not hold up the others.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use meta::{Expected, MetadataStore, Versioned};

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
    async fn put(&self, key: &str, value: Vec<u8>, expected: Expected) -> meta::Result<u64> {
        self.wait_if_slow(key).await;
        self.inner.put(key, value, expected).await
    }
    async fn delete(&self, key: &str, expected: Expected) -> meta::Result<()> {
        self.wait_if_slow(key).await;
        self.inner.delete(key, expected).await
    }
    async fn list(&self, prefix: &str) -> meta::Result<Vec<String>> {
        self.wait_if_slow(prefix).await;
        self.inner.list(prefix).await
    }
}

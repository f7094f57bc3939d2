//! # once-map — one initialisation per key, no lock held across it
//!
//! Loading a topic, opening a managed ledger or building an object-store client does I/O. Doing
//! it under the lock of the map that caches the result makes one slow key stall every other
//! key. [`OnceMap`] holds its map lock only to find or insert a key's cell; the initialiser runs
//! outside it, concurrent callers for the *same* key wait for that one initialisation, and a
//! failed initialisation leaves no entry behind (the next caller tries again, and names that
//! never succeed do not accumulate).

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::OnceCell;

/// A map from keys to values that are initialised at most once per key at a time.
pub struct OnceMap<K, V> {
    cells: Mutex<HashMap<K, Arc<OnceCell<V>>>>,
}

impl<K, V> Default for OnceMap<K, V> {
    fn default() -> Self {
        OnceMap {
            cells: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> OnceMap<K, V> {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, Arc<OnceCell<V>>>> {
        // The map holds no invariant a panicking holder could break half-way.
        self.cells.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The value of `key`, if it is initialised.
    pub fn get(&self, key: &K) -> Option<V> {
        self.lock().get(key).and_then(|c| c.get().cloned())
    }

    /// The value of `key`, running `init` if there is none yet. Callers racing on one key share
    /// one `init`; callers on other keys never wait for it.
    pub async fn get_or_try_init<E, F, Fut>(&self, key: K, init: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let cell = Arc::clone(self.lock().entry(key.clone()).or_default());
        match cell.get_or_try_init(init).await {
            Ok(v) => Ok(v.clone()),
            Err(e) => {
                let mut cells = self.lock();
                if cells
                    .get(&key)
                    .is_some_and(|c| Arc::ptr_eq(c, &cell) && !c.initialized())
                {
                    cells.remove(&key);
                }
                Err(e)
            }
        }
    }

    /// Sets the value of `key`, replacing any (callers already waiting on an earlier
    /// initialisation get that one's result).
    pub fn insert(&self, key: K, value: V) {
        self.lock()
            .insert(key, Arc::new(OnceCell::new_with(Some(value))));
    }

    /// Removes `key`; returns its value if it was initialised.
    pub fn remove(&self, key: &K) -> Option<V> {
        self.lock().remove(key).and_then(|c| c.get().cloned())
    }

    /// Every initialised value.
    pub fn values(&self) -> Vec<V> {
        self.lock()
            .values()
            .filter_map(|c| c.get().cloned())
            .collect()
    }

    /// Removes every key; returns the initialised values.
    pub fn drain(&self) -> Vec<V> {
        self.lock()
            .drain()
            .filter_map(|(_, c)| c.get().cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slow_key_does_not_hold_up_another_and_racers_share_one_init() {
        let map: Arc<OnceMap<&str, usize>> = Arc::new(OnceMap::new());
        let inits = Arc::new(AtomicUsize::new(0));
        let slow = |map: Arc<OnceMap<&'static str, usize>>, inits: Arc<AtomicUsize>| async move {
            map.get_or_try_init("slow", || async {
                inits.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(500)).await;
                Ok::<_, ()>(1)
            })
            .await
        };
        let a = tokio::spawn(slow(Arc::clone(&map), Arc::clone(&inits)));
        let b = tokio::spawn(slow(Arc::clone(&map), Arc::clone(&inits)));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = Instant::now();
        let fast = map
            .get_or_try_init("fast", || async { Ok::<_, ()>(2) })
            .await;
        assert_eq!(fast, Ok(2));
        assert!(started.elapsed() < Duration::from_millis(250));
        assert_eq!(a.await.unwrap(), Ok(1));
        assert_eq!(b.await.unwrap(), Ok(1));
        assert_eq!(
            inits.load(Ordering::SeqCst),
            1,
            "one init for racing callers"
        );
    }

    #[tokio::test]
    async fn a_failed_init_leaves_nothing_and_is_retried() {
        let map: OnceMap<String, u32> = OnceMap::new();
        let e = map
            .get_or_try_init("k".to_string(), || async { Err::<u32, _>("boom") })
            .await;
        assert_eq!(e, Err("boom"));
        assert!(map.lock().is_empty(), "no cell left for a failed key");
        let v = map
            .get_or_try_init("k".to_string(), || async { Ok::<_, &str>(7) })
            .await;
        assert_eq!(v, Ok(7));
        assert_eq!(map.get(&"k".to_string()), Some(7));
        assert_eq!(map.values(), vec![7]);
        map.insert("k".to_string(), 8);
        assert_eq!(map.remove(&"k".to_string()), Some(8));
        assert!(map.drain().is_empty());
    }
}

//! Helpers shared by the offload integration tests.
#![allow(dead_code)]

use bytes::Bytes;
use std::sync::Arc;

use offload::{BlobStoreOffloader, ClientSettings, LedgerSource, ObjectStores, OffloadConfig};

/// A sealed ledger held in memory.
pub struct VecSource {
    pub id: i64,
    pub entries: Vec<Bytes>,
}

impl VecSource {
    pub fn new(id: i64, entries: Vec<Bytes>) -> Self {
        VecSource { id, entries }
    }

    /// Deterministic entries of the given sizes.
    pub fn with_sizes(id: i64, sizes: impl IntoIterator<Item = usize>) -> Self {
        let entries = sizes
            .into_iter()
            .enumerate()
            .map(|(i, n)| Bytes::from((0..n).map(|j| (i * 31 + j * 7) as u8).collect::<Vec<u8>>()))
            .collect();
        VecSource { id, entries }
    }
}

#[async_trait::async_trait]
impl LedgerSource for VecSource {
    fn ledger_id(&self) -> i64 {
        self.id
    }
    fn last_entry_id(&self) -> i64 {
        self.entries.len() as i64 - 1
    }
    fn length(&self) -> u64 {
        self.entries.iter().map(|e| e.len() as u64).sum()
    }
    fn created_ms(&self) -> u64 {
        1_700_000_000_000
    }
    async fn read(&self, first: i64, last: i64, max_bytes: usize) -> Result<Vec<Bytes>, String> {
        let mut out = Vec::new();
        let mut bytes = 0;
        for e in &self.entries[first as usize..=last as usize] {
            if !out.is_empty() && bytes + e.len() > max_bytes {
                break;
            }
            bytes += e.len();
            out.push(e.clone());
        }
        Ok(out)
    }
}

/// An offloader whose stores retry failed requests `max_retries` times (failure tests keep it low).
pub async fn offloader(
    config: OffloadConfig,
    max_retries: usize,
) -> Result<BlobStoreOffloader, offload::OffloadError> {
    let stores = ObjectStores::new(ClientSettings {
        max_retries,
        retry_max_backoff: std::time::Duration::from_millis(200),
        ..ClientSettings::default()
    });
    BlobStoreOffloader::with_stores(config, Arc::new(stores)).await
}

/// Reads every entry back in chunks of `step` and compares.
pub async fn assert_reads_back(handle: &offload::OffloadedLedger, source: &VecSource, step: i64) {
    assert_eq!(handle.last_entry_id(), source.last_entry_id());
    assert_eq!(handle.length() as u64, source.length());
    let mut first = 0;
    while first <= source.last_entry_id() {
        let last = (first + step - 1).min(source.last_entry_id());
        let got = handle.read(first, last).await.unwrap();
        assert_eq!(got.len() as i64, last - first + 1);
        for (i, g) in got.iter().enumerate() {
            assert!(
                *g == source.entries[first as usize + i],
                "entry {} differs",
                first as usize + i
            );
        }
        first = last + 1;
    }
}

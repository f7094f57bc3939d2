//! The broker-wide offload budget: offloaders sharing one store cache upload at most its number
//! of ledgers at once, whoever asks.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use bytes::Bytes;
use offload::{
    BlobStoreOffloader, LedgerOffloader, LedgerSource, Location, ObjectStores, OffloadBudget,
    OffloadConfig,
};

/// A ledger whose reads take a while and are counted: `active` is how many uploads are reading
/// at this moment.
struct Slow {
    id: i64,
    active: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl LedgerSource for Slow {
    fn ledger_id(&self) -> i64 {
        self.id
    }
    fn last_entry_id(&self) -> i64 {
        19
    }
    fn length(&self) -> u64 {
        20 * 100
    }
    fn created_ms(&self) -> u64 {
        1
    }
    async fn read(&self, first: i64, last: i64, _max: usize) -> Result<Vec<Bytes>, String> {
        let now = self.active.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(now, SeqCst);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        self.active.fetch_sub(1, SeqCst);
        Ok((first..=last.min(first))
            .map(|_| Bytes::from(vec![1u8; 100]))
            .collect())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offloaders_sharing_a_budget_upload_at_most_its_ledgers_at_once() {
    for max_ledgers in [1usize, 2] {
        let dir = tempfile::tempdir().unwrap();
        let stores = Arc::new(
            ObjectStores::default().with_offload_budget(OffloadBudget::new(max_ledgers, 8)),
        );
        // Two offloaders (two topics' policies, say) over the same stores.
        let mut offloaders = Vec::new();
        for sub in ["a", "b"] {
            let c = OffloadConfig::new(Location::filesystem(dir.path().join(sub)));
            offloaders.push(Arc::new(
                BlobStoreOffloader::with_stores(c, Arc::clone(&stores))
                    .await
                    .unwrap(),
            ));
        }
        assert_eq!(offloaders[0].max_parallel_ledgers(), max_ledgers);
        let (active, most) = (Arc::<AtomicUsize>::default(), Arc::<AtomicUsize>::default());
        let mut tasks = Vec::new();
        for id in 0..6 {
            let o = Arc::clone(&offloaders[id as usize % 2]);
            let source = Slow {
                id,
                active: Arc::clone(&active),
                most: Arc::clone(&most),
            };
            tasks.push(tokio::spawn(async move {
                o.offload(&source, uuid::Uuid::new_v4(), &BTreeMap::new())
                    .await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(most.load(SeqCst), max_ledgers, "uploads reading at once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_offloads_and_reads_still_finish_and_read_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let stores = Arc::new(
        ObjectStores::default()
            .with_offload_budget(OffloadBudget::new(2, 10).with_upload_rate(100 << 20))
            .with_read_rate(100 << 20),
    );
    let mut c = OffloadConfig::new(Location::filesystem(dir.path()));
    c.max_block_size_bytes = 5 << 20;
    let o = BlobStoreOffloader::with_stores(c, stores).await.unwrap();
    // ~12 MiB in three blocks, with a rate of 10 MiB per 100 ms at most in a burst.
    let entries: Vec<Bytes> = (0..3000u32)
        .map(|i| Bytes::from(i.to_be_bytes().repeat(1024)))
        .collect();
    let source = Entries(entries.clone());
    let uuid = uuid::Uuid::new_v4();
    let r = o.offload(&source, uuid, &BTreeMap::new()).await.unwrap();
    assert_eq!(r.blocks, 3);
    let h = offload::TierReader::read(&o, 1, uuid, o.location())
        .await
        .unwrap();
    assert_eq!(h.read(0, 2999).await.unwrap(), entries);
}

struct Entries(Vec<Bytes>);

#[async_trait::async_trait]
impl LedgerSource for Entries {
    fn ledger_id(&self) -> i64 {
        1
    }
    fn last_entry_id(&self) -> i64 {
        self.0.len() as i64 - 1
    }
    fn length(&self) -> u64 {
        self.0.iter().map(|e| e.len() as u64).sum()
    }
    fn created_ms(&self) -> u64 {
        1
    }
    async fn read(&self, first: i64, last: i64, _max: usize) -> Result<Vec<Bytes>, String> {
        Ok(self.0[first as usize..=last as usize].to_vec())
    }
}

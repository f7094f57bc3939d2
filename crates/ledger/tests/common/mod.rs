//! Helpers shared by the managed-ledger integration tests.
#![allow(dead_code)]

use bytes::Bytes;
use ledger::{Entry, ManagedLedger, Position};

/// Every entry from `from` on, read `batch` entries at a time.
pub async fn read_from(ml: &ManagedLedger, from: Position, batch: usize) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut pos = from;
    loop {
        let got = ml.read(pos, batch, usize::MAX).await.unwrap();
        let Some(last) = got.last() else { break };
        pos = Position::new(last.position.ledger_id, last.position.entry_id + 1);
        out.extend(got);
    }
    out
}

/// The payloads of every entry from the earliest position on.
pub async fn read_payloads(ml: &ManagedLedger, batch: usize) -> Vec<Bytes> {
    read_from(ml, Position::EARLIEST, batch)
        .await
        .into_iter()
        .map(|e| e.data)
        .collect()
}

/// `TierReader` for a test offloader that wraps a real one in its field `inner` and reads and
/// deletes through it unchanged (it differs only in how it offloads).
macro_rules! tier_reader_through_inner {
    ($offloader:ty) => {
        #[async_trait::async_trait]
        impl offload::TierReader for $offloader {
            async fn read(
                &self,
                ledger_id: i64,
                uuid: uuid::Uuid,
                at: &offload::Location,
            ) -> offload::Result<offload::OffloadedLedger> {
                self.inner.read(ledger_id, uuid, at).await
            }
            async fn delete(
                &self,
                ledger_id: i64,
                uuid: uuid::Uuid,
                at: &offload::Location,
            ) -> offload::Result<()> {
                self.inner.delete(ledger_id, uuid, at).await
            }
        }
    };
}
pub(crate) use tier_reader_through_inner;

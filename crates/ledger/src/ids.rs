//! Ledger ids: unique across every managed ledger, handed out from a counter in the metadata store
//! with compare-and-set, so two writers can never get the same id.

use std::sync::Arc;

use meta::{Expected, MetaError, MetadataStore};

use crate::error::{LedgerError, Result};
use crate::info::LEDGER_ID_COUNTER;

pub struct LedgerIdAllocator {
    meta: Arc<dyn MetadataStore>,
}

impl LedgerIdAllocator {
    pub fn new(meta: Arc<dyn MetadataStore>) -> Self {
        LedgerIdAllocator { meta }
    }

    pub async fn next(&self) -> Result<i64> {
        loop {
            let (next, expected) = self.read().await?;
            let value = (next + 1).to_string().into_bytes();
            match self.meta.put(LEDGER_ID_COUNTER, value, expected).await {
                Ok(_) => return Ok(next),
                Err(MetaError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Makes sure no id up to `used` is handed out again (ledgers restored from elsewhere).
    pub async fn reserve_through(&self, used: i64) -> Result<()> {
        loop {
            let (next, expected) = self.read().await?;
            if next > used {
                return Ok(());
            }
            let value = (used + 1).to_string().into_bytes();
            match self.meta.put(LEDGER_ID_COUNTER, value, expected).await {
                Ok(_) => return Ok(()),
                Err(MetaError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The next id to hand out and the counter's version.
    async fn read(&self) -> Result<(i64, Expected)> {
        Ok(match self.meta.get(LEDGER_ID_COUNTER).await? {
            Some(v) => {
                let text = String::from_utf8_lossy(&v.value).to_string();
                let next: i64 = text.trim().parse().map_err(|_| LedgerError::BadMetadata {
                    key: LEDGER_ID_COUNTER.into(),
                    detail: format!("not a number: {text:?}"),
                })?;
                (next, Expected::Version(v.version))
            }
            None => (1, Expected::Absent),
        })
    }
}

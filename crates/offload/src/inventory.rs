//! What a location holds: its offloaded objects grouped by offload attempt
//! (`<uuid>-ledger-<id>` and its `-index`), and what each attempt's index says about the ledger.
//! Scrub, recovery and orphan collection start from here.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{GetOptions, ObjectStore};
use uuid::Uuid;

use crate::error::{OffloadError, Result};
use crate::format::index::{OffloadIndex, decode_index};
use crate::keys;
use crate::location::Location;

/// One stored object: its size and when it was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredObject {
    pub size: u64,
    pub last_modified_ms: u64,
}

/// The objects of one offload attempt found at a location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub uuid: Uuid,
    pub ledger_id: i64,
    pub data: Option<StoredObject>,
    pub index: Option<StoredObject>,
}

impl Attempt {
    pub fn data_key(&self) -> String {
        keys::data_key(&self.uuid, self.ledger_id)
    }

    pub fn index_key(&self) -> String {
        keys::index_key(&self.uuid, self.ledger_id)
    }
}

/// Every offload attempt at the location, by UUID and ledger id; objects not named like
/// offloaded ones are ignored.
pub async fn list_attempts(
    store: &Arc<dyn ObjectStore>,
    location: &Location,
) -> Result<Vec<Attempt>> {
    let objects: Vec<object_store::ObjectMeta> = store
        .list(None)
        .try_collect()
        .await
        .map_err(|e| OffloadError::on_read("listing", location, "", e))?;
    let mut found: BTreeMap<(Uuid, i64), Attempt> = BTreeMap::new();
    for meta in objects {
        let key = meta.location.to_string();
        let Some((uuid, ledger_id)) = keys::parse_key(&key) else {
            continue;
        };
        let stored = StoredObject {
            size: meta.size,
            last_modified_ms: meta.last_modified.timestamp_millis().max(0) as u64,
        };
        let a = found.entry((uuid, ledger_id)).or_insert(Attempt {
            uuid,
            ledger_id,
            data: None,
            index: None,
        });
        if key.ends_with("-index") {
            a.index = Some(stored);
        } else {
            a.data = Some(stored);
        }
    }
    Ok(found.into_values().collect())
}

/// An attempt's index, decoded, and the managed ledger it names.
#[derive(Debug, Clone)]
pub struct Described {
    pub index: OffloadIndex,
    /// From the index's ledger metadata (`pulsar/managed-ledger`), else from the objects' user
    /// metadata (`managedledgername`); absent when neither names it.
    pub managed_ledger: Option<String>,
}

/// Reads and decodes the index of `attempt`. A missing index is `NotFound`, one that does not
/// decode is `Corrupt`.
pub async fn describe(
    store: &Arc<dyn ObjectStore>,
    location: &Location,
    attempt: &Attempt,
) -> Result<Described> {
    let key = attempt.index_key();
    let result = store
        .get_opts(&Path::from(key.as_str()), GetOptions::default())
        .await
        .map_err(|e| OffloadError::on_read("reading", location, &key, e))?;
    let from_user_metadata = result.attributes.iter().find_map(|(k, v)| match k {
        object_store::Attribute::Metadata(name)
            if name.eq_ignore_ascii_case("managedledgername") =>
        {
            Some(v.as_ref().to_string())
        }
        _ => None,
    });
    let raw = result
        .bytes()
        .await
        .map_err(|e| OffloadError::on_read("reading", location, &key, e))?;
    let index = decode_index(&raw).map_err(|source| OffloadError::Corrupt {
        key: key.clone(),
        source,
    })?;
    let managed_ledger = index.managed_ledger_name().or(from_user_metadata);
    Ok(Described {
        index,
        managed_ledger,
    })
}

//! Scrubbing offloaded objects: every byte of a ledger's data object read back and checked
//! against its index, without a broker.
//!
//! Per ledger: the index decodes; the data object is as long as the index says; every block
//! starts where the index says, with a valid header whose first entry is the index's, and holds
//! well-formed records; entry ids run contiguously from 0 across blocks to the index's last
//! entry; every entry matches its own checksum; the payload bytes add up to the ledger length of
//! the index metadata. Per location: objects are grouped by `<uuid>-ledger-<id>`, and a data
//! object without its index (or the reverse) is reported too.

use std::sync::Arc;

use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};
use uuid::Uuid;

use crate::error::{OffloadError, Result};
use crate::format::block::decode_block;
use crate::format::entry::checksum_matches;
use crate::format::index::decode_index;
use crate::inventory::{describe, list_attempts};
use crate::keys;
use crate::location::Location;

/// What scrubbing one offloaded ledger found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerScrub {
    pub ledger_id: i64,
    pub uuid: String,
    pub data_key: String,
    /// From the index metadata, when it names one.
    pub managed_ledger: Option<String>,
    pub blocks: usize,
    pub entries: u64,
    pub payload_bytes: u64,
    /// Everything wrong, one sentence each; empty when the ledger is intact.
    pub problems: Vec<String>,
}

/// What scrubbing a location found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LocationScrub {
    pub ledgers: Vec<LedgerScrub>,
    /// Objects named like offloaded ones that lack their other half (data without index: an
    /// offload that never finished; index without data: a damaged offload).
    pub incomplete: Vec<String>,
}

impl LocationScrub {
    pub fn problems(&self) -> usize {
        self.incomplete.len() + self.ledgers.iter().map(|l| l.problems.len()).sum::<usize>()
    }
}

async fn get(
    store: &Arc<dyn ObjectStore>,
    location: &Location,
    key: &str,
    range: Option<std::ops::Range<u64>>,
) -> Result<bytes::Bytes> {
    let options = GetOptions {
        range: range.map(GetRange::Bounded),
        ..Default::default()
    };
    store
        .get_opts(&Path::from(key), options)
        .await
        .map_err(|e| OffloadError::on_read("reading", location, key, e))?
        .bytes()
        .await
        .map_err(|e| OffloadError::on_read("reading", location, key, e))
}

/// Scrubs the ledger offloaded under `uuid`, reading one block at a time. Store errors other
/// than a missing object end the scrub with an error (nothing can be said about the ledger).
pub async fn scrub_ledger(
    store: &Arc<dyn ObjectStore>,
    location: &Location,
    uuid: Uuid,
    ledger_id: i64,
) -> Result<LedgerScrub> {
    let data_key = keys::data_key(&uuid, ledger_id);
    let index_key = keys::index_key(&uuid, ledger_id);
    let mut report = LedgerScrub {
        ledger_id,
        uuid: uuid.hyphenated().to_string(),
        data_key: data_key.clone(),
        managed_ledger: None,
        blocks: 0,
        entries: 0,
        payload_bytes: 0,
        problems: Vec::new(),
    };
    let raw = match get(store, location, &index_key, None).await {
        Ok(raw) => raw,
        Err(OffloadError::NotFound { .. }) => {
            report
                .problems
                .push(format!("index object {index_key} is missing"));
            return Ok(report);
        }
        Err(e) => return Err(e),
    };
    let index = match decode_index(&raw) {
        Ok(i) => i,
        Err(e) => {
            report
                .problems
                .push(format!("index object {index_key} does not decode: {e}"));
            return Ok(report);
        }
    };
    report.managed_ledger = index.managed_ledger_name();
    report.blocks = index.entries.len();
    let size = match store.head(&Path::from(data_key.as_str())).await {
        Ok(meta) => meta.size,
        Err(object_store::Error::NotFound { .. }) => {
            report
                .problems
                .push(format!("data object {data_key} is missing"));
            return Ok(report);
        }
        Err(e) => return Err(OffloadError::on_read("reading", location, &data_key, e)),
    };
    if size != index.data_object_len {
        report.problems.push(format!(
            "data object {data_key} is {size} bytes, its index says {}",
            index.data_object_len
        ));
    }
    let mut expected = 0i64;
    for (i, block) in index.entries.iter().enumerate() {
        let start = block.block_offset.max(0) as u64;
        let end = index.block_end(i).min(size);
        if start >= end {
            report.problems.push(format!(
                "block {i} at offset {start} lies outside the {size}-byte data object"
            ));
            break;
        }
        if block.first_entry_id != expected {
            report.problems.push(format!(
                "block {i}: the index says it starts at entry {}, entry {expected} was next",
                block.first_entry_id
            ));
        }
        let bytes = get(store, location, &data_key, Some(start..end)).await?;
        let records = match decode_block(&bytes) {
            Ok((header, records)) => {
                if header.first_entry_id as i64 != block.first_entry_id {
                    report.problems.push(format!(
                        "block {i} at offset {start}: its header starts at entry {}, the index at {}",
                        header.first_entry_id, block.first_entry_id
                    ));
                }
                if start + header.block_len != end && i + 1 < index.entries.len() {
                    report.problems.push(format!(
                        "block {i} at offset {start}: {} bytes long by its header, {} by the index",
                        header.block_len,
                        end - start
                    ));
                }
                records
            }
            Err(e) => {
                report.problems.push(format!(
                    "block {i} at bytes {start}..{end} of {data_key}: {e}"
                ));
                break;
            }
        };
        for (id, payload) in records {
            if id as i64 != expected {
                report.problems.push(format!(
                    "block {i}: entry {id} where entry {expected} was next"
                ));
                expected = id as i64;
            }
            if !checksum_matches(&payload) {
                report.problems.push(format!(
                    "entry {ledger_id}:{id} in block {i} (bytes {start}..{end} of {data_key}) does not match its checksum"
                ));
            }
            report.entries += 1;
            report.payload_bytes += payload.len() as u64;
            expected += 1;
        }
    }
    if expected - 1 != index.last_entry_id {
        report.problems.push(format!(
            "the blocks hold entries up to {}, the index says the last entry is {}",
            expected - 1,
            index.last_entry_id
        ));
    }
    if report.payload_bytes as i64 != index.length {
        report.problems.push(format!(
            "the entries hold {} payload bytes, the index metadata says {}",
            report.payload_bytes, index.length
        ));
    }
    Ok(report)
}

/// Scrubs every offloaded ledger at `location` (only those of `managed_ledger`, if given:
/// Pulsar's `tenant/namespace/persistent/<encoded topic>`), in key order.
pub async fn scrub_location(
    store: &Arc<dyn ObjectStore>,
    location: &Location,
    managed_ledger: Option<&str>,
    mut progress: impl FnMut(&LedgerScrub),
) -> Result<LocationScrub> {
    let mut out = LocationScrub::default();
    for attempt in list_attempts(store, location).await? {
        if let Some(wanted) = managed_ledger {
            // Only the index says which topic a ledger belongs to: read it first (it is small).
            if attempt.index.is_none() {
                continue;
            }
            let named = match describe(store, location, &attempt).await {
                Ok(d) => d.managed_ledger,
                Err(OffloadError::NotFound { .. } | OffloadError::Corrupt { .. }) => None,
                Err(e) => return Err(e),
            };
            if named.as_deref() != Some(wanted) {
                continue;
            }
        }
        if attempt.data.is_none() || attempt.index.is_none() {
            let (have, lack) = if attempt.data.is_some() {
                ("data", "index")
            } else {
                ("index", "data")
            };
            out.incomplete.push(format!(
                "{} has a {have} object but no {lack} object",
                attempt.data_key()
            ));
            continue;
        }
        let report = scrub_ledger(store, location, attempt.uuid, attempt.ledger_id).await?;
        progress(&report);
        out.ledgers.push(report);
    }
    Ok(out)
}

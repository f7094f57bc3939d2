//! Writing one ledger to the object store in Pulsar's format.
//!
//! One multipart upload per ledger, one part per block, up to `parallel_parts` parts in flight
//! (each a spawned task, so uploads proceed while the next block is built). Memory is bounded by
//! (`parallel_parts` + 1) × block size.
//!
//! Crash and failure windows:
//! 1. before `complete`: the multipart upload is aborted on any error; after a crash it is left
//!    incomplete (no object exists) and the store's lifecycle rules or the next attempt's cleanup
//!    remove it;
//! 2. after the data object, before the index: the data object is deleted on error; after a crash
//!    a data object without index remains, which no reader takes as complete (readers start from
//!    the index) and the managed ledger deletes with the failed attempt's UUID;
//! 3. only after the index is written does the caller mark the ledger offloaded.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{MultipartUpload, ObjectStore, PutMultipartOptions, PutOptions, PutPayload};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::budget::{LedgerTurn, OffloadBudget};
use crate::config::OffloadConfig;
use crate::error::{OffloadError, Result};
use crate::format::block::{BLOCK_HEADER_LEN, BlockBuilder, RECORD_HEADER_LEN, block_size};
use crate::format::index::{IndexEntry, encode_index_v1};
use crate::format::ledger_metadata::{
    CustomMetadataEntry, DigestType, LedgerMetadataFormat, LedgerState, Segment,
};
use crate::keys::{self, MANAGED_LEDGER_NAME};
use crate::location::Location;
use crate::source::LedgerSource;
use crate::throttle::{OffloadRates, Rates};
use crate::topic_order::PartSending;

/// What an offload wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffloadResult {
    pub uuid: Uuid,
    pub data_key: String,
    pub index_key: String,
    pub blocks: usize,
    pub data_object_len: u64,
    pub entries: u64,
}

/// Reads a ledger's entries in order, a bounded batch at a time.
struct EntryReader<'a> {
    source: &'a dyn LedgerSource,
    next: i64,
    last: i64,
    buffered: VecDeque<Bytes>,
    /// Under an upload rate, the reads are paced too (see [`read_batch_bytes`]).
    pace: Rates,
    /// Tells how many parts are uploading (see [`read_pace_factor`]).
    budget: &'a OffloadBudget,
}

/// What an unthrottled offload reads at once.
const READ_BATCH_BYTES: usize = 8 << 20;
/// The smallest read of a throttled offload.
const MIN_PACED_READ_BYTES: usize = 256 << 10;

/// How much an offload reads of its ledger at once. Uploading at a rate is not enough: a
/// ledger read as fast as the disk allows (a block, and the blocks of the parts that may be in
/// flight, hundreds of MB at once) takes the disk from producers in bursts — on one disk their
/// publish p99 rose to 10 ms and more, 119 ms once (`./scripts/bench broker`, throttled
/// phase). So under a rate the reads are paced too (`OffloadRates::source`, buckets of the same
/// limits that keep no burst), at `factor` times the rate, in pieces of a twentieth of a second
/// of that.
fn read_batch_bytes(source_rates: &Rates, factor: u64) -> usize {
    match source_rates.slowest_bytes_per_second() {
        None => READ_BATCH_BYTES,
        Some(bytes_per_second) => ((bytes_per_second * factor / 20) as usize)
            .clamp(MIN_PACED_READ_BYTES, READ_BATCH_BYTES),
    }
}

/// How much faster than the upload rate a throttled offload reads while the uploads wait for
/// blocks (see [`read_pace_factor`]): a part is sent only once its block is read whole, so at
/// an offload's start the uploads wait for the first blocks. Reading at the rate itself, that
/// wait cost 40 MB/s of a 50 MB/s limit over 0.6 GB; catching up at 3× 44.8-45.5 MB/s, at 4×
/// 45.3-46.3 (`./scripts/bench broker`, throttled phase, whose target is 45-50).
const CATCH_UP_READ_FACTOR: u64 = 4;

/// How many times the upload rate a throttled offload reads at now: the rate itself while at
/// least two parts upload broker-wide (one being sent, the next ready: reading faster would
/// only fill the parts budget in a burst the disk's other users feel), else
/// [`CATCH_UP_READ_FACTOR`] times it — the uploads are waiting for a block, as at an offload's
/// start.
fn read_pace_factor(budget: &OffloadBudget) -> u64 {
    if budget.parts_uploading() < 2 {
        CATCH_UP_READ_FACTOR
    } else {
        1
    }
}

impl EntryReader<'_> {
    async fn peek(&mut self) -> Result<Option<&Bytes>> {
        if self.buffered.is_empty() && self.next <= self.last {
            let factor = read_pace_factor(self.budget);
            let batch = self
                .source
                .read(self.next, self.last, read_batch_bytes(&self.pace, factor))
                .await
                .map_err(|reason| OffloadError::Source {
                    ledger_id: self.source.ledger_id(),
                    reason,
                })?;
            if batch.is_empty() {
                return Err(OffloadError::Source {
                    ledger_id: self.source.ledger_id(),
                    reason: format!("no entries returned from entry {}", self.next),
                });
            }
            self.next += batch.len() as i64;
            if !self.pace.is_empty() {
                let bytes: u64 = batch.iter().map(|e| e.len() as u64).sum();
                self.pace.take(bytes.div_ceil(factor)).await;
            }
            self.buffered.extend(batch);
        }
        Ok(self.buffered.front())
    }

    fn pop(&mut self) {
        self.buffered.pop_front();
    }
}

fn ledger_metadata(
    source: &dyn LedgerSource,
    extra: &BTreeMap<String, String>,
) -> LedgerMetadataFormat {
    let mut custom = vec![
        CustomMetadataEntry {
            key: Some("application".into()),
            value: Some(b"pulsar".to_vec()),
        },
        CustomMetadataEntry {
            key: Some("component".into()),
            value: Some(b"managed-ledger".to_vec()),
        },
    ];
    if let Some(name) = extra.get(MANAGED_LEDGER_NAME) {
        custom.push(CustomMetadataEntry {
            key: Some("pulsar/managed-ledger".into()),
            value: Some(name.as_bytes().to_vec()),
        });
    }
    LedgerMetadataFormat {
        quorum_size: 1,
        ensemble_size: 1,
        length: source.length() as i64,
        last_entry_id: Some(source.last_entry_id()),
        state: LedgerState::Closed as i32,
        segment: vec![Segment {
            ensemble_member: vec!["tierlog-hot-tier:0".into()],
            first_entry_id: 0,
        }],
        digest_type: Some(DigestType::Crc32c as i32),
        password: None,
        ack_quorum_size: Some(1),
        ctime: Some(source.created_ms() as i64),
        custom_metadata: custom,
        c_token: None,
    }
}

/// Offloads `source` under `uuid`: data object (multipart) first, index last; the ledger is
/// read and its parts sent at `rates`.
pub async fn offload_ledger(
    config: &OffloadConfig,
    store: &Arc<dyn ObjectStore>,
    source: &dyn LedgerSource,
    uuid: Uuid,
    extra: &BTreeMap<String, String>,
    rates: OffloadRates,
    turn: LedgerTurn,
) -> Result<OffloadResult> {
    // A handle of its own: the turn ends once the ledger is read, before its last parts go.
    let budget = &turn.budget().clone();
    let ledger_id = source.ledger_id();
    let last = source.last_entry_id();
    if last < 0 {
        return Err(OffloadError::InvalidLedger {
            ledger_id,
            reason: "an empty or open ledger is never offloaded".into(),
        });
    }
    let location = &config.location;
    let data_key = keys::data_key(&uuid, ledger_id);
    let index_key = keys::index_key(&uuid, ledger_id);
    let with_metadata = location.has_object_metadata();
    let attrs = |role| {
        if with_metadata {
            keys::object_attributes(role, &config.cluster_name, extra)
        } else {
            Default::default()
        }
    };

    let data_path = Path::from(data_key.as_str());
    let mut upload = store
        .put_multipart_opts(
            &data_path,
            PutMultipartOptions {
                attributes: attrs("data"),
                // The client paces the parts by these (`paced_upload`, `s3_multipart`).
                extensions: {
                    let mut e = object_store::Extensions::new();
                    if let Some(order) = &rates.order {
                        e.insert(PartSending {
                            order: Arc::clone(&order.sends),
                            ledger_id,
                        });
                    }
                    e.insert(rates.parts);
                    e
                },
                ..Default::default()
            },
        )
        .await
        .map_err(|e| {
            OffloadError::on_write("initiating multipart upload", location, &data_key, e)
        })?;
    let reader = EntryReader {
        source,
        next: 0,
        last,
        buffered: VecDeque::new(),
        pace: rates.source,
        budget,
    };
    let uploaded = upload_blocks(
        config,
        reader,
        upload.as_mut(),
        location,
        &data_key,
        budget,
        turn,
    )
    .await;
    let (index_entries, data_len) = match uploaded {
        Ok(v) => v,
        Err(e) => {
            abort(upload.as_mut(), location, &data_key).await;
            return Err(e);
        }
    };
    if let Err(e) = upload.complete().await {
        abort(upload.as_mut(), location, &data_key).await;
        return Err(OffloadError::on_write(
            "completing multipart upload",
            location,
            &data_key,
            e,
        ));
    }

    let index = encode_index_v1(data_len, &index_entries, &ledger_metadata(source, extra));
    let index_path = Path::from(index_key.as_str());
    let put = store
        .put_opts(
            &index_path,
            PutPayload::from(index),
            PutOptions {
                attributes: attrs("index"),
                ..Default::default()
            },
        )
        .await;
    if let Err(e) = put {
        // Without its index the data object is useless; remove it.
        if let Err(del) = object_store::ObjectStoreExt::delete(store.as_ref(), &data_path).await {
            tracing::warn!(key = %data_key, error = %del, "could not delete data object after the index upload failed");
        }
        return Err(OffloadError::on_write(
            "writing index",
            location,
            &index_key,
            e,
        ));
    }
    Ok(OffloadResult {
        uuid,
        data_key,
        index_key,
        blocks: index_entries.len(),
        data_object_len: data_len,
        entries: (last + 1) as u64,
    })
}

async fn abort(upload: &mut dyn MultipartUpload, location: &Location, key: &str) {
    if let Err(e) = upload.abort().await {
        tracing::warn!(%location, key, error = %e, "could not abort multipart upload; the store's lifecycle rules must reclaim it");
    }
}

async fn upload_blocks(
    config: &OffloadConfig,
    mut reader: EntryReader<'_>,
    upload: &mut dyn MultipartUpload,
    location: &Location,
    key: &str,
    budget: &OffloadBudget,
    turn: LedgerTurn,
) -> Result<(Vec<IndexEntry>, u64)> {
    let source = reader.source;
    let ledger_id = source.ledger_id();
    let last = source.last_entry_id();
    let mut next_entry = 0i64;
    let mut payload_written = 0u64;
    let mut offset = 0u64;
    let mut index = Vec::new();
    let mut in_flight: VecDeque<JoinHandle<object_store::Result<()>>> = VecDeque::new();
    let result = async {
        while next_entry <= last {
            let remaining_entries = (last - next_entry + 1) as u64;
            let size = block_size(
                config.max_block_size_bytes,
                remaining_entries,
                source.length().saturating_sub(payload_written),
            );
            // Room for this block in the broker's budget, held until its part is uploaded.
            let room = budget.part().await;
            let mut block = BlockBuilder::new(size, next_entry as u64).map_err(|e| OffloadError::InvalidLedger {
                ledger_id,
                reason: e.to_string(),
            })?;
            while next_entry <= last {
                let Some(entry) = reader.peek().await? else { break };
                let len = entry.len() as u64;
                if !block.try_add(entry) {
                    if block.entries() == 0 {
                        return Err(OffloadError::InvalidLedger {
                            ledger_id,
                            reason: format!(
                                "entry {next_entry} of {len} bytes does not fit in a block of {size} bytes \
                                 (max block size {} needs to be at least {})",
                                config.max_block_size_bytes,
                                BLOCK_HEADER_LEN + RECORD_HEADER_LEN + len
                            ),
                        });
                    }
                    break;
                }
                reader.pop();
                payload_written += len;
                next_entry += 1;
            }
            let first = next_entry - block.entries() as i64;
            index.push(IndexEntry { first_entry_id: first, part_id: index.len() as i32 + 1, block_offset: offset as i64 });
            offset += size;
            if in_flight.len() >= config.parallel_parts {
                wait_part(in_flight.pop_front(), location, key).await?;
            }
            // The block's one copy (tens of MB, and the page faults of memory just allocated)
            // runs on a low-priority blocking thread: on an async worker it held up the
            // producers that worker served.
            let block = budget
                .spawn_build(move || block.finish())
                .await
                .map_err(|e| OffloadError::Task(format!("building block: {e}")))?;
            // The part is numbered now (by call order) and sent when its task polls it; the
            // client waits for the upload rate there, if one is set, while this loop builds
            // the next block.
            let part = upload.put_part(PutPayload::from(block));
            in_flight.push_back(budget.spawn_upload(async move {
                let uploaded = part.await;
                drop(room);
                uploaded
            }));
        }
        // Every block is read. Under a rate, the next ledger may start reading while these
        // parts go out: the rate bounds the uploads whatever their number, and with the turn
        // held, a throttled offload's reads stopped at every ledger's end until its last parts
        // were sent, its uploads then waiting for the next ledger's first block (41-42 MB/s
        // under a 50 MB/s limit, reads paced at the limit). Without a rate the turn also
        // bounds how many ledgers upload at once (`managedLedgerOffloadMaxThreads`): given up
        // here, ten one-block ledgers uploaded together and ran at 0.57 of four raw uploads in
        // flight against s3s-fs (`./scripts/bench offload`).
        let turn = if reader.pace.is_empty() {
            Some(turn)
        } else {
            drop(turn);
            None
        };
        while let Some(h) = in_flight.pop_front() {
            wait_part(Some(h), location, key).await?;
        }
        drop(turn);
        Ok(())
    }
    .await;
    if result.is_err() {
        for h in &in_flight {
            h.abort();
        }
    }
    result.map(|()| (index, offset))
}

async fn wait_part(
    handle: Option<JoinHandle<object_store::Result<()>>>,
    location: &Location,
    key: &str,
) -> Result<()> {
    let Some(h) = handle else { return Ok(()) };
    match h.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(OffloadError::on_write("uploading part", location, key, e)),
        Err(e) => Err(OffloadError::Task(format!("part upload task: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_catch_up_only_while_fewer_than_two_parts_upload() {
        let budget = OffloadBudget::new(1, 4);
        assert_eq!(read_pace_factor(&budget), CATCH_UP_READ_FACTOR);
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let first = budget.spawn_upload(async move {
            let _ = wait.await;
        });
        assert_eq!(read_pace_factor(&budget), CATCH_UP_READ_FACTOR);
        let second = budget.spawn_upload(std::future::pending::<()>());
        assert_eq!(budget.parts_uploading(), 2);
        assert_eq!(
            read_pace_factor(&budget),
            1,
            "two parts upload: at the rate"
        );
        // An aborted upload stops counting, as does one that ends.
        second.abort();
        assert!(second.await.unwrap_err().is_cancelled());
        assert_eq!(budget.parts_uploading(), 1);
        go.send(()).unwrap();
        first.await.unwrap();
        assert_eq!(budget.parts_uploading(), 0);
        assert_eq!(read_pace_factor(&budget), CATCH_UP_READ_FACTOR);
    }
}

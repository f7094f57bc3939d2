//! Topic compaction that reads through the tiers: the latest message per key, written to a
//! compacted ledger of its own, which `read_compacted` consumers and readers read before
//! continuing on the live log.
//!
//! A compaction reads the previous compacted view (if any) and then the topic's entries after
//! its horizon up to the last entry now (the new horizon) — `ManagedLedger::read`, so from
//! whichever tier holds each ledger: offloaded ledgers whose hot copies are gone are read from
//! object storage. Per key (the message's partition key) the newest message is kept; an empty
//! payload deletes its key; messages without a key are dropped (Pulsar's default,
//! `topicCompactionRetainNullKey=false`). A batch keeps only its newest messages (a copy of
//! the entry with the others left out); a batch whose payload cannot be read as stored
//! (compressed, encrypted) is kept whole — the view never loses a newest value, but such a
//! batch carries its older values along.
//!
//! The result goes to a new generation of the compacted ledger (a managed ledger named after
//! the topic, outside every topic domain, opened with the topic's policies, so it is offloaded
//! as the topic is, and pinned by a cursor that never moves, so retention keeps it), each entry
//! prefixed with the original position; its ledger is then sealed. Then the state (horizon,
//! generation) is saved, then the previous generation deleted. Crash windows: before the state
//! is saved, the new generation is an orphan that the next compaction deletes before writing
//! it again; after, the old generation is an orphan deleted by the next compaction too.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use ledger::{ManagedLedger, Position};
use serde::{Deserialize, Serialize};

use crate::error::BrokerError;
use crate::service::TopicStore;
use crate::topic::Topic;

/// The cursor holding the entries after the last compaction's horizon from retention (as
/// Pulsar's): created when a topic is first compacted, moved to each new horizon.
pub(crate) const COMPACTION_CURSOR: &str = "__compaction";

/// The compacted ledger's own cursor, at its start for good.
const VIEW_CURSOR: &str = "view";

/// Entries read at once while compacting.
const READ_BATCH: usize = 500;
const READ_BYTES: usize = 8 << 20;

/// Where a topic's compacted view stands (persisted per topic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactionState {
    /// The last entry of the topic the view covers.
    pub horizon: Position,
    /// The compacted ledger generation holding the view.
    pub generation: u64,
}

/// Pulsar's `LongRunningProcessStatus` of a topic's compaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompactionStatus {
    /// NOT_RUN, RUNNING, SUCCESS or ERROR.
    pub status: &'static str,
    #[serde(rename = "lastError")]
    pub last_error: String,
}

impl CompactionStatus {
    pub(crate) fn not_run() -> Self {
        CompactionStatus {
            status: "NOT_RUN",
            last_error: String::new(),
        }
    }
}

/// A compacted view being read: its horizon, its ledger, and each kept entry's original
/// position with the position holding it in the compacted ledger.
pub(crate) struct CompactedView {
    pub horizon: Position,
    ledger: ManagedLedger,
    index: Vec<(Position, Position)>,
}

impl CompactedView {
    /// Opens the view a state names, indexing it (one pass over the compacted ledger).
    pub(crate) async fn open(
        store: &dyn TopicStore,
        topic: &Topic,
        state: CompactionState,
    ) -> Result<CompactedView, BrokerError> {
        let ledger = store.open_compacted(&topic.name, state.generation).await?;
        let mut index = Vec::new();
        for_each_entry(&ledger, |at, original, _| index.push((original, at))).await?;
        Ok(CompactedView {
            horizon: state.horizon,
            ledger,
            index,
        })
    }

    /// Up to `n` kept entries from original position `from` on (up to the horizon), with their
    /// original positions and data.
    pub(crate) async fn read(
        &self,
        from: Position,
        n: usize,
    ) -> Result<Vec<ledger::Entry>, BrokerError> {
        let start = self.index.partition_point(|(orig, _)| *orig < from);
        let Some(&(_, at)) = self.index.get(start) else {
            return Ok(Vec::new());
        };
        // Kept entries are consecutive in the compacted ledger: one read.
        Ok(self
            .ledger
            .read(at, n, READ_BYTES)
            .await?
            .iter()
            .filter_map(|e| unwrap_entry(&e.data))
            .map(|(position, data)| ledger::Entry { position, data })
            .collect())
    }
}

impl CompactedView {
    /// The view's last entry (original position and data), if it keeps any.
    pub(crate) async fn last(&self) -> Result<Option<ledger::Entry>, BrokerError> {
        let Some(&(original, _)) = self.index.last() else {
            return Ok(None);
        };
        Ok(self.read(original, 1).await?.pop())
    }
}

/// A compacted ledger entry: the original position (ledger id, entry id, big-endian) and the
/// entry as the producer sent it.
fn wrap_entry(original: Position, data: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(16 + data.len());
    b.put_i64(original.ledger_id);
    b.put_i64(original.entry_id);
    b.put_slice(data);
    b.freeze()
}

fn unwrap_entry(data: &Bytes) -> Option<(Position, Bytes)> {
    if data.len() < 16 {
        return None;
    }
    let ledger = i64::from_be_bytes(data[..8].try_into().ok()?);
    let entry = i64::from_be_bytes(data[8..16].try_into().ok()?);
    Some((Position::new(ledger, entry), data.slice(16..)))
}

/// Calls `f(position, original position, data)` for every entry of a compacted ledger.
async fn for_each_entry(
    ledger: &ManagedLedger,
    mut f: impl FnMut(Position, Position, Bytes),
) -> Result<(), BrokerError> {
    let mut from = ledger.first_position();
    let end = ledger.last_confirmed();
    while from <= end && end.entry_id >= 0 {
        let batch = ledger.read(from, READ_BATCH, READ_BYTES).await?;
        let Some(last) = batch.last().map(|e| e.position) else {
            break;
        };
        for e in batch {
            if let Some((original, data)) = unwrap_entry(&e.data) {
                f(e.position, original, data);
            }
        }
        from = ledger.position_after(last);
    }
    Ok(())
}

/// Where the newest message of a key is: an entry, and its index if the entry is a batch.
#[derive(Clone)]
struct Newest {
    position: Position,
    index: Option<usize>,
    entry: Bytes,
}

/// The newest message per key, and the batches kept whole (unreadable: compressed or
/// encrypted).
#[derive(Default)]
struct Reduction {
    latest: BTreeMap<Vec<u8>, Newest>,
    whole: BTreeMap<Position, Bytes>,
}

impl Reduction {
    fn add(&mut self, position: Position, entry: Bytes) {
        let Ok((meta, payload_at)) = protocol::parse_entry(&entry) else {
            return;
        };
        if meta.num_messages_in_batch.is_none() {
            match meta.partition_key.as_deref() {
                None | Some("") => {}
                Some(k) => self.set(k.as_bytes(), entry.len() <= payload_at, || Newest {
                    position,
                    index: None,
                    entry: entry.clone(),
                }),
            }
            return;
        }
        let Some(messages) = protocol::entry::batched_messages(&entry) else {
            self.whole.insert(position, entry);
            return;
        };
        for (i, m) in messages.iter().enumerate() {
            if let Some(k) = &m.key {
                self.set(k.as_bytes(), m.empty, || Newest {
                    position,
                    index: Some(i),
                    entry: entry.clone(),
                });
            }
        }
    }

    /// A key's newest message, or its deletion (an empty payload).
    fn set(&mut self, key: &[u8], deleted: bool, newest: impl FnOnce() -> Newest) {
        if deleted {
            self.latest.remove(key);
        } else {
            self.latest.insert(key.to_vec(), newest());
        }
    }

    /// The entries of the view in log order: single messages as they were, batches with only
    /// their newest messages.
    fn entries(self) -> Vec<(Position, Bytes)> {
        let mut by_entry: BTreeMap<Position, (Bytes, Option<Vec<usize>>)> = BTreeMap::new();
        for n in self.latest.into_values() {
            let slot = by_entry
                .entry(n.position)
                .or_insert_with(|| (n.entry.clone(), n.index.map(|_| Vec::new())));
            if let (Some(i), Some(kept)) = (n.index, slot.1.as_mut()) {
                kept.push(i);
            }
        }
        let mut out: Vec<(Position, Bytes)> = by_entry
            .into_iter()
            .filter_map(|(position, (entry, kept))| match kept {
                None => Some((position, entry)),
                Some(mut kept) => {
                    kept.sort_unstable();
                    let messages = protocol::entry::batched_messages(&entry)?;
                    if kept.len() == messages.len() {
                        return Some((position, entry));
                    }
                    let keep: Vec<&protocol::entry::BatchedMessage> =
                        kept.iter().filter_map(|i| messages.get(*i)).collect();
                    protocol::entry::rebatch(&entry, &keep).map(|e| (position, e))
                }
            })
            .collect();
        out.extend(self.whole);
        out.sort_by_key(|(p, _)| *p);
        out
    }
}

impl Topic {
    /// Bytes written since the last compaction's horizon (all of them before the first).
    pub(crate) async fn uncompacted_bytes(&self) -> i64 {
        let from = match self.ml.cursor(COMPACTION_CURSOR).await {
            Some(c) => c.mark_delete,
            None => Position::new(self.ml.first_position().ledger_id, -1),
        };
        self.ml.bytes_after(from)
    }
}

/// Compacts `topic` up to its last entry now; returns the new state (the old one if nothing
/// was added since).
pub(crate) async fn compact(
    topic: &Arc<Topic>,
    store: &dyn TopicStore,
) -> Result<CompactionState, BrokerError> {
    let previous = store.compaction_state(&topic.name).await?;
    // Held from retention from now on (an existing cursor keeps its position).
    topic
        .ml
        .open_cursor(COMPACTION_CURSOR, ledger::InitialPosition::Earliest)
        .await?;
    let horizon = topic.ml.last_confirmed();
    if let Some(p) = previous
        && p.horizon >= horizon
    {
        return Ok(p);
    }
    let mut reduction = Reduction::default();
    let mut from = topic.ml.first_position();
    if let Some(p) = previous {
        let old = store.open_compacted(&topic.name, p.generation).await?;
        for_each_entry(&old, |_, original, data| reduction.add(original, data)).await?;
        from = topic.ml.position_after(p.horizon).max(from);
    }
    while from <= horizon {
        let entries = topic.ml.read(from, READ_BATCH, READ_BYTES).await?;
        let Some(last) = entries.last().map(|e| e.position) else {
            break;
        };
        for e in entries {
            if e.position <= horizon {
                reduction.add(e.position, e.data);
            }
        }
        from = topic.ml.position_after(last);
    }
    let kept = reduction.entries();

    let generation = previous.map_or(1, |p| p.generation + 1);
    // A generation left by a compaction that crashed before saving its state.
    store.delete_compacted(&topic.name, generation).await?;
    let out = store.open_compacted(&topic.name, generation).await?;
    // Its one cursor never moves: retention keeps the whole view.
    out.open_cursor(VIEW_CURSOR, ledger::InitialPosition::Earliest)
        .await?;
    let mut receipts = Vec::with_capacity(kept.len());
    for (original, data) in &kept {
        receipts.push(out.append(wrap_entry(*original, data)).await?);
    }
    for r in receipts {
        r.await?;
    }
    // Sealed, so the topic's offload thresholds may take it (in the background, as any
    // ledger) and its deletion lag then drops the hot copy.
    out.seal_current().await?;
    let state = CompactionState {
        horizon,
        generation,
    };
    store.save_compaction_state(&topic.name, &state).await?;
    // Only now may retention take what the view covers (a crash before this keeps more).
    topic.ml.ack_cumulative(COMPACTION_CURSOR, horizon).await?;
    if let Some(p) = previous {
        store.delete_compacted(&topic.name, p.generation).await?;
    }
    tracing::info!(topic = %topic.name, kept = kept.len(), horizon = %horizon, generation, "topic compacted");
    Ok(state)
}

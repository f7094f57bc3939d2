//! The managed ledger: one topic's log as an ordered list of ledgers.
//!
//! Only the last ledger is written. It rolls over (sealed, a new one created) on Pulsar's rules:
//! when it holds `max_entries_per_ledger` entries or `max_size_per_ledger_bytes` bytes and is older
//! than `min_rollover_ms`, or when it has entries and is older than `max_rollover_ms`. The ledger
//! list is persisted in the metadata store *before* a new ledger's file is created, so after a crash
//! a listed ledger without a file is simply empty, and a file without a listing is garbage.
//!
//! Locks: `offload_lock` (one offload or deletion at a time) before `write` (appends, rollover,
//! trim, ledger list) before a cursor's state, never the other way round. No lock shared with
//! another managed ledger is held across I/O: cursors persist one at a time each (see
//! `cursors`), read handles of offloaded ledgers open one per ledger.

mod counters;
mod cursors;
mod deletion;
mod fencing;
mod hot_copy;
mod out_of_space;
mod positions;
mod tier_read;
mod tiering;
mod trim;

use counters::IoCounters;
pub use counters::{IoStats, LATENCY_BOUNDS_US, LatencySnapshot};
pub use fencing::Fence;
use fencing::check_hot_copies_are_here;
use hot_copy::{HotAppend, HotReader, HotWriter};

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use hot_tier::LedgerStore;
use meta::{Expected, MetadataStore};
use offload::{LedgerOffloader, OffloadedLedger, TierReader};
use once_map::OnceMap;

use crate::clock::Clock;
use crate::config::{HotTier, ManagedLedgerConfig};
use crate::cursor::CursorState;
use crate::error::{LedgerError, Result};
use crate::ids::LedgerIdAllocator;
use crate::info::{self, CursorInfo, LedgerInfo, ManagedLedgerInfo};
use crate::position::Position;

pub use tiering::{OffloadProgress, OffloadStatus};

/// One entry read from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub position: Position,
    pub data: Bytes,
}

/// Live counters of a managed ledger, for stats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerStats {
    pub entries_added: u64,
    pub number_of_entries: i64,
    pub total_size: i64,
    pub current_ledger_entries: u64,
    pub current_ledger_size: u64,
    pub last_ledger_created_ms: u64,
    pub last_confirmed: Position,
    pub ledgers: Vec<LedgerInfo>,
    /// Reads of offloaded ledgers the tier failed since the broker started.
    pub tier_read_errors: u64,
    /// Offloaded ledgers whose tier reads fail now (cleared by the next successful read).
    pub tier_read_failures: BTreeMap<i64, TierReadFailure>,
    /// Appends, reads, offloads and deletions since the managed ledger was opened.
    pub io: IoStats,
}

/// An offloaded ledger the tier does not serve right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierReadFailure {
    /// The latest error.
    pub error: String,
    /// When reads started failing, and the latest failure (ms since the epoch).
    pub since_ms: u64,
    pub last_ms: u64,
    /// Failed reads since `since_ms`.
    pub count: u64,
    /// Whether reads are served from the ledger's hot copy meanwhile.
    pub served_hot: bool,
}

/// The ledger list as readers see it: ordered, the ledger being written last.
#[derive(Debug, Clone, Default)]
struct View {
    ledgers: Vec<LedgerInfo>,
    current_id: i64,
}

struct WriteState {
    writer: Option<HotWriter>,
    info: ManagedLedgerInfo,
    info_version: u64,
    current_created_ms: u64,
    current_entries: u64,
    current_size: u64,
    closed: bool,
}

struct Shared {
    name: String,
    store: LedgerStore,
    /// The broker's object-storage WAL: the hot tier of object-tier ledgers.
    wal: Option<wal::Wal>,
    meta: Arc<dyn MetadataStore>,
    clock: Arc<dyn Clock>,
    ids: Arc<LedgerIdAllocator>,
    /// In a cluster, this broker's id, recorded with every ledger created here.
    hot_tier_owner: Option<String>,
    /// How the ledger list and the cursors are stored.
    ledger_info_compression: crate::Compression,
    cursor_info_compression: crate::Compression,
    /// The check every metadata write carries (in a cluster), and whether it failed.
    fence: RwLock<Option<Fence>>,
    fenced: std::sync::atomic::AtomicBool,
    config: RwLock<ManagedLedgerConfig>,
    write: tokio::sync::Mutex<WriteState>,
    /// Replaced whole on every change, so readers take a cheap snapshot.
    view: RwLock<Arc<View>>,
    /// Durable cursors by name (the map lock is never held across I/O).
    cursors: std::sync::Mutex<BTreeMap<String, Arc<cursors::CursorSlot>>>,
    entries_added: AtomicU64,
    /// Where new offloads go (namespace/topic offload policies may replace it while open); it
    /// also reads and deletes offloaded ledgers, at their recorded locations.
    offloader: RwLock<Option<Arc<dyn LedgerOffloader>>>,
    /// Reads and deletes offloaded ledgers when no offloader is set (offload turned off later).
    reader: Arc<dyn TierReader>,
    /// Held while an offload or the deletion runs: one per managed ledger at a time.
    offload_lock: Arc<tokio::sync::Mutex<()>>,
    /// The ledgers being uploaded right now; retention does not remove them (nor anything after
    /// the first) underneath their uploads.
    offloading: std::sync::Mutex<std::collections::BTreeSet<i64>>,
    /// The last offload started through [`ManagedLedger::offload_in_background`].
    last_offload: std::sync::Mutex<OffloadStatus>,
    /// Open read handles of offloaded ledgers.
    tiered: OnceMap<i64, Arc<OffloadedLedger>>,
    /// Offloaded ledgers whose tier reads fail now, and how many tier reads ever failed.
    tier_failures: std::sync::Mutex<BTreeMap<i64, TierReadFailure>>,
    tier_read_errors: AtomicU64,
    /// Appends, reads, offloads and deletions counted for metrics.
    io: IoCounters,
    /// Terminated: appends are refused for good (mirrors the ledger list's flag).
    terminated: std::sync::atomic::AtomicBool,
    /// Set while the file system is full or read-only: until when (ms) appends are refused
    /// outright; after it one probe checks for room. No ledger is created while it is set.
    out_of_space_until: std::sync::Mutex<Option<u64>>,
}

/// A topic's log. Cheap to clone; every clone is the same ledger.
#[derive(Clone)]
pub struct ManagedLedger {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ManagedLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedLedger")
            .field("name", &self.shared.name)
            .finish_non_exhaustive()
    }
}

/// An accepted append; resolves to the entry's position once it is durable.
#[must_use = "an append is acknowledged only when its receipt resolves"]
pub struct AppendReceipt {
    ledger_id: i64,
    pending: HotAppend,
    /// A write that fails for lack of space puts the ledger in its out-of-space state at once,
    /// so the client's retry is refused before it reaches the disk.
    ml: ManagedLedger,
}

impl AppendReceipt {
    /// The position the entry will have.
    pub fn position(&self) -> Position {
        Position::new(self.ledger_id, self.pending.entry_id() as i64)
    }
}

impl std::future::Future for AppendReceipt {
    type Output = Result<Position>;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let ledger_id = self.ledger_id;
        std::pin::Pin::new(&mut self.pending)
            .poll(cx)
            .map(|r| match r {
                Ok(e) => {
                    // Counted once durable, as Pulsar counts added entries.
                    self.ml.shared.entries_added.fetch_add(1, Ordering::Relaxed);
                    Ok(Position::new(ledger_id, e as i64))
                }
                Err(LedgerError::HotTier(e)) if e.is_out_of_space() => {
                    Err(self.ml.out_of_space(&e))
                }
                Err(LedgerError::Wal(wal::WalError::Fenced { .. })) => Err(self.ml.fenced_now()),
                Err(e) => Err(e),
            })
    }
}

impl ManagedLedger {
    /// Opens `name`. A managed ledger whose deletion was interrupted opens closed, for
    /// [`delete`](Self::delete) to finish; [`is_deleting`](Self::is_deleting) tells.
    pub(crate) async fn open(
        name: &str,
        config: ManagedLedgerConfig,
        deps: &crate::factory::Deps,
        offloader: Option<Arc<dyn LedgerOffloader>>,
    ) -> Result<Self> {
        let meta = Arc::clone(&deps.meta);
        let key = info::ml_key(name);
        let (ml_info, info_version) = match meta.get(&key).await? {
            Some(v) => (
                info::decode::<ManagedLedgerInfo>(&key, &v.value)?,
                v.version,
            ),
            None => {
                let fresh = ManagedLedgerInfo::default();
                let version = meta
                    .put(
                        &key,
                        info::encode_with(&fresh, deps.ledger_info_compression),
                        Expected::Absent,
                    )
                    .await?;
                (fresh, version)
            }
        };
        if let Some(me) = &deps.hot_tier_owner {
            check_hot_copies_are_here(name, &ml_info, me)?;
        }
        let mut cursors = BTreeMap::new();
        for (ck, v) in meta.scan(&info::cursor_prefix(name)).await? {
            let cname = info::cursor_of_key(name, &ck).ok_or_else(|| LedgerError::BadMetadata {
                key: ck.clone(),
                detail: "not a cursor key of this managed ledger".into(),
            })?;
            let ci: CursorInfo = info::decode(&ck, &v.value)?;
            let state = CursorState::from_info(&ck, &ci)?;
            cursors.insert(cname, Arc::new(cursors::CursorSlot::persisted(state)));
        }
        let deleting = ml_info.deleting;
        let terminated = ml_info.terminated;
        let ml = ManagedLedger {
            shared: Arc::new(Shared {
                name: name.to_string(),
                store: deps.store.clone(),
                wal: deps.wal.clone(),
                meta,
                clock: Arc::clone(&deps.clock),
                ids: Arc::clone(&deps.ids),
                hot_tier_owner: deps.hot_tier_owner.clone(),
                ledger_info_compression: deps.ledger_info_compression,
                cursor_info_compression: deps.cursor_info_compression,
                fence: RwLock::new(None),
                fenced: std::sync::atomic::AtomicBool::new(false),
                config: RwLock::new(config),
                write: tokio::sync::Mutex::new(WriteState {
                    writer: None,
                    info: ml_info,
                    info_version,
                    current_created_ms: 0,
                    current_entries: 0,
                    current_size: 0,
                    closed: deleting,
                }),
                view: RwLock::new(Arc::new(View::default())),
                cursors: std::sync::Mutex::new(cursors),
                entries_added: AtomicU64::new(0),
                offloader: RwLock::new(offloader),
                reader: Arc::clone(&deps.reader),
                offload_lock: Arc::new(tokio::sync::Mutex::new(())),
                offloading: std::sync::Mutex::new(std::collections::BTreeSet::new()),
                last_offload: std::sync::Mutex::new(OffloadStatus::NotRun),
                tiered: OnceMap::new(),
                tier_failures: std::sync::Mutex::new(BTreeMap::new()),
                tier_read_errors: AtomicU64::new(0),
                io: IoCounters::default(),
                terminated: std::sync::atomic::AtomicBool::new(terminated),
                out_of_space_until: std::sync::Mutex::new(None),
            }),
        };
        let mut st = ml.shared.write.lock().await;
        if deleting {
            ml.publish_view(&st);
            drop(st);
            return Ok(ml);
        }
        // Whatever ledger was being written when the process stopped has been recovered and
        // sealed by the store; close it in the list and continue in a fresh ledger.
        ml.rollover(&mut st).await?;
        drop(st);
        ml.clean_incomplete_offloads().await?;
        ml.rewrite_in_background();
        Ok(ml)
    }

    /// Whether the managed ledger is being deleted (it takes no appends and opens no cursors).
    pub async fn is_deleting(&self) -> bool {
        self.shared.write.lock().await.info.deleting
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    pub fn config(&self) -> ManagedLedgerConfig {
        self.shared
            .config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Changes rollover or retention settings (e.g. after a namespace policy update).
    pub fn set_config(&self, config: ManagedLedgerConfig) {
        *self
            .shared
            .config
            .write()
            .unwrap_or_else(|p| p.into_inner()) = config;
    }

    fn view(&self) -> Arc<View> {
        Arc::clone(&self.shared.view.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Durable entries of `l`: the list's count for a sealed ledger, the writer's for the
    /// current one (0 if it has no file yet).
    fn durable_entries(&self, view: &View, l: &LedgerInfo) -> i64 {
        if l.ledger_id == view.current_id {
            self.durable_stat(l).map(|(e, _)| e as i64).unwrap_or(0)
        } else {
            l.entries
        }
    }

    fn publish_view(&self, st: &WriteState) {
        let current_id = st.info.ledgers.last().map(|l| l.ledger_id).unwrap_or(-1);
        *self.shared.view.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(View {
            ledgers: st.info.ledgers.clone(),
            current_id,
        });
    }

    async fn persist_info(&self, st: &mut WriteState, next: ManagedLedgerInfo) -> Result<()> {
        let key = info::ml_key(&self.shared.name);
        let version = self
            .commit_fenced(vec![meta::Op::put(
                key,
                info::encode_with(&next, self.shared.ledger_info_compression),
                Expected::Version(st.info_version),
            )])
            .await?;
        st.info = next;
        st.info_version = version;
        self.publish_view(st);
        Ok(())
    }

    fn is_full(&self, st: &WriteState) -> bool {
        let Some(writer) = st.writer.as_ref().filter(|_| st.current_entries > 0) else {
            return false;
        };
        if writer.wants_rollover() {
            return true;
        }
        let c = self.config();
        let age_ms = self
            .shared
            .clock
            .now_ms()
            .saturating_sub(st.current_created_ms);
        let space_reached = st.current_entries >= c.max_entries_per_ledger
            || st.current_size >= c.max_size_per_ledger_bytes;
        let max_age_reached = age_ms >= c.max_rollover_ms;
        (space_reached || max_age_reached)
            && (c.min_rollover_ms == 0 || age_ms > c.min_rollover_ms || max_age_reached)
    }

    /// Seals the ledger being written (if any), drops it from the list if it stayed empty, adds a
    /// fresh ledger to the list (persisted first), then creates its file.
    async fn rollover(&self, st: &mut WriteState) -> Result<()> {
        let now = self.shared.clock.now_ms();
        let tier = self.config().hot_tier;
        self.check_tier_available(tier)?;
        let mut next = st.info.clone();
        let mut empty_sealed = None;
        if let Some(last) = next.ledgers.last_mut().filter(|l| l.timestamp == 0) {
            let (entries, size) = match st.writer.take() {
                Some(w) => match w.seal().await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(ledger = %self.shared.name, ledger_id = last.ledger_id, error = %e, "seal failed; closing ledger at its durable entries");
                        self.recovered_stat(last).await?
                    }
                },
                None => self.recovered_stat(last).await?,
            };
            last.entries = entries as i64;
            last.size = size as i64;
            last.timestamp = now;
            if entries == 0 {
                empty_sealed = next.ledgers.pop();
            }
        }
        st.writer = None;
        let new_id = self.shared.ids.next().await?;
        let mut fresh = LedgerInfo::new_open(new_id, now);
        fresh.hot_tier = tier;
        if tier == HotTier::Local {
            fresh.hot_tier_broker = self.shared.hot_tier_owner.clone();
        }
        next.ledgers.push(fresh);
        self.persist_info(st, next).await?;
        if let Some(l) = empty_sealed {
            self.delete_hot_copy(&l).await;
        }
        let writer = self.create_hot_copy(new_id, tier)?;
        st.writer = Some(writer);
        st.current_created_ms = now;
        st.current_entries = 0;
        st.current_size = 0;
        tracing::debug!(ledger = %self.shared.name, ledger_id = new_id, "rolled over to a new ledger");
        Ok(())
    }

    /// An error of a rollover or append: out of space enters the out-of-space state.
    fn classify_write_error(&self, e: LedgerError) -> LedgerError {
        match &e {
            LedgerError::HotTier(h) if h.is_out_of_space() => self.out_of_space(h),
            LedgerError::Wal(wal::WalError::Fenced { .. }) => self.fenced_now(),
            _ => e,
        }
    }

    /// Appends an entry. Returns once the entry is queued (waiting only for rollover or memory
    /// budget); the receipt resolves when it is durable. Receipts resolve in append order.
    ///
    /// While the file system is full, appends fail fast with [`LedgerError::StorageFull`] and
    /// no new ledger is created (a client retrying its sends must not create one per send).
    pub async fn append(&self, data: Bytes) -> Result<AppendReceipt> {
        let len = data.len() as u64;
        let r = self.append_counted(data).await;
        match &r {
            Ok(_) => IoCounters::add(&self.shared.io.add_bytes, len),
            Err(_) => IoCounters::add(&self.shared.io.add_errors, 1),
        }
        r
    }

    async fn append_counted(&self, data: Bytes) -> Result<AppendReceipt> {
        let len = data.len() as u64;
        let mut st = self.shared.write.lock().await;
        if st.closed {
            return Err(LedgerError::Closed(self.shared.name.clone()));
        }
        if st.info.terminated {
            return Err(LedgerError::Terminated(self.shared.name.clone()));
        }
        self.refuse_if_fenced()?;
        self.refuse_if_out_of_space()?;
        if st.writer.is_none() || self.is_full(&st) {
            self.rollover(&mut st)
                .await
                .map_err(|e| self.classify_write_error(e))?;
        }
        let fence = self.current_fence();
        let pending = match self.writer(&st)?.append(data.clone(), fence.clone()).await {
            Ok(p) => p,
            Err(e) if e.is_ledger_done() => {
                // The ledger can take no more (a failed write or fsync, a disk that was full, a
                // failed WAL flush): continue in a new one. Past `refuse_if_out_of_space`,
                // there is room for it.
                self.rollover(&mut st)
                    .await
                    .map_err(|e| self.classify_write_error(e))?;
                self.writer(&st)?
                    .append(data, fence)
                    .await
                    .map_err(|e| self.classify_write_error(e))?
            }
            Err(e) => return Err(self.classify_write_error(e)),
        };
        st.current_entries += 1;
        st.current_size += len;
        let receipt = AppendReceipt {
            ledger_id: st.info.ledgers.last().map(|l| l.ledger_id).unwrap_or(-1),
            pending,
            ml: self.clone(),
        };
        if self.is_full(&st) {
            // Roll over right away, as Pulsar does, so a full ledger is sealed without waiting
            // for the next append. A failure here does not fail this (accepted) append: the next
            // append retries the rollover.
            match self.rollover(&mut st).await {
                Ok(()) => {
                    drop(st);
                    if let Err(e) = self.trim().await {
                        tracing::warn!(ledger = %self.shared.name, error = %e, "trim after rollover failed");
                    }
                    self.maybe_offload_in_background();
                    self.rewrite_in_background();
                }
                Err(e) => match self.classify_write_error(e) {
                    LedgerError::StorageFull { .. } => {}
                    e => tracing::warn!(ledger = %self.shared.name, error = %e, "rollover failed"),
                },
            }
        }
        Ok(receipt)
    }

    fn writer<'a>(&self, st: &'a WriteState) -> Result<&'a HotWriter> {
        st.writer
            .as_ref()
            .ok_or_else(|| LedgerError::Closed(self.shared.name.clone()))
    }

    /// Rolls over an idle ledger that reached its maximum age (call periodically), then trims.
    pub async fn check_rollover(&self) -> Result<bool> {
        let mut st = self.shared.write.lock().await;
        let rolled = if !st.closed && self.is_full(&st) {
            self.rollover(&mut st).await?;
            true
        } else {
            false
        };
        drop(st);
        self.trim().await?;
        if rolled {
            self.maybe_offload_in_background();
            self.rewrite_in_background();
        }
        Ok(rolled)
    }

    /// Seals the ledger being written, if it has entries, and starts a new one: what was written
    /// is complete (a compacted view, say) and the offload thresholds may take it.
    pub async fn seal_current(&self) -> Result<()> {
        let mut st = self.shared.write.lock().await;
        if st.closed {
            return Err(LedgerError::Closed(self.shared.name.clone()));
        }
        if st.current_entries == 0 {
            return Ok(());
        }
        self.rollover(&mut st).await?;
        drop(st);
        self.maybe_offload_in_background();
        Ok(())
    }

    /// Pulsar's terminate: no entry is appended after the last one, ever. The current ledger
    /// is sealed and the ledger list records it (a restart keeps refusing appends); appends
    /// fail with [`LedgerError::Terminated`]. Returns the last entry's position; terminating
    /// again answers the same.
    ///
    /// Crash window: until the ledger list is written, the managed ledger is not terminated
    /// (the caller's terminate failed, and nothing was acknowledged as terminated).
    pub async fn terminate(&self) -> Result<Position> {
        let mut st = self.shared.write.lock().await;
        if st.closed {
            return Err(LedgerError::Closed(self.shared.name.clone()));
        }
        if !st.info.terminated {
            if st.current_entries > 0 {
                self.rollover(&mut st).await?;
            }
            let mut next = st.info.clone();
            next.terminated = true;
            self.persist_info(&mut st, next).await?;
            self.shared.terminated.store(true, Ordering::Relaxed);
        }
        drop(st);
        Ok(self.last_confirmed())
    }

    /// Whether the managed ledger was terminated.
    pub fn is_terminated(&self) -> bool {
        self.shared.terminated.load(Ordering::Relaxed)
    }

    /// Reads up to `max_entries` durable entries starting at `from`, across ledger boundaries, in
    /// order, from whichever tier holds each ledger. Stops early (after at least one entry) when
    /// `max_bytes` of payload is reached.
    pub async fn read(
        &self,
        from: Position,
        max_entries: usize,
        max_bytes: usize,
    ) -> Result<Vec<Entry>> {
        let r = self.read_uncounted(from, max_entries, max_bytes).await;
        let io = &self.shared.io;
        match &r {
            Ok(entries) => {
                IoCounters::add(&io.read_entries, entries.len() as u64);
                IoCounters::add(
                    &io.read_bytes,
                    entries.iter().map(|e| e.data.len() as u64).sum(),
                );
            }
            Err(_) => IoCounters::add(&io.read_errors, 1),
        }
        r
    }

    async fn read_uncounted(
        &self,
        from: Position,
        max_entries: usize,
        max_bytes: usize,
    ) -> Result<Vec<Entry>> {
        let view = self.view();
        let mut out: Vec<Entry> = Vec::new();
        let mut budget = max_bytes;
        for l in view
            .ledgers
            .iter()
            .filter(|l| l.ledger_id >= from.ledger_id)
        {
            if out.len() >= max_entries || budget == 0 {
                break;
            }
            let start = if l.ledger_id == from.ledger_id {
                from.entry_id.max(0)
            } else {
                0
            };
            let count = if l.ledger_id == view.current_id {
                self.durable_stat(l)?.0 as i64
            } else {
                l.entries
            };
            if start >= count {
                continue;
            }
            let want = (max_entries - out.len()) as i64;
            let last = (count - 1).min(start + want - 1);
            let mut data = if self.reads_from_tier(l) {
                self.read_offloaded(l, start, last, budget).await?
            } else {
                self.read_hot(l, start, last, budget, HotReader::Dispatch)
                    .await?
            };
            let mut used = 0usize;
            let keep = data
                .iter()
                .take_while(|d| {
                    let fits = used == 0 || used + d.len() <= budget;
                    used += d.len();
                    fits
                })
                .count();
            data.truncate(keep.max(1));
            let cut_short = (data.len() as i64) < last - start + 1;
            for (i, d) in data.into_iter().enumerate() {
                budget = budget.saturating_sub(d.len());
                out.push(Entry {
                    position: Position::new(l.ledger_id, start + i as i64),
                    data: d,
                });
            }
            if cut_short {
                break; // the byte budget ran out inside this ledger
            }
        }
        Ok(out)
    }

    /// Seals the ledger being written and refuses further appends.
    pub async fn close(&self) -> Result<()> {
        let mut st = self.shared.write.lock().await;
        if st.closed {
            return Ok(());
        }
        st.closed = true;
        if let Some(w) = st.writer.take() {
            let (entries, size) = w.seal().await?;
            let mut next = st.info.clone();
            if let Some(last) = next.ledgers.last_mut() {
                last.entries = entries as i64;
                last.size = size as i64;
                last.timestamp = self.shared.clock.now_ms();
            }
            self.persist_info(&mut st, next).await?;
        }
        Ok(())
    }

    /// Ledger list and counters.
    /// Appends, reads, offloads and deletions since the managed ledger was opened (cheap: no
    /// lock, for sampling rates).
    pub fn io_stats(&self) -> IoStats {
        self.shared.io.snapshot()
    }

    pub async fn stats(&self) -> LedgerStats {
        let st = self.shared.write.lock().await;
        let closed_size: i64 = st.info.ledgers.iter().map(|l| l.size).sum();
        let closed_entries: i64 = st.info.ledgers.iter().map(|l| l.entries).sum();
        LedgerStats {
            entries_added: self.shared.entries_added.load(Ordering::Relaxed),
            number_of_entries: closed_entries + st.current_entries as i64,
            total_size: closed_size + st.current_size as i64,
            current_ledger_entries: st.current_entries,
            current_ledger_size: st.current_size,
            last_ledger_created_ms: st.current_created_ms,
            last_confirmed: self.last_confirmed(),
            ledgers: st.info.ledgers.clone(),
            tier_read_errors: self.shared.tier_read_errors.load(Ordering::Relaxed),
            io: self.shared.io.snapshot(),
            tier_read_failures: self.tier_failures().clone(),
        }
    }
}

//! Read-ahead for sequential reads of sealed ledgers (BookKeeper's read-ahead cache).
//!
//! A catch-up reader asks for a few entries at a time and waits for each answer before it asks
//! again (a consumer's permits come back only once it has what it was sent). Reading each range
//! from the file when it is asked for puts the read, its checksums and the send to the consumer
//! one after the other. Instead, once a reader is seen reading a sealed ledger in order, one
//! thread per store reads the next window of entries (checked against their CRCs like every
//! read) while the current one is on its way, and the reader's next request is answered from
//! memory. The cache holds whole windows under one byte budget for the store, the least
//! recently used window going first; a reader that jumps about never triggers it.

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;

use crate::error::Result;

/// The read of one window: its last entry (its first is where it was asked for) and the read.
pub(crate) struct WindowRead {
    pub last: u64,
    pub read: Box<dyn FnOnce() -> Result<Vec<Bytes>> + Send>,
}

/// Reading a window ahead: ledger, first entry, the read itself.
struct Job {
    key: (u64, u64),
    read: Box<dyn FnOnce() -> Result<Vec<Bytes>> + Send>,
}

/// Windows read ahead, and the thread that reads them.
pub(crate) struct ReadAhead {
    shared: Arc<Shared>,
    /// `None` when read-ahead is off (a budget of 0).
    jobs: Option<Mutex<mpsc::Sender<Job>>>,
}

struct Shared {
    budget: usize,
    state: Mutex<State>,
    /// Signalled whenever a window read ends (kept or not).
    arrived: Condvar,
}

#[derive(Default)]
struct State {
    /// By ledger and first entry.
    windows: BTreeMap<(u64, u64), Window>,
    bytes: usize,
    /// Bumped on every use, for least-recently-used eviction.
    tick: u64,
    /// Windows being read, by ledger and first entry, to their last entry; a forgotten
    /// ledger's are dropped when they arrive.
    reading: BTreeMap<(u64, u64), u64>,
    /// Per ledger, the entry after the last one read: a read starting there continues in order.
    next_in_order: HashMap<u64, u64>,
}

struct Window {
    entries: Vec<Bytes>,
    bytes: usize,
    used: u64,
}

/// How many windows past the one a reader is in are kept read (or being read): one is being
/// read while the reader uses the other.
const WINDOWS_AHEAD: usize = 2;

/// Ledgers whose read order is remembered at most; beyond it the record starts afresh.
const MAX_TRACKED_LEDGERS: usize = 4096;

impl ReadAhead {
    /// Read-ahead within `budget` bytes; none when it is 0.
    pub(crate) fn start(budget: usize) -> Result<Self> {
        let shared = Arc::new(Shared {
            budget,
            state: Mutex::new(State::default()),
            arrived: Condvar::new(),
        });
        if budget == 0 {
            return Ok(ReadAhead { shared, jobs: None });
        }
        let (tx, rx) = mpsc::channel::<Job>();
        let worker = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("hot-tier-read-ahead".into())
            .spawn(move || {
                // Ends when the store (the only sender) is gone.
                while let Ok(job) = rx.recv() {
                    let read = (job.read)();
                    worker.arrived(job.key, read);
                }
            })
            .map_err(|e| crate::error::HotTierError::io("spawn thread", "read-ahead", e))?;
        Ok(ReadAhead {
            shared,
            jobs: Some(Mutex::new(tx)),
        })
    }

    /// Entries `first..=last` of `ledger` from a window read ahead, up to `max_bytes` (at least
    /// one entry), if a window holds `first`. `next_window` builds the read of the window after
    /// the one used, started when this read is past the middle of its window.
    pub(crate) fn get(
        &self,
        ledger: u64,
        first: u64,
        last: u64,
        max_bytes: usize,
        next_window: impl FnOnce(u64) -> Option<WindowRead>,
    ) -> Option<Vec<Bytes>> {
        self.jobs.as_ref()?;
        let mut st = self.shared.lock();
        st.tick += 1;
        let tick = st.tick;
        let (&(_, start), window) = st
            .windows
            .range_mut(..=(ledger, first))
            .next_back()
            .filter(|((l, start), w)| *l == ledger && first < start + w.entries.len() as u64)?;
        window.used = tick;
        let from = (first - start) as usize;
        let upto = ((last - start) as usize).min(window.entries.len() - 1);
        let mut out = Vec::new();
        let mut bytes = 0;
        for e in &window.entries[from..=upto] {
            if !out.is_empty() && bytes + e.len() > max_bytes {
                break;
            }
            bytes += e.len();
            out.push(e.clone());
        }
        let len = window.entries.len() as u64;
        let next = first + out.len() as u64;
        st.next_in_order.insert(ledger, next);
        // Keep WINDOWS_AHEAD windows read or being read past this one.
        let mut from = start + len;
        for _ in 0..WINDOWS_AHEAD {
            match st.end_of_window_at(ledger, from) {
                Some(last) => from = last + 1,
                None => {
                    self.schedule(st, ledger, from, next_window);
                    break;
                }
            }
        }
        Some(out)
    }

    /// Records a read of `ledger` from the file, `first..next`. A read that continues where the
    /// previous one ended (or starts the ledger) starts reading the window at `next`.
    pub(crate) fn read_from_file(
        &self,
        ledger: u64,
        first: u64,
        next: u64,
        window: impl FnOnce(u64) -> Option<WindowRead>,
    ) {
        if self.jobs.is_none() {
            return;
        }
        let mut st = self.shared.lock();
        let in_order = first == 0 || st.next_in_order.get(&ledger) == Some(&first);
        if st.next_in_order.len() >= MAX_TRACKED_LEDGERS {
            st.next_in_order.clear();
        }
        st.next_in_order.insert(ledger, next);
        if in_order {
            self.schedule(st, ledger, next, window);
        }
    }

    fn schedule(
        &self,
        mut st: MutexGuard<'_, State>,
        ledger: u64,
        from: u64,
        window: impl FnOnce(u64) -> Option<WindowRead>,
    ) {
        let key = (ledger, from);
        if st.being_read(ledger, from) || st.covers(ledger, from) {
            return;
        }
        let Some(WindowRead { last, read }) = window(from) else {
            return; // past the ledger's end
        };
        let Some(jobs) = &self.jobs else {
            return;
        };
        st.reading.insert(key, last);
        drop(st);
        let sent = jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(Job { key, read });
        if sent.is_err() {
            self.shared.lock().reading.remove(&key);
        }
    }

    /// Waits (a bounded time) while a window holding entry `first` of `ledger` is being read,
    /// so a reader that caught up with the read-ahead takes its result instead of reading the
    /// same bytes again. Returns whether it waited.
    pub(crate) fn wait_if_reading(&self, ledger: u64, first: u64) -> bool {
        const LONGEST_WAIT: Duration = Duration::from_secs(1);
        let st = self.shared.lock();
        if !st.being_read(ledger, first) {
            return false;
        }
        let _ = self
            .shared
            .arrived
            .wait_timeout_while(st, LONGEST_WAIT, |st| st.being_read(ledger, first));
        true
    }

    /// Drops everything of `ledger` (deleted), including windows still being read.
    pub(crate) fn forget(&self, ledger: u64) {
        let mut st = self.shared.lock();
        let keys: Vec<(u64, u64)> = st
            .windows
            .range((ledger, 0)..=(ledger, u64::MAX))
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            if let Some(w) = st.windows.remove(&k) {
                st.bytes -= w.bytes;
            }
        }
        st.reading.retain(|(l, _), _| *l != ledger);
        st.next_in_order.remove(&ledger);
    }

    /// Bytes held now.
    #[cfg(test)]
    pub(crate) fn held_bytes(&self) -> usize {
        self.shared.lock().bytes
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A window read ahead is in: kept unless its ledger was forgotten meanwhile, older windows
    /// evicted to stay within the budget.
    fn arrived(&self, key: (u64, u64), read: Result<Vec<Bytes>>) {
        let mut st = self.lock();
        self.arrived.notify_all();
        if st.reading.remove(&key).is_none() {
            return;
        }
        let entries = match read {
            Ok(entries) if !entries.is_empty() => entries,
            Ok(_) => return,
            Err(e) => {
                // The reader's own read reports it when it gets there.
                tracing::debug!(ledger_id = key.0, entry_id = key.1, error = %e, "read-ahead failed");
                return;
            }
        };
        let bytes: usize = entries.iter().map(Bytes::len).sum();
        if bytes > self.budget {
            return;
        }
        while st.bytes + bytes > self.budget {
            let Some(oldest) = st
                .windows
                .iter()
                .min_by_key(|(_, w)| w.used)
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some(w) = st.windows.remove(&oldest) {
                st.bytes -= w.bytes;
            }
        }
        st.tick += 1;
        let used = st.tick;
        st.bytes += bytes;
        st.windows.insert(
            key,
            Window {
                entries,
                bytes,
                used,
            },
        );
    }
}

impl State {
    fn being_read(&self, ledger: u64, entry: u64) -> bool {
        self.reading
            .range(..=(ledger, entry))
            .next_back()
            .is_some_and(|((l, _), last)| *l == ledger && entry <= *last)
    }

    /// The last entry of the window (read or being read) that starts at `entry`.
    fn end_of_window_at(&self, ledger: u64, entry: u64) -> Option<u64> {
        if let Some(w) = self.windows.get(&(ledger, entry)) {
            return Some(entry + w.entries.len() as u64 - 1);
        }
        self.reading.get(&(ledger, entry)).copied()
    }

    fn covers(&self, ledger: u64, entry: u64) -> bool {
        self.windows
            .range(..=(ledger, entry))
            .next_back()
            .is_some_and(|((l, start), w)| *l == ledger && entry < start + w.entries.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Windows of `entries` entries of `size` bytes each.
    fn windows(entries: u64, size: usize) -> impl FnOnce(u64) -> Option<WindowRead> {
        move |from| {
            Some(WindowRead {
                last: from + entries - 1,
                read: Box::new(move || {
                    Ok((0..entries).map(|_| Bytes::from(vec![7; size])).collect())
                }),
            })
        }
    }

    fn none(_: u64) -> Option<WindowRead> {
        None
    }

    #[test]
    fn windows_stay_within_the_budget_the_least_recently_used_going_first() {
        let ra = ReadAhead::start(3000).unwrap();
        for ledger in 1..=5 {
            // Entry 0 read from the file: the window from entry 1 (two entries, 1000 bytes).
            ra.read_from_file(ledger, 0, 1, windows(2, 500));
            ra.wait_if_reading(ledger, 1);
            if ledger == 3 {
                // Ledger 1's window is used again: ledger 2's and then 3's are the oldest.
                assert!(ra.get(1, 1, 1, usize::MAX, none).is_some());
            }
        }
        assert_eq!(ra.held_bytes(), 3000);
        let held: Vec<u64> = (1..=5)
            .filter(|&l| ra.get(l, 2, 2, usize::MAX, none).is_some())
            .collect();
        assert_eq!(held, vec![1, 4, 5]);
    }

    #[test]
    fn a_window_larger_than_the_budget_is_not_kept() {
        let ra = ReadAhead::start(1000).unwrap();
        ra.read_from_file(1, 0, 1, windows(3, 500));
        ra.wait_if_reading(1, 1);
        assert!(ra.get(1, 1, 1, usize::MAX, none).is_none());
        assert_eq!(ra.held_bytes(), 0);
    }

    #[test]
    fn a_ledger_forgotten_while_its_window_is_read_keeps_nothing() {
        let ra = ReadAhead::start(1 << 20).unwrap();
        let (release, wait) = mpsc::channel::<()>();
        ra.read_from_file(1, 0, 1, move |from| {
            Some(WindowRead {
                last: from,
                read: Box::new(move || {
                    let _ = wait.recv();
                    Ok(vec![Bytes::from_static(b"entry")])
                }),
            })
        });
        ra.forget(1);
        release.send(()).unwrap();
        // The read ends (kept or not) before the next job runs.
        ra.read_from_file(2, 0, 1, windows(1, 5));
        ra.wait_if_reading(2, 1);
        assert!(ra.get(1, 1, 1, usize::MAX, none).is_none());
        assert_eq!(ra.held_bytes(), 5, "only ledger 2's window");
    }

    #[test]
    fn no_budget_no_thread_and_nothing_read_ahead() {
        let ra = ReadAhead::start(0).unwrap();
        let mut asked = false;
        ra.read_from_file(1, 0, 1, |_| {
            asked = true;
            None
        });
        assert!(!asked);
        assert!(ra.get(1, 1, 1, usize::MAX, none).is_none());
    }
}

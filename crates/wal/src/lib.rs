//! # wal — object storage as the durable hot tier ("diskless" topics)
//!
//! One [`Wal`] per broker collects the entries of *all* its object-tier ledgers and flushes
//! them as one object per flush (by time, `flush_interval`, or size, `flush_max_bytes`), so the
//! PUTs per second of a broker are bounded by the flush interval, not by its topic count. After
//! the PUT it commits where each ledger's entries live as one [`FlushRecord`] key per flush
//! (see [`keys`]), in a metadata transaction that carries the fencing check of each bundle
//! involved, and only then resolves the appends: nothing is acknowledged that a new owner
//! could not find. Then, off the acknowledgement path, it *indexes* the record: copies each
//! ledger's [`Extent`] to that ledger's keys and deletes the record (`index`; readers, the
//! sweeper and deletions merge or index records meanwhile). One key per commit rather than one
//! per ledger: etcd's time for a transaction grows with the keys it writes (100 extent keys
//! took 2.6–2.9 ms at the median, one record of them 1.4–1.7 ms), and that time is publish
//! latency.
//!
//! Flushes are uploaded concurrently (up to `max_flushes_in_flight`; while every slot is busy
//! the buffer keeps filling, so objects grow past `flush_max_bytes` under back-pressure) and
//! committed in flush order. Each ledger's extents are contiguous: a flush whose upload or
//! commit fails fails the ledger (no later extent of it is committed), and its writer continues
//! in a new ledger, as with a failed disk write of the local hot tier.
//!
//! Crash windows of a flush (docs/architecture.md has the whole table):
//! - before or during the PUT: nothing is committed, nothing was acknowledged;
//! - after the PUT, before the commit: an object nothing names, deleted by [`Wal::sweep`]
//!   after the grace period; a commit later than half the grace period after its upload
//!   started is not attempted, so the sweeper never deletes an object a commit may name;
//! - the commit's answer lost: the record is read back (or, if gone, its extent keys: somebody
//!   indexed it); present → acknowledged, absent or unreadable → failed (the ledger then ends
//!   where its extents end, see [`Wal::recover`]);
//! - after the commit, before or during the indexing: a record, read by everyone who lists a
//!   ledger's extents and indexed by the next sweep or by the deletion of a ledger it names.
//!
//! Reads of recent entries come from memory (a per-ledger budget); older ones by one ranged
//! GET per extent (a small cache of fetched extents serves consumers reading in small steps).

mod commit;
mod error;
pub mod format;
mod index;
pub mod keys;
mod ledger;
mod read;
mod sweep;
mod writer;

pub use error::{Result, WalError};
pub use format::{Extent, FlushRecord};
pub use index::index_records;
pub use ledger::{WalAppend, WalLedger};
pub use read::delete_extents;
pub use sweep::SweepReport;
pub use writer::{Wal, WalConfig, WalCounters};

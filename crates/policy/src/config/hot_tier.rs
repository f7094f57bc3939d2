//! The hot tier's keys, BookKeeper's since the hot tier plays the bookie's role: the journal
//! (`journalDirectory`, `journalMaxSizeMB`, `flushInterval`), the write cache
//! (`dbStorage_writeCacheMaxSizeMb`) and the read-ahead
//! (`dbStorage_readAheadCacheMaxSizeMb`, `dbStorage_readAheadCacheBatchBytesSize`).

use std::path::PathBuf;

use super::{ConfigError, Properties};

/// The local hot tier's journal (where it is, how large its files grow, how often it is
/// checkpointed) and its read-ahead. BookKeeper's keys, since the hot tier plays the bookie's
/// role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HotTierSettings {
    /// `journalDirectory`: a directory on another disk than `dataDirectory` keeps the journal's
    /// fsyncs off the ledger files' writeback (default: `<dataDirectory>/ledgers/journal`).
    pub directory: Option<PathBuf>,
    /// `journalMaxSizeMB` (512): a journal file is closed and a new one begun past this size.
    pub max_file_bytes: u64,
    /// `flushInterval` (10 000 ms): the longest time between checkpoints, which make the
    /// ledger files durable and let the journal before them be deleted.
    pub checkpoint_interval: std::time::Duration,
    /// `dbStorage_writeCacheMaxSizeMb` (512): memory for journaled entries waiting for the next
    /// checkpoint to write them into their ledger files; a checkpoint starts early once they
    /// fill it. BookKeeper's default is a quarter of the bookie's direct memory (512 MiB on a
    /// stock 2 GiB bookie) and its advice "big enough to hold a substantial amount of entries in
    /// the flush interval": at 10 000 topics 64 MiB checkpointed every ~2 s, each file taking a
    /// few KiB per checkpoint (a partial page rewritten, an inode updated, each time).
    pub write_cache_bytes: u64,
    /// `dbStorage_readAheadCacheMaxSizeMb` (64): memory for entries of sealed ledgers read
    /// ahead of readers reading in order; 0 turns read-ahead off.
    pub read_ahead_cache_bytes: usize,
    /// `dbStorage_readAheadCacheBatchBytesSize` (4 MiB; BookKeeper's -1, no byte limit, also
    /// means 4 MiB here, where the byte size is the only limit): how much one read-ahead reads.
    pub read_ahead_window_bytes: usize,
}

/// What one read-ahead reads unless `dbStorage_readAheadCacheBatchBytesSize` says otherwise.
const DEFAULT_READ_AHEAD_WINDOW_BYTES: usize = 4 << 20;

pub(super) fn parse(raw: &mut Properties) -> Result<HotTierSettings, ConfigError> {
    Ok(HotTierSettings {
        directory: raw
            .take("journalDirectory")
            .filter(|d| !d.trim().is_empty())
            .map(PathBuf::from),
        max_file_bytes: raw.unsigned("journalMaxSizeMB", 512, 1, 1 << 20)? << 20,
        checkpoint_interval: std::time::Duration::from_millis(raw.unsigned(
            "flushInterval",
            10_000,
            10,
            3_600_000,
        )?),
        write_cache_bytes: raw.unsigned("dbStorage_writeCacheMaxSizeMb", 512, 1, 1 << 20)? << 20,
        read_ahead_cache_bytes: (raw.unsigned(
            "dbStorage_readAheadCacheMaxSizeMb",
            64,
            0,
            1 << 20,
        )? << 20) as usize,
        read_ahead_window_bytes: match raw.signed(
            "dbStorage_readAheadCacheBatchBytesSize",
            -1,
            -1,
        )? {
            n if n <= 0 => DEFAULT_READ_AHEAD_WINDOW_BYTES,
            n => usize::try_from(n).unwrap_or(usize::MAX),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(text: &str) -> Result<HotTierSettings, ConfigError> {
        parse(&mut Properties::parse("t.conf", text).unwrap())
    }

    #[test]
    fn hot_tier_keys_are_bookkeepers() {
        let h = &settings("").unwrap();
        assert_eq!(h.directory, None);
        assert_eq!(h.max_file_bytes, 512 << 20);
        assert_eq!(h.checkpoint_interval, std::time::Duration::from_secs(10));
        assert_eq!(h.write_cache_bytes, 512 << 20);
        assert_eq!(
            (h.read_ahead_cache_bytes, h.read_ahead_window_bytes),
            (64 << 20, 4 << 20)
        );
        let h = &settings(
            "journalDirectory=/j\njournalMaxSizeMB=8\nflushInterval=500\n\
             dbStorage_writeCacheMaxSizeMb=256\n\
             dbStorage_readAheadCacheMaxSizeMb=0\ndbStorage_readAheadCacheBatchBytesSize=65536\n",
        )
        .unwrap();
        assert_eq!(h.directory, Some(PathBuf::from("/j")));
        assert_eq!(h.max_file_bytes, 8 << 20);
        assert_eq!(h.checkpoint_interval, std::time::Duration::from_millis(500));
        assert_eq!(h.write_cache_bytes, 256 << 20);
        assert_eq!(
            (h.read_ahead_cache_bytes, h.read_ahead_window_bytes),
            (0, 65536)
        );
        let err = settings("dbStorage_readAheadCacheMaxSizeMb=lots\n").unwrap_err();
        assert!(
            err.to_string()
                .contains("dbStorage_readAheadCacheMaxSizeMb"),
            "{err}"
        );
    }
}

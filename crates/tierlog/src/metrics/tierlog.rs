//! tierlog's own families, from the broker's parts rather than its topics: object-store
//! requests of every offload location, the hot tier's group commits, the offload disk cache.

use std::sync::atomic::Ordering::Relaxed;

use super::{Scrape, labels};

/// The running build, and the object-store requests of every offload location.
pub(super) fn request_families(s: &mut Scrape, c: &offload::counting::RequestCounters) {
    s.gauge(
        "tierlog_build_info",
        "Build of the running broker.",
        [(labels(&[("version", env!("CARGO_PKG_VERSION"))]), 1.0)],
    );
    s.counter(
        "tierlog_offload_requests",
        "Object store requests by operation (every offload location).",
        [
            ("get", &c.gets),
            ("put", &c.puts),
            ("upload_part", &c.parts),
            ("delete", &c.deletes),
        ]
        .into_iter()
        .map(|(op, v)| (labels(&[("op", op)]), v.load(Relaxed)))
        .collect::<Vec<_>>(),
    );
    s.counter(
        "tierlog_offload_orphans_removed",
        "What orphan collection removed: unreferenced offloaded objects and incomplete multipart uploads.",
        [("object", &c.orphans_deleted), ("upload", &c.uploads_aborted)]
            .into_iter()
            .map(|(k, v)| (labels(&[("kind", k)]), v.load(Relaxed)))
            .collect::<Vec<_>>(),
    );
    s.counter(
        "tierlog_offload_bytes",
        "Bytes moved to and from the object store.",
        [("read", &c.get_bytes), ("write", &c.part_bytes)]
            .into_iter()
            .map(|(d, v)| (labels(&[("direction", d)]), v.load(Relaxed)))
            .collect::<Vec<_>>(),
    );
}

/// The local hot tier's journal: how many group commits, and what they cost in fsyncs (a
/// healthy broker's ratio stays near one journal fsync per commit, plus its few directly written
/// ledgers, however many topics it serves).
pub(super) fn hot_tier_families(s: &mut Scrape, c: hot_tier::CommitStats) {
    s.counter(
        "tierlog_hot_tier_group_commits",
        "Group commits of the local hot tier's journal: each makes the appends written since the \
         one before durable, then acknowledges them.",
        [(labels(&[]), c.group_commits)],
    );
    s.counter(
        "tierlog_hot_tier_fsyncs",
        "fsyncs the hot tier's group commits took: the journal's, directly written ledger \
         files', the ledger directory's.",
        [(labels(&[]), c.fsyncs)],
    );
}

/// The disk cache of the cold tier.
pub(super) fn cache_families(s: &mut Scrape, cache: &offload::ChunkCache) {
    let c = cache.counters();
    s.counter(
        "tierlog_offload_cache_chunks",
        "Chunk lookups and changes of the offload disk cache, by outcome: hit (served from disk), \
         miss (read from the store), eviction (removed for space), corrupt (damaged file removed \
         and refetched).",
        [
            ("hit", &c.hits),
            ("miss", &c.misses),
            ("eviction", &c.evictions),
            ("corrupt", &c.corrupt),
        ]
        .into_iter()
        .map(|(o, v)| (labels(&[("outcome", o)]), v.load(Relaxed)))
        .collect::<Vec<_>>(),
    );
    s.counter(
        "tierlog_offload_cache_bytes",
        "Bytes served from (read) and written to (write) the offload disk cache.",
        [("read", &c.hit_bytes), ("write", &c.written_bytes)]
            .into_iter()
            .map(|(d, v)| (labels(&[("direction", d)]), v.load(Relaxed)))
            .collect::<Vec<_>>(),
    );
    s.gauge(
        "tierlog_offload_cache_size_bytes",
        "Bytes the offload disk cache holds, and its limit.",
        [
            (labels(&[("kind", "used")]), cache.size_bytes() as f64),
            (labels(&[("kind", "limit")]), cache.limit_bytes() as f64),
        ],
    );
}

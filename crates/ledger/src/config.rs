//! Per-topic settings of a managed ledger (rollover limits and retention), with Pulsar's defaults.

/// Where the hot copies of a managed ledger's new ledgers live (namespace policy `hotTier`,
/// broker default `managedLedgerHotTier`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HotTier {
    /// Files on this broker's disk (the standalone default): when the broker is gone, so are
    /// they, until it returns.
    #[default]
    Local,
    /// The broker's object-storage WAL: nothing lives only on a broker ("diskless" topics).
    Object,
}

impl HotTier {
    pub fn is_local(&self) -> bool {
        *self == HotTier::Local
    }

    pub fn name(self) -> &'static str {
        match self {
            HotTier::Local => "local",
            HotTier::Object => "object",
        }
    }

    /// Parses `local` or `object`.
    pub fn parse(s: &str) -> Option<HotTier> {
        match s {
            "local" => Some(HotTier::Local),
            "object" => Some(HotTier::Object),
            _ => None,
        }
    }
}

/// How a managed ledger rolls over and what it retains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedLedgerConfig {
    /// `managedLedgerMaxEntriesPerLedger` (default 50 000).
    pub max_entries_per_ledger: u64,
    /// `managedLedgerMaxSizePerLedgerMbytes` (default 2048 MiB), in bytes.
    pub max_size_per_ledger_bytes: u64,
    /// `managedLedgerMinLedgerRolloverTimeMinutes` (default 10), in ms: a full ledger is not
    /// rolled over before it is this old.
    pub min_rollover_ms: u64,
    /// `managedLedgerMaxLedgerRolloverTimeMinutes` (default 240), in ms: a ledger with entries is
    /// rolled over once it is this old, full or not.
    pub max_rollover_ms: u64,
    /// Namespace retention time in ms: -1 = unlimited, 0 = none.
    pub retention_time_ms: i64,
    /// Namespace retention size in bytes: -1 = unlimited, 0 = none.
    pub retention_size_bytes: i64,
    /// `managedLedgerOffloadDeletionLagMs`: how long after a ledger is offloaded its hot copy is
    /// deleted (`None`: never).
    pub offload_deletion_lag_ms: Option<u64>,
    /// `managedLedgerDataReadPriority`: read the tier when both copies exist
    /// (`tiered-storage-first`, Pulsar's default) or the hot copy (`bookkeeper-first`).
    pub read_tiered_first: bool,
    /// Automatic offload by size (`managedLedgerOffloadAutoTriggerSizeThresholdBytes`, namespace
    /// `offload-threshold`): keep at most this many bytes of closed ledgers in the hot tier;
    /// 0 = offload every closed ledger, negative = off.
    pub offload_threshold_bytes: i64,
    /// Automatic offload by age (`managedLedgerOffloadThresholdInSeconds`): offload ledgers closed
    /// at least this long ago; negative = off.
    pub offload_threshold_seconds: i64,
    /// Where new ledgers' hot copies go.
    pub hot_tier: HotTier,
}

impl Default for ManagedLedgerConfig {
    fn default() -> Self {
        ManagedLedgerConfig {
            max_entries_per_ledger: 50_000,
            max_size_per_ledger_bytes: 2048 << 20,
            min_rollover_ms: 10 * 60_000,
            max_rollover_ms: 240 * 60_000,
            retention_time_ms: 0,
            retention_size_bytes: 0,
            offload_deletion_lag_ms: Some(4 * 3600 * 1000),
            read_tiered_first: true,
            offload_threshold_bytes: -1,
            offload_threshold_seconds: -1,
            hot_tier: HotTier::Local,
        }
    }
}

//! BookKeeper's `LedgerMetadataFormat` (proto2, from `DataFormats.proto`), which Pulsar embeds in
//! the V1 index, and the subset of Pulsar's `MLDataFormats.LedgerInfo` a V2 index embeds. Field
//! numbers and types are re-declared here from the published definitions.

/// `LedgerMetadataFormat`: the ledger's metadata as BookKeeper stores it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LedgerMetadataFormat {
    #[prost(int32, required, tag = "1")]
    pub quorum_size: i32,
    #[prost(int32, required, tag = "2")]
    pub ensemble_size: i32,
    #[prost(int64, required, tag = "3")]
    pub length: i64,
    #[prost(int64, optional, tag = "4")]
    pub last_entry_id: Option<i64>,
    #[prost(enumeration = "LedgerState", required, tag = "5", default = "Open")]
    pub state: i32,
    #[prost(message, repeated, tag = "6")]
    pub segment: Vec<Segment>,
    #[prost(enumeration = "DigestType", optional, tag = "7")]
    pub digest_type: Option<i32>,
    #[prost(bytes = "vec", optional, tag = "8")]
    pub password: Option<Vec<u8>>,
    #[prost(int32, optional, tag = "9")]
    pub ack_quorum_size: Option<i32>,
    #[prost(int64, optional, tag = "10")]
    pub ctime: Option<i64>,
    #[prost(message, repeated, tag = "11")]
    pub custom_metadata: Vec<CustomMetadataEntry>,
    #[prost(int64, optional, tag = "12")]
    pub c_token: Option<i64>,
}

/// One ensemble of a ledger: bookies holding entries from `first_entry_id` on.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Segment {
    #[prost(string, repeated, tag = "1")]
    pub ensemble_member: Vec<String>,
    #[prost(int64, required, tag = "2")]
    pub first_entry_id: i64,
}

/// `cMetadataMapEntry`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CustomMetadataEntry {
    #[prost(string, optional, tag = "1")]
    pub key: Option<String>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub value: Option<Vec<u8>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum LedgerState {
    Open = 1,
    InRecovery = 2,
    Closed = 3,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum DigestType {
    Crc32 = 1,
    Hmac = 2,
    Crc32c = 3,
    Dummy = 4,
}

/// The fields of Pulsar's `ManagedLedgerInfo.LedgerInfo` a V2 index carries (others ignored).
#[derive(Clone, PartialEq, prost::Message)]
pub struct MlLedgerInfo {
    #[prost(int64, required, tag = "1")]
    pub ledger_id: i64,
    #[prost(int64, optional, tag = "2")]
    pub entries: Option<i64>,
    #[prost(int64, optional, tag = "3")]
    pub size: Option<i64>,
    #[prost(int64, optional, tag = "4")]
    pub timestamp: Option<i64>,
}

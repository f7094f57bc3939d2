//! Pulsar's offload object format: data blocks, the index, and the ledger metadata inside it.

pub mod block;
pub mod index;
pub mod ledger_metadata;

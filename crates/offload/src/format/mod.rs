//! Pulsar's offload object format: data blocks, the index, the ledger metadata inside it, and
//! the checksum of the entries the blocks hold.

pub mod block;
pub mod entry;
pub mod index;
pub mod ledger_metadata;

//! Every integration test of this crate in one test binary, a module per file. A binary per
//! file linked the whole dependency graph once per file (and compiled shared helpers again):
//! most of CI's build time on two cores. nextest still runs each test in a process of its own.

mod common;
mod managed_ledger;
mod metadata_compression;
mod object_tier;
mod offload_crash;
mod offload_s3;
mod tiering;

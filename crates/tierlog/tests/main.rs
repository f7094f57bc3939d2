//! Every integration test of this crate in one test binary, a module per file. A binary per
//! file linked the whole dependency graph once per file (and compiled shared helpers again):
//! most of CI's build time on two cores. nextest still runs each test in a process of its own.

mod access_modes;
mod acks;
mod admin_api;
mod admin_cli;
mod admin_commands;
mod backlog;
mod bad_admin_values;
mod bad_sends;
mod batch_index_acks;
mod broker_durability;
mod clients;
mod cluster;
mod common;
mod compaction;
mod dedup;
mod delayed_delivery;
mod disk_full;
mod listeners;
mod many_topics;
mod metadata_on_etcd;
mod metrics;
mod names;
mod non_persistent;
mod object_tier;
mod offload_dump;
mod offload_errors;
mod offload_gc;
mod offload_policies;
mod offload_recover;
mod offload_scrub;
mod perf_tool;
mod pre_connect;
mod schemas;
mod security;
mod stalled_consumer;
mod standalone;
mod subscription_admin;
mod tier_read_failures;
mod topic_delete;
mod topic_stats;
mod tutorial;
mod unacked_limits;

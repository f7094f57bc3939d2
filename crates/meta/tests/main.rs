//! Every integration test of this crate in one test binary, a module per file. A binary per
//! file linked the whole dependency graph once per file (and compiled shared helpers again):
//! most of CI's build time on two cores. nextest still runs each test in a process of its own.

mod contract;
mod full_disk;

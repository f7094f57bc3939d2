//! # testkit — helpers for tests that use real parts
//!
//! Used only as a dev-dependency. [`moto`] starts a real S3-compatible server (moto, installed by
//! `./scripts/test` into `.venv`) on 127.0.0.1; [`proxy`] sits between a client and that server to
//! add latency per request or answer chosen requests with errors; [`slow_meta`] slows a metadata
//! store down for chosen keys.

pub mod azurite;
pub mod moto;
pub mod proxy;
pub mod s3s_fs;
pub mod slow_meta;
pub mod standalone;

/// A free TCP port on 127.0.0.1 (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// The workspace root (where `.venv` lives).
pub fn workspace_root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

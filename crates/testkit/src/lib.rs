//! # testkit — helpers for tests that use real parts
//!
//! Used only as a dev-dependency. [`moto`] starts a real S3-compatible server (moto, installed by
//! `./scripts/test` into `.venv`) on 127.0.0.1; [`proxy`] sits between a client and that server to
//! add latency per request or answer chosen requests with errors; [`slow_meta`] slows a metadata
//! store down for chosen keys.

pub mod audit;
pub mod azurite;
pub mod etcd;
pub mod moto;
pub mod pki;
pub mod proxy;
pub mod s3s_fs;
pub mod slow_meta;
pub mod standalone;
pub mod tmpfs;

/// A free TCP port on 127.0.0.1 for a test server (bound and released).
///
/// Drawn from 20000–31999, below Linux's ephemeral range (32768+): ports the kernel hands out
/// to outgoing connections (tests open hundreds) can then never take a server's port between
/// this check and the server's own bind, concurrent tests rarely pick the same one, and one
/// process never gets the same one twice.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static DRAWS: AtomicU64 = AtomicU64::new(0);
    // Ports already handed out by this process: one whose server has not bound it yet is free
    // to a second draw (seen: two brokers of one test cluster given the same web port).
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    for _ in 0..1000 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(DRAWS.fetch_add(1, Ordering::Relaxed));
        h.write_u32(std::process::id());
        let port = 20_000 + (h.finish() % 12_000) as u16;
        let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
        if !given.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return port;
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// The workspace root (where `.venv` lives).
pub fn workspace_root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

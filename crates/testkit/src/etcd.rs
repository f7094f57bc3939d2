//! A single-member etcd (Debian's `etcd-server`, installed by `./scripts/test`) on 127.0.0.1,
//! with its data in a directory of its own. Killed (SIGKILL) on drop.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `TIERLOG_ETCD`, or `etcd` on the `PATH`.
pub fn etcd_binary() -> PathBuf {
    std::env::var_os("TIERLOG_ETCD")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("etcd"))
}

pub struct EtcdServer {
    pub port: u16,
    peer: u16,
    child: Option<Child>,
    dir: PathBuf,
}

impl EtcdServer {
    pub fn start() -> EtcdServer {
        let port = crate::free_port();
        let peer = crate::free_port();
        let dir = std::env::temp_dir().join(format!("etcd-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("etcd dir");
        let mut server = EtcdServer {
            port,
            peer,
            child: None,
            dir,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let client_url = format!("http://127.0.0.1:{}", self.port);
        let peer_url = format!("http://127.0.0.1:{}", self.peer);
        let child = Command::new(etcd_binary())
            .arg("--name")
            .arg("test")
            .arg("--data-dir")
            .arg(self.dir.join("data"))
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("test={peer_url}")])
            .args(["--log-level", "error"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "start {} ({e}): ./scripts/test installs Debian's etcd-server",
                    etcd_binary().display()
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "etcd did not start on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the server again after [`kill`](Self::kill): same ports, same data.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

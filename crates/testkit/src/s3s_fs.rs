//! An s3s-fs server (disk-backed S3 that checks body checksums, good for large objects) on
//! 127.0.0.1, for benchmarks and the corrupted-upload tests.
//! Installed by `./scripts/test` and `./scripts/bench` into `.tools/s3s`.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "bench";
pub const SECRET_KEY: &str = "bench-secret";

/// Where `s3s-fs` is, if installed: `$TIERLOG_S3S_FS`, else `.tools/s3s/bin/s3s-fs`.
pub fn binary() -> Option<PathBuf> {
    let p = std::env::var_os("TIERLOG_S3S_FS")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join(".tools/s3s/bin/s3s-fs"));
    p.exists().then_some(p)
}

pub struct S3sFs {
    pub port: u16,
    root: PathBuf,
    child: Child,
}

impl S3sFs {
    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn start(binary: &Path, root: &Path) -> S3sFs {
        crate::audit::secret(SECRET_KEY);
        let port = crate::free_port();
        std::fs::create_dir_all(root).expect("s3s-fs root");
        let child = Command::new(binary)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--access-key",
                ACCESS_KEY,
                "--secret-key",
                SECRET_KEY,
            ])
            .arg(root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start s3s-fs");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        S3sFs {
            port,
            root: root.to_path_buf(),
            child,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A bucket is a directory of the root.
    pub fn create_bucket(&self, bucket: &str) {
        std::fs::create_dir_all(self.root.join(bucket)).expect("bucket directory");
    }
}

impl Drop for S3sFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! An Azurite blob server (installed by `./scripts/test` into `.tools`) on 127.0.0.1.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ACCOUNT: &str = "devstoreaccount1";
/// Azurite's well-known development key.
pub const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

pub fn azurite_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("TIERLOG_AZURITE_BLOB") {
        return p.into();
    }
    let p = crate::workspace_root().join(".tools/node_modules/.bin/azurite-blob");
    assert!(
        p.exists(),
        "azurite-blob not found at {}: run ./scripts/test, which installs it",
        p.display()
    );
    p
}

pub struct Azurite {
    pub port: u16,
    child: Child,
    _dir: TempDir,
}

/// A directory removed on drop (no tempfile dependency here).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Azurite {
    pub fn start() -> Azurite {
        crate::audit::secret(KEY);
        let port = crate::free_port();
        let dir = std::env::temp_dir().join(format!("azurite-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("azurite dir");
        let child = Command::new(azurite_binary())
            .args([
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                &port.to_string(),
                "--location",
            ])
            .arg(&dir)
            .args([
                "--silent",
                "--disableTelemetry",
                "--skipApiVersionCheck",
                "--loose",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start azurite-blob");
        let a = Azurite {
            port,
            child,
            _dir: TempDir(dir),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "azurite did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        a
    }

    /// The value for `AZURITE_BLOB_STORAGE_URL`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a container with a SharedKey-signed request.
    pub fn create_container(&self, name: &str) {
        let date = http_date();
        let version = "2021-08-06";
        let string_to_sign = format!(
            "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{ACCOUNT}/{ACCOUNT}/{name}\nrestype:container"
        );
        let signature = shared_key_signature(&string_to_sign);
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect azurite");
        write!(
            s,
            "PUT /{ACCOUNT}/{name}?restype=container HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nx-ms-date: {date}\r\nx-ms-version: {version}\r\nAuthorization: SharedKey {ACCOUNT}:{signature}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .expect("write");
        let mut resp = String::new();
        let _ = s.read_to_string(&mut resp);
        assert!(resp.starts_with("HTTP/1.1 201"), "create container: {resp}");
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The SharedKey signature of a request: base64(HMAC-SHA256(base64-decoded key, text)).
fn shared_key_signature(string_to_sign: &str) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.decode(KEY).expect("Azurite's well-known key is base64");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
    b64.encode(ring::hmac::sign(&key, string_to_sign.as_bytes()))
}

/// RFC 1123 date, e.g. `Tue, 24 Nov 2026 18:00:00 GMT`.
fn http_date() -> String {
    httpdate::fmt_http_date(std::time::SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_and_date_formats() {
        // Same key, same text, same signature; a base64 HMAC-SHA256 is 44 characters.
        let a = shared_key_signature("PUT\n\n");
        assert_eq!(a, shared_key_signature("PUT\n\n"));
        assert_eq!(a.len(), 44);
        assert!(http_date().ends_with(" GMT"));
    }
}

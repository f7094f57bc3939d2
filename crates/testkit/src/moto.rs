//! A moto S3 (+ STS + IAM) server on 127.0.0.1, started per test.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where `moto_server` is: `$TIERLOG_MOTO_SERVER`, else `.venv/bin/moto_server`.
pub fn moto_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("TIERLOG_MOTO_SERVER") {
        return p.into();
    }
    let p = crate::workspace_root().join(".venv/bin/moto_server");
    assert!(
        p.exists(),
        "moto_server not found at {}: run ./scripts/test, which installs it",
        p.display()
    );
    p
}

/// moto checks object ACLs on anonymous requests; any signature passes when auth is not enforced.
const DUMMY_AUTH: &str = "Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00";

/// The Python of the venv moto is installed in (it also has boto3).
pub fn venv_python() -> PathBuf {
    moto_binary().with_file_name("python3")
}

/// Credentials created by [`MotoServer::start_with_iam`].
#[derive(Debug, Clone)]
pub struct IamSetup {
    pub access_key: String,
    pub secret_key: String,
    pub role_arn: String,
}

fn json_field(json: &str, field: &str) -> String {
    let pat = format!("\"{field}\": \"");
    json.split_once(&pat)
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(v, _)| v.to_string())
        .unwrap_or_else(|| panic!("{field} missing in {json}"))
}

pub struct MotoServer {
    pub port: u16,
    child: Option<Child>,
    no_auth_actions: Option<u32>,
}

impl MotoServer {
    /// Starts moto without authentication.
    pub fn start() -> MotoServer {
        Self::start_on(crate::free_port(), None)
    }

    /// Starts moto enforcing SigV4 and IAM policies after the first `no_auth_actions` requests.
    pub fn start_with_auth(no_auth_actions: u32) -> MotoServer {
        Self::start_on(crate::free_port(), Some(no_auth_actions))
    }

    /// Starts moto enforcing SigV4 and IAM, with `bucket`, an IAM user allowed S3 and STS, and a
    /// role it may assume (set up by `moto_iam_setup.py` during the grace actions).
    pub fn start_with_iam(bucket: &str) -> (MotoServer, IamSetup) {
        const SETUP_ACTIONS: u32 = 6;
        let server = Self::start_with_auth(SETUP_ACTIONS);
        let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("moto_iam_setup.py");
        let out = Command::new(venv_python())
            .arg(script)
            .args([&server.endpoint(), bucket])
            .output()
            .expect("run moto_iam_setup.py");
        assert!(
            out.status.success(),
            "IAM setup failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json = String::from_utf8_lossy(&out.stdout).to_string();
        let setup = IamSetup {
            access_key: json_field(&json, "access_key"),
            secret_key: {
                let secret = json_field(&json, "secret_key");
                crate::audit::secret(&secret);
                secret
            },
            role_arn: json_field(&json, "role_arn"),
        };
        (server, setup)
    }

    fn start_on(port: u16, no_auth_actions: Option<u32>) -> MotoServer {
        let mut cmd = Command::new(moto_binary());
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(match std::env::var_os("TIERLOG_MOTO_LOG") {
                Some(p) => std::fs::File::create(p)
                    .map(Stdio::from)
                    .unwrap_or(Stdio::null()),
                None => Stdio::null(),
            });
        if let Some(n) = no_auth_actions {
            cmd.env("INITIAL_NO_AUTH_ACTION_COUNT", n.to_string());
        }
        let child = cmd.spawn().expect("start moto_server");
        let server = MotoServer {
            port,
            child: Some(child),
            no_auth_actions,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                // moto's own status endpoint does not count as an action.
                if write!(s, "GET /moto-api/data.json HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").is_ok() {
                    let mut buf = [0u8; 12];
                    if s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.") {
                        return;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("moto_server did not start on port {}", self.port);
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL): every stored object is gone with it (moto keeps them in RAM).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Pauses the server (SIGSTOP): requests hang, nothing stored is lost.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Resumes a paused server (SIGCONT).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, signal: &str) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .args([&format!("-{signal}"), &c.id().to_string()])
                .status();
        }
    }

    /// Starts a fresh server on the same port.
    pub fn restart(&mut self) {
        self.kill();
        let fresh = Self::start_on(self.port, self.no_auth_actions);
        *self = fresh;
    }

    /// An unsigned request to the server (only for servers without authentication).
    pub fn request(&self, method: &str, path: &str) -> (u16, String) {
        http(self.port, method, path)
    }

    pub fn create_bucket(&self, bucket: &str) {
        let (status, body) = self.request("PUT", &format!("/{bucket}"));
        assert!(status == 200, "create bucket {bucket}: {status} {body}");
    }

    /// Keys in a bucket (ListObjectsV2, first page).
    pub fn list_keys(&self, bucket: &str) -> Vec<String> {
        let (status, body) = self.request("GET", &format!("/{bucket}?list-type=2"));
        assert_eq!(status, 200, "{body}");
        xml_values(&body, "Key")
    }

    /// Multipart uploads still in progress (neither completed nor aborted).
    pub fn multipart_uploads(&self, bucket: &str) -> Vec<String> {
        let (status, body) = self.request("GET", &format!("/{bucket}?uploads"));
        assert_eq!(status, 200, "{body}");
        xml_values(&body, "UploadId")
    }

    /// The raw bytes of an object.
    pub fn get_object(&self, bucket: &str, key: &str) -> Vec<u8> {
        let (status, body) = http_bytes(self.port, "GET", &format!("/{bucket}/{key}"));
        assert_eq!(status, 200);
        body
    }

    /// Writes an object with no user metadata (as a foreign or damaged writer would).
    pub fn put_object(&self, bucket: &str, key: &str, body: &[u8]) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        write!(
            s,
            "PUT /{bucket}/{key} HTTP/1.1\r\nHost: 127.0.0.1\r\n{DUMMY_AUTH}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .expect("write");
        s.write_all(body).expect("write body");
        let mut resp = String::new();
        let _ = s.read_to_string(&mut resp);
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    }

    /// The response headers of a HEAD on an object, lower-cased names.
    pub fn head_object(&self, bucket: &str, key: &str) -> Vec<(String, String)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        write!(s, "HEAD /{bucket}/{key} HTTP/1.1\r\nHost: 127.0.0.1\r\n{DUMMY_AUTH}\r\nConnection: close\r\n\r\n").expect("write");
        let mut resp = String::new();
        let _ = s.read_to_string(&mut resp);
        resp.lines()
            .skip(1)
            .take_while(|l| !l.is_empty())
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect()
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn xml_values(body: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    body.split(&open)
        .skip(1)
        .filter_map(|s| s.split_once(&close).map(|(v, _)| v.to_string()))
        .collect()
}

fn http_bytes(port: u16, method: &str, path: &str) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to moto");
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    write!(s, "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{DUMMY_AUTH}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .expect("write request");
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let head_end = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .unwrap_or(resp.len());
    let head = String::from_utf8_lossy(&resp[..head_end]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut body = resp[head_end..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(p) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..p]).trim(), 16).unwrap_or(0);
        if n == 0 || b.len() < p + 2 + n {
            break;
        }
        out.extend_from_slice(&b[p + 2..p + 2 + n]);
        b = &b[(p + 4 + n).min(b.len())..];
    }
    out
}

fn http(port: u16, method: &str, path: &str) -> (u16, String) {
    let (status, body) = http_bytes(port, method, path);
    (status, String::from_utf8_lossy(&body).to_string())
}

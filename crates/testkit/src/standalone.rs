//! The real `tierlog standalone` (or `tierlog broker`) binary on 127.0.0.1 with its own data
//! directory and ports.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Standalone {
    child: Option<Child>,
    /// Where the process logs (standard error), and where this run's part starts.
    log: PathBuf,
    log_from: u64,
    pub web_port: u16,
    /// The binary-protocol port (`pulsar://127.0.0.1:<broker_port>`).
    pub broker_port: u16,
}

impl Standalone {
    /// Starts `bin standalone` with an empty config file, data under `dir/data`, free ports, and
    /// extra `TIERLOG_<key>` settings in `env`; waits until the readiness endpoint answers. It logs
    /// to `dir/tierlog.log` (a pipe nobody reads would stall a busy broker); [`stop`](Self::stop)
    /// returns this run's part, and every run's part is kept for the secret audit.
    pub fn start(bin: &Path, dir: &Path, env: &[(&str, &str)]) -> Standalone {
        let ports = (crate::free_port(), crate::free_port());
        Self::start_on("standalone", bin, dir, env, "tierlog.log", ports)
    }

    /// [`start`](Self::start) on given (web, binary) ports (a test that must name the ports in
    /// the configuration, e.g. in `advertisedListeners`).
    pub fn start_on_ports(
        bin: &Path,
        dir: &Path,
        env: &[(&str, &str)],
        ports: (u16, u16),
    ) -> Standalone {
        Self::start_on("standalone", bin, dir, env, "tierlog.log", ports)
    }

    /// Starts `bin broker` (one broker of a cluster; `env` names the etcd) like
    /// [`start`](Self::start), logging to `dir/broker.log` (a busy broker would fill a pipe
    /// nobody reads).
    pub fn start_broker(bin: &Path, dir: &Path, env: &[(&str, &str)]) -> Standalone {
        Self::start_broker_on(bin, dir, env, (crate::free_port(), crate::free_port()))
    }

    /// [`start_broker`](Self::start_broker) on given (web, binary) ports: a broker restarted
    /// where clients knew it (its log is appended to).
    pub fn start_broker_on(
        bin: &Path,
        dir: &Path,
        env: &[(&str, &str)],
        ports: (u16, u16),
    ) -> Standalone {
        Self::start_on("broker", bin, dir, env, "broker.log", ports)
    }

    fn start_on(
        mode: &str,
        bin: &Path,
        dir: &Path,
        env: &[(&str, &str)],
        log_name: &str,
        (web_port, broker_port): (u16, u16),
    ) -> Standalone {
        std::fs::create_dir_all(dir).expect("broker directory");
        let log = dir.join(log_name);
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("broker log");
        let log_from = log_file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut cmd = Command::new(bin);
        cmd.args([mode, "--config", "/dev/null"])
            .env("TIERLOG_dataDirectory", dir.join("data"))
            .env("TIERLOG_bindAddress", "127.0.0.1")
            .env("TIERLOG_webServicePort", web_port.to_string())
            .env("TIERLOG_brokerServicePort", broker_port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let s = Standalone {
            child: Some(cmd.spawn().expect("start tierlog")),
            log,
            log_from,
            web_port,
            broker_port,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        // Pulsar's readiness endpoint (the health check writes to a heartbeat topic). With
        // authentication on, an anonymous request is refused: any answer from the web port
        // other than "unreachable" or "unavailable" means it is up.
        while !matches!(
            s.call("GET", "/admin/v2/brokers/ready", None).0,
            200 | 401 | 403
        ) {
            assert!(
                Instant::now() < deadline,
                "tierlog {mode} did not become ready"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    /// Waits up to `wait` for the process to end by itself; its exit status if it did.
    pub fn wait_exit(&mut self, wait: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + wait;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `signal` (e.g. "STOP", "CONT") without waiting.
    pub fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .args(["-s", signal, &self.pid().to_string()])
            .status();
    }

    /// The broker's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// The broker's resident memory (VmRSS), in bytes.
    pub fn rss_bytes(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .unwrap_or(0)
    }

    pub fn service_url(&self) -> String {
        format!("pulsar://127.0.0.1:{}", self.broker_port)
    }

    /// SIGKILL: no clean shutdown.
    pub fn kill(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.web_port)
    }

    /// One HTTP/1.1 request; returns the status (0 if unreachable) and the body.
    pub fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        self.call_as(method, path, body, None)
    }

    /// [`call`](Self::call) with `Authorization: Bearer <token>`.
    pub fn call_as(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        token: Option<&str>,
    ) -> (u16, String) {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| ("Authorization", a))
            .into_iter()
            .collect();
        self.call_with_headers(method, path, body, &headers)
    }

    /// [`call`](Self::call) with extra request headers.
    pub fn call_with_headers(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (u16, String) {
        let (status, _, body) = self.exchange(method, path, body, headers);
        (status, body)
    }

    /// One HTTP/1.1 request; the status, the response's header lines, and its body.
    pub fn exchange(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (u16, String, String) {
        let auth: String = headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}\r\n"))
            .collect();
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.web_port)) else {
            return (0, String::new(), String::new());
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
        let body = body.unwrap_or("");
        let _ = write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let mut resp = String::new();
        let _ = s.read_to_string(&mut resp);
        let status = resp
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let (head, body) = resp
            .split_once("\r\n\r\n")
            .map(|(h, b)| (h.to_string(), b.to_string()))
            .unwrap_or_default();
        (status, head, body)
    }

    /// Sends `signal` (e.g. "TERM", "INT") and waits for the process to end; its exit status
    /// and this run's log (as `stderr`).
    pub fn stop(mut self, signal: &str) -> Output {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-s", signal, &child.id().to_string()])
            .status();
        let status = child.wait().expect("wait for tierlog");
        Output {
            status,
            stdout: Vec::new(),
            stderr: self.keep_log(),
        }
    }

    /// This run's part of the log, also kept for the secret audit.
    fn keep_log(&self) -> Vec<u8> {
        use std::io::Seek;
        let mut bytes = Vec::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.seek(std::io::SeekFrom::Start(self.log_from));
            let _ = f.read_to_end(&mut bytes);
        }
        crate::audit::keep("tierlog", &bytes);
        bytes
    }
}

impl Drop for Standalone {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            self.keep_log();
        }
    }
}

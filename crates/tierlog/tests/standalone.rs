//! The real `tierlog` binary: start-up, metrics over HTTP, clean shutdown on signals, and refusal
//! of bad configuration.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn tierlog() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tierlog"))
}

fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let status = resp.split_whitespace().nth(1)?.parse().ok()?;
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

fn start(dir: &Path, web: u16) -> Child {
    tierlog()
        .args(["standalone", "--config", "/dev/null"])
        .env("TIERLOG_dataDirectory", dir.join("data"))
        .env("TIERLOG_bindAddress", "127.0.0.1")
        .env("TIERLOG_webServicePort", web.to_string())
        .env("TIERLOG_brokerServicePort", free_port().to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_ready(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if http_get(port, "/admin/v2/brokers/health").is_some_and(|(s, _)| s == 200) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("broker did not become ready");
}

fn stop(child: Child, signal: &str) -> String {
    let status = Command::new("kill")
        .args(["-s", signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    stderr
}

#[test]
fn standalone_serves_metrics_and_shuts_down_cleanly_on_sigterm_and_sigint() {
    let dir = tempfile::tempdir().unwrap();
    for signal in ["TERM", "INT"] {
        let web = free_port();
        let child = start(dir.path(), web);
        wait_ready(web);
        let (status, body) = http_get(web, "/metrics").unwrap();
        assert_eq!(status, 200);
        assert!(
            body.contains("# TYPE tierlog_managed_ledgers gauge"),
            "{body}"
        );
        assert!(body.contains("tierlog_build_info{version="), "{body}");
        assert!(
            body.contains("tierlog_offload_requests_total{op=\"get\"} 0"),
            "{body}"
        );
        let stderr = stop(child, signal);
        assert!(
            stderr.contains(&format!("received SIG{signal}")),
            "{stderr}"
        );
        assert!(stderr.contains("shut down cleanly"), "{stderr}");
    }
    assert!(dir.path().join("data/metadata.redb").exists());
    assert!(
        dir.path().join("data/offloaded").is_dir(),
        "filesystem offload is the default"
    );
}

#[test]
fn bad_configuration_stops_startup_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("bad.conf");
    std::fs::write(&conf, "managedLedgerMaxEntriesPerLedger=lots\n").unwrap();
    let out = tierlog()
        .args(["standalone", "--config"])
        .arg(&conf)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid value for managedLedgerMaxEntriesPerLedger: \"lots\" (allowed: an integer >= 1)"),
        "{stderr}"
    );

    let out = tierlog()
        .args(["standalone", "--config", "/dev/null"])
        .env("TIERLOG_defaultRetentionSizeInMB", "-7")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("defaultRetentionSizeInMB: \"-7\""));

    for (key, value, expected) in [
        (
            "managedLedgerOffloadDriver",
            "tape",
            "invalid value for managedLedgerOffloadDriver: \"tape\"",
        ),
        (
            "s3ManagedLedgerOffloadMaxBlockSizeInBytes",
            "1024",
            "cannot be less than 5MB",
        ),
    ] {
        let out = tierlog()
            .args(["standalone", "--config", "/dev/null"])
            .env(
                "TIERLOG_managedLedgerOffloadDriver",
                if key == "managedLedgerOffloadDriver" {
                    value
                } else {
                    "aws-s3"
                },
            )
            .env("TIERLOG_s3ManagedLedgerOffloadBucket", "b")
            .env(format!("TIERLOG_{key}"), value)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{stderr}");
    }
}

#[test]
fn help_lists_every_subcommand() {
    let out = tierlog().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("standalone"), "{text}");
}

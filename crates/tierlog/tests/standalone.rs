//! The real `tierlog` binary: start-up, metrics over HTTP, clean shutdown on signals, and refusal
//! of bad configuration.

use std::path::Path;
use std::process::Command;

use testkit::standalone::Standalone;

fn tierlog() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tierlog"))
}

#[test]
fn standalone_serves_metrics_and_shuts_down_cleanly_on_sigterm_and_sigint() {
    let dir = tempfile::tempdir().unwrap();
    for signal in ["TERM", "INT"] {
        let broker = Standalone::start(Path::new(env!("CARGO_BIN_EXE_tierlog")), dir.path(), &[]);
        let (status, body) = broker.call("GET", "/metrics", None);
        assert_eq!(status, 200);
        assert!(
            body.contains("# TYPE pulsar_broker_topics_count gauge"),
            "{body}"
        );
        assert!(body.contains("tierlog_build_info{version="), "{body}");
        assert!(
            body.contains("tierlog_offload_requests_total{op=\"get\"} 0"),
            "{body}"
        );
        let out = broker.stop(signal);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
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

/// mimalloc's memory re-faulted as 2 MiB huge pages was 28 % of the broker's CPU under load
/// (docs/benchmarks.md): the process turns transparent huge pages off for itself.
#[cfg(target_os = "linux")]
#[test]
fn the_broker_runs_without_transparent_huge_pages() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Standalone::start(Path::new(env!("CARGO_BIN_EXE_tierlog")), dir.path(), &[]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", broker.pid())).unwrap();
    let thp = status
        .lines()
        .find_map(|l| l.strip_prefix("THP_enabled:"))
        .map(str::trim);
    // Kernels before 5.0 do not report it; every kernel we run on does.
    assert_eq!(thp, Some("0"), "{status}");
    let out = broker.stop("TERM");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
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
            .env("TIERLOG_s3ManagedLedgerOffloadBucket", "bucket")
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

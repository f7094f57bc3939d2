//! A TLS consumer stalled in the middle of a catch-up while its ledgers are offloaded and their
//! hot copies deleted. The entries the broker has queued for it are slices of read-ahead windows
//! mapped from the ledgers' files; the hot tier's deleter shortens a deleted file 2 s after its
//! deletion, and a TLS connection encrypts queued entries in user space, so reading a shortened
//! file's pages there would end the broker with SIGBUS. The windows pin their files: the
//! consumer, let go on, gets every message as produced and the broker is still up.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use testkit::pki::TestPki;

use crate::common;

const TOPIC: &str = "persistent://public/default/stalled-tls";
const COUNT: usize = 4000;
const SIZE: usize = 16 << 10;

#[test]
fn a_stalled_tls_consumer_gets_every_message_after_the_hot_copies_it_was_reading_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::generate(&dir.path().join("pki"));
    let (server_cert, server_key) = pki.server_for("broker", &["localhost"]);
    let tls_port = testkit::free_port();
    let mut b = common::start(
        dir.path(),
        &[
            ("TIERLOG_brokerServicePortTls", &tls_port.to_string()),
            (
                "TIERLOG_tlsCertificateFilePath",
                &server_cert.display().to_string(),
            ),
            ("TIERLOG_tlsKeyFilePath", &server_key.display().to_string()),
            ("TIERLOG_advertisedAddress", "localhost"),
            // Ledgers of 2000 entries (32 MiB): past a dispatcher's first read of a ledger
            // (8 MiB), its entries come from read-ahead windows, mapped.
            ("TIERLOG_managedLedgerMaxEntriesPerLedger", "2000"),
            ("TIERLOG_managedLedgerMinLedgerRolloverTimeMinutes", "0"),
            ("TIERLOG_managedLedgerOffloadDeletionLagMs", "0"),
            ("TIERLOG_retentionCheckIntervalInSeconds", "1"),
            ("TIERLOG_defaultRetentionTimeInMinutes", "-1"),
            ("TIERLOG_defaultRetentionSizeInMB", "-1"),
        ],
    );
    let tls_url = format!("pulsar+ssl://localhost:{tls_port}");
    let ca = pki.ca_file.display().to_string();
    let script = |phase: &str| -> Vec<String> {
        let url = b.service_url();
        [
            &url,
            &tls_url,
            &ca,
            TOPIC,
            phase,
            &COUNT.to_string(),
            &SIZE.to_string(),
        ]
        .map(str::to_string)
        .into()
    };
    let produced = common::run_client_script("python_stalled_tls.py", &to_strs(&script("produce")));
    assert_eq!(
        common::case_result(&produced, "produced"),
        COUNT.to_string()
    );
    let path = testkit::workspace_root().join("crates/tierlog/tests/clients/python_stalled_tls.py");
    let stderr = std::fs::File::create(dir.path().join("consumer.stderr")).unwrap();
    let mut consumer = Command::new(common::python())
        .arg(&path)
        .args(script("consume"))
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut out = BufReader::new(consumer.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "subscribed");
    // Stopped while the broker sends: the socket's buffers fill and the rest of what the
    // receiver queue allows (62.5 MiB) waits in the broker.
    std::thread::sleep(Duration::from_millis(20));
    signal(consumer.id(), "STOP");

    common::offload_now(&b, TOPIC);
    common::wait_for_no_hot_sealed_ledger(dir.path());
    // Past the deleter's grace (2 s) and several of its looks at the pinned files.
    std::thread::sleep(Duration::from_secs(4));
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", b.pid())).unwrap();
    let deleted_mapped = maps
        .lines()
        .filter(|l| l.contains(".sealed") && l.ends_with("(deleted)"))
        .count();
    assert!(
        deleted_mapped > 0,
        "no window of a deleted ledger is held for the stopped consumer: the test tests nothing"
    );
    let stats = common::admin_ok(&b, &["topics", "stats", TOPIC]);
    assert!(
        stats.contains("\"msgBacklog\""),
        "the broker answers while the consumer is stopped: {stats}"
    );

    signal(consumer.id(), "CONT");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let status = consumer.wait().unwrap();
    if let Some(ended) = b.wait_exit(Duration::ZERO) {
        panic!("the broker ended ({ended}) while the consumer was let go on; it printed: {rest}");
    }
    assert!(status.success(), "the consumer failed: {rest}");
    assert_eq!(
        common::case_result(&rest, "consumed"),
        format!("{COUNT} 0"),
        "messages received, and not as produced"
    );
    common::admin_ok(&b, &["topics", "stats", TOPIC]);
}

fn to_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -s {signal} {pid}");
}

//! Producer access modes with the official Python client (Pulsar's `AbstractTopic` rules).

mod common;

use std::process::Command;

#[test]
fn exclusive_wait_for_exclusive_and_fencing_producers_as_pulsar_answers_them() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path(), &[]);
    let script =
        testkit::workspace_root().join("crates/tierlog/tests/clients/python_access_modes.py");
    let out = testkit::audit::output(
        Command::new(common::python())
            .arg(&script)
            .arg(broker.service_url())
            .arg("persistent://public/default/exclusive"),
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let result = |case: &str| -> String {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(case).and_then(|r| r.strip_prefix(' ')))
            .unwrap_or_else(|| {
                let tail: Vec<&str> = stderr.lines().rev().take(30).collect();
                panic!("no result for {case}\nstdout:\n{stdout}\nstderr (tail):\n{tail:?}")
            })
            .to_string()
    };
    assert_eq!(result("exclusive"), "OK");
    // Pulsar answers a second Exclusive producer with ProducerFenced, a Shared one with
    // ProducerBusy.
    assert!(
        result("second-exclusive").starts_with("ERR ProducerFenced"),
        "{stdout}"
    );
    assert!(
        result("shared-beside-exclusive").starts_with("ERR ProducerBusy"),
        "{stdout}"
    );
    assert_eq!(result("waiting-while-held"), "still-waiting");
    assert_eq!(result("waiting-after-close"), "OK");
    assert_eq!(result("exclusive-again"), "OK");
    assert_eq!(result("fencing"), "OK");
    // The fenced producer came back with its older epoch: fenced for good.
    assert!(
        result("fenced-send").starts_with("ERR ProducerFenced"),
        "{stdout}"
    );
    // Its message never reaches the log.
    assert_eq!(result("log"), "a,b,c,d");
}

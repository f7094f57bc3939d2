//! Producer access modes with the official Python client (Pulsar's `AbstractTopic` rules).

use crate::common;

#[test]
fn exclusive_wait_for_exclusive_and_fencing_producers_as_pulsar_answers_them() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path(), &[]);
    let stdout = common::run_client_script(
        "python_access_modes.py",
        &[
            &broker.service_url(),
            "persistent://public/default/exclusive",
        ],
    );
    let result = |case: &str| common::case_result(&stdout, case).to_string();
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

//! Batch-index acknowledgement (`acknowledgmentAtBatchIndexLevelEnabled`, on by default as in
//! Pulsar 4.1) with the official Python client: messages acknowledged inside a batch are not
//! delivered again — after re-subscribing and after a SIGKILL of the broker — and the batch is
//! acknowledged as a whole once its last message is. Off, Pulsar's older behaviour: the whole
//! batch comes again.

use crate::common;

use serde_json::Value;
use testkit::standalone::Standalone;

fn run(broker: &Standalone, phase: &str, sub: &str) -> String {
    run_on(broker, "batches", phase, sub)
}

fn run_on(broker: &Standalone, topic: &str, phase: &str, sub: &str) -> String {
    let url = broker.service_url();
    let topic = format!("persistent://public/default/{topic}");
    let out = common::run_client_script("python_batch_acks.py", &[&url, &topic, phase, sub]);
    common::case_result(&out, if phase == "send" { "entries" } else { "got" }).to_string()
}

fn backlog(broker: &Standalone, sub: &str) -> Value {
    let (_, body) = broker.call(
        "GET",
        "/admin/v2/persistent/public/default/batches/stats",
        None,
    );
    let s: Value = serde_json::from_str(&body).unwrap();
    s["subscriptions"][sub]["msgBacklog"].clone()
}

const ALL: &str = "m0,m1,m2,m3,m4,m5,m6,m7,m8,m9";
const ODD: &str = "m1,m3,m5,m7,m9";

#[test]
fn acknowledged_batch_indexes_are_not_delivered_again_even_after_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path(), &[]);
    // Subscriptions first, so they see the batch.
    assert_eq!(run(&broker, "receive", "shared"), "");
    assert_eq!(run(&broker, "receive", "exclusive"), "");
    assert_eq!(
        run(&broker, "send", ""),
        "1",
        "the ten messages are one entry"
    );

    assert_eq!(run(&broker, "ack-even", "shared"), ALL);
    assert_eq!(run(&broker, "receive", "shared"), ODD);
    // Acknowledging up to m4 of the batch cumulatively leaves m5..m9.
    assert_eq!(run(&broker, "cumulative", "exclusive"), ALL);
    assert_eq!(run(&broker, "receive", "exclusive"), "m5,m6,m7,m8,m9");
    assert_eq!(
        backlog(&broker, "shared"),
        1,
        "the entry is not acknowledged yet"
    );

    // The ack sets were persisted with the cursors.
    drop(broker.stop("KILL"));
    let broker = common::start(dir.path(), &[]);
    assert_eq!(run(&broker, "receive", "shared"), ODD);
    assert_eq!(run(&broker, "receive", "exclusive"), "m5,m6,m7,m8,m9");

    // The last messages acknowledged, the entry is.
    assert_eq!(run(&broker, "ack-rest", "shared"), ODD);
    assert_eq!(run(&broker, "receive", "shared"), "");
    assert_eq!(backlog(&broker, "shared"), 0);
    drop(broker.stop("TERM"));

    // Off: acks inside a batch are ignored and the whole batch comes again.
    let broker = common::start(
        dir.path(),
        &[("TIERLOG_acknowledgmentAtBatchIndexLevelEnabled", "false")],
    );
    assert_eq!(run_on(&broker, "off", "receive", "s"), "");
    assert_eq!(run_on(&broker, "off", "send", ""), "1");
    assert_eq!(run_on(&broker, "off", "ack-even", "s"), ALL);
    assert_eq!(run_on(&broker, "off", "receive", "s"), ALL);
}

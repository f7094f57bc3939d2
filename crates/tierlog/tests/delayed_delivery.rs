//! Delayed delivery with the official Python client: Shared subscriptions hold a message until
//! its `deliver_after`, across a SIGKILL of the broker too; Exclusive ones do not hold it.

use crate::common;

fn run(broker: &testkit::standalone::Standalone, args: &[&str]) -> String {
    let url = broker.service_url();
    let mut all = vec![url.as_str(), "persistent://public/default/delayed"];
    all.extend_from_slice(args);
    common::run_client_script("python_delayed.py", &all)
}

fn fields<'a>(out: &'a str, key: &str) -> Vec<&'a str> {
    common::case_result(out, key).split(' ').collect()
}

#[test]
fn deliver_after_holds_messages_on_shared_subscriptions_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path(), &[]);
    let out = run(&broker, &["now"]);
    assert_eq!(fields(&out, "first"), ["now"]);
    let second = fields(&out, "second");
    assert_eq!(second[0], "later");
    let waited: f64 = second[1].parse().unwrap();
    assert!(waited >= 2.0, "delivered after {waited} s, asked for 2 s");
    assert_eq!(fields(&out, "exclusive-first"), ["later"]);

    let out = run(&broker, &["before"]);
    let sent_at = fields(&out, "sent-at")[0].to_string();
    drop(broker.stop("KILL"));
    let broker = common::start(dir.path(), &[]);
    let out = run(&broker, &["after", &sent_at]);
    let after = fields(&out, "after");
    assert_eq!(after[0], "held");
    let waited: f64 = after[1].parse().unwrap();
    assert!(
        waited >= 4.0,
        "delivered {waited} s after sending, asked for 4 s"
    );
}

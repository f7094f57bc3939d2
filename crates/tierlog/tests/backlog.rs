//! Message TTL and backlog quotas with the official Python client and `tierlog admin`:
//! - over a `producer_exception` quota, attached producers are closed by the periodic check and
//!   new ones refused (`ProducerBlockedQuotaExceededException`; `producer_request_hold` answers
//!   `ProducerBlockedQuotaExceededError`) until the subscription consumes its backlog;
//! - `consumer_backlog_eviction` keeps the backlog under the limit by dropping the oldest
//!   messages of the slow subscription, and never refuses a producer;
//! - messages older than the namespace's TTL are acknowledged by the periodic check, and
//!   `topics expire-messages` expires on request.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::raw::Raw;
use protocol::pb;
use serde_json::Value;
use testkit::standalone::Standalone;

fn client(b: &Standalone, topic: &str, args: &[&str]) -> String {
    let url = b.service_url();
    let topic = format!("persistent://public/default/{topic}");
    let mut all = vec![url.as_str(), topic.as_str()];
    all.extend_from_slice(args);
    common::run_client_script("python_backlog.py", &all)
}

fn admin(b: &Standalone, args: &[&str]) -> std::process::Output {
    testkit::audit::output(
        Command::new(common::bin())
            .args(["admin", "--admin-url", &b.admin_url()])
            .args(args),
    )
}

fn admin_ok(b: &Standalone, args: &[&str]) -> String {
    let out = admin(b, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn backlog(b: &Standalone, topic: &str, sub: &str) -> i64 {
    let (_, body) = b.call(
        "GET",
        &format!("/admin/v2/persistent/public/default/{topic}/stats"),
        None,
    );
    let s: Value = serde_json::from_str(&body).unwrap();
    s["subscriptions"][sub]["msgBacklog"].as_i64().unwrap_or(-1)
}

fn start(dir: &std::path::Path) -> Standalone {
    common::start(
        dir,
        &[
            ("TIERLOG_backlogQuotaCheckIntervalInSeconds", "1"),
            // 1.2 s: Pulsar's key is in minutes; fractions are taken.
            ("TIERLOG_messageExpiryCheckIntervalInMinutes", "0.02"),
        ],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn over_a_producer_quota_producers_are_refused_until_the_backlog_is_consumed() {
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path());
    admin_ok(
        &b,
        &[
            "namespaces",
            "set-backlog-quota",
            "public/default",
            "-l",
            "20K",
            "-p",
            "producer_exception",
        ],
    );
    let quotas = admin_ok(&b, &["namespaces", "get-backlog-quotas", "public/default"]);
    let q: Value = serde_json::from_str(&quotas).unwrap();
    assert_eq!(q["destination_storage"]["limitSize"], 20480, "{quotas}");
    assert_eq!(q["destination_storage"]["policy"], "producer_exception");

    client(&b, "quota", &["subscribe", "slow"]);
    let out = client(&b, "quota", &["produce", "40", "1000"]);
    let sent: usize = common::case_result(&out, "sent").parse().unwrap();
    assert!(sent > 20, "{out}");
    // The periodic check closes the producer; created again, it is refused.
    std::thread::sleep(Duration::from_millis(2500));
    let refused = client(&b, "quota", &["create-producer"]);
    assert!(
        common::case_result(&refused, "producer").starts_with("ERR ProducerBlockedQuotaExceeded"),
        "{refused}"
    );
    let raw = Raw::create_producer(b.broker_port, "persistent://public/default/quota", None).await;
    let e = raw.error.expect("refused");
    assert_eq!(
        e.error,
        pb::ServerError::ProducerBlockedQuotaExceededException as i32
    );
    assert_eq!(
        e.message,
        "Cannot create producer on topic with backlog quota exceeded"
    );

    // producer_request_hold: the error clients retry on.
    admin_ok(
        &b,
        &[
            "namespaces",
            "set-backlog-quota",
            "public/default",
            "-l",
            "20K",
            "-p",
            "producer_request_hold",
        ],
    );
    let raw = Raw::create_producer(b.broker_port, "persistent://public/default/quota", None).await;
    assert_eq!(
        raw.error.expect("refused").error,
        pb::ServerError::ProducerBlockedQuotaExceededError as i32
    );

    let acked = client(&b, "quota", &["ack-all", "slow"]);
    assert_eq!(common::case_result(&acked, "acked"), sent.to_string());
    assert_eq!(
        common::case_result(&client(&b, "quota", &["create-producer"]), "producer"),
        "OK"
    );
    admin_ok(
        &b,
        &["namespaces", "remove-backlog-quota", "public/default"],
    );
    assert_eq!(
        admin_ok(&b, &["namespaces", "get-backlog-quotas", "public/default"]).trim(),
        "{}"
    );
}

#[test]
fn eviction_drops_the_oldest_messages_of_the_slow_subscription_and_refuses_no_producer() {
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path());
    admin_ok(
        &b,
        &[
            "namespaces",
            "set-backlog-quota",
            "public/default",
            "-l",
            "20K",
            "-p",
            "consumer_backlog_eviction",
        ],
    );
    client(&b, "evict", &["subscribe", "slow"]);
    let out = client(&b, "evict", &["produce", "60", "1000"]);
    assert_eq!(common::case_result(&out, "sent"), "60", "{out}");
    std::thread::sleep(Duration::from_millis(2500));
    let got = client(&b, "evict", &["receive", "slow"]);
    let fields: Vec<i64> = common::case_result(&got, "got")
        .split(' ')
        .map(|f| f.parse().unwrap())
        .collect();
    let (count, first) = (fields[0], fields[1]);
    // 20 KiB hold 19 entries of 1000 bytes and their metadata; what is left is the newest.
    assert!((10..=20).contains(&count), "{got}");
    assert_eq!(first + count, 60, "{got}");
}

#[test]
fn messages_past_the_ttl_are_acknowledged_and_expire_messages_expires_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path());
    admin_ok(
        &b,
        &[
            "namespaces",
            "set-message-ttl",
            "public/default",
            "--messageTTL",
            "2",
        ],
    );
    assert_eq!(
        admin_ok(&b, &["namespaces", "get-message-ttl", "public/default"]).trim(),
        "2"
    );
    client(&b, "ttl", &["subscribe", "s"]);
    client(&b, "ttl", &["produce", "5", "10"]);
    let produced = Instant::now();
    assert_eq!(backlog(&b, "ttl", "s"), 5);
    let deadline = produced + Duration::from_secs(15);
    while backlog(&b, "ttl", "s") != 0 {
        assert!(
            Instant::now() < deadline,
            "the TTL did not expire the messages"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        produced.elapsed() >= Duration::from_secs(2),
        "expired before the TTL"
    );
    assert_eq!(
        common::case_result(&client(&b, "ttl", &["receive", "s"]), "got"),
        "0 -1"
    );

    // On request, with the TTL removed.
    admin_ok(&b, &["namespaces", "remove-message-ttl", "public/default"]);
    client(&b, "ttl", &["produce", "5", "10"]);
    admin_ok(
        &b,
        &[
            "topics",
            "expire-messages-all-subscriptions",
            "persistent://public/default/ttl",
            "-t",
            "1h",
        ],
    );
    assert_eq!(backlog(&b, "ttl", "s"), 5, "nothing is an hour old");
    std::thread::sleep(Duration::from_millis(1100));
    admin_ok(
        &b,
        &[
            "topics",
            "expire-messages",
            "persistent://public/default/ttl",
            "-s",
            "s",
            "-t",
            "1",
        ],
    );
    assert_eq!(backlog(&b, "ttl", "s"), 0);
    // A topic's own TTL, with none on the namespace.
    let topic = "persistent://public/default/ttl-own";
    client(&b, "ttl-own", &["subscribe", "s"]);
    admin_ok(&b, &["topics", "set-message-ttl", topic, "-t", "1"]);
    assert_eq!(
        admin_ok(&b, &["topics", "get-message-ttl", topic]).trim(),
        "1"
    );
    client(&b, "ttl-own", &["produce", "3", "10"]);
    let deadline = Instant::now() + Duration::from_secs(15);
    while backlog(&b, "ttl-own", "s") != 0 {
        assert!(
            Instant::now() < deadline,
            "the topic's TTL did not expire the messages"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    admin_ok(&b, &["topics", "remove-message-ttl", topic]);
    assert_eq!(
        admin_ok(&b, &["topics", "get-message-ttl", topic]).trim(),
        "null"
    );

    let out = admin(
        &b,
        &[
            "topics",
            "expire-messages",
            "persistent://public/default/ttl",
            "-s",
            "nope",
            "-t",
            "1",
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Subscription not found"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_topics_own_quota_applies_to_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path());
    let own = "persistent://public/default/own-quota";
    admin_ok(
        &b,
        &[
            "topics",
            "set-backlog-quota",
            own,
            "-l",
            "20K",
            "-p",
            "producer_exception",
        ],
    );
    let q: Value =
        serde_json::from_str(&admin_ok(&b, &["topics", "get-backlog-quotas", own])).unwrap();
    assert_eq!(q["destination_storage"]["limitSize"], 20480);
    for topic in ["own-quota", "free"] {
        client(&b, topic, &["subscribe", "slow"]);
        client(&b, topic, &["produce", "40", "1000"]);
    }
    std::thread::sleep(Duration::from_millis(2500));
    let refused = client(&b, "own-quota", &["create-producer"]);
    assert!(
        common::case_result(&refused, "producer").starts_with("ERR ProducerBlockedQuotaExceeded"),
        "{refused}"
    );
    assert_eq!(
        common::case_result(&client(&b, "free", &["create-producer"]), "producer"),
        "OK",
        "the namespace has no quota"
    );
    admin_ok(&b, &["topics", "remove-backlog-quota", own]);
    assert_eq!(
        common::case_result(&client(&b, "own-quota", &["create-producer"]), "producer"),
        "OK"
    );
}

//! pulsar-admin's subscription and message commands against a running broker, with messages
//! produced and consumed by pulsar-rs: create-subscription at earliest / latest / a message id,
//! subscriptions, skip, clear-backlog, reset-cursor (id, excluded id, time), peek-messages
//! (single and batch entries), examine-message, get-message-by-id, last-message-id, and
//! unsubscribe refused while a consumer is attached unless forced.

use crate::common;

use std::time::{Duration, Instant};

use pulsar::SubType;
use pulsar::consumer::InitialPosition;
use pulsar::producer::ProducerOptions;
use serde_json::Value;
use testkit::standalone::Standalone;

fn backlog(b: &Standalone, topic: &str, sub: &str) -> i64 {
    let s: Value = serde_json::from_str(&common::admin_ok(b, &["topics", "stats", topic])).unwrap();
    s["subscriptions"][sub]["msgBacklog"]
        .as_i64()
        .unwrap_or_else(|| panic!("no backlog for {sub}: {s}"))
}

/// The exit status, stdout and stderr of a command that must fail.
fn admin_err(b: &Standalone, args: &[&str]) -> String {
    let out = common::admin(b, args);
    assert!(!out.status.success(), "{args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_are_created_moved_peeked_and_deleted_as_pulsar_admin_does() {
    let dir = tempfile::tempdir().unwrap();
    let b = common::start(dir.path(), &[]);
    let client = common::client(&b).await;
    let ids = common::produce(&client, "subs", 0..10, 20, ProducerOptions::default()).await;
    let ledger = ids[0].0;
    assert!(ids.iter().all(|(l, _)| *l == ledger), "{ids:?}");
    let id = |e: u64| format!("{ledger}:{e}");
    let admin = |args: &[&str]| common::admin_ok(&b, args);

    // Created at the start, at the end, at a message.
    admin(&[
        "topics",
        "create-subscription",
        "-s",
        "from-start",
        "-m",
        "earliest",
        "subs",
    ]);
    admin(&["topics", "create-subscription", "-s", "from-end", "subs"]);
    admin(&[
        "topics",
        "create-subscription",
        "-s",
        "from-5",
        "-m",
        &id(5),
        "subs",
    ]);
    let listed = admin(&["topics", "subscriptions", "subs"]);
    let listed: Vec<&str> = listed.lines().collect();
    assert_eq!(listed, ["from-5", "from-end", "from-start"]);
    let err = admin_err(
        &b,
        &["topics", "create-subscription", "-s", "from-end", "subs"],
    );
    assert!(
        err.contains("Subscription already exists for topic") && err.contains("409"),
        "{err}"
    );
    assert_eq!(backlog(&b, "subs", "from-start"), 10);
    assert_eq!(backlog(&b, "subs", "from-end"), 0);
    assert_eq!(backlog(&b, "subs", "from-5"), 5);

    // Skip, peek what follows, clear.
    admin(&["topics", "skip", "-s", "from-start", "-n", "3", "subs"]);
    assert_eq!(backlog(&b, "subs", "from-start"), 7);
    let peeked = admin(&[
        "topics",
        "peek-messages",
        "-s",
        "from-start",
        "-n",
        "2",
        "subs",
    ]);
    assert!(
        peeked.contains(&format!("Message ID: {}\n", id(3))),
        "{peeked}"
    );
    assert!(
        peeked.contains(&format!("Message ID: {}\n", id(4))),
        "{peeked}"
    );
    assert!(!peeked.contains(&id(5)), "{peeked}");
    assert!(peeked.contains("Event time: 1700000000003"), "{peeked}");
    assert!(peeked.contains("\"i\": \"3\""), "{peeked}");
    // The payload "m-0000003-…" in the hex dump's text column.
    assert!(peeked.contains("|m-0000003-"), "{peeked}");
    assert_eq!(
        backlog(&b, "subs", "from-start"),
        7,
        "peeking acknowledges nothing"
    );
    admin(&["topics", "clear-backlog", "-s", "from-start", "subs"]);
    assert_eq!(backlog(&b, "subs", "from-start"), 0);
    let nothing = admin(&["topics", "peek-messages", "-s", "from-start", "subs"]);
    assert_eq!(nothing, "");

    // Reset to a message, after it, and back in time.
    admin(&[
        "topics",
        "reset-cursor",
        "-s",
        "from-start",
        "-m",
        &id(2),
        "subs",
    ]);
    assert_eq!(backlog(&b, "subs", "from-start"), 8);
    admin(&[
        "topics",
        "reset-cursor",
        "-s",
        "from-start",
        "-m",
        &id(2),
        "-e",
        "subs",
    ]);
    assert_eq!(backlog(&b, "subs", "from-start"), 7);
    admin(&[
        "topics",
        "reset-cursor",
        "-s",
        "from-start",
        "-t",
        "1h",
        "subs",
    ]);
    assert_eq!(backlog(&b, "subs", "from-start"), 10);
    let err = admin_err(&b, &["topics", "reset-cursor", "-s", "from-start", "subs"]);
    assert!(
        err.contains("Either Timestamp (--time) or messageId"),
        "{err}"
    );

    // Messages by position and by id; the last id.
    let first = admin(&[
        "topics",
        "examine-message",
        "-i",
        "earliest",
        "-m",
        "1",
        "subs",
    ]);
    assert!(
        first.starts_with(&format!("Message ID: {}\n", id(0))),
        "{first}"
    );
    let last = admin(&["topics", "examine-message", "subs"]);
    assert!(
        last.starts_with(&format!("Message ID: {}\n", id(9))),
        "{last}"
    );
    let err = admin_err(&b, &["topics", "examine-message", "-m", "11", "subs"]);
    assert!(err.contains("404"), "{err}");
    let by_id = admin(&[
        "topics",
        "get-message-by-id",
        "-l",
        &ledger.to_string(),
        "-e",
        "7",
        "subs",
    ]);
    assert!(
        by_id.starts_with(&format!("Message ID: {}\n", id(7))),
        "{by_id}"
    );
    assert!(by_id.contains("|m-0000007-"), "{by_id}");
    let missing = admin(&[
        "topics",
        "get-message-by-id",
        "-l",
        &ledger.to_string(),
        "-e",
        "70",
        "subs",
    ]);
    assert_eq!(
        missing.trim(),
        format!("Cannot find any messages based on ledgerId:{ledger} entryId:70")
    );
    let last_id: Value =
        serde_json::from_str(&admin(&["topics", "last-message-id", "subs"])).unwrap();
    assert_eq!(last_id["ledgerId"], ledger, "{last_id}");
    assert_eq!(last_id["entryId"], 9, "{last_id}");
    assert_eq!(last_id["partitionIndex"], -1, "{last_id}");

    // A subscription that does not exist is named.
    let err = admin_err(&b, &["topics", "skip", "-s", "nope", "-n", "1", "subs"]);
    assert!(
        err.contains("Subscription not found") && err.contains("404"),
        "{err}"
    );
    let err = admin_err(&b, &["topics", "peek-messages", "-s", "nope", "subs"]);
    assert!(err.contains("Subscription not found"), "{err}");

    // A batch entry peeks as its messages.
    let batched = ProducerOptions {
        batch_size: Some(5),
        ..Default::default()
    };
    let ids = common::produce(&client, "subs-batch", 0..5, 12, batched).await;
    assert!(ids.iter().all(|i| *i == ids[0]), "one entry: {ids:?}");
    admin(&[
        "topics",
        "create-subscription",
        "-s",
        "s",
        "-m",
        "earliest",
        "subs-batch",
    ]);
    let peeked = admin(&[
        "topics",
        "peek-messages",
        "-s",
        "s",
        "-n",
        "3",
        "subs-batch",
    ]);
    let (l, e) = ids[0];
    for i in 0..3 {
        assert!(
            peeked.contains(&format!("Batch Message ID: {l}:{e}:{i}\n")),
            "{peeked}"
        );
        assert!(peeked.contains(&format!("|m-000000{i}-")), "{peeked}");
    }
    assert!(!peeked.contains(&format!("{l}:{e}:3")), "{peeked}");

    // A loaded subscription: a reset sends its consumer back to the start.
    let mut reader = common::consumer(
        &client,
        "subs",
        "reader",
        SubType::Exclusive,
        InitialPosition::Earliest,
    )
    .await;
    let got = common::receive(&mut reader, 10, true, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 10);
    let deadline = Instant::now() + Duration::from_secs(10);
    while backlog(&b, "subs", "reader") != 0 {
        assert!(Instant::now() < deadline, "acks never landed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    admin(&[
        "topics",
        "reset-cursor",
        "-s",
        "reader",
        "-m",
        "earliest",
        "subs",
    ]);
    let again = common::receive(&mut reader, 10, true, Duration::from_secs(20)).await;
    let indexes: Vec<usize> = again.iter().map(|r| r.0).collect();
    assert_eq!(indexes, (0..10).collect::<Vec<_>>());

    reader.close().await.expect("close reader");

    // Unsubscribe: refused while a consumer is attached, unless forced (a raw consumer, which
    // does not subscribe again once closed).
    let mut held = common::raw::Raw::connect(b.broker_port).await;
    held.subscribe("persistent://public/default/subs", "held", 1)
        .await;
    let err = admin_err(&b, &["topics", "unsubscribe", "-s", "held", "subs"]);
    assert!(
        err.contains("Subscription has active connected consumers") && err.contains("412"),
        "{err}"
    );
    admin(&["topics", "unsubscribe", "-s", "held", "-f", "subs"]);
    admin(&["topics", "unsubscribe", "-s", "from-end", "subs"]);
    let listed = admin(&["topics", "subscriptions", "subs"]);
    let listed: Vec<&str> = listed.lines().collect();
    assert_eq!(listed, ["from-5", "from-start", "reader"]);
    let err = admin_err(&b, &["topics", "unsubscribe", "-s", "from-end", "subs"]);
    assert!(err.contains("Subscription not found"), "{err}");
}

/// `topics terminate`: the last message's id, as pulsar-admin prints it; producers refused
/// with TopicTerminatedError (also after a restart); a consumer that has read everything is
/// told REACHED_END_OF_TOPIC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_topic_takes_no_more_messages_and_says_where_it_ends() {
    use protocol::pb::{self, BaseCommand, ServerError, base_command::Type};
    let dir = tempfile::tempdir().unwrap();
    let mut b = common::start(dir.path(), &[]);
    let topic = "persistent://public/default/ending";
    let client = common::client(&b).await;
    let ids = common::produce(&client, topic, 0..3, 10, ProducerOptions::default()).await;
    let (ledger, last) = ids[2];

    // A consumer reads the three messages, then waits.
    let mut consumer = common::raw::Raw::connect(b.broker_port).await;
    consumer.subscribe(topic, "reader", 1).await;
    consumer
        .write(&protocol::encode_command(&BaseCommand {
            flow: Some(Box::new(pb::CommandFlow {
                consumer_id: 1,
                message_permits: 100,
            })),
            ..protocol::commands::base(Type::Flow)
        }))
        .await;
    let mut seen = 0;
    while seen < 3 {
        let c = consumer
            .next_within(Duration::from_secs(10))
            .await
            .expect("a message");
        assert!(c.reached_end_of_topic.is_none(), "too early: {c:?}");
        if c.message.is_some() {
            seen += 1;
        }
    }

    let out = common::admin_ok(&b, &["topics", "terminate", topic]);
    assert_eq!(
        out,
        format!("Topic successfully terminated at {ledger}:{last}:-1\n")
    );
    let ended = loop {
        let c = consumer
            .next_within(Duration::from_secs(10))
            .await
            .expect("REACHED_END_OF_TOPIC");
        if let Some(e) = c.reached_end_of_topic {
            break e;
        }
    };
    assert_eq!(ended.consumer_id, 1);
    // Again: the same answer.
    let again = common::admin_ok(&b, &["topics", "terminate", topic]);
    assert_eq!(again, out);
    let last_id: Value =
        serde_json::from_str(&common::admin_ok(&b, &["topics", "last-message-id", topic])).unwrap();
    assert_eq!(last_id["entryId"], last as i64);

    let refused = |reply: BaseCommand| {
        let e = reply
            .error
            .clone()
            .unwrap_or_else(|| panic!("refused: {reply:?}"));
        assert_eq!(e.error, ServerError::TopicTerminatedError as i32, "{e:?}");
    };
    refused(common::raw::Raw::create_producer(b.broker_port, topic, None).await);
    // Still terminated after a restart.
    let out = b.stop("TERM");
    assert!(out.status.success());
    b = common::start(dir.path(), &[]);
    refused(common::raw::Raw::create_producer(b.broker_port, topic, None).await);
    let err = admin_err(
        &b,
        &["topics", "terminate", "persistent://public/default/nope"],
    );
    assert!(err.contains("Topic not found"), "{err}");
}

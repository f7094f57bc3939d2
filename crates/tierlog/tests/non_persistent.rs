//! Non-persistent topics: messages sent with no subscriber are acknowledged and gone, consumers
//! of a Shared subscription share what is sent, nothing is stored (no managed ledger, no
//! internal stats), and GET_TOPICS_OF_NAMESPACE answers per mode (persistent, non-persistent,
//! all), so a NonPersistentOnly regex consumer of the official Python client finds the topic.

use crate::common;

use common::raw::Raw;
use protocol::pb;
use protocol::pb::command_get_topics_of_namespace::Mode;

async fn topics_of(port: u16, mode: Mode) -> Vec<String> {
    let mut raw = Raw::connect(port).await;
    raw.write(&protocol::encode_command(&pb::BaseCommand {
        get_topics_of_namespace: Some(Box::new(pb::CommandGetTopicsOfNamespace {
            request_id: 1,
            namespace: "public/default".into(),
            mode: Some(mode as i32),
            ..Default::default()
        })),
        ..protocol::commands::base(pb::base_command::Type::GetTopicsOfNamespace)
    }))
    .await;
    let mut topics = raw
        .next()
        .await
        .get_topics_of_namespace_response
        .expect("an answer")
        .topics;
    topics.sort();
    topics
}

#[tokio::test(flavor = "multi_thread")]
async fn non_persistent_messages_reach_only_the_consumers_attached_then_and_are_never_stored() {
    let dir = tempfile::tempdir().unwrap();
    let b = common::start(dir.path(), &[]);
    // A persistent topic next to it, for the listing.
    let (code, _) = b.call("PUT", "/admin/v2/persistent/public/default/np-b", None);
    assert_eq!(code, 204);
    // A producer keeps the non-persistent topic alive while the listing is asked.
    let mut producer = Raw::connect(b.broker_port).await;
    producer
        .producer("non-persistent://public/default/np-a")
        .await;

    assert_eq!(
        topics_of(b.broker_port, Mode::Persistent).await,
        ["persistent://public/default/np-b"]
    );
    assert_eq!(
        topics_of(b.broker_port, Mode::NonPersistent).await,
        ["non-persistent://public/default/np-a"]
    );
    assert_eq!(
        topics_of(b.broker_port, Mode::All).await,
        [
            "non-persistent://public/default/np-a",
            "persistent://public/default/np-b"
        ]
    );

    let out = common::run_client_script("python_non_persistent.py", &[&b.service_url()]);
    assert_eq!(common::case_result(&out, "no-subscriber"), "kept-1 0");
    let shared: Vec<u32> = common::case_result(&out, "shared")
        .split(' ')
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(shared.iter().sum::<u32>(), 10, "{out}");
    assert!(
        shared.iter().all(|n| *n > 0),
        "both consumers got some: {out}"
    );
    assert_eq!(common::case_result(&out, "regex"), "via-regex");

    // Nothing was stored: no managed ledger exists for it.
    let (code, body) = b.call(
        "GET",
        "/admin/v2/persistent/public/default/np-a/internalStats",
        None,
    );
    assert_eq!(code, 404, "{body}");
}

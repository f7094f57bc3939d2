//! Names on both ports are checked as Pulsar checks them (and refused where they could not be
//! stored or shown safely), and every metadata key encodes each name, so no two topics or
//! subscriptions share state.

use crate::common;

use std::time::Duration;

use pulsar::SubType;
use pulsar::consumer::{ConsumerOptions, InitialPosition};
use pulsar::producer::ProducerOptions;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_names_are_refused_on_both_ports() {
    let dir = tempfile::tempdir().unwrap();
    let b = common::start(dir.path(), &[]);
    // REST: a '/' in the topic part (encoded), control and bidi characters, a huge name.
    for local in [
        "a%2Fb",
        "x%00y",
        "line%0Abreak",
        "%E2%80%AEtxt",
        &"x".repeat(1100),
    ] {
        let (status, body) = b.call(
            "PUT",
            &format!("/admin/v2/persistent/public/default/{local}"),
            None,
        );
        assert_eq!(status, 412, "{local}: {body}");
        let reason: Value = serde_json::from_str(&body).unwrap();
        assert!(
            reason["reason"]
                .as_str()
                .unwrap()
                .contains("invalid topic name")
        );
    }
    let (status, _) = b.call("PUT", "/admin/v2/tenants/bad%20tenant", None);
    assert_eq!(status, 412);

    // Binary protocol: the topic and the subscription names of producers and consumers.
    let client = common::client(&b).await;
    let e = client
        .producer()
        .with_topic("persistent://public/default/a/b")
        .build()
        .await;
    assert!(e.is_err(), "a topic with a fourth part is refused");
    for sub in [
        "",
        "with\nnewline",
        "nul\u{0}",
        "\u{202E}evil",
        &"s".repeat(1100),
    ] {
        let e = client
            .consumer()
            .with_topic("fine")
            .with_subscription(sub)
            .build::<Vec<u8>>()
            .await;
        assert!(e.is_err(), "subscription {sub:?} must be refused");
    }
    // Nothing was created for the refused names.
    let (_, topics) = b.call("GET", "/admin/v2/persistent/public/default", None);
    assert!(!topics.contains("a/b"), "{topics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_whose_names_hold_slashes_and_percents_stay_apart() {
    let dir = tempfile::tempdir().unwrap();
    let b = common::start(dir.path(), &[]);
    let client = common::client(&b).await;
    common::produce(&client, "a", 0..10, 10, ProducerOptions::default()).await;
    // Two subscriptions whose names would share a key if names were not encoded.
    let sub = async |name: &str| {
        client
            .consumer()
            .with_topic("a")
            .with_subscription(name)
            .with_subscription_type(SubType::Exclusive)
            .with_options(
                ConsumerOptions::default().with_initial_position(InitialPosition::Earliest),
            )
            .build::<Vec<u8>>()
            .await
            .unwrap()
    };
    let mut slash = sub("b/c").await;
    let got = common::receive(&mut slash, 4, true, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 4);
    let percent = sub("b%2Fc").await;
    drop((slash, percent, client));
    b.stop("TERM");

    let b = common::start(dir.path(), &[]);
    let (_, body) = b.call(
        "GET",
        "/admin/v2/persistent/public/default/a/internalStats",
        None,
    );
    let stats: Value = serde_json::from_str(&body).unwrap();
    let cursors = stats["cursors"].as_object().unwrap();
    assert_eq!(cursors.len(), 2, "{body}");
    let (_, body) = b.call("GET", "/admin/v2/persistent/public/default/a/stats", None);
    let s: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(s["subscriptions"]["b/c"]["msgBacklog"], 6, "{body}");
    assert_eq!(s["subscriptions"]["b%2Fc"]["msgBacklog"], 10, "{body}");
}

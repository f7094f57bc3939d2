//! Advertised listeners (`advertisedListeners`, `internalListenerName`): a client naming a
//! listener — in its binary LOOKUP, the HTTP lookup's `listenerName` or `X-Pulsar-ListenerName`
//! — is given that listener's address, on a standalone broker and across a cluster (where the
//! owner's listener is what a redirect names); one naming no listener gets the internal one; an
//! unknown listener is Pulsar's error. The official Python client works through a listener.

use crate::common;

use common::raw::Raw;
use pb::command_lookup_topic_response::LookupType;
use protocol::pb;
use serde_json::Value;
use testkit::etcd::EtcdServer;
use testkit::standalone::Standalone;

/// `internal` on 127.0.0.1, `external` on localhost: both reach the broker, and the address a
/// lookup answers with tells which listener it chose.
fn listeners(port: u16) -> String {
    format!("internal:pulsar://127.0.0.1:{port},external:pulsar://localhost:{port}")
}

async fn lookup(port: u16, topic: &str, listener: Option<&str>) -> pb::CommandLookupTopicResponse {
    let mut raw = Raw::connect(port).await;
    raw.write(&protocol::encode_command(&pb::BaseCommand {
        lookup_topic: Some(Box::new(pb::CommandLookupTopic {
            topic: topic.into(),
            request_id: 1,
            advertised_listener_name: listener.map(str::to_string),
            ..Default::default()
        })),
        ..protocol::commands::base(pb::base_command::Type::Lookup)
    }))
    .await;
    *raw.next()
        .await
        .lookup_topic_response
        .expect("a LOOKUP_RESPONSE")
}

fn python(url: &str, listener: &str, topics: &[&str]) -> String {
    let mut args = vec![url, listener];
    args.extend_from_slice(topics);
    let out = common::run_client_script("python_listeners.py", &args);
    common::case_result(&out, "result").to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lookup_naming_a_listener_gets_its_address_and_an_unknown_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ports = (testkit::free_port(), testkit::free_port());
    let p = ports.1;
    let b = Standalone::start_on_ports(
        common::bin(),
        dir.path(),
        &[("TIERLOG_advertisedListeners", &listeners(p))],
        ports,
    );
    let topic = "persistent://public/default/t";

    let plain = lookup(p, topic, None).await;
    assert_eq!(
        plain.broker_service_url.as_deref(),
        Some(&*format!("pulsar://127.0.0.1:{p}"))
    );
    let external = lookup(p, topic, Some("external")).await;
    assert_eq!(external.response, Some(LookupType::Connect as i32));
    assert_eq!(
        external.broker_service_url.as_deref(),
        Some(&*format!("pulsar://localhost:{p}"))
    );
    assert_eq!(external.proxy_through_service_url, Some(false));
    let unknown = lookup(p, topic, Some("nope")).await;
    assert_eq!(unknown.response, Some(LookupType::Failed as i32));
    assert_eq!(unknown.error, Some(pb::ServerError::ServiceNotReady as i32));
    assert_eq!(
        unknown.message.as_deref(),
        Some("the broker do not have nope listener")
    );

    let http = |path: &str, header: Option<&str>| {
        let headers: Vec<(&str, &str)> = header
            .map(|h| ("X-Pulsar-ListenerName", h))
            .into_iter()
            .collect();
        b.call_with_headers("GET", path, None, &headers)
    };
    let path = "/lookup/v2/topic/persistent/public/default/t";
    let broker_url = |body: &str| -> String {
        let v: Value = serde_json::from_str(body).unwrap();
        v["brokerUrl"].as_str().unwrap().to_string()
    };
    let (code, body) = http(&format!("{path}?listenerName=external"), None);
    assert_eq!(
        (code, broker_url(&body)),
        (200, format!("pulsar://localhost:{p}"))
    );
    let (code, body) = http(path, Some("external"));
    assert_eq!(
        (code, broker_url(&body)),
        (200, format!("pulsar://localhost:{p}"))
    );
    let (code, body) = http(path, None);
    assert_eq!(
        (code, broker_url(&body)),
        (200, format!("pulsar://127.0.0.1:{p}"))
    );
    assert_eq!(http(&format!("{path}?listenerName=nope"), None).0, 500);

    let url = b.service_url();
    assert_eq!(python(&url, "external", &[topic]), "OK");
    let refused = python(&url, "nope", &["persistent://public/default/u"]);
    assert!(refused.starts_with("ERR"), "{refused}");
}

#[tokio::test(flavor = "multi_thread")]
async fn across_a_cluster_a_redirect_names_the_owners_address_on_the_listener_asked_for() {
    let etcd = EtcdServer::start();
    let meta = format!("etcd:{}", etcd.endpoint());
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let ports: Vec<(u16, u16)> = (0..2)
        .map(|_| (testkit::free_port(), testkit::free_port()))
        .collect();
    let brokers: Vec<Standalone> = dirs
        .iter()
        .zip(&ports)
        .map(|(d, ports)| {
            let l = listeners(ports.1);
            let env = [
                ("TIERLOG_metadataStoreUrl", meta.as_str()),
                ("TIERLOG_clusterName", "tierlog"),
                ("TIERLOG_defaultNumberOfNamespaceBundles", "4"),
                ("TIERLOG_advertisedListeners", l.as_str()),
            ];
            Standalone::start_broker_on(common::bin(), d.path(), &env, *ports)
        })
        .collect();
    let (p0, p1) = (ports[0].1, ports[1].1);
    // Enough topics that both brokers own some; each lookup asks broker 0.
    let topics: Vec<String> = (0..12)
        .map(|i| format!("persistent://public/default/l{i}"))
        .collect();
    // The client follows the redirects, so the owners take the bundles (a lookup alone only
    // names the broker that would).
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    assert_eq!(python(&brokers[0].service_url(), "external", &names), "OK");
    let mut redirected = 0;
    for t in &topics {
        let a = lookup(p0, t, Some("external")).await;
        let expect = if a.response == Some(LookupType::Redirect as i32) {
            redirected += 1;
            p1
        } else {
            assert_eq!(a.response, Some(LookupType::Connect as i32), "{a:?}");
            p0
        };
        assert_eq!(
            a.broker_service_url.as_deref(),
            Some(&*format!("pulsar://localhost:{expect}")),
            "{t}: {a:?}"
        );
        let again = lookup(p0, t, None).await;
        assert_eq!(
            again.broker_service_url.as_deref(),
            Some(&*format!("pulsar://127.0.0.1:{expect}")),
            "{t}: without a listener, the internal one"
        );
    }
    assert!(
        redirected > 0 && redirected < topics.len(),
        "{redirected} redirected"
    );
    // HTTP: a lookup at broker 0 for a topic broker 1 owns is redirected with the listener,
    // and broker 1 answers with its address on it.
    let elsewhere = topics
        .iter()
        .find(|t| {
            let (_, head, _) = brokers[0].exchange(
                "GET",
                &format!("/lookup/v2/topic/persistent/public/default/{}", local(t)),
                None,
                &[],
            );
            head.starts_with("HTTP/1.1 307")
        })
        .expect("a topic broker 1 owns");
    let path = format!(
        "/lookup/v2/topic/persistent/public/default/{}?listenerName=external",
        local(elsewhere)
    );
    let (status, head, _) = brokers[0].exchange("GET", &path, None, &[]);
    assert_eq!(status, 307, "{head}");
    let location = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("location: ")
                .or_else(|| l.strip_prefix("Location: "))
        })
        .expect("a Location header")
        .to_string();
    assert!(location.contains("listenerName=external"), "{location}");
    let owner_path = &location[location.find("/lookup/").expect("a lookup path")..];
    let (status, body) = brokers[1].call("GET", owner_path, None);
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["brokerUrl"], format!("pulsar://localhost:{p1}"), "{body}");
}

/// The local name of `persistent://public/default/<local>`.
fn local(topic: &str) -> &str {
    topic.rsplit('/').next().unwrap_or(topic)
}

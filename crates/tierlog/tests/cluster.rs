//! `tierlog broker`: three brokers on a real etcd serve 30 topics to the official Python
//! client given one broker's URL; every broker owns bundles, lookups (binary and HTTP) redirect
//! to the owner, admin requests for a topic are redirected to its owner, the admin CLI lists the
//! brokers, an unloaded namespace comes back to the same brokers (local data), a broker
//! stopped with SIGTERM gives up its bundles at once, and a broker paused past its session's
//! TTL acknowledges nothing after it resumes, closes its producers, and registers again.

use crate::common;

use std::time::Duration;

use common::raw::Raw;
use protocol::pb;

use std::process::Command;

use testkit::etcd::EtcdServer;
use testkit::standalone::Standalone;

struct Cluster {
    _etcd: EtcdServer,
    _dirs: Vec<tempfile::TempDir>,
    brokers: Vec<Standalone>,
}

fn cluster(n: usize) -> Cluster {
    let etcd = EtcdServer::start();
    let url = format!("etcd:{}", etcd.endpoint());
    let env = [
        ("TIERLOG_metadataStoreUrl", url.as_str()),
        ("TIERLOG_clusterName", "tierlog"),
        ("TIERLOG_metadataStoreSessionTimeoutMillis", "2000"),
        ("TIERLOG_defaultNumberOfNamespaceBundles", "4"),
    ];
    let dirs: Vec<_> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
    // Started together, as an operator starts a cluster: they race to create public/default.
    let brokers = std::thread::scope(|scope| {
        let starting: Vec<_> = dirs
            .iter()
            .map(|d| scope.spawn(|| Standalone::start_broker(common::bin(), d.path(), &env)))
            .collect();
        starting
            .into_iter()
            .map(|h| h.join().expect("a broker starts"))
            .collect::<Vec<_>>()
    });
    Cluster {
        _etcd: etcd,
        _dirs: dirs,
        brokers,
    }
}

fn id(b: &Standalone) -> String {
    format!("127.0.0.1:{}", b.web_port)
}

/// The bundles each broker owns, per the admin API of broker 0.
fn owned(c: &Cluster) -> Vec<Vec<String>> {
    c.brokers
        .iter()
        .map(|b| {
            let (status, body) = c.brokers[0].call(
                "GET",
                &format!("/admin/v2/brokers/tierlog/{}/ownedNamespaces", id(b)),
                None,
            );
            assert_eq!(status, 200, "{body}");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            v.as_object().unwrap().keys().cloned().collect()
        })
        .collect()
}

fn run_python(url: &str, topics: usize, per_topic: usize) {
    run_python_trusting(url, topics, per_topic, None)
}

fn run_python_trusting(url: &str, topics: usize, per_topic: usize, ca: Option<&std::path::Path>) {
    let script = testkit::workspace_root().join("crates/tierlog/tests/clients/python_cluster.py");
    let out = Command::new(common::python())
        .arg(script)
        .args([url, &topics.to_string(), &per_topic.to_string()])
        .args(ca)
        .output()
        .expect("run the Python client");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("OK"),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn header<'a>(raw: &'a str, name: &str) -> Option<&'a str> {
    raw.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// A request whose answer headers matter (the redirect tests).
fn raw_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_brokers_serve_thirty_topics_through_one_url() {
    let c = cluster(3);
    let b0 = &c.brokers[0];
    // The admin CLI lists the three brokers.
    let listed = common::admin_ok(b0, &["brokers", "list", "tierlog"]);
    let mut want: Vec<String> = c.brokers.iter().map(id).collect();
    want.sort();
    assert_eq!(listed.lines().map(str::to_string).collect::<Vec<_>>(), want);

    run_python(&b0.service_url(), 30, 20);

    let owned = owned(&c);
    for (i, o) in owned.iter().enumerate() {
        assert!(!o.is_empty(), "broker {i} owns no bundle: {owned:?}");
    }
    assert_eq!(owned.iter().map(Vec::len).sum::<usize>(), 4, "{owned:?}");

    // HTTP lookups at broker 0 of a topic another broker owns answer a 307 to that broker;
    // the same path there answers its own URLs.
    let mut redirected = 0;
    for i in 0..30 {
        let path = format!("/lookup/v2/topic/persistent/public/default/cluster-t{i}");
        let raw = raw_get(b0.web_port, &path);
        if raw.starts_with("HTTP/1.1 307") {
            let location = header(&raw, "location").unwrap().to_string();
            let owner = c
                .brokers
                .iter()
                .find(|b| location.starts_with(&b.admin_url()))
                .unwrap_or_else(|| panic!("redirect to no broker: {location}"));
            let (status, body) =
                owner.call("GET", location.trim_start_matches(&owner.admin_url()), None);
            assert_eq!(status, 200, "{body}");
            assert!(body.contains(&owner.service_url()), "{body}");
            redirected += 1;
        } else {
            assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
            assert!(raw.contains(&b0.service_url()), "{raw}");
        }
    }
    assert!(redirected > 0, "no topic is owned by another broker");

    // Admin requests for a topic go to its owner: the CLI follows the 307 and gets its stats.
    for i in 0..30 {
        let stats = common::admin_ok(b0, &["topics", "stats", &format!("cluster-t{i}")]);
        assert!(stats.contains("\"s\""), "topic {i}: {stats}");
    }

    // An unloaded namespace comes back to the same brokers (their disks hold the data), and
    // every message is still there for a new subscription.
    common::admin_ok(b0, &["namespaces", "unload", "public/default"]);
    assert!(self::owned(&c).iter().all(Vec::is_empty));
    run_python(&c.brokers[1].service_url(), 30, 0);
    let after = self::owned(&c);
    for (i, (before, now)) in owned.iter().zip(&after).enumerate() {
        let mut before = before.clone();
        before.sort();
        let mut now = now.clone();
        now.sort();
        assert_eq!(before, now, "broker {i}");
    }

    // `tierlog perf` looks its topics up: at the owner it produces, elsewhere it says where
    // the topic is served.
    let mut produced = 0;
    for i in 0..30 {
        let topic = format!("persistent://public/default/cluster-t{i}");
        let out = Command::new(common::bin())
            .args([
                "perf",
                "produce",
                "-u",
                &b0.service_url(),
                "-r",
                "0",
                "-m",
                "5",
                &topic,
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            produced += 1;
        } else {
            assert!(
                stderr.contains("is served by pulsar://127.0.0.1:"),
                "{stderr}"
            );
        }
    }
    assert!(
        produced > 0 && produced < 30,
        "{produced} of 30 produced at broker 0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_stopped_with_sigterm_gives_up_its_bundles_at_once() {
    let mut c = cluster(2);
    run_python(&c.brokers[0].service_url(), 12, 5);
    let before = owned(&c);
    assert!(before.iter().all(|o| !o.is_empty()), "{before:?}");
    let gone = c.brokers.remove(1);
    let gone_id = id(&gone);
    let out = gone.stop("TERM");
    assert!(out.status.success(), "{out:?}");
    // No waiting for the lease: the registration and the ownerships are gone already.
    let listed = common::admin_ok(&c.brokers[0], &["brokers", "list", "tierlog"]);
    assert!(!listed.contains(&gone_id), "{listed}");
    let (_, body) = c.brokers[0].call(
        "GET",
        &format!("/admin/v2/brokers/tierlog/{gone_id}/ownedNamespaces"),
        None,
    );
    assert_eq!(body, "{}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_paused_past_its_lease_acknowledges_nothing_more_and_registers_again() {
    let mut c = cluster(2);
    let topic = "persistent://public/default/zombie";
    let a = &c.brokers[0];
    let mut raw = Raw::connect(a.broker_port).await;
    // Bring the topic's bundle to broker a (following a redirect if b was chosen).
    let answer = raw.lookup(topic, 1).await;
    if answer.response != Some(pb::command_lookup_topic_response::LookupType::Connect as i32) {
        let other = c
            .brokers
            .iter()
            .position(|b| Some(b.service_url()) == answer.broker_service_url)
            .expect("redirected to a broker of the cluster");
        c.brokers.swap(0, other);
    }
    let a = &c.brokers[0];
    let mut raw = Raw::connect(a.broker_port).await;
    let mut lookup = pb::CommandLookupTopic {
        topic: topic.into(),
        request_id: 2,
        authoritative: Some(true),
        ..Default::default()
    };
    raw.write(&protocol::encode_command(&pb::BaseCommand {
        lookup_topic: Some(Box::new(lookup.clone())),
        ..protocol::commands::base(pb::base_command::Type::Lookup)
    }))
    .await;
    let answer = raw.next().await.lookup_topic_response.unwrap();
    assert_eq!(
        answer.response,
        Some(pb::command_lookup_topic_response::LookupType::Connect as i32),
        "{answer:?}"
    );
    raw.producer(topic).await;
    let meta = pb::MessageMetadata {
        producer_name: "raw".into(),
        sequence_id: 0,
        publish_time: 1_700_000_000_000,
        ..Default::default()
    };
    let first = raw.send(0, None, &meta, b"before").await;
    assert!(first.send_receipt.is_some(), "{first:?}");

    // Paused for three TTLs: its lease ends, broker b takes the bundle on the next lookup.
    a.signal("STOP");
    tokio::time::sleep(Duration::from_secs(6)).await;
    let mut at_b = Raw::connect(c.brokers[1].broker_port).await;
    lookup.request_id = 3;
    lookup.authoritative = Some(false);
    let answer = at_b.lookup(topic, 3).await;
    assert_eq!(
        answer.broker_service_url.as_deref(),
        Some(c.brokers[1].service_url().as_str()),
        "b owns the bundle after a's lease ended: {answer:?}"
    );
    a.signal("CONT");
    let meta = pb::MessageMetadata {
        sequence_id: 1,
        ..meta
    };
    raw.send_only(1, &meta, b"after").await;
    // Whatever comes back, it is not an acknowledgement (the producer is closed: its client
    // looks the topic up again).
    let mut closed = false;
    while let Some(cmd) = raw.try_next(Duration::from_secs(5)).await {
        assert!(
            cmd.send_receipt.is_none(),
            "the paused broker acknowledged: {cmd:?}"
        );
        closed |= cmd.close_producer.is_some();
    }
    assert!(closed, "the producer at the paused broker was not closed");
    // The broker stays up (zookeeperSessionExpiredPolicy=reconnect), registers again, and
    // sends clients of the topic to its new owner.
    let a_id = id(&c.brokers[0]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !common::admin_ok(&c.brokers[1], &["brokers", "list", "tierlog"]).contains(&a_id) {
        assert!(
            std::time::Instant::now() < deadline,
            "broker a did not register again"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(c.brokers[0].wait_exit(Duration::from_millis(100)).is_none());
    let mut again = Raw::connect(c.brokers[0].broker_port).await;
    let answer = again.lookup(topic, 4).await;
    assert_eq!(
        answer.broker_service_url.as_deref(),
        Some(c.brokers[1].service_url().as_str()),
        "{answer:?}"
    );
}

/// TLS across a cluster: brokers register their TLS URLs, so a pulsar+ssl:// (or https://)
/// client sent to another broker's bundle is redirected to that broker's TLS port.
#[test]
fn tls_clients_are_redirected_to_the_owners_tls_ports() {
    let etcd = EtcdServer::start();
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = testkit::pki::TestPki::generate(pki_dir.path());
    let url = format!("etcd:{}", etcd.endpoint());
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut tls_ports = Vec::new();
    let brokers: Vec<Standalone> = dirs
        .iter()
        .map(|d| {
            let (tls, web_tls) = (testkit::free_port(), testkit::free_port());
            tls_ports.push((tls, web_tls));
            let (tls, web_tls) = (tls.to_string(), web_tls.to_string());
            let cert = pki.server_cert.display().to_string();
            let key = pki.server_key.display().to_string();
            let env = [
                ("TIERLOG_metadataStoreUrl", url.as_str()),
                ("TIERLOG_clusterName", "tierlog"),
                ("TIERLOG_defaultNumberOfNamespaceBundles", "4"),
                ("TIERLOG_brokerServicePortTls", tls.as_str()),
                ("TIERLOG_webServicePortTls", web_tls.as_str()),
                ("TIERLOG_tlsCertificateFilePath", cert.as_str()),
                ("TIERLOG_tlsKeyFilePath", key.as_str()),
            ];
            Standalone::start_broker(common::bin(), d.path(), &env)
        })
        .collect();
    let (tls0, web_tls0) = tls_ports[0];
    run_python_trusting(
        &format!("pulsar+ssl://127.0.0.1:{tls0}"),
        8,
        5,
        Some(&pki.ca_file),
    );
    // Both brokers own bundles by now, so some of the topics were served by broker 1.
    let serving: Vec<usize> = brokers
        .iter()
        .map(|b| {
            let (status, body) = brokers[0].call(
                "GET",
                &format!(
                    "/admin/v2/brokers/tierlog/127.0.0.1:{}/ownedNamespaces",
                    b.web_port
                ),
                None,
            );
            assert_eq!(status, 200, "{body}");
            serde_json::from_str::<serde_json::Value>(&body)
                .unwrap()
                .as_object()
                .unwrap()
                .len()
        })
        .collect();
    assert!(serving.iter().all(|n| *n > 0), "{serving:?}");
    // The same through https:// lookups (307s to the owner's https port).
    run_python_trusting(
        &format!("https://127.0.0.1:{web_tls0}"),
        8,
        5,
        Some(&pki.ca_file),
    );
}

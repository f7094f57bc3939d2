//! The admin REST API of the real `tierlog standalone` over HTTP: Pulsar's paths, bodies, status
//! codes and `{"reason": ...}` errors.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Broker {
    child: Child,
    web: u16,
}

impl Broker {
    fn start(dir: &std::path::Path) -> Broker {
        let web = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_tierlog"))
            .args(["standalone", "--config", "/dev/null"])
            .env("TIERLOG_dataDirectory", dir.join("data"))
            .env("TIERLOG_bindAddress", "127.0.0.1")
            .env("TIERLOG_webServicePort", web.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let b = Broker { child, web };
        let deadline = Instant::now() + Duration::from_secs(30);
        while b.call("GET", "/admin/v2/brokers/health", None).0 != 200 {
            assert!(Instant::now() < deadline, "broker did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        b
    }

    fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.web)) else {
            return (0, String::new());
        };
        let body = body.unwrap_or("");
        let _ = write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let mut resp = String::new();
        let _ = s.read_to_string(&mut resp);
        let status = resp
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let body = resp
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }

    fn json(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let (status, text) = self.call(method, path, body);
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

#[test]
fn tenants_namespaces_policies_topics_and_offload_status() {
    let dir = tempfile::tempdir().unwrap();
    let b = Broker::start(dir.path());
    assert_eq!(
        b.json("GET", "/admin/v2/tenants", None),
        (200, json!(["public"]))
    );
    assert_eq!(
        b.json("GET", "/admin/v2/namespaces/public", None),
        (200, json!(["public/default"]))
    );

    assert_eq!(
        b.call(
            "PUT",
            "/admin/v2/tenants/t1",
            Some(r#"{"allowedClusters":["standalone"]}"#)
        )
        .0,
        204
    );
    assert_eq!(b.call("PUT", "/admin/v2/namespaces/t1/ns1", None).0, 204);
    assert_eq!(
        b.json("PUT", "/admin/v2/namespaces/t1/ns1", None),
        (409, json!({"reason": "Namespace already exists"}))
    );
    assert_eq!(
        b.json("PUT", "/admin/v2/namespaces/nobody/ns", None),
        (404, json!({"reason": "Tenant does not exist"}))
    );
    assert_eq!(
        b.json("GET", "/admin/v2/namespaces/t1/nope/retention", None),
        (404, json!({"reason": "Namespace does not exist"}))
    );

    // Retention, in pulsar-admin's units; malformed bodies are 400 with a reason.
    let r = r#"{"retentionTimeInMinutes":4320,"retentionSizeInMB":10240}"#;
    assert_eq!(
        b.call("POST", "/admin/v2/namespaces/t1/ns1/retention", Some(r))
            .0,
        204
    );
    assert_eq!(
        b.json("GET", "/admin/v2/namespaces/t1/ns1/retention", None),
        (
            200,
            json!({"retentionTimeInMinutes": 4320, "retentionSizeInMB": 10240})
        )
    );
    let (status, body) = b.json("POST", "/admin/v2/namespaces/t1/ns1/retention", Some("{"));
    assert_eq!(status, 400);
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .starts_with("Invalid retention policies"),
        "{body}"
    );
    // The seed's `--size -10G --time 3d`: negative size means unlimited, as older brokers accepted.
    let r = r#"{"retentionTimeInMinutes":4320,"retentionSizeInMB":-10240}"#;
    assert_eq!(
        b.call("POST", "/admin/v2/namespaces/t1/ns1/retention", Some(r))
            .0,
        204
    );
    let (status, body) = b.json(
        "POST",
        "/admin/v2/namespaces/t1/ns1/retention",
        Some(r#"{"retentionTimeInMinutes":0,"retentionSizeInMB":10}"#),
    );
    assert_eq!(status, 412, "{body}");

    // Offload policies.
    assert_eq!(
        b.call(
            "PUT",
            "/admin/v2/namespaces/t1/ns1/offloadThreshold",
            Some("10485760")
        )
        .0,
        204
    );
    assert_eq!(
        b.json("GET", "/admin/v2/namespaces/t1/ns1/offloadThreshold", None),
        (200, json!(10485760))
    );
    assert_eq!(
        b.call(
            "GET",
            "/admin/v2/namespaces/t1/ns1/offloadDeletionLagMs",
            None
        )
        .0,
        204,
        "unset: empty body"
    );
    assert_eq!(
        b.call(
            "PUT",
            "/admin/v2/namespaces/t1/ns1/offloadDeletionLagMs",
            Some("3600000")
        )
        .0,
        204
    );
    assert_eq!(
        b.json(
            "GET",
            "/admin/v2/namespaces/t1/ns1/offloadDeletionLagMs",
            None
        ),
        (200, json!(3600000))
    );
    assert_eq!(
        b.call(
            "DELETE",
            "/admin/v2/namespaces/t1/ns1/offloadDeletionLagMs",
            None
        )
        .0,
        204
    );
    assert_eq!(
        b.call(
            "GET",
            "/admin/v2/namespaces/t1/ns1/offloadDeletionLagMs",
            None
        )
        .0,
        204
    );
    assert_eq!(
        b.json(
            "PUT",
            "/admin/v2/namespaces/t1/ns1/offloadThreshold",
            Some("ten")
        )
        .0,
        400
    );

    // Topics.
    let topic = "/admin/v2/persistent/t1/ns1/topic-a";
    assert_eq!(b.call("PUT", topic, None).0, 204);
    assert_eq!(
        b.json("PUT", topic, None),
        (409, json!({"reason": "This topic already exists"}))
    );
    assert_eq!(
        b.json("GET", "/admin/v2/persistent/t1/ns1", None),
        (200, json!(["persistent://t1/ns1/topic-a"]))
    );
    assert_eq!(
        b.json(
            "GET",
            "/admin/v2/persistent/t1/ns1/missing/internalStats",
            None
        ),
        (404, json!({"reason": "Topic not found"}))
    );
    let (status, stats) = b.json("GET", &format!("{topic}/internalStats"), None);
    assert_eq!(status, 200);
    let ledgers = stats["ledgers"].as_array().unwrap();
    assert_eq!(ledgers.len(), 1);
    assert_eq!(ledgers[0]["entries"], 0);
    assert_eq!(ledgers[0]["offloaded"], false);
    assert_eq!(stats["numberOfEntries"], 0);
    assert!(
        stats["lastLedgerCreatedTimestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let current = ledgers[0]["ledgerId"].as_i64().unwrap();

    let (status, st) = b.json("GET", &format!("{topic}/offload"), None);
    assert_eq!((status, st["status"].clone()), (200, json!("NOT_RUN")));
    assert_eq!(
        b.json("PUT", &format!("{topic}/offload"), Some("not json"))
            .0,
        400
    );
    let id = format!(r#"{{"ledgerId":{current},"entryId":0,"partitionIndex":-1}}"#);
    assert_eq!(b.call("PUT", &format!("{topic}/offload"), Some(&id)).0, 204);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, st) = b.json("GET", &format!("{topic}/offload"), None);
        if st["status"] == "SUCCESS" {
            assert_eq!(
                st["firstUnoffloadedMessage"],
                json!({"ledgerId": current, "entryId": 0, "partitionIndex": -1})
            );
            break;
        }
        assert!(Instant::now() < deadline, "offload did not finish: {st}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        b.json("DELETE", "/admin/v2/namespaces/t1/ns1", None),
        (409, json!({"reason": "Cannot delete non empty namespace"}))
    );
    assert_eq!(b.call("DELETE", topic, None).0, 204);
    assert_eq!(
        b.json("GET", "/admin/v2/persistent/t1/ns1", None),
        (200, json!([]))
    );
    b.stop();

    // Policies survive a restart.
    let b = Broker::start(dir.path());
    assert_eq!(
        b.json("GET", "/admin/v2/namespaces/t1/ns1/offloadThreshold", None),
        (200, json!(10485760))
    );
    assert_eq!(
        b.json("GET", "/admin/v2/tenants", None),
        (200, json!(["public", "t1"]))
    );
    assert_eq!(b.call("DELETE", "/admin/v2/namespaces/t1/ns1", None).0, 204);
    assert_eq!(b.call("DELETE", "/admin/v2/tenants/t1", None).0, 204);
    b.stop();
}

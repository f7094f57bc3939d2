//! The admin REST API of the real `tierlog standalone` over HTTP: Pulsar's paths, bodies, status
//! codes and `{"reason": ...}` errors.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::standalone::Standalone;

fn start(dir: &Path) -> Standalone {
    Standalone::start(Path::new(env!("CARGO_BIN_EXE_tierlog")), dir, &[])
}

fn call_json(b: &Standalone, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let (status, text) = b.call(method, path, body);
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[test]
fn tenants_namespaces_policies_topics_and_offload_status() {
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path());
    assert_eq!(
        call_json(&b, "GET", "/admin/v2/tenants", None),
        (200, json!(["public"]))
    );
    assert_eq!(
        call_json(&b, "GET", "/admin/v2/namespaces/public", None),
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
        call_json(&b, "PUT", "/admin/v2/namespaces/t1/ns1", None),
        (409, json!({"reason": "Namespace already exists"}))
    );
    assert_eq!(
        call_json(&b, "PUT", "/admin/v2/namespaces/nobody/ns", None),
        (404, json!({"reason": "Tenant does not exist"}))
    );
    assert_eq!(
        call_json(&b, "GET", "/admin/v2/namespaces/t1/nope/retention", None),
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
        call_json(&b, "GET", "/admin/v2/namespaces/t1/ns1/retention", None),
        (
            200,
            json!({"retentionTimeInMinutes": 4320, "retentionSizeInMB": 10240})
        )
    );
    let (status, body) = call_json(
        &b,
        "POST",
        "/admin/v2/namespaces/t1/ns1/retention",
        Some("{"),
    );
    assert_eq!(status, 400);
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .starts_with("Invalid retention policies"),
        "{body}"
    );
    // What the old `--size -10G` sends: older brokers took it as unlimited, Pulsar now refuses
    // limits below -1, and so does tierlog.
    let r = r#"{"retentionTimeInMinutes":4320,"retentionSizeInMB":-10240}"#;
    assert_eq!(
        b.call("POST", "/admin/v2/namespaces/t1/ns1/retention", Some(r))
            .0,
        412
    );
    let r = r#"{"retentionTimeInMinutes":4320,"retentionSizeInMB":-1}"#;
    assert_eq!(
        b.call("POST", "/admin/v2/namespaces/t1/ns1/retention", Some(r))
            .0,
        204
    );
    let (status, body) = call_json(
        &b,
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
        call_json(
            &b,
            "GET",
            "/admin/v2/namespaces/t1/ns1/offloadThreshold",
            None
        ),
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
        call_json(
            &b,
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
        call_json(
            &b,
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
        call_json(&b, "PUT", topic, None),
        (409, json!({"reason": "This topic already exists"}))
    );
    assert_eq!(
        call_json(&b, "GET", "/admin/v2/persistent/t1/ns1", None),
        (200, json!(["persistent://t1/ns1/topic-a"]))
    );
    assert_eq!(
        call_json(
            &b,
            "GET",
            "/admin/v2/persistent/t1/ns1/missing/internalStats",
            None
        ),
        (404, json!({"reason": "Topic not found"}))
    );
    let (status, stats) = call_json(&b, "GET", &format!("{topic}/internalStats"), None);
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

    let (status, st) = call_json(&b, "GET", &format!("{topic}/offload"), None);
    assert_eq!((status, st["status"].clone()), (200, json!("NOT_RUN")));
    assert_eq!(
        call_json(&b, "PUT", &format!("{topic}/offload"), Some("not json")).0,
        400
    );
    let id = format!(r#"{{"ledgerId":{current},"entryId":0,"partitionIndex":-1}}"#);
    assert_eq!(b.call("PUT", &format!("{topic}/offload"), Some(&id)).0, 204);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, st) = call_json(&b, "GET", &format!("{topic}/offload"), None);
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
        call_json(&b, "DELETE", "/admin/v2/namespaces/t1/ns1", None),
        (409, json!({"reason": "Cannot delete non empty namespace"}))
    );
    assert_eq!(b.call("DELETE", topic, None).0, 204);
    assert_eq!(
        call_json(&b, "GET", "/admin/v2/persistent/t1/ns1", None),
        (200, json!([]))
    );
    b.stop("TERM");

    // Policies survive a restart.
    let b = start(dir.path());
    assert_eq!(
        call_json(
            &b,
            "GET",
            "/admin/v2/namespaces/t1/ns1/offloadThreshold",
            None
        ),
        (200, json!(10485760))
    );
    assert_eq!(
        call_json(&b, "GET", "/admin/v2/tenants", None),
        (200, json!(["public", "t1"]))
    );
    assert_eq!(b.call("DELETE", "/admin/v2/namespaces/t1/ns1", None).0, 204);
    assert_eq!(b.call("DELETE", "/admin/v2/tenants/t1", None).0, 204);
    b.stop("TERM");
}

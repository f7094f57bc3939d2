//! Bad policy values sent to a real `tierlog standalone`, over REST (the CLI is not the only
//! client) and through `tierlog admin`: each is refused with Pulsar's `{"reason": …}` naming what
//! was wrong, and nothing is stored.

use crate::common;

use serde_json::Value;
use testkit::standalone::Standalone;

/// Sends `body` and expects `status` with a JSON reason containing `expect`.
fn refused(b: &Standalone, method: &str, path: &str, body: &str, status: u16, expect: &str) {
    let (got, text) = b.call(method, path, Some(body));
    assert_eq!(got, status, "{method} {path} {body}: {text}");
    let v: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text:?}"));
    let reason = v["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(expect),
        "{method} {path} {body}: {reason:?}"
    );
}

fn get(b: &Standalone, path: &str) -> (u16, String) {
    b.call("GET", path, None)
}

/// Runs `tierlog admin` and expects it to fail with `expect` in its error output.
fn cli_refused(b: &Standalone, args: &[&str], expect: &str) {
    let out = common::admin(b, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(stderr.contains(expect), "{args:?}: {stderr}");
}

const NS: &str = "/admin/v2/namespaces/public/default";
const TOPIC: &str = "/admin/v2/persistent/public/default/t1";

#[test]
fn retention_below_minus_one_is_refused_on_namespaces_and_topics() {
    let dir = tempfile::tempdir().unwrap();
    let b = common::start(dir.path(), &[]);
    assert_eq!(b.call("PUT", TOPIC, None).0, 204);

    let ns = format!("{NS}/retention");
    let topic = format!("{TOPIC}/retention");
    for (body, expect) in [
        (
            r#"{"retentionTimeInMinutes":-5,"retentionSizeInMB":-2}"#,
            "size limit must be >= -1",
        ),
        (
            r#"{"retentionTimeInMinutes":-2,"retentionSizeInMB":10}"#,
            "time limit must be >= -1",
        ),
    ] {
        refused(&b, "POST", &ns, body, 412, expect);
        refused(&b, "POST", &topic, body, 412, expect);
    }
    refused(
        &b,
        "POST",
        &topic,
        r#"{"retentionTimeInMinutes":-7,"retentionSizeInMB":-9}"#,
        412,
        "size limit must be >= -1",
    );
    // Nothing was stored: the namespace has no retention policy, the topic none of its own.
    let (_, ns_policies) = get(&b, NS);
    let v: Value = serde_json::from_str(&ns_policies).unwrap();
    assert!(v["retention_policies"].is_null(), "{ns_policies}");
    assert_eq!(get(&b, &topic).0, 204);

    // The CLI refuses what its unit conversion would otherwise turn into "no retention" (0/0)
    // and what would overflow.
    cli_refused(
        &b,
        &[
            "namespaces",
            "set-retention",
            "public/default",
            "-s",
            "-5G",
            "-t",
            "-2d",
        ],
        "Invalid retention size '-5G'",
    );
    cli_refused(
        &b,
        &["topics", "set-retention", "t1", "-s", "-7", "-t", "-9"],
        "Invalid retention size '-7'",
    );
    cli_refused(
        &b,
        &["topics", "set-retention", "t1", "-s", "10M", "-t", "-9"],
        "Invalid retention time '-9'",
    );
    cli_refused(
        &b,
        &[
            "topics",
            "set-retention",
            "t1",
            "-s",
            "10M",
            "-t",
            "9223372036854775807m",
        ],
        "too large",
    );
    assert_eq!(
        common::admin_ok(&b, &["topics", "get-retention", "t1"]).trim(),
        "null"
    );
    // Valid values still go through.
    common::admin_ok(
        &b,
        &["topics", "set-retention", "t1", "-s", "-1", "-t", "3d"],
    );
    assert_eq!(
        serde_json::from_str::<Value>(&get(&b, &topic).1).unwrap(),
        serde_json::json!({"retentionTimeInMinutes": 4320, "retentionSizeInMB": -1})
    );
}

#[test]
fn offload_settings_with_bad_buckets_endpoints_or_thresholds_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let b = common::start(dir.path(), &[]);
    assert_eq!(b.call("PUT", TOPIC, None).0, 204);
    let policies = [
        format!("{NS}/offloadPolicies"),
        format!("{TOPIC}/offloadPolicies"),
    ];
    for path in &policies {
        refused(
            &b,
            "POST",
            path,
            r#"{"managedLedgerOffloadDriver":"aws-s3","managedLedgerOffloadBucket":"bad bucket name!!","managedLedgerOffloadRegion":"us-east-1"}"#,
            412,
            "s3ManagedLedgerOffloadBucket \"bad bucket name!!\" is not a valid S3 bucket name",
        );
        refused(
            &b,
            "POST",
            path,
            r#"{"managedLedgerOffloadDriver":"S3","managedLedgerOffloadBucket":"ok-bucket","managedLedgerOffloadServiceEndpoint":"not a url"}"#,
            412,
            "s3ManagedLedgerOffloadServiceEndpoint \"not a url\" is not a valid endpoint",
        );
        refused(
            &b,
            "POST",
            path,
            r#"{"managedLedgerOffloadDriver":"azureblob","managedLedgerOffloadBucket":"Bad_Container"}"#,
            412,
            "is not a valid Azure container name",
        );
        refused(
            &b,
            "POST",
            path,
            r#"{"managedLedgerOffloadDriver":"filesystem","managedLedgerOffloadThresholdInBytes":-5}"#,
            412,
            "managedLedgerOffloadThresholdInBytes: \"-5\"",
        );
        refused(
            &b,
            "POST",
            path,
            r#"{"managedLedgerOffloadDriver":"filesystem","managedLedgerOffloadThresholdInSeconds":-2}"#,
            412,
            "managedLedgerOffloadThresholdInSeconds: \"-2\"",
        );
    }
    for (key, what) in [
        ("offloadThreshold", "offloadThreshold: \"-5\""),
        (
            "offloadThresholdInSeconds",
            "offloadThresholdInSeconds: \"-5\"",
        ),
        ("offloadDeletionLagMs", "offloadDeletionLagMs: \"-5\""),
    ] {
        refused(&b, "PUT", &format!("{NS}/{key}"), "-5", 412, what);
    }
    // Nothing was stored.
    let (_, text) = get(&b, NS);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(v["offload_policies"].is_null(), "{text}");
    assert_eq!(v["offload_threshold"], -1, "{text}");
    assert_eq!(v["offload_threshold_in_seconds"], -1, "{text}");
    assert!(v["offload_deletion_lag_ms"].is_null(), "{text}");
    let (_, text) = get(&b, &policies[1]);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(
        v["managedLedgerOffloadDriver"].is_null(),
        "the topic has no offload policies of its own: {text}"
    );

    // The CLI shows the server's reasons.
    cli_refused(
        &b,
        &[
            "namespaces",
            "set-offload-policies",
            "public/default",
            "-d",
            "S3",
            "-b",
            "bad bucket name!!",
            "-e",
            "not a url",
        ],
        "is not a valid S3 bucket name",
    );
    cli_refused(
        &b,
        &[
            "namespaces",
            "set-offload-policies",
            "public/default",
            "-d",
            "S3",
            "-b",
            "ok-bucket",
            "-e",
            "not a url",
        ],
        "is not a valid endpoint",
    );
    cli_refused(
        &b,
        &[
            "namespaces",
            "set-offload-policies",
            "public/default",
            "-d",
            "filesystem",
            "--offloadAfterThreshold",
            "-5",
        ],
        "managedLedgerOffloadThresholdInBytes: \"-5\"",
    );
    // A valid target is taken.
    common::admin_ok(
        &b,
        &[
            "namespaces",
            "set-offload-policies",
            "public/default",
            "-d",
            "S3",
            "-b",
            "ok-bucket",
            "-e",
            "http://127.0.0.1:9000",
        ],
    );
}

#[test]
fn bad_tenant_names_and_unknown_paths_get_a_json_reason() {
    let dir = tempfile::tempdir().unwrap();
    let b = common::start(dir.path(), &[]);
    let info = r#"{"allowedClusters":["standalone"]}"#;
    refused(
        &b,
        "PUT",
        "/admin/v2/tenants/",
        info,
        404,
        "No such admin endpoint",
    );
    refused(
        &b,
        "PUT",
        "/admin/v2/tenants/a/b",
        info,
        404,
        "No such admin endpoint",
    );
    refused(
        &b,
        "PUT",
        "/admin/v2/tenants/a%2Fb",
        info,
        412,
        "Invalid tenant name a/b",
    );
    refused(
        &b,
        "POST",
        "/admin/v2/tenants",
        info,
        405,
        "POST is not supported",
    );
    cli_refused(&b, &["tenants", "create", ""], "No such admin endpoint");
    cli_refused(&b, &["tenants", "create", "a/b"], "Invalid tenant name a/b");
    let tenants = common::admin_ok(&b, &["tenants", "list"]);
    assert_eq!(tenants.trim(), "public", "{tenants}");
}

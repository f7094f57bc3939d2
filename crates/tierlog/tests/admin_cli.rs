//! `tierlog admin` against a running `tierlog standalone`: pulsar-admin's arguments, output
//! strings and exit codes.

use std::path::Path;
use std::process::{Command, Output};

use testkit::standalone::Standalone;

fn start(dir: &Path) -> Standalone {
    Standalone::start(Path::new(env!("CARGO_BIN_EXE_tierlog")), dir, &[])
}

fn admin(b: &Standalone, args: &[&str]) -> Output {
    testkit::audit::output(
        Command::new(env!("CARGO_BIN_EXE_tierlog"))
            .args(["admin", "--admin-url", &b.admin_url()])
            .args(args),
    )
}

fn ok(b: &Standalone, args: &[&str]) -> String {
    let out = admin(b, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fails(b: &Standalone, args: &[&str]) -> String {
    let out = admin(b, args);
    assert!(!out.status.success(), "{args:?} should fail");
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn pulsar_admin_commands_and_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path());
    assert_eq!(ok(&b, &["tenants", "list"]), "public\n");
    ok(&b, &["tenants", "create", "acme"]);
    ok(&b, &["namespaces", "create", "acme/orders"]);
    assert_eq!(ok(&b, &["namespaces", "list", "acme"]), "acme/orders\n");
    assert_eq!(
        ok(&b, &["namespaces", "list", "acme", "--output", "json"]),
        "[\"acme/orders\"]\n"
    );
    assert!(
        fails(&b, &["namespaces", "create", "acme/orders"]).contains("Namespace already exists")
    );
    assert!(fails(&b, &["namespaces", "create", "nobody/x"]).contains("Tenant does not exist"));

    // The seed's example: a negative size means unlimited.
    ok(
        &b,
        &[
            "namespaces",
            "set-retention",
            "public/default",
            "--size",
            "-1",
            "--time",
            "3d",
        ],
    );
    let r: serde_json::Value =
        serde_json::from_str(&ok(&b, &["namespaces", "get-retention", "public/default"])).unwrap();
    assert_eq!(
        r,
        serde_json::json!({"retentionTimeInMinutes": 4320, "retentionSizeInMB": -1})
    );
    assert!(
        fails(
            &b,
            &[
                "namespaces",
                "set-retention",
                "public/default",
                "--size",
                "10MB",
                "--time",
                "3d"
            ]
        )
        .contains("Invalid size '10MB'. Valid formats are: (4096, 100K, 10M, 16G, 2T)")
    );

    ok(
        &b,
        &[
            "namespaces",
            "set-offload-threshold",
            "public/default",
            "--size",
            "10M",
        ],
    );
    assert_eq!(
        ok(
            &b,
            &["namespaces", "get-offload-threshold", "public/default"]
        ),
        "10485760\n"
    );
    assert_eq!(
        ok(
            &b,
            &["namespaces", "get-offload-deletion-lag", "public/default"]
        ),
        "Unset for namespace. Defaulting to broker setting.\n"
    );
    ok(
        &b,
        &[
            "namespaces",
            "set-offload-deletion-lag",
            "public/default",
            "--lag",
            "1h",
        ],
    );
    assert_eq!(
        ok(
            &b,
            &["namespaces", "get-offload-deletion-lag", "public/default"]
        ),
        "60 minute(s)\n"
    );

    // Topics: short names expand to persistent://public/default/...
    ok(&b, &["topics", "create", "test-topic"]);
    assert_eq!(
        ok(&b, &["topics", "list", "public/default"]),
        "persistent://public/default/test-topic\n"
    );
    let stats: serde_json::Value =
        serde_json::from_str(&ok(&b, &["topics", "stats-internal", "test-topic"])).unwrap();
    assert_eq!(stats["ledgers"].as_array().unwrap().len(), 1);
    assert_eq!(
        ok(&b, &["topics", "offload-status", "test-topic"]),
        "Offload has not been run for persistent://public/default/test-topic since broker startup\n"
    );
    assert_eq!(
        ok(
            &b,
            &["topics", "offload", "--size-threshold", "10M", "test-topic"]
        ),
        "Nothing to offload\n"
    );
    // Threshold -1 on an empty topic: the current ledger alone exceeds it -> offload all closed.
    let out = ok(&b, &["topics", "offload", "-s", "-1", "test-topic"]);
    let current = stats["ledgers"][0]["ledgerId"].as_i64().unwrap();
    assert_eq!(
        out,
        format!(
            "Offload triggered for persistent://public/default/test-topic for messages before {current}:0:-1\n"
        )
    );
    assert_eq!(
        ok(&b, &["topics", "offload-status", "-w", "test-topic"]),
        "Offload was a success\n"
    );
    assert!(fails(&b, &["topics", "stats", "nope"]).contains("Topic not found"));
    ok(
        &b,
        &["topics", "delete", "persistent://public/default/test-topic"],
    );
    assert_eq!(ok(&b, &["topics", "list", "public/default"]), "");
}

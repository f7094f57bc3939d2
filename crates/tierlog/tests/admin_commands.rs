//! A table of pulsar-admin commands run in order against one broker (as `tierlog admin`, over
//! the REST API): each row checks the exit status and either the exact output text, the JSON
//! shape (field names and types as Pulsar's), or the error's reason.

use crate::common;

use pulsar::producer::ProducerOptions;
use serde_json::Value;

/// What a row expects.
enum Expect {
    /// Success, with exactly this on standard output.
    Text(String),
    /// Success, with standard output containing this.
    Contains(String),
    /// Success, a JSON document where each pointer has a value of this kind (`string`,
    /// `number`, `bool`, `array`, `object`, `null`) or equals this JSON text.
    Json(Vec<(&'static str, &'static str)>),
    /// Failure, with standard error containing this.
    Fails(String),
}

use Expect::*;

fn text(s: &str) -> Expect {
    Text(s.to_string())
}

fn contains(s: &str) -> Expect {
    Contains(s.to_string())
}

fn fails(s: &str) -> Expect {
    Fails(s.to_string())
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        Value::Null => "null",
    }
}

fn check(args: &[String], expect: &Expect, out: &std::process::Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ctx = || format!("{args:?}\nstdout: {stdout}\nstderr: {stderr}");
    match expect {
        Fails(reason) => {
            assert!(!out.status.success(), "should fail: {}", ctx());
            assert!(
                stderr.contains(reason.as_str()),
                "reason {reason:?}: {}",
                ctx()
            );
            return;
        }
        _ => assert!(out.status.success(), "{}", ctx()),
    }
    match expect {
        Text(t) => assert_eq!(stdout, t.as_str(), "{}", ctx()),
        Contains(t) => assert!(stdout.contains(t.as_str()), "{t:?}: {}", ctx()),
        Json(fields) => {
            let v: Value =
                serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {}", ctx()));
            for (pointer, want) in fields {
                let got = v
                    .pointer(pointer)
                    .unwrap_or_else(|| panic!("no {pointer}: {}", ctx()));
                let ok = match *want {
                    "string" | "number" | "bool" | "array" | "object" | "null" => {
                        kind(got) == *want
                    }
                    literal => serde_json::from_str::<Value>(literal).ok().as_ref() == Some(got),
                };
                assert!(ok, "{pointer} should be {want}, is {got}: {}", ctx());
            }
        }
        Fails(_) => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_of_pulsar_admin_commands() {
    let dir = tempfile::tempdir().unwrap();
    let b = common::start(dir.path(), &[]);
    let client = common::client(&b).await;
    let t1 = "persistent://acme/app/t1";
    let p = "persistent://acme/app/p";
    let broker_id = b.admin_url().trim_start_matches("http://").to_string();

    // Rows before the messages exist, then the messages, then the rest.
    let first: Vec<(Vec<&str>, Expect)> = vec![
        (vec!["clusters", "list"], text("standalone\n")),
        (
            vec!["clusters", "get", "standalone"],
            Json(vec![
                ("/serviceUrl", "string"),
                ("/brokerServiceUrl", "string"),
            ]),
        ),
        (
            vec![
                "clusters",
                "create",
                "east",
                "--url",
                "http://east:8080",
                "--broker-url",
                "pulsar://east:6650",
            ],
            text(""),
        ),
        (
            vec!["clusters", "get", "east"],
            Json(vec![
                ("/serviceUrl", "\"http://east:8080\""),
                ("/brokerServiceUrl", "\"pulsar://east:6650\""),
            ]),
        ),
        (
            vec!["clusters", "create", "east"],
            fails("Cluster already exists"),
        ),
        (
            vec!["clusters", "update", "east", "--url", "http://east2:8080"],
            text(""),
        ),
        (
            vec!["clusters", "get", "east"],
            Json(vec![("/serviceUrl", "\"http://east2:8080\"")]),
        ),
        (vec!["clusters", "list"], text("east\nstandalone\n")),
        (vec!["clusters", "delete", "east"], text("")),
        (
            vec!["clusters", "get", "east"],
            fails("Cluster does not exist"),
        ),
        (
            vec!["clusters", "delete", "standalone"],
            fails("cannot be deleted"),
        ),
        (
            vec!["brokers", "list", "standalone"],
            text(&format!("{broker_id}\n")),
        ),
        (
            vec!["brokers", "list", "west"],
            fails("Cluster west does not exist"),
        ),
        (
            vec!["brokers", "leader-broker"],
            Json(vec![("/serviceUrl", "string"), ("/brokerId", "string")]),
        ),
        (
            vec!["brokers", "get-internal-configuration"],
            Json(vec![
                ("/metadataStoreUrl", "string"),
                ("/configurationMetadataStoreUrl", "string"),
            ]),
        ),
        (vec!["brokers", "healthcheck"], text("ok\n")),
        (
            vec!["brokers", "healthcheck", "--topic-version", "V1"],
            fails("Unsupported topicVersion"),
        ),
        (
            vec![
                "tenants",
                "create",
                "acme",
                "-r",
                "alice",
                "-c",
                "standalone",
            ],
            text(""),
        ),
        (
            vec!["tenants", "get", "acme"],
            Json(vec![
                ("/adminRoles", "[\"alice\"]"),
                ("/allowedClusters", "[\"standalone\"]"),
            ]),
        ),
        (
            vec!["tenants", "update", "acme", "-r", "alice,bob"],
            text(""),
        ),
        (
            vec!["tenants", "get", "acme"],
            Json(vec![("/adminRoles", "[\"alice\",\"bob\"]")]),
        ),
        (
            vec!["tenants", "get", "nobody"],
            fails("Tenant does not exist"),
        ),
        (vec!["namespaces", "create", "acme/app"], text("")),
        (vec!["namespaces", "list", "acme"], text("acme/app\n")),
        (
            vec!["namespaces", "policies", "acme/app"],
            Json(vec![
                ("/auth_policies", "object"),
                ("/schema_compatibility_strategy", "string"),
                ("/offload_threshold", "-1"),
            ]),
        ),
        (
            vec![
                "namespaces",
                "set-retention",
                "acme/app",
                "--size",
                "10M",
                "--time",
                "1h",
            ],
            text(""),
        ),
        (
            vec!["namespaces", "get-retention", "acme/app"],
            Json(vec![
                ("/retentionTimeInMinutes", "60"),
                ("/retentionSizeInMB", "10"),
            ]),
        ),
        (
            vec![
                "namespaces",
                "set-message-ttl",
                "acme/app",
                "--messageTTL",
                "1h",
            ],
            text(""),
        ),
        (
            vec!["namespaces", "get-message-ttl", "acme/app"],
            text("3600\n"),
        ),
        (
            vec!["namespaces", "set-deduplication", "acme/app", "--enable"],
            text(""),
        ),
        (
            vec!["namespaces", "get-deduplication", "acme/app"],
            text("true\n"),
        ),
        (
            vec!["namespaces", "remove-deduplication", "acme/app"],
            text(""),
        ),
        (
            vec![
                "namespaces",
                "set-compaction-threshold",
                "acme/app",
                "-t",
                "10M",
            ],
            text(""),
        ),
        (
            vec!["namespaces", "get-compaction-threshold", "acme/app"],
            text("10485760\n"),
        ),
        (
            vec![
                "namespaces",
                "set-backlog-quota",
                "acme/app",
                "-l",
                "5M",
                "-p",
                "producer_request_hold",
            ],
            text(""),
        ),
        (
            vec!["namespaces", "get-backlog-quotas", "acme/app"],
            Json(vec![
                ("/destination_storage/limitSize", "5242880"),
                ("/destination_storage/policy", "\"producer_request_hold\""),
            ]),
        ),
        (
            vec![
                "namespaces",
                "set-offload-threshold",
                "acme/app",
                "--size",
                "1G",
            ],
            text(""),
        ),
        (
            vec!["namespaces", "get-offload-threshold", "acme/app"],
            text("1073741824\n"),
        ),
        (
            vec![
                "namespaces",
                "set-schema-compatibility-strategy",
                "acme/app",
                "-c",
                "FULL",
            ],
            text(""),
        ),
        (
            vec![
                "namespaces",
                "get-schema-compatibility-strategy",
                "acme/app",
            ],
            contains("FULL"),
        ),
        (
            vec![
                "namespaces",
                "grant-permission",
                "acme/app",
                "--role",
                "carol",
                "--actions",
                "produce,consume",
            ],
            text(""),
        ),
        (
            vec!["namespaces", "permissions", "acme/app"],
            Json(vec![("/carol", "array")]),
        ),
        (
            vec![
                "namespaces",
                "revoke-permission",
                "acme/app",
                "--role",
                "carol",
            ],
            text(""),
        ),
        (vec!["topics", "create", t1], text("")),
        (
            vec!["topics", "create", t1],
            fails("This topic already exists"),
        ),
        (
            vec!["topics", "lookup", t1],
            contains(&format!(":{}\n", b.broker_port)),
        ),
        (
            vec!["topics", "create-partitioned-topic", p, "-p", "2"],
            text(""),
        ),
        (
            vec!["topics", "get-partitioned-topic-metadata", p],
            Json(vec![("/partitions", "2")]),
        ),
        (
            vec!["topics", "update-partitioned-topic", p, "-p", "3"],
            text(""),
        ),
        (
            vec!["topics", "update-partitioned-topic", p, "-p", "1"],
            fails("must be greater than"),
        ),
        (
            vec!["topics", "get-partitioned-topic-metadata", p],
            Json(vec![("/partitions", "3")]),
        ),
        (
            vec!["topics", "list-partitioned-topics", "acme/app"],
            text(&format!("{p}\n")),
        ),
        (
            vec![
                "topics",
                "create-subscription",
                "-s",
                "s1",
                "-m",
                "earliest",
                t1,
            ],
            text(""),
        ),
        (vec!["topics", "subscriptions", t1], text("s1\n")),
    ];
    let run = |rows: Vec<(Vec<&str>, Expect)>| -> usize {
        let n = rows.len();
        for (args, expect) in rows {
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            check(&args, &expect, &common::admin(&b, &a));
        }
        n
    };
    let mut count = run(first);

    let ids = common::produce(&client, t1, 0..5, 20, ProducerOptions::default()).await;
    let (ledger, _) = ids[0];
    let l = ledger.to_string();
    let id2 = format!("{ledger}:2");
    let then: Vec<(Vec<&str>, Expect)> = vec![
        (
            vec!["topics", "stats", t1],
            Json(vec![
                ("/msgRateIn", "number"),
                ("/msgThroughputIn", "number"),
                ("/msgInCounter", "5"),
                ("/storageSize", "number"),
                ("/backlogSize", "number"),
                ("/publishers", "array"),
                ("/subscriptions/s1/msgBacklog", "5"),
                ("/subscriptions/s1/type", "\"None\""),
                ("/subscriptions/s1/consumers", "array"),
            ]),
        ),
        (
            vec!["topics", "stats-internal", t1],
            Json(vec![
                ("/entriesAddedCounter", "number"),
                ("/ledgers", "array"),
                ("/cursors/s1", "object"),
            ]),
        ),
        (
            vec!["topics", "partitioned-stats", p],
            Json(vec![("/metadata/partitions", "3"), ("/msgInCounter", "0")]),
        ),
        (
            vec!["topics", "peek-messages", "-s", "s1", t1],
            contains(&format!("Message ID: {ledger}:0\n")),
        ),
        (vec!["topics", "skip", "-s", "s1", "-n", "2", t1], text("")),
        (
            vec!["topics", "peek-messages", "-s", "s1", t1],
            contains(&format!("Message ID: {ledger}:2\n")),
        ),
        (
            vec!["topics", "examine-message", "-i", "earliest", "-m", "2", t1],
            contains(&format!("Message ID: {ledger}:1\n")),
        ),
        (
            vec!["topics", "get-message-by-id", "-l", &l, "-e", "4", t1],
            contains("|m-0000004-"),
        ),
        (
            vec!["topics", "last-message-id", t1],
            Json(vec![
                ("/ledgerId", "number"),
                ("/entryId", "4"),
                ("/partitionIndex", "-1"),
            ]),
        ),
        (vec!["topics", "clear-backlog", "-s", "s1", t1], text("")),
        (
            vec!["topics", "reset-cursor", "-s", "s1", "-m", &id2, t1],
            text(""),
        ),
        (
            vec!["topics", "peek-messages", "-s", "s1", t1],
            contains(&format!("Message ID: {ledger}:2\n")),
        ),
        (
            vec!["topics", "expire-messages", "-s", "s1", "-t", "1h", t1],
            text(""),
        ),
        (
            vec![
                "topics",
                "expire-messages-all-subscriptions",
                "-t",
                "1h",
                t1,
            ],
            text(""),
        ),
        (vec!["topics", "set-message-ttl", t1, "-t", "2h"], text("")),
        (vec!["topics", "get-message-ttl", t1], text("7200\n")),
        (vec!["topics", "remove-message-ttl", t1], text("")),
        (vec!["topics", "get-message-ttl", t1], text("null\n")),
        (
            vec![
                "topics",
                "set-retention",
                t1,
                "--size",
                "20M",
                "--time",
                "2h",
            ],
            text(""),
        ),
        (
            vec!["topics", "get-retention", t1],
            Json(vec![("/retentionTimeInMinutes", "120")]),
        ),
        (vec!["topics", "remove-retention", t1], text("")),
        (
            vec!["topics", "set-deduplication", t1, "--disable"],
            text(""),
        ),
        (vec!["topics", "get-deduplication", t1], text("false\n")),
        (
            vec![
                "topics",
                "grant-permission",
                t1,
                "--role",
                "dave",
                "--actions",
                "consume",
            ],
            text(""),
        ),
        (
            vec!["topics", "permissions", t1],
            Json(vec![("/dave", "[\"consume\"]")]),
        ),
        (
            vec!["topics", "revoke-permission", t1, "--role", "dave"],
            text(""),
        ),
        (
            vec!["topics", "set-compaction-threshold", t1, "-t", "1M"],
            text(""),
        ),
        (
            vec!["topics", "get-compaction-threshold", t1],
            text("1048576\n"),
        ),
        (vec!["topics", "remove-compaction-threshold", t1], text("")),
        (
            vec!["topics", "get-compaction-threshold", t1],
            text("null\n"),
        ),
        (
            vec!["topics", "compact", t1],
            text(&format!("Topic compaction requested for {t1}\n")),
        ),
        (
            vec!["topics", "compaction-status", "-w", t1],
            text("Compaction was a success\n"),
        ),
        (
            vec!["topics", "offload-status", t1],
            text(&format!(
                "Offload has not been run for {t1} since broker startup\n"
            )),
        ),
        (vec!["topics", "unsubscribe", "-s", "s1", t1], text("")),
        (
            vec!["topics", "subscriptions", t1],
            contains("__compaction"),
        ),
        (
            vec!["topics", "unsubscribe", "-s", "nope", t1],
            fails("Subscription not found"),
        ),
        (vec!["topics", "unload", t1], text("")),
        (
            vec!["namespaces", "topics", "acme/app"],
            contains(&format!("{t1}\n")),
        ),
        (
            vec!["namespaces", "delete", "acme/app"],
            fails("Cannot delete non empty namespace"),
        ),
        (vec!["topics", "delete", t1], text("")),
        (vec!["topics", "stats", t1], fails("Topic not found")),
        (vec!["topics", "delete-partitioned-topic", p], text("")),
        (
            vec!["topics", "create", "persistent://acme/app/left"],
            text(""),
        ),
        (vec!["namespaces", "delete", "acme/app", "-f"], text("")),
        (vec!["namespaces", "list", "acme"], text("")),
        (vec!["tenants", "delete", "acme"], text("")),
        (vec!["tenants", "list"], contains("public\n")),
        (vec!["no-such-command"], fails("unrecognized subcommand")),
    ];
    count += run(then);
    assert!(count >= 60, "the table has {count} commands");
}

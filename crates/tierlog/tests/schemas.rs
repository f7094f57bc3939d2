//! The schema registry with the official Python client: versions per schema, messages tagged
//! with their producer's version, compatibility enforced (the broker's default FULL).

mod common;

use std::process::Command;

#[test]
fn an_evolved_avro_schema_is_version_1_and_every_message_decodes_with_its_own_version() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path(), &[]);
    let script = testkit::workspace_root().join("crates/tierlog/tests/clients/python_schemas.py");
    let out = testkit::audit::output(
        Command::new(common::python())
            .arg(&script)
            .arg(broker.service_url())
            .arg("persistent://public/default/evolving"),
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let result = |case: &str| -> String {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(case).and_then(|r| r.strip_prefix(' ')))
            .unwrap_or_else(|| {
                let tail: Vec<&str> = stderr.lines().rev().take(30).collect();
                panic!("no result for {case}\nstdout:\n{stdout}\nstderr (tail):\n{tail:?}")
            })
            .to_string()
    };
    // Version 1's message keeps its age; version 0's read with the default (None). Tagged with
    // version 0, the second message would lose its age (read with the first schema).
    assert_eq!(
        result("decoded"),
        "first/None@0,second/42@1,third/None@0,fourth/None@0"
    );
    let bad = result("incompatible-producer");
    assert!(bad.starts_with("ERR IncompatibleSchema"), "{bad}");
    let bad = result("incompatible-consumer");
    assert!(bad.starts_with("ERR IncompatibleSchema"), "{bad}");
    // A reader of the first schema reads the latest (version 1) data: FULL allows it.
    assert_eq!(result("compatible-consumer-v0"), "OK");

    // Both versions are kept, and the first still answers by its number.
    let get = |version: Option<u64>| {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(common::raw::Raw::get_schema(
            broker.broker_port,
            "persistent://public/default/evolving",
            version,
        ))
    };
    let latest = get(None);
    assert_eq!(
        latest.schema_version.as_deref(),
        Some(&1u64.to_be_bytes()[..])
    );
    let first = get(Some(0));
    assert_eq!(
        first.schema_version.as_deref(),
        Some(&0u64.to_be_bytes()[..])
    );
    let text = String::from_utf8_lossy(&first.schema.expect("version 0").schema_data).to_string();
    assert!(
        text.contains("\"name\"") && !text.contains("\"age\""),
        "{text}"
    );
    let missing = get(Some(7));
    assert_eq!(
        missing.error_code,
        Some(protocol::pb::ServerError::TopicNotFound as i32)
    );
}

//! The schema registry with the official Python client: versions per schema, messages tagged
//! with their producer's version, compatibility enforced (the broker's default FULL).

use crate::common;

#[test]
fn an_evolved_avro_schema_is_version_1_and_every_message_decodes_with_its_own_version() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path(), &[]);
    let stdout = common::run_client_script(
        "python_schemas.py",
        &[
            &broker.service_url(),
            "persistent://public/default/evolving",
        ],
    );
    let result = |case: &str| common::case_result(&stdout, case).to_string();
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

/// The admin API and `tierlog admin` over the registry: get (latest, by version, all), upload,
/// compatibility, delete; the namespace's strategy, auto-update and validation switches as
/// producers meet them.
#[test]
fn schemas_through_rest_and_the_cli_and_the_namespace_rules_producers_meet() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::start(dir.path(), &[]);
    let avro = |fields: &str| format!(r#"{{"type":"record","name":"Order","fields":[{fields}]}}"#);
    let v0 = avro(r#"{"name":"id","type":"long"}"#);
    let v1 = avro(
        r#"{"name":"id","type":"long"},{"name":"note","type":["null","string"],"default":null}"#,
    );
    let broken = avro(r#"{"name":"id","type":"string"}"#);
    let payload = |schema: &str| {
        serde_json::json!({"type": "AVRO", "schema": schema, "properties": {"team": "orders"}})
            .to_string()
    };
    let path = "/admin/v2/schemas/public/default/orders";
    assert_eq!(broker.call("GET", &format!("{path}/schema"), None).0, 404);
    let (status, body) = broker.call("POST", &format!("{path}/schema"), Some(&payload(&v0)));
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"version":{"version":0}}"#)
    );
    // The same schema again is the same version.
    let (_, body) = broker.call("POST", &format!("{path}/schema"), Some(&payload(&v0)));
    assert_eq!(body, r#"{"version":{"version":0}}"#);
    let (status, body) = broker.call(
        "POST",
        &format!("{path}/compatibility"),
        Some(&payload(&v1)),
    );
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        serde_json::json!({"isCompatibility": true, "schemaCompatibilityStrategy": "FULL"})
    );
    let (status, body) = broker.call(
        "POST",
        &format!("{path}/compatibility"),
        Some(&payload(&broken)),
    );
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("not FULL compatible"), "{body}");
    assert_eq!(
        broker
            .call("POST", &format!("{path}/schema"), Some(&payload(&broken)))
            .0,
        409
    );

    // The CLI: upload v1 from a file, read every version back.
    let file = dir.path().join("v1.json");
    std::fs::write(&file, payload(&v1)).unwrap();
    common::admin_ok(
        &broker,
        &["schemas", "upload", "orders", "-f", file.to_str().unwrap()],
    );
    let latest: serde_json::Value =
        serde_json::from_str(&common::admin_ok(&broker, &["schemas", "get", "orders"])).unwrap();
    assert_eq!(latest["version"], 1);
    assert_eq!(latest["type"], "AVRO");
    assert_eq!(latest["properties"]["team"], "orders");
    assert_eq!(latest["data"], v1.as_str());
    let first: serde_json::Value = serde_json::from_str(&common::admin_ok(
        &broker,
        &["schemas", "get", "orders", "--version", "0"],
    ))
    .unwrap();
    assert_eq!(first["data"], v0.as_str());
    let all: serde_json::Value = serde_json::from_str(&common::admin_ok(
        &broker,
        &["schemas", "get", "orders", "--all-version"],
    ))
    .unwrap();
    assert_eq!(all["getSchemaResponses"].as_array().map(Vec::len), Some(2));

    // Namespace rules, as producers meet them.
    let wire = |definition: &str| protocol::pb::Schema {
        name: "Order".into(),
        schema_data: definition.as_bytes().to_vec().into(),
        r#type: protocol::pb::schema::Type::Avro as i32,
        properties: vec![],
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let produce = |schema: Option<protocol::pb::Schema>| {
        rt.block_on(common::raw::Raw::create_producer(
            broker.broker_port,
            "persistent://public/default/orders",
            schema,
        ))
    };
    let refused = |reply: protocol::pb::BaseCommand, why: &str| {
        let e = reply
            .error
            .unwrap_or_else(|| panic!("accepted; expected: {why}"));
        assert_eq!(
            e.error,
            protocol::pb::ServerError::IncompatibleSchema as i32,
            "{e:?}"
        );
        assert!(e.message.contains(why), "{}", e.message);
    };
    let v2 = avro(r#"{"name":"id","type":"long"},{"name":"qty","type":"int","default":1}"#);
    common::admin_ok(
        &broker,
        &[
            "namespaces",
            "set-is-allow-auto-update-schema",
            "public/default",
            "--disable",
        ],
    );
    refused(produce(Some(wire(&v2))), "schema auto updating is disabled");
    // A known version is still fine, and it is the version the producer gets.
    let ok = produce(Some(wire(&v0)))
        .producer_success
        .expect("v0 producer");
    assert_eq!(ok.schema_version.as_deref(), Some(&0u64.to_be_bytes()[..]));
    common::admin_ok(
        &broker,
        &[
            "namespaces",
            "set-is-allow-auto-update-schema",
            "public/default",
            "--enable",
        ],
    );
    common::admin_ok(
        &broker,
        &[
            "namespaces",
            "set-schema-compatibility-strategy",
            "public/default",
            "--compatibility",
            "ALWAYS_INCOMPATIBLE",
        ],
    );
    assert_eq!(
        common::admin_ok(
            &broker,
            &[
                "namespaces",
                "get-schema-compatibility-strategy",
                "public/default"
            ]
        )
        .trim(),
        "\"ALWAYS_INCOMPATIBLE\""
    );
    refused(produce(Some(wire(&v2))), "ALWAYS_INCOMPATIBLE");
    common::admin_ok(
        &broker,
        &[
            "namespaces",
            "set-schema-compatibility-strategy",
            "public/default",
            "--compatibility",
            "BACKWARD",
        ],
    );
    let ok = produce(Some(wire(&v2)))
        .producer_success
        .expect("v2 producer");
    assert_eq!(ok.schema_version.as_deref(), Some(&2u64.to_be_bytes()[..]));
    // The topic's own strategy wins over its namespace's, until removed.
    let topic_strategy = "/admin/v2/persistent/public/default/orders/schemaCompatibilityStrategy";
    assert_eq!(
        broker
            .call("PUT", topic_strategy, Some("\"ALWAYS_INCOMPATIBLE\""))
            .0,
        204
    );
    assert_eq!(
        broker.call("GET", topic_strategy, None),
        (200, "\"ALWAYS_INCOMPATIBLE\"".to_string())
    );
    let v3 = avro(
        r#"{"name":"id","type":"long"},{"name":"qty","type":"int","default":1},{"name":"tag","type":"string","default":""}"#,
    );
    refused(produce(Some(wire(&v3))), "ALWAYS_INCOMPATIBLE");
    assert_eq!(broker.call("DELETE", topic_strategy, None).0, 204);
    let ok = produce(Some(wire(&v3)))
        .producer_success
        .expect("v3 producer");
    assert_eq!(ok.schema_version.as_deref(), Some(&3u64.to_be_bytes()[..]));
    // Without a schema: accepted, until validation is enforced.
    assert!(produce(None).producer_success.is_some());
    common::admin_ok(
        &broker,
        &[
            "namespaces",
            "set-schema-validation-enforce",
            "public/default",
            "--enable",
        ],
    );
    refused(produce(None), "SchemaValidationEnforced");

    // Delete: the latest is gone, older versions still answer by number.
    common::admin_ok(&broker, &["schemas", "delete", "orders"]);
    let (status, body) = broker.call("GET", &format!("{path}/schema"), None);
    assert_eq!(
        (status, body.as_str()),
        (404, r#"{"reason":"Schema is deleted"}"#)
    );
    assert_eq!(broker.call("GET", &format!("{path}/schema/1"), None).0, 200);
    // An incompatible upload names the reason through the CLI too.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"type": "NOPE", "schema": ""}"#).unwrap();
    let out = common::admin(
        &broker,
        &["schemas", "upload", "orders", "-f", bad.to_str().unwrap()],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown schema type \"NOPE\"") && err.contains("422"),
        "{err}"
    );
}

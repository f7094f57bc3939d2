//! Every registered endpoint refuses a role without the right, and lets a super-user through
//! the access check: the test walks the route table itself, so a new endpoint cannot slip in
//! without a rule (and cannot be registered without one, see [`super::auth::Api`]).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

use super::{WebState, api, router};

const SECRET: &[u8] = b"a test secret of thirty-two bytes";

fn token(role: &str) -> String {
    let token = security::token::create_token(
        &security::token::SigningKey::Secret(SECRET.to_vec()),
        role,
        None,
        None,
    )
    .unwrap();
    testkit::audit::secret(&token);
    testkit::audit::secret(std::str::from_utf8(SECRET).unwrap());
    token
}

async fn state(dir: &std::path::Path) -> Arc<WebState> {
    let mut props = policy::Properties::default();
    for (k, v) in [
        ("authenticationEnabled", "true"),
        ("authorizationEnabled", "true"),
        (
            "authenticationProviders",
            "org.apache.pulsar.broker.authentication.AuthenticationProviderToken",
        ),
        ("superUserRoles", "root"),
        ("managedLedgerOffloadDriver", "none"),
    ] {
        props.set(k, v);
    }
    let b64 = {
        use std::fmt::Write;
        // data: URL with the secret percent-encoded is simplest here.
        let mut s = String::from("data:,");
        for b in SECRET {
            write!(s, "%{b:02X}").unwrap();
        }
        s
    };
    props.set("tokenSecretKey", &b64);
    props.set("dataDirectory", &dir.display().to_string());
    let (config, _) = policy::BrokerConfig::from_properties(props).unwrap();
    let (store, _) = hot_tier::LedgerStore::open(dir.join("ledgers"), Default::default()).unwrap();
    let meta: Arc<dyn meta::MetadataStore> =
        Arc::new(meta::RedbStore::open(&dir.join("meta.redb")).unwrap());
    let factory = Arc::new(ledger::ManagedLedgerFactory::new(
        store.clone(),
        Arc::clone(&meta),
        Arc::new(ledger::SystemClock),
    ));
    let stores = Arc::new(offload::ObjectStores::new(
        config.object_store_client.clone(),
    ));
    let policy = Arc::new(policy::PolicyService::new(
        meta,
        factory,
        &config,
        Arc::clone(&stores),
    ));
    policy
        .ensure_defaults("standalone", &Default::default())
        .await
        .unwrap();
    let authenticator =
        Arc::new(security::Authenticator::new(&config.security.authentication).unwrap());
    let broker = broker::BrokerService::with_cluster(
        Arc::clone(&policy) as Arc<dyn broker::TopicStore>,
        broker::BrokerServiceConfig {
            server_version: "test".into(),
            service_url: Some("pulsar://127.0.0.1:6650".into()),
            service_url_tls: None,
            listeners: Default::default(),
            max_message_size: 5 << 20,
            cluster_name: "standalone".into(),
            delivery: broker::DeliveryRules {
                unacked_limits: broker::UnackedLimits {
                    per_consumer: 0,
                    per_subscription: 0,
                },
                ..Default::default()
            },
            receive_buffer_bytes: 64 << 20,
            keepalive: std::time::Duration::from_secs(30),
            max_connections_per_ip: 0,
            max_concurrent_lookups: 50_000,
            dedup_snapshot_interval: 1000,
        },
        None,
        Arc::clone(&authenticator),
    );
    Arc::new(WebState {
        policy,
        broker,
        object_stores: stores,
        hot_tier: store.clone(),
        web_service_url: "http://127.0.0.1:8080".into(),
        web_service_url_tls: None,
        broker_id: "127.0.0.1:8080".into(),
        authenticator,
        metrics: policy::MetricsSettings {
            stats_update_interval: std::time::Duration::from_secs(60),
            topic_level: true,
            managed_ledger: true,
        },
        metadata_store_url: "redb:metadata.redb".into(),
    })
}

/// The path with its parameters filled in.
fn concrete(path: &str) -> String {
    path.replace("{cluster}", "standalone")
        .replace("{broker}", "127.0.0.1:8080")
        .replace("{bundle}", "0x00000000_0xffffffff")
        .replace("{domain}", "persistent")
        .replace("{t}", "public")
        .replace("{ns}", "default")
        .replace("{topic}", "t1")
        .replace("{role}", "someone")
        .replace("{sub}", "s1")
        .replace("{seconds}", "1")
        .replace("{timestamp}", "1")
        .replace("{n}", "1")
        .replace("{ledger}", "1")
        .replace("{entry}", "0")
}

async fn call(
    app: &axum::Router,
    method: &axum::http::Method,
    path: &str,
    token: Option<&str>,
) -> StatusCode {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let body = if path.ends_with("/permissions/someone") {
        Body::from(r#"["consume"]"#)
    } else {
        Body::empty()
    };
    app.clone()
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn every_endpoint_refuses_a_role_without_the_right() {
    let dir = tempfile::tempdir().unwrap();
    let app = router(state(dir.path()).await);
    let routes: Vec<_> = api().rules().map(|(m, p, r)| (m.clone(), p, r)).collect();
    assert!(routes.len() > 40, "the table lists every route");
    let nobody = token("nobody");
    let root = token("root");
    for (method, path, rule) in routes {
        let url = concrete(path);
        let status = call(&app, &method, &url, Some(&nobody)).await;
        if rule == super::auth::Rule::Authenticated {
            assert_ne!(status, StatusCode::FORBIDDEN, "{method} {path}");
        } else {
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{method} {path} with no rights"
            );
        }
        // No credentials at all (no anonymous role): 401 everywhere but the open paths.
        let status = call(&app, &method, &url, None).await;
        if path != "/metrics" {
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} without credentials"
            );
        }
        let status = call(&app, &method, &url, Some(&root)).await;
        assert!(
            status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED,
            "{method} {path} as super-user: {status}"
        );
    }
}

#[tokio::test]
async fn tenant_admins_and_granted_roles_get_what_pulsar_gives_them() {
    let dir = tempfile::tempdir().unwrap();
    let st = state(dir.path()).await;
    let app = router(Arc::clone(&st));
    let root = token("root");
    let put = axum::http::Method::PUT;
    let get = axum::http::Method::GET;
    let post = axum::http::Method::POST;
    // A tenant administered by "tadmin", a namespace created with Pulsar's auth_policies JSON.
    let req = Request::builder()
        .method(&put)
        .uri("/admin/v2/tenants/acme")
        .header("Authorization", format!("Bearer {root}"))
        .body(Body::from(
            r#"{"adminRoles": ["tadmin"], "allowedClusters": ["standalone"]}"#,
        ))
        .unwrap();
    assert_eq!(
        app.clone().oneshot(req).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    let req = Request::builder()
        .method(&put)
        .uri("/admin/v2/namespaces/acme/app")
        .header("Authorization", format!("Bearer {}", token("tadmin")))
        .body(Body::from(
            r#"{"auth_policies": {"namespace_auth": {"reader": ["consume"]}}}"#,
        ))
        .unwrap();
    assert_eq!(
        app.clone().oneshot(req).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    // The reader lists topics and reads stats-free lookups, but administers nothing.
    let reader = token("reader");
    assert_eq!(
        call(&app, &get, "/admin/v2/persistent/acme/app", Some(&reader)).await,
        StatusCode::OK
    );
    assert_eq!(
        call(
            &app,
            &get,
            "/lookup/v2/topic/persistent/acme/app/t",
            Some(&reader)
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(
        call(
            &app,
            &get,
            "/admin/v2/namespaces/acme/app/retention",
            Some(&reader)
        )
        .await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(
            &app,
            &get,
            "/admin/v2/namespaces/acme/app/permissions",
            Some(&token("tadmin"))
        )
        .await,
        StatusCode::OK
    );
    // A tenant admin of acme is nobody in public.
    assert_eq!(
        call(
            &app,
            &get,
            "/admin/v2/namespaces/public/default",
            Some(&token("tadmin"))
        )
        .await,
        StatusCode::FORBIDDEN
    );
    // Granting on a topic lets "writer" look it up, and only it.
    let req = Request::builder()
        .method(&post)
        .uri("/admin/v2/persistent/acme/app/orders/permissions/writer")
        .header("Authorization", format!("Bearer {}", token("tadmin")))
        .body(Body::from(r#"["produce"]"#))
        .unwrap();
    assert_eq!(
        app.clone().oneshot(req).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    let writer = token("writer");
    assert_eq!(
        call(
            &app,
            &get,
            "/lookup/v2/topic/persistent/acme/app/orders",
            Some(&writer)
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(
        call(
            &app,
            &get,
            "/lookup/v2/topic/persistent/acme/app/other",
            Some(&writer)
        )
        .await,
        StatusCode::FORBIDDEN
    );
    let p = st
        .policy
        .store()
        .policies(&protocol::NamespaceName::new("acme", "app").unwrap())
        .await
        .unwrap();
    assert_eq!(
        p.auth_policies.destination_auth["persistent://acme/app/orders"]["writer"],
        [security::AuthAction::Produce].into()
    );
}

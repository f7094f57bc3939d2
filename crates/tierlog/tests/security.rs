//! Security with the official Python client over real sockets: a broker configured with
//! Pulsar's standalone-ssl.conf keys (TLS on both ports; token, basic and TLS-certificate
//! providers; authorization; anonymousUserRole=anonymous).

use crate::common;

use std::process::Command;

use security::token::{SigningKey, create_token};
use testkit::pki::TestPki;

const SECRET: &[u8] = b"tierlog test secret, 32 bytes ok";
/// basicAuthConf as `htpasswd -m` and `htpasswd -d` write it (hashes made by `openssl passwd
/// -apr1` and glibc's crypt(3)): basicuser / "basic pass 1" (APR1-MD5), crypter / "crypt-pw"
/// (DES crypt, which reads 8 characters).
const HTPASSWD: &str = "basicuser:$apr1$Tq9wLx2a$/r3F/yzET4D5VXN/OaSHl0\ncrypter:k3jBZgvxcsJnw\n";
const BASIC_PASSWORD: &str = "basic pass 1";
const CRYPT_PASSWORD: &str = "crypt-pw";

#[test]
fn tls_tokens_certificates_and_permissions_with_the_python_client() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::generate(&dir.path().join("pki"));
    // The broker's certificate names localhost only: 127.0.0.1 is the wrong host name.
    let (server_cert, server_key) = pki.server_for("broker", &["localhost"]);
    pki.client("certuser");
    let secret_file = dir.path().join("secret.key");
    std::fs::write(&secret_file, SECRET).unwrap();
    let (tls_port, web_tls_port) = (testkit::free_port(), testkit::free_port());
    let secret_url = format!("file://{}", secret_file.display());
    let htpasswd = dir.path().join(".htpasswd");
    std::fs::write(&htpasswd, HTPASSWD).unwrap();
    let env = [
        ("TIERLOG_brokerServicePortTls", tls_port.to_string()),
        ("TIERLOG_webServicePortTls", web_tls_port.to_string()),
        ("TIERLOG_tlsCertificateFilePath", server_cert.display().to_string()),
        ("TIERLOG_tlsKeyFilePath", server_key.display().to_string()),
        ("TIERLOG_tlsTrustCertsFilePath", pki.ca_file.display().to_string()),
        ("TIERLOG_authenticationEnabled", "true".into()),
        ("TIERLOG_authorizationEnabled", "true".into()),
        (
            "TIERLOG_authenticationProviders",
            "org.apache.pulsar.broker.authentication.AuthenticationProviderToken,org.apache.pulsar.broker.authentication.AuthenticationProviderTls,org.apache.pulsar.broker.authentication.AuthenticationProviderBasic".into(),
        ),
        ("TIERLOG_basicAuthConf", format!("file://{}", htpasswd.display())),
        ("TIERLOG_tokenSecretKey", secret_url),
        ("TIERLOG_superUserRoles", "admin".into()),
        ("TIERLOG_anonymousUserRole", "anonymous".into()),
        // The certificate names localhost: so must the URLs lookups hand out.
        ("TIERLOG_advertisedAddress", "localhost".into()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let b = common::start(dir.path(), &env);

    let sign =
        |role: &str| create_token(&SigningKey::Secret(SECRET.to_vec()), role, None, None).unwrap();
    let admin = sign("admin");
    let app = sign("app");
    // Expired an hour ago, with the right key.
    let expired = security::token::create_token_with_claims(
        &SigningKey::Secret(SECRET.to_vec()),
        serde_json::json!({"sub": "app", "exp": 1_000_000_000u64})
            .as_object()
            .unwrap()
            .clone(),
    )
    .unwrap();
    let forged = create_token(
        &SigningKey::Secret(b"some other secret of 32 bytes!!!".to_vec()),
        "app",
        None,
        None,
    )
    .unwrap();

    // The tenant and namespaces, as a super-user; permissions in Pulsar's JSON.
    let call = |m: &str, p: &str, body: Option<&str>| b.call_as(m, p, body, Some(&admin));
    assert_eq!(
        call(
            "PUT",
            "/admin/v2/tenants/acme",
            Some(r#"{"adminRoles":[],"allowedClusters":["standalone"]}"#)
        )
        .0,
        204
    );
    assert_eq!(
        call(
            "PUT",
            "/admin/v2/namespaces/acme/app",
            Some(r#"{"auth_policies": {"namespace_auth": {"app": ["produce","consume"], "certuser": ["produce","consume"], "basicuser": ["produce","consume"], "crypter": ["produce","consume"]}}}"#)
        )
        .0,
        204
    );
    assert_eq!(call("PUT", "/admin/v2/namespaces/acme/open", None).0, 204);
    assert_eq!(
        call(
            "POST",
            "/admin/v2/namespaces/acme/open/permissions/anonymous",
            Some(r#"["produce","consume"]"#)
        )
        .0,
        204
    );
    let (status, perms) = call("GET", "/admin/v2/namespaces/acme/open/permissions", None);
    assert_eq!(
        (status, perms.as_str()),
        (200, r#"{"anonymous":["produce","consume"]}"#)
    );

    for secret in [
        app.as_str(),
        admin.as_str(),
        expired.as_str(),
        forged.as_str(),
        std::str::from_utf8(SECRET).unwrap(),
        BASIC_PASSWORD,
        CRYPT_PASSWORD,
        "basic pass 2",
    ] {
        testkit::audit::secret(secret);
    }
    let tokens =
        serde_json::json!({"app": app, "admin": admin, "expired": expired, "forged": forged});
    let script = testkit::workspace_root().join("crates/tierlog/tests/clients/python_security.py");
    let out = testkit::audit::output(
        Command::new(common::python())
            .arg(&script)
            .args([
                b.broker_port.to_string(),
                tls_port.to_string(),
                b.web_port.to_string(),
                web_tls_port.to_string(),
            ])
            .arg(&pki.ca_file)
            .arg(dir.path().join("pki"))
            .arg(tokens.to_string())
            .arg(
                serde_json::json!({"basicuser": BASIC_PASSWORD, "crypter": CRYPT_PASSWORD})
                    .to_string(),
            ),
    );
    // Its answers carry the clients' error messages: audited too.
    testkit::audit::keep("python-security-stdout", &out.stdout);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let result = |case: &str| -> String {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(case).and_then(|r| r.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("no result for {case}\nstdout:\n{stdout}\nstderr:\n{stderr}"))
            .to_string()
    };
    let ok = |case: &str| assert_eq!(result(case), "OK", "{case}\n{stdout}");
    let err = |case: &str, class: &str| {
        let r = result(case);
        assert!(
            r.starts_with(&format!("ERR {class}")),
            "{case}: {r}\n{stdout}"
        );
    };
    ok("token-plain");
    ok("token-tls");
    ok("token-https-lookup");
    ok("token-http-lookup");
    err("token-other-namespace", "AuthorizationError");
    ok("anonymous-open");
    err("anonymous-app", "AuthorizationError");
    // The broker answers a refused CONNECT with ERROR{AuthenticationError} and closes, as
    // Pulsar does; the C++ client (3.x) treats any reply but CONNECTED as a failed connection
    // and retries until its operation timeout. pulsar-rs reports the code itself (below).
    for case in ["expired-plain", "expired-tls", "forged-plain", "forged-tls"] {
        let r = result(case);
        assert!(
            r.starts_with("ERR Timeout") || r.starts_with("ERR AuthenticationError"),
            "{case}: {r}"
        );
    }
    ok("cert-tls");
    ok("basic-apr1-plain");
    ok("basic-crypt-tls");
    ok("basic-https-lookup");
    for case in ["basic-wrong-password", "basic-unknown-user"] {
        let r = result(case);
        assert!(
            r.starts_with("ERR Timeout") || r.starts_with("ERR AuthenticationError"),
            "{case}: {r}"
        );
    }
    err("basic-other-namespace", "AuthorizationError");
    assert!(
        result("rest-basic-topics").starts_with("HTTP 200"),
        "{stdout}"
    );
    assert_eq!(
        result("rest-basic-wrong"),
        r#"HTTP 401 {"reason":"Authentication required: Unknown user or invalid password"}"#,
        "{stdout}"
    );
    ok("hostname-right");
    err("hostname-wrong", "");
    ok("hostname-unchecked");
    assert_eq!(result("rest-admin-https"), "HTTP 200");
    assert!(
        result("rest-app-https").starts_with("HTTP 403 {\"reason\":"),
        "{stdout}"
    );
    // Anonymous gets a role, and that role may not administrate.
    assert!(
        result("rest-none-https").starts_with("HTTP 403"),
        "{stdout}"
    );
    assert!(
        result("rest-expired-http").starts_with(
            "HTTP 401 {\"reason\":\"Authentication required: invalid token: the token has expired"
        ),
        "{stdout}"
    );
    assert!(
        result("rest-forged-http").starts_with("HTTP 401"),
        "{stdout}"
    );
    // A role with consume on the namespace lists its topics.
    assert!(
        result("rest-app-topics").starts_with("HTTP 200"),
        "{stdout}"
    );
    // A TLS client certificate authenticates REST calls as its CN too.
    assert!(
        result("rest-cert-topics").starts_with("HTTP 200"),
        "{stdout}"
    );
    assert!(
        result("rest-cert-tenants").contains(r#"\"certuser\" is not a super-user"#),
        "{stdout}"
    );

    // The wire answer: ERROR{request_id: -1, AuthenticationError}, then the connection closes.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let wrong_basic = "basicuser:basic pass 2".to_string();
    for (what, method, data) in [
        ("expired", "token", &expired),
        ("forged", "token", &forged),
        ("wrong password", "basic", &wrong_basic),
    ] {
        let (reply, closed) = rt.block_on(common::raw::Raw::connect_with_auth(
            b.broker_port,
            method,
            data.as_bytes(),
        ));
        let e = reply
            .error
            .clone()
            .unwrap_or_else(|| panic!("{what}: {reply:?}"));
        assert_eq!(e.request_id, u64::MAX, "{what}");
        assert_eq!(
            e.error,
            protocol::pb::ServerError::AuthenticationError as i32,
            "{what}"
        );
        let expected = if method == "token" {
            "token"
        } else {
            "Unknown user or invalid password"
        };
        assert!(e.message.contains(expected), "{what}: {}", e.message);
        assert!(closed, "{what}: the connection stays open");
    }
    // pulsar-rs connects with a good one.
    let accepted = rt.block_on(async {
        pulsar::Pulsar::builder(b.service_url(), pulsar::TokioExecutor)
            .with_auth(pulsar::Authentication {
                name: "token".into(),
                data: app.clone().into_bytes(),
            })
            .build()
            .await
    });
    assert!(accepted.is_ok(), "{:?}", accepted.err());

    // tierlog admin and tierlog perf as authenticated clients: flags, then client.conf.
    let tierlog = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tierlog"));
        cmd.args(args).env_remove("TIERLOG_CLIENT_CONF");
        for (k, v) in env {
            cmd.env(k, v);
        }
        testkit::audit::output(&mut cmd)
    };
    let https = format!("https://localhost:{web_tls_port}");
    let ca = pki.ca_file.display().to_string();
    let token_param = |t: &str| format!("token:{t}");
    let plugin = "org.apache.pulsar.client.impl.auth.AuthenticationToken";
    let admin_param = token_param(&admin);
    let out = tierlog(
        &[
            "admin",
            "--admin-url",
            &https,
            "--tls-trust-cert-path",
            &ca,
            "--auth-plugin",
            plugin,
            "--auth-params",
            &admin_param,
            "tenants",
            "list",
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("acme"));
    let app_param = token_param(&app);
    let out = tierlog(
        &[
            "admin",
            "--admin-url",
            &https,
            "--tls-trust-cert-path",
            &ca,
            "--auth-plugin",
            plugin,
            "--auth-params",
            &app_param,
            "tenants",
            "list",
        ],
        &[],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("HTTP 403") && err.contains("super-user"),
        "{err}"
    );
    assert!(!err.contains(&app), "the token is echoed");
    // AuthenticationBasic with Pulsar's JSON parameters, on the admin API over HTTPS.
    let basic_params =
        serde_json::json!({"userId": "basicuser", "password": BASIC_PASSWORD}).to_string();
    let out = tierlog(
        &[
            "admin",
            "--admin-url",
            &https,
            "--tls-trust-cert-path",
            &ca,
            "--auth-plugin",
            "org.apache.pulsar.client.impl.auth.AuthenticationBasic",
            "--auth-params",
            &basic_params,
            "topics",
            "list",
            "acme/app",
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("persistent://acme/app/"));
    // The same from conf/client.conf, granting and listing permissions with pulsar-admin's
    // commands.
    let token_file = dir.path().join("admin.token");
    std::fs::write(&token_file, &admin).unwrap();
    let conf = dir.path().join("client.conf");
    std::fs::write(
        &conf,
        format!(
            "webServiceUrl={https}\nbrokerServiceUrl=pulsar+ssl://localhost:{tls_port}\n\
             authPlugin={plugin}\nauthParams=file://{}\ntlsTrustCertsFilePath={ca}\n",
            token_file.display()
        ),
    )
    .unwrap();
    let conf_env = [("TIERLOG_CLIENT_CONF", conf.to_str().unwrap())];
    let out = tierlog(
        &[
            "admin",
            "topics",
            "grant-permission",
            "persistent://acme/open/perf",
            "--role",
            "bob",
            "--actions",
            "produce,consume",
        ],
        &conf_env,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = tierlog(
        &[
            "admin",
            "topics",
            "permissions",
            "persistent://acme/open/perf",
        ],
        &conf_env,
    );
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        shown.contains("\"bob\"") && shown.contains("\"anonymous\""),
        "{shown}"
    );
    let out = tierlog(
        &[
            "admin",
            "namespaces",
            "grant-permission",
            "acme/open",
            "--role",
            "x",
            "--actions",
            "fly",
        ],
        &conf_env,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown action \"fly\""));
    // perf over pulsar+ssl:// with the conf's admin token, then with an expired one.
    let out = tierlog(
        &[
            "perf",
            "produce",
            "-r",
            "200",
            "-m",
            "20",
            "persistent://acme/app/perf",
        ],
        &conf_env,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expired_param = token_param(&expired);
    let out = tierlog(
        &[
            "perf",
            "produce",
            "-m",
            "1",
            "--auth-plugin",
            plugin,
            "--auth-params",
            &expired_param,
            "persistent://acme/app/perf",
        ],
        &conf_env,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("AuthenticationError") && err.contains("expired"),
        "{err}"
    );

    // Nothing the test used as a secret reaches the broker's log.
    let log = b.stop("TERM");
    let log = String::from_utf8_lossy(&log.stderr).to_string();
    for secret in [
        app.as_str(),
        admin.as_str(),
        expired.as_str(),
        forged.as_str(),
        BASIC_PASSWORD,
        CRYPT_PASSWORD,
        "basic pass 2",
        "Tq9wLx2a",
    ] {
        assert!(!log.contains(secret), "a credential is in the broker's log");
    }
    assert!(
        !log.contains(std::str::from_utf8(SECRET).unwrap()),
        "the secret key is in the log"
    );
    assert!(log.contains("authentication failed"), "refusals are logged");
}

/// Expiring tokens are challenged every authenticationRefreshCheckSeconds: a client that
/// answers with a fresh token for the same role stays connected; one that cannot refresh, or
/// answers as another role, is disconnected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiring_tokens_are_challenged_and_refreshed_or_the_connection_closes() {
    use protocol::pb::{self, BaseCommand, base_command::Type};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret.key");
    std::fs::write(&secret_file, SECRET).unwrap();
    let secret_url = format!("file://{}", secret_file.display());
    let b = common::start(
        dir.path(),
        &[
            ("TIERLOG_authenticationEnabled", "true"),
            (
                "TIERLOG_authenticationProviders",
                "org.apache.pulsar.broker.authentication.AuthenticationProviderToken",
            ),
            ("TIERLOG_tokenSecretKey", &secret_url),
            ("TIERLOG_authenticationRefreshCheckSeconds", "1"),
        ],
    );
    let key = SigningKey::Secret(SECRET.to_vec());
    let expiring = |role: &str, secs: u64| {
        let exp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + secs;
        let token = security::token::create_token_with_claims(
            &key,
            serde_json::json!({"sub": role, "exp": exp})
                .as_object()
                .unwrap()
                .clone(),
        )
        .unwrap();
        testkit::audit::secret(&token);
        token
    };
    let port = b.broker_port;
    // No anonymousUserRole here: a CONNECT without credentials is refused as Pulsar does.
    let (reply, closed) = common::raw::Raw::connect_without_auth(port).await;
    let e = reply.error.clone().unwrap_or_else(|| panic!("{reply:?}"));
    assert_eq!(
        e.error,
        pb::ServerError::AuthenticationError as i32,
        "{reply:?}"
    );
    assert!(e.message.contains("Authentication required"), "{e:?}");
    assert!(closed, "the connection stays open");
    let t = expiring("app", 2);
    let mut refreshing =
        common::raw::Raw::connect_authenticated(port, "token", t.as_bytes(), true).await;
    let mut stale =
        common::raw::Raw::connect_authenticated(port, "token", t.as_bytes(), false).await;
    let mut impostor =
        common::raw::Raw::connect_authenticated(port, "token", t.as_bytes(), true).await;

    // The client without refresh support is closed once its token has expired.
    let mut seen = Vec::new();
    assert!(
        stale.closed_within(Duration::from_secs(6), &mut seen).await,
        "{seen:?}"
    );

    // The others are challenged; one answers as the same role, one as another.
    for (raw, role) in [(&mut refreshing, "app"), (&mut impostor, "someone-else")] {
        let challenge = loop {
            let c = raw
                .try_next(Duration::from_secs(6))
                .await
                .expect("AUTH_CHALLENGE");
            if let Some(c) = c.auth_challenge {
                break c;
            }
        };
        assert_eq!(
            challenge
                .challenge
                .and_then(|c| c.auth_method_name)
                .as_deref(),
            Some("token")
        );
        let fresh = expiring(role, 3600);
        raw.write(&protocol::encode_command(&BaseCommand {
            auth_response: Some(Box::new(pb::CommandAuthResponse {
                client_version: Some("raw-test-client".into()),
                response: Some(pb::AuthData {
                    auth_method_name: Some("token".into()),
                    auth_data: Some(fresh.into_bytes().into()),
                }),
                protocol_version: Some(20),
            })),
            ..protocol::commands::base(Type::AuthResponse)
        }))
        .await;
    }
    let mut seen = Vec::new();
    assert!(
        impostor
            .closed_within(Duration::from_secs(3), &mut seen)
            .await
    );
    assert!(
        seen.iter().any(|c| c
            .error
            .as_ref()
            .is_some_and(|e| e.error == pb::ServerError::AuthenticationError as i32)),
        "{seen:?}"
    );
    // The refreshed one outlives several checks.
    let mut seen = Vec::new();
    assert!(
        !refreshing
            .closed_within(Duration::from_secs(4), &mut seen)
            .await,
        "{seen:?}"
    );
}

/// `tierlog tokens` as `pulsar tokens`: keys and tokens it makes are accepted by its own
/// validation (and so by the broker's provider, which shares the code path), in Pulsar's files.
#[test]
fn tierlog_tokens_keys_tokens_show_and_validate() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = testkit::audit::output(
            Command::new(env!("CARGO_BIN_EXE_tierlog"))
                .arg("tokens")
                .args(args),
        );
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let secret = dir.path().join("secret.key");
    let secret_s = secret.display().to_string();
    let (ok, _, err) = run(&["create-secret-key", "--output", &secret_s]);
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::read(&secret).unwrap().len(),
        32,
        "a raw 256-bit key, as Pulsar writes"
    );
    let (ok, b64, _) = run(&["create-secret-key", "--base64"]);
    assert!(ok && b64.len() == 44, "{b64}");
    let secret_url = format!("file://{secret_s}");
    let (ok, token, err) = run(&[
        "create",
        "--secret-key",
        &secret_url,
        "--subject",
        "app",
        "--expiry-time",
        "1h",
    ]);
    assert!(ok, "{err}");
    testkit::audit::secret(&token);
    testkit::audit::secret(&b64);
    let (ok, shown, _) = run(&["show", &token]);
    assert!(
        ok && shown.contains("\"sub\":\"app\"") && shown.contains("HS256"),
        "{shown}"
    );
    let (ok, valid, err) = run(&["validate", "--secret-key", &secret_url, &token]);
    assert!(
        ok && valid.contains("subject app") && valid.contains("expires"),
        "{valid}{err}"
    );
    // Another key refuses it, naming why.
    let other = dir.path().join("other.key");
    run(&["create-secret-key", "--output", other.to_str().unwrap()]);
    let (ok, _, err) = run(&["validate", "--secret-key", other.to_str().unwrap(), &token]);
    assert!(!ok && err.contains("signature"), "{err}");

    for alg in ["RS256", "ES256"] {
        let private = dir.path().join(format!("{alg}.private"));
        let public = dir.path().join(format!("{alg}.public"));
        let (ok, _, err) = run(&[
            "create-key-pair",
            "-a",
            alg,
            "--output-private-key",
            private.to_str().unwrap(),
            "--output-public-key",
            public.to_str().unwrap(),
        ]);
        assert!(ok, "{err}");
        let (ok, token, err) = run(&[
            "create",
            "-a",
            alg,
            "--private-key",
            &format!("file://{}", private.display()),
            "--subject",
            "svc",
        ]);
        assert!(ok, "{alg}: {err}");
        let (ok, valid, err) = run(&[
            "validate",
            "-a",
            alg,
            "--public-key",
            &format!("file://{}", public.display()),
            &token,
        ]);
        assert!(ok && valid.contains("subject svc"), "{alg}: {valid}{err}");
    }
}

//! AWS credentials against moto with SigV4 and IAM policies enforced: static keys, a wrong
//! secret, the environment, a profile file, and STS AssumeRole (with cached session credentials).
//!
//! Each test sets process environment variables before its runtime starts; nextest runs every
//! test in its own process, so they cannot leak into each other. The instance metadata service is
//! disabled so the chain never reaches for a non-loopback address.

use crate::common;

use std::collections::BTreeMap;

use common::VecSource;
use offload::{LedgerOffloader, Location, OffloadConfig, OffloadError, TierReader};
use testkit::moto::MotoServer;
use testkit::proxy::HttpProxy;
use uuid::Uuid;

const BUCKET: &str = "secured-bucket";

fn set_env(vars: &[(&str, &str)]) {
    for (k, v) in vars {
        // SAFETY: called before the test starts any thread (no runtime yet), in a process of its own.
        unsafe { std::env::set_var(k, v) };
    }
    unsafe { std::env::set_var("AWS_EC2_METADATA_DISABLED", "true") };
    for k in ["AWS_PROFILE", "AWS_SESSION_TOKEN"] {
        if !vars.iter().any(|(n, _)| *n == k) {
            unsafe { std::env::remove_var(k) };
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn config(endpoint: &str) -> OffloadConfig {
    OffloadConfig::new(Location::s3_compatible(BUCKET, endpoint))
}

async fn round_trip(c: OffloadConfig) -> Result<(), OffloadError> {
    let o = common::offloader(c, 1).await?;
    let src = VecSource::with_sizes(1, [100; 10]);
    let uuid = Uuid::new_v4();
    o.offload(&src, uuid, &BTreeMap::new()).await?;
    let h = o.read(1, uuid, o.location()).await?;
    assert_eq!(h.read(0, 9).await?, src.entries);
    Ok(())
}

#[test]
fn static_keys_work_and_a_wrong_secret_is_a_clear_error_without_the_secret() {
    set_env(&[]);
    let (moto, iam) = MotoServer::start_with_iam(BUCKET);
    runtime().block_on(async {
        let mut c = config(&moto.endpoint());
        c.credentials.credential_id = Some(iam.access_key.clone());
        c.credentials.credential_secret = Some(iam.secret_key.clone());
        round_trip(c.clone()).await.unwrap();

        testkit::audit::secret("wrong-secret-value");
        c.credentials.credential_secret = Some("wrong-secret-value".into());
        let e = round_trip(c).await.unwrap_err();
        assert!(matches!(e, OffloadError::AccessDenied { .. }), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("rejected the credentials for bucket \"secured-bucket\""),
            "{text}"
        );
        assert!(
            !text.contains("wrong-secret-value"),
            "secret leaked: {text}"
        );
    });
}

#[test]
fn credentials_from_the_environment() {
    let (moto, iam) = MotoServer::start_with_iam(BUCKET);
    set_env(&[
        ("AWS_ACCESS_KEY_ID", &iam.access_key),
        ("AWS_SECRET_ACCESS_KEY", &iam.secret_key),
    ]);
    runtime().block_on(async { round_trip(config(&moto.endpoint())).await.unwrap() });
}

#[test]
fn credentials_from_a_profile_file() {
    let (moto, iam) = MotoServer::start_with_iam(BUCKET);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credentials");
    std::fs::write(
        &file,
        format!(
            "[default]\naws_access_key_id = nobody\naws_secret_access_key = nothing\n\n[offload]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            iam.access_key, iam.secret_key
        ),
    )
    .unwrap();
    for k in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        unsafe { std::env::remove_var(k) };
    }
    set_env(&[
        ("AWS_SHARED_CREDENTIALS_FILE", file.to_str().unwrap()),
        (
            "AWS_CONFIG_FILE",
            dir.path().join("config").to_str().unwrap(),
        ),
        ("AWS_PROFILE", "offload"),
    ]);
    runtime().block_on(async { round_trip(config(&moto.endpoint())).await.unwrap() });
}

#[test]
fn assume_role_through_sts_and_session_credentials_are_cached() {
    let (moto, iam) = MotoServer::start_with_iam(BUCKET);
    // STS goes through a counting proxy to the same moto server.
    let sts = HttpProxy::start(moto.port);
    set_env(&[
        ("AWS_ACCESS_KEY_ID", &iam.access_key),
        ("AWS_SECRET_ACCESS_KEY", &iam.secret_key),
        ("AWS_ENDPOINT_URL_STS", &sts.endpoint()),
    ]);
    runtime().block_on(async {
        let mut c = config(&moto.endpoint());
        c.credentials.role = Some(iam.role_arn.clone());
        c.credentials.role_session_name = Some("tierlog-test".into());
        let o = common::offloader(c, 1).await.unwrap();
        for ledger in 1..=5 {
            let src = VecSource::with_sizes(ledger, [64; 20]);
            let uuid = Uuid::new_v4();
            o.offload(&src, uuid, &BTreeMap::new()).await.unwrap();
            let h = o.read(ledger, uuid, o.location()).await.unwrap();
            assert_eq!(h.read(0, 19).await.unwrap(), src.entries);
        }
        let (sts_requests, _) = sts.counts();
        assert_eq!(
            sts_requests, 1,
            "AssumeRole must be called once and its credentials cached"
        );
    });
}

#[test]
fn web_identity_token_exchanged_through_sts() {
    // moto refuses AssumeRoleWithWebIdentity (an unsigned call by design) once it enforces
    // SigV4, so this runs without enforcement: what it shows is that the chain reads the token
    // file and exchanges it through STS once, and that S3 requests then succeed.
    let moto = MotoServer::start();
    moto.create_bucket(BUCKET);
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ0aWVybG9nIn0.").unwrap();
    let sts = HttpProxy::start(moto.port);
    for k in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        // SAFETY: no other thread runs yet in this test's process.
        unsafe { std::env::remove_var(k) };
    }
    set_env(&[
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token.to_str().unwrap()),
        (
            "AWS_ROLE_ARN",
            "arn:aws:iam::123456789012:role/web-identity",
        ),
        ("AWS_ROLE_SESSION_NAME", "tierlog-web-identity"),
        ("AWS_ENDPOINT_URL_STS", &sts.endpoint()),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            dir.path().join("none").to_str().unwrap(),
        ),
        ("AWS_CONFIG_FILE", dir.path().join("none").to_str().unwrap()),
    ]);
    runtime().block_on(async { round_trip(config(&moto.endpoint())).await.unwrap() });
    assert_eq!(sts.counts().0, 1, "one AssumeRoleWithWebIdentity call");
}

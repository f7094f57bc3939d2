//! The google-cloud-storage driver without a GCS emulator (none here speaks the XML API
//! object_store uses): key handling, and the request signing checked for real — the driver's first
//! request goes to a stub on 127.0.0.1 (the key file's `gcs_base_url`), and the RS256 signature of
//! its bearer JWT is verified with openssl against the key's public half.

use crate::common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::Command;

use offload::{Driver, LedgerOffloader, LedgerSource, Location, OffloadConfig};

struct One;

#[async_trait::async_trait]
impl LedgerSource for One {
    fn ledger_id(&self) -> i64 {
        1
    }
    fn last_entry_id(&self) -> i64 {
        0
    }
    fn length(&self) -> u64 {
        3
    }
    fn created_ms(&self) -> u64 {
        0
    }
    async fn read(&self, _: i64, _: i64, _: usize) -> Result<Vec<bytes::Bytes>, String> {
        Ok(vec![bytes::Bytes::from_static(b"abc")])
    }
}

fn b64url_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .expect("base64url")
}

fn config(key_file: &std::path::Path, endpoint: Option<String>) -> OffloadConfig {
    let location = Location::new(
        Driver::GoogleCloudStorage,
        Some("gcs-bucket".into()),
        None,
        endpoint,
        Default::default(),
    );
    let mut c = OffloadConfig::new(location);
    c.credentials.gcs_service_account_key_file = Some(key_file.to_path_buf());
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_and_malformed_key_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let e = common::offloader(config(&dir.path().join("absent.json"), None), 0)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("gcsManagedLedgerOffloadServiceAccountKeyFile") && e.contains("absent.json"),
        "{e}"
    );
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{not json").unwrap();
    let e = common::offloader(config(&bad, None), 0)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("google-cloud-storage driver"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_carry_a_valid_rs256_signature_from_the_service_account_key() {
    let dir = tempfile::tempdir().unwrap();
    let key_pem = dir.path().join("key.pem");
    let ok = Command::new("openssl")
        .args([
            "genpkey",
            "-quiet",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&key_pem)
        .status()
        .unwrap();
    assert!(ok.success());
    let pub_pem = dir.path().join("pub.pem");
    assert!(
        Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&key_pem)
            .arg("-out")
            .arg(&pub_pem)
            .status()
            .unwrap()
            .success()
    );

    // A stub GCS on 127.0.0.1 that records the first request and refuses it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let stub = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 65536];
        let mut got = Vec::new();
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        let body = "<Error><Code>AccessDenied</Code></Error>";
        let _ = write!(
            s,
            "HTTP/1.1 403 Forbidden\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        String::from_utf8_lossy(&got).to_string()
    });

    let key = std::fs::read_to_string(&key_pem).unwrap();
    let json = serde_json::json!({
        "type": "service_account",
        "private_key": key,
        "private_key_id": "key-id-123",
        "client_email": "offloader@tierlog-test.iam.gserviceaccount.com",
        "gcs_base_url": format!("http://127.0.0.1:{port}"),
    });
    let key_file = dir.path().join("sa.json");
    std::fs::write(&key_file, json.to_string()).unwrap();
    let c = config(&key_file, Some(format!("http://127.0.0.1:{port}")));
    let o = common::offloader(c, 0).await.unwrap();
    let e = o
        .offload(&One, uuid::Uuid::new_v4(), &BTreeMap::new())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("gcs-bucket"), "{e}");

    let request = stub.join().unwrap();
    let auth = request
        .lines()
        .find_map(|l| {
            l.strip_prefix("authorization: Bearer ")
                .or_else(|| l.strip_prefix("Authorization: Bearer "))
        })
        .unwrap_or_else(|| panic!("no bearer token in {request}"))
        .trim()
        .to_string();
    let parts: Vec<&str> = auth.split('.').collect();
    assert_eq!(parts.len(), 3, "{auth}");
    let header: serde_json::Value = serde_json::from_slice(&b64url_decode(parts[0])).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&b64url_decode(parts[1])).unwrap();
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], "key-id-123");
    assert_eq!(
        claims["iss"],
        "offloader@tierlog-test.iam.gserviceaccount.com"
    );
    assert_eq!(
        claims["scope"],
        "https://www.googleapis.com/auth/cloud-platform"
    );
    // The multipart upload of the data object, in the bucket (path percent-encoded), with Pulsar's
    // user metadata.
    assert!(
        request.starts_with("POST /gcs%2Dbucket/") && request.contains("?uploads"),
        "{request}"
    );
    assert!(
        request.contains("x-goog-meta-s3managedledgeroffloaderformatversion: 1"),
        "{request}"
    );

    std::fs::write(dir.path().join("msg"), format!("{}.{}", parts[0], parts[1])).unwrap();
    std::fs::write(dir.path().join("sig"), b64url_decode(parts[2])).unwrap();
    let verified = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(&pub_pem)
        .arg("-signature")
        .arg(dir.path().join("sig"))
        .arg(dir.path().join("msg"))
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "signature does not verify: {}",
        String::from_utf8_lossy(&verified.stdout)
    );
}

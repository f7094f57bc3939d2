//! `tierlog offload dump` on objects offloaded to a real S3 server and to a directory.

use std::collections::BTreeMap;
use std::process::Command;

use bytes::Bytes;
use offload::{BlobStoreOffloader, LedgerOffloader, LedgerSource, Location, OffloadConfig};
use sha2::{Digest, Sha256};
use testkit::moto::MotoServer;

struct Source(Vec<Bytes>);

#[async_trait::async_trait]
impl LedgerSource for Source {
    fn ledger_id(&self) -> i64 {
        12
    }
    fn last_entry_id(&self) -> i64 {
        self.0.len() as i64 - 1
    }
    fn length(&self) -> u64 {
        self.0.iter().map(|e| e.len() as u64).sum()
    }
    fn created_ms(&self) -> u64 {
        1
    }
    async fn read(&self, first: i64, last: i64, _max: usize) -> Result<Vec<Bytes>, String> {
        Ok(self.0[first as usize..=last as usize].to_vec())
    }
}

fn entries() -> Vec<Bytes> {
    (0..2500)
        .map(|i| Bytes::from(format!("payload-{i}").repeat(i % 5)))
        .collect()
}

fn sha(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dump_json_from_s3() {
    let moto = MotoServer::start();
    moto.create_bucket("dump-bucket");
    let mut c = OffloadConfig::new(Location::s3_compatible("dump-bucket", &moto.endpoint()));
    c.credentials.credential_id = Some("k".into());
    c.credentials.credential_secret = Some(testkit::audit::s3_secret_key().into());
    let o = BlobStoreOffloader::new(c).await.unwrap();
    let src = Source(entries());
    let r = o
        .offload(&src, uuid::Uuid::new_v4(), &BTreeMap::new())
        .await
        .unwrap();

    let out = testkit::audit::output(
        Command::new(env!("CARGO_BIN_EXE_tierlog"))
            .args([
                "offload",
                "dump",
                "--driver",
                "S3",
                "--bucket",
                "dump-bucket",
                "--endpoint",
                &moto.endpoint(),
            ])
            .args(["--key", &r.data_key, "--output", "json"])
            .env("AWS_ACCESS_KEY_ID", "k")
            .env("AWS_SECRET_ACCESS_KEY", testkit::audit::s3_secret_key())
            .env("AWS_EC2_METADATA_DISABLED", "true"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let meta: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(meta["ledger"], 12);
    assert_eq!(meta["lastEntryId"], 2499);
    assert_eq!(meta["state"], "CLOSED");
    assert_eq!(meta["length"], src.length());
    let entry_lines: Vec<&str> = lines.collect();
    assert_eq!(entry_lines.len(), 2500);
    for (i, line) in entry_lines.iter().enumerate() {
        let expected = format!(
            "{{\"ledger\":12,\"entry\":{i},\"size\":{},\"sha256\":\"{}\"}}",
            src.0[i].len(),
            sha(&src.0[i])
        );
        assert_eq!(*line, expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dump_text_from_a_directory_and_bad_keys() {
    let dir = tempfile::tempdir().unwrap();
    let c = OffloadConfig::new(Location::filesystem(dir.path()));
    let o = BlobStoreOffloader::new(c).await.unwrap();
    let src = Source(entries()[..10].to_vec());
    let r = o
        .offload(&src, uuid::Uuid::new_v4(), &BTreeMap::new())
        .await
        .unwrap();
    let run = |key: &str| {
        testkit::audit::output(
            Command::new(env!("CARGO_BIN_EXE_tierlog"))
                .args(["offload", "dump", "--driver", "filesystem", "--path"])
                .arg(dir.path())
                .args(["--key", key]),
        )
    };
    let out = run(&r.index_key);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("ledger 12 (offload "), "{text}");
    assert!(text.contains("last entry id  9"), "{text}");
    assert!(
        text.contains(&format!(
            "entry        3  size {:>9}  sha256 {}",
            src.0[3].len(),
            sha(&src.0[3])
        )),
        "{text}"
    );

    let out = run("not-a-key");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("is not of the form <uuid>-ledger-<ledgerId>")
    );
    let out = run(&format!("{}-ledger-99", uuid::Uuid::new_v4()));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not found"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

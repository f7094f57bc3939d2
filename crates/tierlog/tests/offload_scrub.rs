//! `tierlog offload scrub` on a directory of offloaded objects: a clean topic passes, planted
//! damage (a truncated data object, a flipped byte, a data object without its index) is found,
//! named, and makes the command fail.

use std::collections::BTreeMap;
use std::process::Command;

use bytes::Bytes;
use offload::{BlobStoreOffloader, LedgerOffloader, LedgerSource, Location, OffloadConfig};

struct Source {
    id: i64,
    entries: Vec<Bytes>,
}

#[async_trait::async_trait]
impl LedgerSource for Source {
    fn ledger_id(&self) -> i64 {
        self.id
    }
    fn last_entry_id(&self) -> i64 {
        self.entries.len() as i64 - 1
    }
    fn length(&self) -> u64 {
        self.entries.iter().map(|e| e.len() as u64).sum()
    }
    fn created_ms(&self) -> u64 {
        1
    }
    async fn read(&self, first: i64, last: i64, _max: usize) -> Result<Vec<Bytes>, String> {
        Ok(self.entries[first as usize..=last as usize].to_vec())
    }
}

/// Entries as stored by a broker: `[0x0e01][crc32c][body]`.
fn source(id: i64, n: usize) -> Source {
    let entries = (0..n)
        .map(|i| {
            let body = format!("ledger {id} entry {i} ").repeat(40 + i % 60);
            let mut e = vec![0x0e, 0x01];
            e.extend_from_slice(&crc_fast::crc32_iscsi(body.as_bytes()).to_be_bytes());
            e.extend_from_slice(body.as_bytes());
            Bytes::from(e)
        })
        .collect();
    Source { id, entries }
}

fn scrub(dir: &std::path::Path, extra: &[&str]) -> (bool, String) {
    let out = testkit::audit::output(
        Command::new(env!("CARGO_BIN_EXE_tierlog"))
            .args(["offload", "scrub", "--driver", "filesystem", "--path"])
            .arg(dir)
            .args(extra),
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrub_passes_intact_objects_and_names_planted_damage() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = OffloadConfig::new(Location::filesystem(dir.path()));
    c.max_block_size_bytes = 5 << 20;
    let o = BlobStoreOffloader::new(c).await.unwrap();
    let mut offloaded = Vec::new();
    for (id, topic) in [(1, "a"), (2, "a"), (3, "b")] {
        let extra = BTreeMap::from([(
            offload::keys::MANAGED_LEDGER_NAME.to_string(),
            format!("public/default/persistent/{topic}"),
        )]);
        let src = source(id, 6000);
        let r = o.offload(&src, uuid::Uuid::new_v4(), &extra).await.unwrap();
        assert!(r.blocks >= 2, "{r:?}");
        offloaded.push(r);
    }

    let (ok, json) = scrub(
        dir.path(),
        &[
            "--topic",
            "persistent://public/default/a",
            "--output",
            "json",
        ],
    );
    assert!(ok, "{json}");
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let ledgers = report["ledgers"].as_array().unwrap();
    assert_eq!(ledgers.len(), 2, "{json}");
    for l in ledgers {
        assert_eq!(l["entries"], 6000);
        assert_eq!(l["problems"].as_array().unwrap().len(), 0);
        assert_eq!(l["managedLedger"], "public/default/persistent/a");
    }

    // Ledger 2 loses its last 1000 bytes; ledger 1 gets one flipped byte in the middle.
    let data2 = dir.path().join(&offloaded[1].data_key);
    let len = std::fs::metadata(&data2).unwrap().len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&data2)
        .unwrap();
    f.set_len(len - 1000).unwrap();
    drop(f);
    let data1 = dir.path().join(&offloaded[0].data_key);
    let mut bytes = std::fs::read(&data1).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x20;
    std::fs::write(&data1, bytes).unwrap();

    let (ok, text) = scrub(dir.path(), &["--topic", "persistent://public/default/a"]);
    assert!(!ok, "damage went unnoticed:\n{text}");
    assert!(
        text.contains(&format!("{} bytes, its index says {len}", len - 1000)),
        "{text}"
    );
    assert!(text.contains("does not match its checksum"), "{text}");
    assert_eq!(text.matches("DAMAGED").count(), 2, "{text}");

    // Topic b is intact; a data object without its index shows up in a scrub of everything.
    assert!(scrub(dir.path(), &["--topic", "persistent://public/default/b"]).0);
    let orphan = offload::keys::data_key(&uuid::Uuid::new_v4(), 9);
    std::fs::copy(
        dir.path().join(&offloaded[2].data_key),
        dir.path().join(&orphan),
    )
    .unwrap();
    let (ok, text) = scrub(dir.path(), &[]);
    assert!(!ok);
    assert!(
        text.contains(&format!(
            "INCOMPLETE {orphan} has a data object but no index object"
        )),
        "{text}"
    );
    assert!(text.contains("3 ledgers scrubbed"), "{text}");
}

//! Offload against a real S3-compatible server (moto on 127.0.0.1), with faults injected by a
//! real HTTP proxy or by killing the server.

use crate::common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::{VecSource, assert_reads_back};
use offload::keys::MANAGED_LEDGER_NAME;
use offload::{Driver, LedgerOffloader, Location, OffloadConfig, OffloadError, TierReader};
use testkit::moto::MotoServer;
use testkit::proxy::HttpProxy;
use uuid::Uuid;

fn s3_config(driver: Driver, endpoint: &str, bucket: &str) -> OffloadConfig {
    let location = Location::new(
        driver,
        Some(bucket.into()),
        None,
        Some(endpoint.into()),
        Default::default(),
    );
    let mut c = OffloadConfig::new(location);
    c.credentials.credential_id = Some("testing".into());
    c.credentials.credential_secret = Some(testkit::audit::s3_secret_key().into());
    c.max_block_size_bytes = 5 << 20;
    c
}

fn extra() -> BTreeMap<String, String> {
    BTreeMap::from([(
        MANAGED_LEDGER_NAME.to_string(),
        "public/default/persistent/t".to_string(),
    )])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trips_with_pulsar_layout_and_metadata() {
    let moto = MotoServer::start();
    moto.create_bucket("offload-bucket");
    for driver in [Driver::S3, Driver::AwsS3] {
        let o = common::offloader(s3_config(driver, &moto.endpoint(), "offload-bucket"), 2)
            .await
            .unwrap();
        let cases: Vec<(VecSource, u64)> = vec![
            (VecSource::with_sizes(1, [17]), 5 << 20),
            (VecSource::with_sizes(2, [0, 0, 0]), 5 << 20),
            (
                VecSource::with_sizes(3, (0..100_000).map(|i| (i * 13) % 300)),
                5 << 20,
            ),
            (VecSource::with_sizes(4, [5 << 20, 0, 5 << 20, 1]), 64 << 20),
        ];
        for (src, block) in cases {
            let mut c = o.config().clone();
            c.max_block_size_bytes = block;
            let o = common::offloader(c, 2).await.unwrap();
            let uuid = Uuid::new_v4();
            let r = o.offload(&src, uuid, &extra()).await.unwrap();
            let data = moto.get_object("offload-bucket", &r.data_key);
            assert_eq!(&data[..4], &[0xFB, 0xDB, 0xAB, 0xCB], "block magic");
            assert_eq!(data.len() as u64, r.data_object_len);
            let index = moto.get_object("offload-bucket", &r.index_key);
            assert_eq!(&index[..4], &[0xDE, 0x47, 0xDE, 0x47], "index magic");
            for (key, role) in [(&r.data_key, "data"), (&r.index_key, "index")] {
                let headers = moto.head_object("offload-bucket", key);
                let get = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                assert_eq!(
                    get("x-amz-meta-s3managedledgeroffloaderformatversion").as_deref(),
                    Some("1")
                );
                assert_eq!(get("x-amz-meta-role").as_deref(), Some(role));
                assert_eq!(
                    get("x-amz-meta-managedledgername").as_deref(),
                    Some("public/default/persistent/t")
                );
            }
            let h = o.read(src.id, uuid, o.location()).await.unwrap();
            assert_reads_back(&h, &src, 1000).await;
        }
    }
    assert!(moto.multipart_uploads("offload-bucket").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_bucket_is_named_in_the_error() {
    let moto = MotoServer::start();
    let o = common::offloader(s3_config(Driver::S3, &moto.endpoint(), "no-such-bucket"), 2)
        .await
        .unwrap();
    let e = o
        .offload(&VecSource::with_sizes(1, [10]), Uuid::new_v4(), &extra())
        .await
        .unwrap_err();
    assert!(matches!(e, OffloadError::NoSuchBucket { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("bucket \"no-such-bucket\" does not exist"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_part_aborts_the_upload_and_a_retry_succeeds() {
    let moto = MotoServer::start();
    moto.create_bucket("faults");
    let proxy = HttpProxy::start(moto.port);
    let o = common::offloader(s3_config(Driver::S3, &proxy.endpoint(), "faults"), 2)
        .await
        .unwrap();
    // ~20 MiB: four 5 MiB parts. Part 3 and everything after it answers 500.
    let src = VecSource::with_sizes(5, (0..20_000).map(|_| 1000));
    proxy.fail("PUT", "partNumber=3", 0, 500);
    let e = o.offload(&src, Uuid::new_v4(), &extra()).await.unwrap_err();
    assert!(e.to_string().contains("uploading part"), "{e}");
    assert!(
        e.to_string().contains("500") || e.to_string().contains("InternalError"),
        "{e}"
    );
    assert!(proxy.counts().1 >= 1);
    assert!(
        moto.multipart_uploads("faults").is_empty(),
        "the multipart upload must be aborted"
    );
    assert!(
        moto.list_keys("faults").is_empty(),
        "nothing half-written may exist"
    );

    proxy.clear_faults();
    let uuid = Uuid::new_v4();
    o.offload(&src, uuid, &extra()).await.unwrap();
    let h = o.read(5, uuid, o.location()).await.unwrap();
    assert_reads_back(&h, &src, 5000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_index_write_removes_the_data_object() {
    let moto = MotoServer::start();
    moto.create_bucket("faults");
    let proxy = HttpProxy::start(moto.port);
    let o = common::offloader(s3_config(Driver::S3, &proxy.endpoint(), "faults"), 2)
        .await
        .unwrap();
    proxy.fail("PUT", "-index", 0, 503);
    let e = o
        .offload(
            &VecSource::with_sizes(6, [100; 10]),
            Uuid::new_v4(),
            &extra(),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("writing index"), "{e}");
    assert!(
        moto.list_keys("faults").is_empty(),
        "data object without index must be deleted"
    );
    assert!(moto.multipart_uploads("faults").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_mid_upload_fails_with_the_cause_and_a_retry_succeeds() {
    let mut moto = MotoServer::start();
    moto.create_bucket("kill");
    let mut config = s3_config(Driver::S3, &moto.endpoint(), "kill");
    config.parallel_parts = 1;
    let o = Arc::new(common::offloader(config, 2).await.unwrap());
    let src = Arc::new(VecSource::with_sizes(8, (0..60_000).map(|_| 1000)));
    let task = {
        let (o, src) = (Arc::clone(&o), Arc::clone(&src));
        tokio::spawn(async move { o.offload(src.as_ref(), Uuid::new_v4(), &extra()).await })
    };
    // Kill the server once the upload is under way.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while o
        .counters()
        .parts
        .load(std::sync::atomic::Ordering::Relaxed)
        < 2
    {
        assert!(std::time::Instant::now() < deadline, "upload never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    moto.kill();
    let e = task.await.unwrap().unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("kill") && (text.contains("uploading part") || text.contains("completing")),
        "{text}"
    );

    moto.restart();
    moto.create_bucket("kill");
    let uuid = Uuid::new_v4();
    o.offload(src.as_ref(), uuid, &extra()).await.unwrap();
    let h = o.read(8, uuid, o.location()).await.unwrap();
    assert_reads_back(&h, &src, 10_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_without_the_format_version_are_refused() {
    let moto = MotoServer::start();
    moto.create_bucket("versions");
    let o = common::offloader(s3_config(Driver::S3, &moto.endpoint(), "versions"), 2)
        .await
        .unwrap();
    let uuid = Uuid::new_v4();
    let r = o
        .offload(&VecSource::with_sizes(3, [5; 5]), uuid, &extra())
        .await
        .unwrap();
    let index = moto.get_object("versions", &r.index_key);
    moto.put_object("versions", &r.index_key, &index);
    let e = o.read(3, uuid, o.location()).await.unwrap_err();
    assert!(
        matches!(e, OffloadError::BadFormatVersion { found: None, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("expected \"1\""), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_read_is_retried_by_one_layer_only() {
    // object_store's RetryConfig is the only retry layer: with 2 retries a GET that keeps
    // failing costs exactly 3 requests (an extra layer on top multiplied them: 3 × 3 = 9, and
    // with the defaults up to 18).
    let moto = MotoServer::start();
    moto.create_bucket("retries");
    let proxy = HttpProxy::start(moto.port);
    let o = common::offloader(s3_config(Driver::S3, &proxy.endpoint(), "retries"), 2)
        .await
        .unwrap();
    let uuid = Uuid::new_v4();
    o.offload(&VecSource::with_sizes(4, [10; 10]), uuid, &extra())
        .await
        .unwrap();
    proxy.fail("GET", "-index", 0, 503);
    let (before, _) = proxy.counts();
    let e = o.read(4, uuid, o.location()).await.unwrap_err();
    let (after, failed) = proxy.counts();
    assert_eq!(after - before, 3, "1 attempt + 2 retries: {e}");
    assert_eq!(failed, 3);
    assert!(matches!(e, OffloadError::Store { .. }), "{e}");
    // A missing object is not retried at all, and says which object and where.
    proxy.clear_faults();
    let (before, _) = proxy.counts();
    let e = o.read(4, Uuid::new_v4(), o.location()).await.unwrap_err();
    assert_eq!(proxy.counts().0 - before, 1);
    assert!(matches!(e, OffloadError::NotFound { .. }), "{e}");
    assert!(e.to_string().contains("retries"), "{e}");
}

/// A PUT body corrupted between broker and store must be refused by the store, whichever way
/// the body is protected: SigV4's signed SHA-256 or UNSIGNED-PAYLOAD with a
/// CRC64NVME checksum header (`s3ManagedLedgerOffloadPayloadChecksum=crc64nvme`): the PUT must
/// fail. s3s-fs checks both (moto checks neither); unsigned without a checksum would succeed.
/// (CRC32C parts, the default: the next test.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_corrupted_on_its_way_is_refused_by_the_store() {
    use object_store::ObjectStoreExt;
    use offload::{ClientSettings, Credentials, ObjectStores, S3PayloadChecksum};
    use testkit::s3s_fs::{self, S3sFs};
    let bin = s3s_fs::binary().expect("s3s-fs is installed by ./scripts/test");
    let root = tempfile::tempdir().unwrap();
    let s3 = S3sFs::start(&bin, root.path());
    s3.create_bucket("checked");
    let proxy = HttpProxy::start(s3.port);
    for checksum in [S3PayloadChecksum::Sha256, S3PayloadChecksum::Crc64Nvme] {
        let stores = Arc::new(ObjectStores::new(ClientSettings {
            max_retries: 0,
            s3_payload_checksum: checksum,
            ..ClientSettings::default()
        }));
        let location = Location::new(
            Driver::S3,
            Some("checked".into()),
            None,
            Some(proxy.endpoint()),
            Default::default(),
        );
        let credentials = Credentials {
            credential_id: Some(s3s_fs::ACCESS_KEY.into()),
            credential_secret: Some(s3s_fs::SECRET_KEY.into()),
            ..Credentials::default()
        };
        let store = stores.get(&location, &credentials).await.unwrap();
        let body = bytes::Bytes::from((0..1 << 20).map(|i| (i % 251) as u8).collect::<Vec<_>>());
        let path = object_store::path::Path::from(format!("{checksum:?}/object"));
        proxy.corrupt_body("PUT", "/object", 0);
        // s3s-fs answers 400 BadDigest to a wrong CRC64NVME and 500 to a wrong signed SHA-256;
        // either way the PUT fails, so nothing is committed on it. (Unlike S3, s3s-fs keeps the
        // corrupted bytes after a BadDigest; an object no commit names is the sweeper's.)
        let e = store.put(&path, body.clone().into()).await.unwrap_err();
        assert!(e.to_string().contains("non-2xx"), "{checksum:?}: {e}");
        proxy.clear_faults();
        store.put(&path, body.clone().into()).await.unwrap();
        let read = store.get(&path).await.unwrap().bytes().await.unwrap();
        assert_eq!(read, body, "{checksum:?}");
        // The offloader's multipart uploads carry the same protection.
        let config = {
            let mut c = OffloadConfig::new(location.clone());
            c.credentials = credentials.clone();
            c.max_block_size_bytes = 5 << 20;
            c
        };
        let o = offload::BlobStoreOffloader::with_stores(config, Arc::clone(&stores))
            .await
            .unwrap();
        let src = VecSource::with_sizes(7, (0..3000).map(|i| 1000 + i % 5000));
        // s3s-fs (0.17) checks a part's signed SHA-256 and its CRC64NVME header alike.
        proxy.corrupt_body("PUT", "partNumber=2", 0);
        let e = o.offload(&src, Uuid::new_v4(), &extra()).await.unwrap_err();
        assert!(e.to_string().contains("non-2xx"), "{checksum:?}: {e}");
        proxy.clear_faults();
        let uuid = Uuid::new_v4();
        o.offload(&src, uuid, &extra()).await.unwrap();
        let h = o.read(src.id, uuid, o.location()).await.unwrap();
        assert_reads_back(&h, &src, 100_000).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_encryption_headers_on_every_object_and_reads_back() {
    let moto = MotoServer::start();
    moto.create_bucket("sse-bucket");
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("sse-c.key");
    std::fs::write(&key_file, [7u8; 32]).unwrap();
    {
        use base64::Engine;
        testkit::audit::secret(base64::engine::general_purpose::STANDARD.encode([7u8; 32]));
    }
    let cases = [
        (offload::S3Encryption::SseS3, Some("AES256"), None),
        (
            offload::S3Encryption::SseKms {
                key_id: Some("arn:aws:kms:us-east-1:123456789012:key/test-key".into()),
                dual: false,
            },
            Some("aws:kms"),
            Some("arn:aws:kms:us-east-1:123456789012:key/test-key"),
        ),
        // moto stores SSE-C objects without checking the key: this proves the requests are
        // accepted and read back with the key's headers; a wrong key is the server's to refuse.
        (
            offload::S3Encryption::SseC {
                key_file: key_file.clone(),
            },
            None,
            None,
        ),
    ];
    for (i, (encryption, header, kms_key)) in cases.into_iter().enumerate() {
        let mut c = s3_config(Driver::S3, &moto.endpoint(), "sse-bucket");
        c.credentials.s3_encryption = encryption;
        let o = common::offloader(c, 2).await.unwrap();
        // Two blocks: the data object goes up as a multipart upload.
        let src = VecSource::with_sizes(10 + i as i64, [3 << 20, 3 << 20, 100]);
        let uuid = Uuid::new_v4();
        let r = o.offload(&src, uuid, &extra()).await.unwrap();
        for key in [&r.data_key, &r.index_key] {
            let headers = moto.head_object("sse-bucket", key);
            let get = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            assert_eq!(
                get("x-amz-server-side-encryption").as_deref(),
                header,
                "{key}: {headers:?}"
            );
            assert_eq!(
                get("x-amz-server-side-encryption-aws-kms-key-id").as_deref(),
                kms_key,
                "{key}"
            );
        }
        let h = o.read(src.id, uuid, o.location()).await.unwrap();
        assert_reads_back(&h, &src, 1000).await;
    }
}

#[tokio::test]
async fn an_unusable_sse_c_key_file_is_named_and_its_content_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short.key");
    std::fs::write(&short, b"only-sixteen-byt").unwrap();
    for (file, want) in [
        (short.clone(), "must hold a 256-bit key"),
        (
            dir.path().join("absent.key"),
            "cannot read the SSE-C key file",
        ),
    ] {
        let mut c = s3_config(Driver::S3, "http://127.0.0.1:9", "sse-bucket");
        c.credentials.s3_encryption = offload::S3Encryption::SseC {
            key_file: file.clone(),
        };
        let Err(e) = common::offloader(c, 0).await else {
            panic!("{} accepted", file.display());
        };
        let text = e.to_string();
        assert!(
            text.contains(want) && text.contains(&file.display().to_string()),
            "{text}"
        );
        assert!(!text.contains("only-sixteen"), "{text}");
    }
    assert!(
        offload::S3Encryption::from_settings(Some("rot13"), None, None)
            .unwrap_err()
            .contains("rot13")
    );
    assert!(
        offload::S3Encryption::from_settings(Some("SSE-C"), None, None)
            .unwrap_err()
            .contains("s3ManagedLedgerOffloadSseCustomerKeyFile")
    );
}

/// moto keeps SSE-C objects without checking keys, so what S3 would check is checked on the
/// wire: every PUT, multipart initiate, part upload and GET carries the customer key headers,
/// with the key from the file; a reader with another key sends that one (S3 refuses it with
/// 403, which the read reports).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_c_sends_the_customer_key_on_every_write_and_read() {
    use base64::Engine;
    let moto = MotoServer::start();
    moto.create_bucket("ssec-bucket");
    let proxy = HttpProxy::start(moto.port);
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("k");
    // The key file may hold the key in base64, as well as raw.
    let b64 = base64::engine::general_purpose::STANDARD;
    std::fs::write(&key_file, b64.encode([9u8; 32])).unwrap();
    testkit::audit::secret(b64.encode([9u8; 32]));
    let mut c = s3_config(Driver::S3, &proxy.endpoint(), "ssec-bucket");
    c.credentials.s3_encryption = offload::S3Encryption::SseC {
        key_file: key_file.clone(),
    };
    let o = common::offloader(c.clone(), 2).await.unwrap();
    let src = VecSource::with_sizes(1, [3 << 20, 3 << 20, 10]);
    let uuid = Uuid::new_v4();
    o.offload(&src, uuid, &extra()).await.unwrap();
    let h = o.read(src.id, uuid, o.location()).await.unwrap();
    assert_reads_back(&h, &src, 1000).await;
    let seen = proxy.requests_seen();
    let object_requests: Vec<_> = seen
        .iter()
        .filter(|r| {
            matches!(r.method.as_str(), "PUT" | "GET")
                || (r.method == "POST" && r.path.contains("uploads"))
        })
        .collect();
    assert!(
        object_requests
            .iter()
            .any(|r| r.path.contains("partNumber")),
        "{seen:?}"
    );
    assert!(
        object_requests.iter().any(|r| r.method == "GET"),
        "{seen:?}"
    );
    let expected = b64.encode([9u8; 32]);
    for r in &object_requests {
        assert_eq!(
            r.header("x-amz-server-side-encryption-customer-algorithm"),
            Some("AES256"),
            "{} {}",
            r.method,
            r.path
        );
        assert_eq!(
            r.header("x-amz-server-side-encryption-customer-key"),
            Some(expected.as_str()),
            "{} {}",
            r.method,
            r.path
        );
        assert!(
            r.header("x-amz-server-side-encryption-customer-key-md5")
                .is_some()
        );
    }
    // A reader configured with another key sends that key, which S3 refuses.
    let other = dir.path().join("other");
    std::fs::write(&other, [1u8; 32]).unwrap();
    testkit::audit::secret(b64.encode([1u8; 32]));
    c.credentials.s3_encryption = offload::S3Encryption::SseC {
        key_file: other.clone(),
    };
    let reader = common::offloader(c, 0).await.unwrap();
    let before = proxy.requests_seen().len();
    let _ = reader.read(src.id, uuid, o.location()).await;
    let gets: Vec<_> = proxy.requests_seen()[before..]
        .iter()
        .filter(|r| r.method == "GET")
        .cloned()
        .collect();
    assert!(!gets.is_empty());
    let other_key = b64.encode([1u8; 32]);
    for r in gets {
        assert_eq!(
            r.header("x-amz-server-side-encryption-customer-key"),
            Some(other_key.as_str())
        );
    }
    // moto does not check SSE-C keys; S3 answers a GET with another key 403. That answer, from
    // the proxy, is reported as the key's doing, naming the key file and never the key.
    proxy.fail("GET", "", 0, 403);
    let e = reader.read(src.id, uuid, o.location()).await.unwrap_err();
    assert!(
        matches!(&e, offload::OffloadError::SseCustomerKeyRefused { key_file, .. } if *key_file == other),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(
        text.contains("s3ManagedLedgerOffloadSseCustomerKeyFile") && text.contains("other"),
        "{text}"
    );
    assert!(!text.contains(&other_key), "{text}");
}

/// Every part of an offload carries its CRC32C (`s3ManagedLedgerOffloadPayloadChecksum=crc32c`,
/// the default) in a signed `x-amz-checksum-crc32c` header, the upload is created with that
/// algorithm, and s3s-fs checks each part as S3 does: a part damaged on its way is refused
/// (`BadDigest`) and, with retries, sent again, so what is stored is byte-equal; without
/// retries the offload fails naming the refusal and leaves no object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_carry_their_crc32c_and_a_damaged_part_is_refused_and_sent_again() {
    use base64::Engine;
    use offload::{ClientSettings, Credentials, ObjectStores, S3PayloadChecksum};
    use testkit::s3s_fs::{self, S3sFs};
    let bin = s3s_fs::binary().expect("s3s-fs is installed by ./scripts/test");
    let root = tempfile::tempdir().unwrap();
    let s3 = S3sFs::start(&bin, root.path());
    s3.create_bucket("crc");
    let proxy = HttpProxy::start(s3.port);
    let location = Location::new(
        Driver::S3,
        Some("crc".into()),
        None,
        Some(proxy.endpoint()),
        Default::default(),
    );
    let config = {
        let mut c = OffloadConfig::new(location.clone());
        c.credentials = Credentials {
            credential_id: Some(s3s_fs::ACCESS_KEY.into()),
            credential_secret: Some(s3s_fs::SECRET_KEY.into()),
            ..Credentials::default()
        };
        c.max_block_size_bytes = 5 << 20;
        c
    };
    assert_eq!(
        ClientSettings::default().s3_payload_checksum,
        S3PayloadChecksum::Crc32c
    );
    // ~14 MB: three parts of 5 MiB blocks.
    let src = VecSource::with_sizes(9, (0..4000).map(|i| 1000 + i % 5000));

    // No retries: the damaged part is refused and the offload fails.
    let no_retries = Arc::new(ObjectStores::new(ClientSettings {
        max_retries: 0,
        ..ClientSettings::default()
    }));
    let o = offload::BlobStoreOffloader::with_stores(config.clone(), no_retries)
        .await
        .unwrap();
    proxy.corrupt_body("PUT", "partNumber=2", 0);
    let e = o.offload(&src, Uuid::new_v4(), &extra()).await.unwrap_err();
    assert!(e.to_string().contains("uploading part"), "{e}");
    assert!(e.to_string().contains("BadDigest"), "{e}");
    proxy.clear_faults();

    // With retries (the default): refused once, sent again, stored byte-equal.
    let stores = Arc::new(ObjectStores::default());
    let o = offload::BlobStoreOffloader::with_stores(config, stores)
        .await
        .unwrap();
    let failed_before = proxy.counts().1;
    let seen_before = proxy.requests_seen().len();
    proxy.corrupt_body_once("PUT", "partNumber=2", 0);
    let uuid = Uuid::new_v4();
    let r = o.offload(&src, uuid, &extra()).await.unwrap();
    assert_eq!(proxy.counts().1 - failed_before, 1, "one part was damaged");
    assert_eq!(r.blocks, 3);
    let h = o.read(src.id, uuid, o.location()).await.unwrap();
    assert_reads_back(&h, &src, 100_000).await;

    let seen = &proxy.requests_seen()[seen_before..];
    let create = seen
        .iter()
        .find(|r| r.method == "POST" && r.path.contains("?uploads"))
        .expect("CreateMultipartUpload");
    assert_eq!(create.header("x-amz-checksum-algorithm"), Some("CRC32C"));
    assert!(
        create
            .header("authorization")
            .is_some_and(|a| a.contains("x-amz-checksum-algorithm")),
        "the algorithm header is signed: {create:?}"
    );
    let parts: Vec<_> = seen
        .iter()
        .filter(|r| r.method == "PUT" && r.path.contains("partNumber="))
        .collect();
    assert_eq!(parts.len(), 4, "three parts, one of them sent twice");
    let b64 = base64::engine::general_purpose::STANDARD;
    for p in &parts {
        let crc = p
            .header("x-amz-checksum-crc32c")
            .expect("every part has its CRC32C");
        assert_eq!(b64.decode(crc).map(|c| c.len()).ok(), Some(4), "{crc}");
        assert_eq!(p.header("x-amz-content-sha256"), Some("UNSIGNED-PAYLOAD"));
        assert!(
            p.header("authorization")
                .is_some_and(|a| a.contains("x-amz-checksum-crc32c")),
            "the checksum header is signed: {p:?}"
        );
    }
    // Each part's header is the CRC32C of its block of the stored object (5 MiB blocks).
    let data = std::fs::read(root.path().join("crc").join(&r.data_key)).unwrap();
    assert_eq!(data.len() as u64, r.data_object_len);
    for p in &parts {
        let number: usize = p
            .path
            .split("partNumber=")
            .nth(1)
            .and_then(|n| n.split('&').next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        let block = &data[(number - 1) * (5 << 20)..(number * (5 << 20)).min(data.len())];
        let expected = b64.encode(crc_fast::crc32_iscsi(block).to_be_bytes());
        assert_eq!(
            p.header("x-amz-checksum-crc32c"),
            Some(expected.as_str()),
            "part {number}"
        );
    }
}

//! Object-tier ("diskless") topics on `tierlog broker`, a real etcd and a real S3 server
//! (moto), with the official Python client: a broker SIGKILLed under load, again and again,
//! loses nothing the client saw acknowledged; a broker that lost its whole data directory
//! still has every acknowledged message.

use crate::common;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use testkit::etcd::EtcdServer;
use testkit::moto::MotoServer;
use testkit::standalone::Standalone;

const TTL_MS: u64 = 2000;

fn env(etcd: &EtcdServer, moto: &MotoServer) -> Vec<(String, String)> {
    [
        (
            "TIERLOG_metadataStoreUrl",
            format!("etcd:{}", etcd.endpoint()),
        ),
        ("TIERLOG_clusterName", "tierlog".into()),
        (
            "TIERLOG_metadataStoreSessionTimeoutMillis",
            TTL_MS.to_string(),
        ),
        ("TIERLOG_managedLedgerHotTier", "object".into()),
        ("TIERLOG_objectStorageWalFlushIntervalMs", "50".into()),
        ("TIERLOG_managedLedgerMaxEntriesPerLedger", "2000".into()),
        (
            "TIERLOG_managedLedgerMinLedgerRolloverTimeMinutes",
            "0".into(),
        ),
        ("TIERLOG_defaultRetentionTimeInMinutes", "-1".into()),
        ("TIERLOG_defaultRetentionSizeInMB", "-1".into()),
        ("TIERLOG_managedLedgerOffloadDriver", "S3".into()),
        ("TIERLOG_s3ManagedLedgerOffloadBucket", "diskless".into()),
        ("TIERLOG_s3ManagedLedgerOffloadRegion", "us-east-1".into()),
        (
            "TIERLOG_s3ManagedLedgerOffloadServiceEndpoint",
            moto.endpoint(),
        ),
        ("AWS_ACCESS_KEY_ID", "k".into()),
        (
            "AWS_SECRET_ACCESS_KEY",
            testkit::audit::s3_secret_key().into(),
        ),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn start(dir: &Path, env: &[(String, String)], ports: Option<(u16, u16)>) -> Standalone {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    match ports {
        Some(p) => Standalone::start_broker_on(common::bin(), dir, &env, p),
        None => Standalone::start_broker(common::bin(), dir, &env),
    }
}

fn script() -> PathBuf {
    testkit::workspace_root().join("crates/tierlog/tests/clients/python_failover.py")
}

/// The Python producer, its acknowledged and failed indexes as it reports them.
struct Producer {
    child: std::process::Child,
    acked: Arc<Mutex<Vec<u64>>>,
    errors: Arc<Mutex<Vec<String>>>,
    stop_file: PathBuf,
    reader: std::thread::JoinHandle<()>,
}

impl Producer {
    fn start(url: &str, topic: &str, stop_file: PathBuf) -> Producer {
        let mut child = Command::new(common::python())
            .arg(script())
            .args(["produce", url, topic])
            .arg(&stop_file)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run the Python producer");
        let stdout = child.stdout.take().unwrap();
        let acked = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let (a, e) = (Arc::clone(&acked), Arc::clone(&errors));
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(i) = line.strip_prefix("ACK ") {
                    a.lock().unwrap().push(i.parse().unwrap());
                } else if line.starts_with("ERR ") {
                    e.lock().unwrap().push(line);
                }
            }
        });
        Producer {
            child,
            acked,
            errors,
            stop_file,
            reader,
        }
    }

    fn acked(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Waits until at least `n` messages are acknowledged; how long it took.
    fn wait_acked(&self, n: usize, within: Duration) -> Duration {
        let start = Instant::now();
        while self.acked() < n {
            assert!(
                start.elapsed() < within,
                "{} acknowledged after {within:?}, waiting for {n}; errors: {:?}",
                self.acked(),
                self.errors.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        start.elapsed()
    }

    fn stop(mut self) -> (Vec<u64>, Vec<String>) {
        std::fs::write(&self.stop_file, b"stop").unwrap();
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            if self.child.try_wait().unwrap().is_some() {
                break;
            }
            assert!(Instant::now() < deadline, "the producer did not finish");
            std::thread::sleep(Duration::from_millis(50));
        }
        self.reader.join().unwrap();
        let acked = self.acked.lock().unwrap().clone();
        let errors = self.errors.lock().unwrap().clone();
        (acked, errors)
    }
}

/// Everything on the topic, read from the earliest message.
fn consume(url: &str, topic: &str) -> Vec<u64> {
    let out = Command::new(common::python())
        .arg(script())
        .args(["consume", url, topic])
        .output()
        .expect("run the Python consumer");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("DONE") && !stdout.contains("BAD"),
        "stdout: {}\nstderr: {}",
        stdout
            .lines()
            .filter(|l| !l.starts_with("GOT"))
            .collect::<Vec<_>>()
            .join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("GOT "))
        .map(|i| i.parse().unwrap())
        .collect()
}

/// Every acknowledged message was consumed, byte-equal (checked by the consumer), in the
/// producer's order (a message may come twice when its acknowledgement was lost in a crash:
/// the client resent it, as Pulsar without deduplication).
fn check_nothing_acknowledged_lost(acked: &[u64], got: &[u64]) {
    let mut seen = std::collections::BTreeSet::new();
    let mut last_new = None;
    for &i in got {
        if seen.insert(i) {
            assert!(
                last_new < Some(i),
                "message {i} after {last_new:?}: out of order"
            );
            last_new = Some(i);
        }
    }
    let lost: Vec<_> = acked.iter().filter(|i| !seen.contains(i)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged messages lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
}

/// The broker (index) that owns `topic` now: the one whose HTTP lookup answers with itself
/// (the others redirect there).
fn owner(brokers: &[Option<Standalone>], topic: &str) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for (i, b) in brokers.iter().enumerate() {
            let Some(b) = b else { continue };
            let (status, body) = b.call(
                "GET",
                &format!("/lookup/v2/topic/persistent/public/default/{topic}"),
                None,
            );
            if status == 200 {
                let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                if v["brokerUrl"].as_str() == Some(b.service_url().as_str()) {
                    return i;
                }
            }
        }
        assert!(Instant::now() < deadline, "no broker owns {topic}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_sigkilled_ten_times_under_load_loses_nothing_acknowledged() {
    let etcd = EtcdServer::start();
    let moto = MotoServer::start();
    moto.create_bucket("diskless");
    let env = env(&etcd, &moto);
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut brokers: Vec<Option<Standalone>> = dirs
        .iter()
        .map(|d| Some(start(d.path(), &env, None)))
        .collect();
    let ports: Vec<(u16, u16)> = brokers
        .iter()
        .map(|b| b.as_ref().map(|b| (b.web_port, b.broker_port)).unwrap())
        .collect();
    let url = format!(
        "pulsar://{}",
        ports
            .iter()
            .map(|(_, p)| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let topic = "failover";
    let producer = Producer::start(&url, topic, dirs[0].path().join("stop"));
    producer.wait_acked(500, Duration::from_secs(60));

    let mut killed = Vec::new();
    for round in 0..10 {
        let victim = owner(&brokers, topic);
        brokers[victim].take().unwrap().kill();
        let killed_at = Instant::now();
        killed.push(victim);
        // Acknowledgements the client had before the kill are still being reported; then the
        // topic is served again (acknowledgements resume) within the lease TTL + 5 s.
        std::thread::sleep(Duration::from_millis(300));
        let before = producer.acked();
        producer.wait_acked(before + 20, Duration::from_millis(TTL_MS + 4700));
        let took = killed_at.elapsed();
        eprintln!("round {round}: killed broker {victim}, acknowledgements resumed after {took:?}");
        // The broker comes back where clients know it, with an empty data directory: nothing
        // of an object-tier topic lives only there.
        let _ = std::fs::remove_dir_all(dirs[victim].path().join("data"));
        brokers[victim] = Some(start(dirs[victim].path(), &env, Some(ports[victim])));
    }
    killed.sort();
    killed.dedup();
    assert!(killed.len() >= 2, "the kills hit only broker {killed:?}");

    let (acked, errors) = producer.stop();
    assert!(errors.is_empty(), "sends failed: {errors:?}");
    let got = consume(&url, topic);
    eprintln!("{} acknowledged, {} consumed", acked.len(), got.len());
    check_nothing_acknowledged_lost(&acked, &got);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_broker_that_lost_its_data_directory_still_has_every_acknowledged_message() {
    let etcd = EtcdServer::start();
    let moto = MotoServer::start();
    moto.create_bucket("diskless");
    let env = env(&etcd, &moto);
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &env, None);
    let ports = (broker.web_port, broker.broker_port);
    let url = broker.service_url();
    let producer = Producer::start(&url, "rmrf", dir.path().join("stop"));
    producer.wait_acked(3000, Duration::from_secs(60));
    let (acked, errors) = producer.stop();
    assert!(errors.is_empty(), "{errors:?}");
    broker.kill();
    std::fs::remove_dir_all(dir.path().join("data")).unwrap();
    let broker = start(dir.path(), &env, Some(ports));
    let got = consume(&broker.service_url(), "rmrf");
    check_nothing_acknowledged_lost(&acked, &got);
    assert!(got.len() >= 3000);
}

/// A raw producer on `topic` at the (only) broker, and one SEND's answer.
async fn raw_send(port: u16, topic: &str, payload: &[u8]) -> protocol::pb::BaseCommand {
    let mut raw = common::raw::Raw::connect(port).await;
    let _ = raw.lookup(topic, 1).await;
    raw.producer(topic).await;
    let meta = protocol::pb::MessageMetadata {
        producer_name: "raw".into(),
        sequence_id: 0,
        publish_time: 1_700_000_000_000,
        ..Default::default()
    };
    raw.send(0, None, &meta, payload).await
}

/// Holds while nothing more is acknowledged for `outage`, after a second for what was already
/// committed to come through; returns the count.
fn assert_no_acks_during(producer: &Producer, outage: Duration, what: &str) -> usize {
    std::thread::sleep(Duration::from_secs(1));
    let during = producer.acked();
    std::thread::sleep(outage);
    assert_eq!(
        producer.acked(),
        during,
        "messages were acknowledged while {what}"
    );
    during
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_etcd_or_s3_down_nothing_is_acknowledged_and_produce_resumes_when_they_return() {
    let mut etcd = EtcdServer::start();
    let moto = MotoServer::start();
    moto.create_bucket("diskless");
    let mut env = env(&etcd, &moto);
    env.push((
        "TIERLOG_managedLedgerOffloadRequestTimeoutMs".into(),
        "1500".into(),
    ));
    env.push(("TIERLOG_managedLedgerOffloadMaxRetries".into(), "0".into()));
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &env, None);
    let url = broker.service_url();
    assert!(
        raw_send(broker.broker_port, "persistent://public/default/raw", b"ok")
            .await
            .send_receipt
            .is_some()
    );
    let producer = Producer::start(&url, "outage", dir.path().join("stop"));
    producer.wait_acked(300, Duration::from_secs(60));

    // etcd stopped, for longer than the session TTL: a SEND fails naming the metadata store,
    // nothing is acknowledged; when etcd is back the broker registers again and the client's
    // sends go through.
    etcd.kill();
    let answer = raw_send(
        broker.broker_port,
        "persistent://public/default/raw",
        b"no etcd",
    )
    .await;
    let error = answer.send_error.expect("a SEND without etcd fails");
    assert!(error.message.contains("metadata"), "{error:?}");
    eprintln!("without etcd: {}", error.message);
    let during = assert_no_acks_during(
        &producer,
        Duration::from_millis(TTL_MS + 2000),
        "etcd was down",
    );
    etcd.restart();
    producer.wait_acked(during + 200, Duration::from_secs(40));

    // The S3 server unreachable (paused): the same.
    moto.pause();
    let answer = raw_send(
        broker.broker_port,
        "persistent://public/default/raw",
        b"no s3",
    )
    .await;
    let error = answer.send_error.expect("a SEND without S3 fails");
    assert!(error.message.contains("WAL object"), "{error:?}");
    eprintln!("without S3: {}", error.message);
    let during = assert_no_acks_during(&producer, Duration::from_secs(4), "S3 was down");
    moto.resume();
    let resumed = producer.wait_acked(during + 200, Duration::from_secs(40));
    eprintln!("acknowledgements resumed {resumed:?} after S3 returned");

    let (acked, errors) = producer.stop();
    assert!(errors.is_empty(), "sends failed for good: {errors:?}");
    let got = consume(&url, "outage");
    check_nothing_acknowledged_lost(&acked, &got);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_owner_acknowledges_nothing_after_its_lease_and_its_client_moves_to_the_new_owner()
{
    let etcd = EtcdServer::start();
    let moto = MotoServer::start();
    moto.create_bucket("diskless");
    let env = env(&etcd, &moto);
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let brokers: Vec<Option<Standalone>> = dirs
        .iter()
        .map(|d| Some(start(d.path(), &env, None)))
        .collect();
    let url = format!(
        "pulsar://{}",
        brokers
            .iter()
            .flatten()
            .map(|b| format!("127.0.0.1:{}", b.broker_port))
            .collect::<Vec<_>>()
            .join(",")
    );
    let topic = "zombie";
    let producer = Producer::start(&url, topic, dirs[0].path().join("stop"));
    producer.wait_acked(300, Duration::from_secs(60));
    let zombie = owner(&brokers, topic);
    let other = 1 - zombie;

    // Paused for three TTLs: its lease ends, the other broker takes the bundle (an HTTP
    // lookup there acquires it) and recovers the topic from etcd and S3.
    brokers[zombie].as_ref().unwrap().signal("STOP");
    std::thread::sleep(Duration::from_millis(3 * TTL_MS));
    let before = producer.acked();
    let (status, body) = brokers[other].as_ref().unwrap().call(
        "GET",
        &format!("/lookup/v2/topic/persistent/public/default/{topic}"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(&brokers[other].as_ref().unwrap().service_url()),
        "the other broker took the bundle: {body}"
    );
    brokers[zombie].as_ref().unwrap().signal("CONT");
    // The resumed broker acknowledges nothing; its client is disconnected, looks the topic up
    // again and goes on at the new owner.
    producer.wait_acked(before + 200, Duration::from_secs(30));
    let (acked, errors) = producer.stop();
    assert!(errors.is_empty(), "{errors:?}");
    let got = consume(&url, topic);
    check_nothing_acknowledged_lost(&acked, &got);
    assert_eq!(owner(&brokers, topic), other);
}

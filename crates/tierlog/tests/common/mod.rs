//! Shared helpers of the client tests: a broker, a pulsar-rs client, produce and consume loops.
#![allow(dead_code)]

pub mod raw;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use futures::TryStreamExt;
use pulsar::consumer::{ConsumerOptions, InitialPosition};
use pulsar::producer::{Message, ProducerOptions};
use pulsar::{Consumer, Pulsar, SubType, TokioExecutor};
use testkit::standalone::Standalone;

/// One received message: (index property, payload, key, event time).
pub type Received = (usize, Vec<u8>, Option<String>, Option<u64>);

pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tierlog"))
}

/// The Python with the official Pulsar client (`TIERLOG_PYTHON`, else the venv `scripts/test`
/// installs).
pub fn python() -> String {
    std::env::var("TIERLOG_PYTHON").unwrap_or_else(|_| {
        testkit::workspace_root()
            .join(".venv/bin/python")
            .display()
            .to_string()
    })
}

/// Runs `crates/tierlog/tests/clients/<script>` with `args` (its standard error kept for the
/// secret audit); its standard output. Panics with the tail of standard error if it fails.
pub fn run_client_script(script: &str, args: &[&str]) -> String {
    let path = testkit::workspace_root()
        .join("crates/tierlog/tests/clients")
        .join(script);
    let out = testkit::audit::output(std::process::Command::new(python()).arg(&path).args(args));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let tail: Vec<String> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .rev()
        .take(30)
        .map(str::to_string)
        .collect();
    assert!(
        out.status.success(),
        "{script} {args:?}:\n{stdout}\nstderr (tail):\n{tail:?}"
    );
    stdout
}

/// What a client script printed for `case` (its line `<case> <result>`).
pub fn case_result<'a>(stdout: &'a str, case: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(case).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no result for {case} in:\n{stdout}"))
}

pub fn start(dir: &Path, env: &[(&str, &str)]) -> Standalone {
    Standalone::start(bin(), dir, env)
}

pub async fn client(broker: &Standalone) -> Pulsar<TokioExecutor> {
    Pulsar::builder(broker.service_url(), TokioExecutor)
        .build()
        .await
        .expect("pulsar-rs connects")
}

/// The i-th test message: payload, key, properties, event time.
pub fn message(i: usize, size: usize) -> Message {
    let mut payload = format!("m-{i:07}-").into_bytes();
    payload.extend((0..size.saturating_sub(payload.len())).map(|j| (i * 31 + j) as u8));
    Message {
        payload,
        properties: HashMap::from([("i".to_string(), i.to_string())]),
        partition_key: Some(format!("key-{}", i % 13)),
        event_time: Some(1_700_000_000_000 + i as u64),
        ..Default::default()
    }
}

/// Sends `range` through one producer and waits for every receipt; returns the message ids.
pub async fn produce(
    client: &Pulsar<TokioExecutor>,
    topic: &str,
    range: std::ops::Range<usize>,
    size: usize,
    mut options: ProducerOptions,
) -> Vec<(u64, u64)> {
    // Wait for room instead of failing with SlowDown when the connection queue is full.
    options.block_queue_if_full = true;
    let batching = options.batch_size.is_some_and(|b| b > 1);
    let mut producer = client
        .producer()
        .with_topic(topic)
        .with_options(options)
        .build()
        .await
        .expect("producer");
    // pulsar-rs refuses sends (SlowDown) when its connection queue is full: keep a window.
    let mut pending = std::collections::VecDeque::new();
    let mut ids = Vec::new();
    let settle = |r: Result<pulsar::proto::CommandSendReceipt, pulsar::Error>| {
        let id = r
            .expect("receipt")
            .message_id
            .expect("receipt has a message id");
        (id.ledger_id, id.entry_id)
    };
    for i in range {
        if pending.len() >= 500 {
            let p: pulsar::producer::SendFuture = pending.pop_front().expect("window");
            ids.push(settle(p.await));
        }
        pending.push_back(
            producer
                .send_non_blocking(message(i, size))
                .await
                .expect("send accepted"),
        );
    }
    if batching {
        producer.send_batch().await.expect("flush batch");
    }
    for p in pending {
        ids.push(settle(p.await));
    }
    producer.close().await.expect("close producer");
    ids
}

pub async fn consumer(
    client: &Pulsar<TokioExecutor>,
    topic: &str,
    sub: &str,
    ty: SubType,
    initial: InitialPosition,
) -> Consumer<Vec<u8>, TokioExecutor> {
    client
        .consumer()
        .with_topic(topic)
        .with_subscription(sub)
        .with_subscription_type(ty)
        .with_options(ConsumerOptions::default().with_initial_position(initial))
        .build()
        .await
        .expect("consumer")
}

/// The `i` property every test message carries.
fn index_of(msg: &pulsar::consumer::Message<Vec<u8>>) -> usize {
    msg.payload
        .metadata
        .properties
        .iter()
        .find(|kv| kv.key == "i")
        .map(|kv| kv.value.parse().expect("index"))
        .expect("property i")
}

fn received(msg: &pulsar::consumer::Message<Vec<u8>>) -> Received {
    (
        index_of(msg),
        msg.payload.data.clone(),
        msg.key(),
        msg.payload.metadata.event_time,
    )
}

/// `tierlog admin --admin-url <broker> <args>`.
pub fn admin(b: &Standalone, args: &[&str]) -> std::process::Output {
    testkit::audit::output(
        std::process::Command::new(env!("CARGO_BIN_EXE_tierlog"))
            .args(["admin", "--admin-url", &b.admin_url()])
            .args(args),
    )
}

/// [`admin`] that must succeed; its standard output.
pub fn admin_ok(b: &Standalone, args: &[&str]) -> String {
    let out = admin(b, args);
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Receives until `n` messages arrived (acking each when `ack`), or panics after `timeout` of
/// silence. Returns (index property, payload, key, event time) per message.
pub async fn receive(
    consumer: &mut Consumer<Vec<u8>, TokioExecutor>,
    n: usize,
    ack: bool,
    timeout: Duration,
) -> Vec<Received> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let msg = tokio::time::timeout(timeout, consumer.try_next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} messages arrived", out.len()))
            .expect("consumer stream")
            .expect("stream open");
        out.push(received(&msg));
        if ack {
            consumer.ack(&msg).await.expect("ack");
        }
    }
    out
}

/// Asserts that nothing more arrives within `wait`.
pub async fn assert_silent(consumer: &mut Consumer<Vec<u8>, TokioExecutor>, wait: Duration) {
    if let Ok(Some(Ok(m))) = tokio::time::timeout(wait, consumer.try_next())
        .await
        .map(|r| r.transpose())
    {
        panic!("unexpected message {:?}", m.message_id());
    }
}

/// Asserts each received message equals what [`message`] produced for its index.
pub fn check(received: &[Received], size: usize) {
    for (i, data, key, event) in received {
        let m = message(*i, size);
        assert_eq!(data, &m.payload, "payload of message {i}");
        assert_eq!(key, &m.partition_key, "key of message {i}");
        assert_eq!(event, &m.event_time, "event time of message {i}");
    }
}

/// Receives (acking) until nothing arrives for `quiet`.
pub async fn receive_until_quiet(
    consumer: &mut Consumer<Vec<u8>, TokioExecutor>,
    quiet: Duration,
) -> Vec<Received> {
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout(quiet, consumer.try_next()).await {
            Err(_) => return out,
            Ok(next) => {
                let msg = next.expect("consumer stream").expect("stream open");
                out.push(received(&msg));
                consumer.ack(&msg).await.expect("ack");
            }
        }
    }
}

/// Receives until quiet, acking the messages for which `ack(index)` is true.
pub async fn receive_until_quiet_with(
    consumer: &mut Consumer<Vec<u8>, TokioExecutor>,
    quiet: Duration,
    mut ack: impl FnMut(usize) -> bool,
) -> Vec<usize> {
    let mut out = Vec::new();
    while let Ok(next) = tokio::time::timeout(quiet, consumer.try_next()).await {
        let msg = next.expect("consumer stream").expect("stream open");
        let i = index_of(&msg);
        out.push(i);
        if ack(i) {
            consumer.ack(&msg).await.expect("ack");
        }
    }
    out
}

/// Offloads every sealed ledger of `topic` (`topics offload --size-threshold 0`) and waits
/// until the offload succeeded.
pub fn offload_now(b: &Standalone, topic: &str) {
    admin_ok(b, &["topics", "offload", "--size-threshold", "0", topic]);
    let status = admin_ok(b, &["topics", "offload-status", "-w", topic]);
    assert!(
        status.trim_end().ends_with("Offload was a success"),
        "{status}"
    );
}

/// Waits (up to 30 s) until no sealed ledger has a hot copy left (all offloaded, deletion
/// lag 0).
pub fn wait_for_no_hot_sealed_ledger(dir: &std::path::Path) {
    let hot = dir.join("data/ledgers");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::fs::read_dir(&hot)
        .map(|d| {
            d.filter_map(Result::ok)
                .any(|e| e.file_name().to_string_lossy().ends_with(".sealed"))
        })
        .unwrap_or(false)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "hot copies of offloaded ledgers remain"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

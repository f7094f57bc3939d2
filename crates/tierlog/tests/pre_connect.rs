//! A peer cannot make the broker hold memory it has not sent, nor hold a connection open
//! without saying who it is: before CONNECT only small frames are accepted and CONNECT must come
//! within a deadline; after it, buffers grow with what arrives, and all connections together are
//! held to `maxMessagePublishBufferSizeInMB` (reading stops instead of allocating).

use crate::common;

use std::time::{Duration, Instant};

use protocol::pb::{self, BaseCommand, base_command::Type};
use protocol::{commands, encode_command};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn connect_frame() -> bytes::Bytes {
    encode_command(&BaseCommand {
        connect: Some(Box::new(pb::CommandConnect {
            client_version: "pre-connect-test".into(),
            protocol_version: Some(20),
            ..Default::default()
        })),
        ..commands::base(Type::Connect)
    })
}

/// Whether the broker closes `s` within `within` (reading until end of stream).
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        match tokio::time::timeout(deadline - Instant::now(), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_frames_before_connect_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let b = common::start(dir.path(), &[]);
    let before = b.rss_bytes();
    let mut conns = Vec::new();
    for _ in 0..300 {
        let mut s = TcpStream::connect(("127.0.0.1", b.broker_port))
            .await
            .unwrap();
        // A 5 MiB frame announced, a few bytes of it sent.
        s.write_all(&(5u32 << 20).to_be_bytes()).await.unwrap();
        s.write_all(&[0u8; 16]).await.unwrap();
        conns.push(s);
    }
    for s in &mut conns {
        assert!(
            closed_within(s, Duration::from_secs(5)).await,
            "a 5 MiB frame before CONNECT closes the connection"
        );
    }
    let grown = b.rss_bytes().saturating_sub(before);
    assert!(
        grown < 64 << 20,
        "300 announced 5 MiB frames cost {grown} bytes"
    );
    // The broker still serves a real client.
    let client = common::client(&b).await;
    common::produce(&client, "still-fine", 0..10, 10, Default::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_trickling_connect_is_dropped_at_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    // The handshake deadline is keepAliveIntervalSeconds (Pulsar's 30 s by default).
    let b = common::start(dir.path(), &[("TIERLOG_keepAliveIntervalSeconds", "10")]);
    let mut s = TcpStream::connect(("127.0.0.1", b.broker_port))
        .await
        .unwrap();
    let frame = connect_frame();
    let started = Instant::now();
    let mut closed = false;
    for byte in frame.iter().take(frame.len() - 1) {
        if s.write_all(&[*byte]).await.is_err() {
            closed = true;
            break;
        }
        if closed_within(&mut s, Duration::from_secs(1)).await {
            closed = true;
            break;
        }
    }
    assert!(closed, "the connection is dropped");
    let after = started.elapsed();
    assert!(
        after >= Duration::from_secs(9) && after < Duration::from_secs(13),
        "dropped at the 10 s deadline, not before or much later: {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_being_received_are_held_to_the_publish_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let b = common::start(
        dir.path(),
        &[("TIERLOG_maxMessagePublishBufferSizeInMB", "16")],
    );
    let before = b.rss_bytes();
    // 60 connections each send 4 MiB of a 5 MiB frame: 240 MiB on offer.
    let mut writers = Vec::new();
    for _ in 0..60 {
        let port = b.broker_port;
        writers.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            s.write_all(&connect_frame()).await.unwrap();
            s.write_all(&(5u32 << 20).to_be_bytes()).await.unwrap();
            let chunk = vec![7u8; 64 * 1024];
            for _ in 0..64 {
                if s.write_all(&chunk).await.is_err() {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(s);
        }));
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    let grown = b.rss_bytes().saturating_sub(before);
    assert!(
        grown < 100 << 20,
        "the broker holds {grown} bytes of 240 MiB of incomplete frames (budget 16 MiB)"
    );
    for w in writers {
        w.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_max_connections_per_ip_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let b = common::start(dir.path(), &[("TIERLOG_maxConnectionsPerIp", "2")]);
    let first = common::raw::Raw::connect(b.broker_port).await;
    let second = common::raw::Raw::connect(b.broker_port).await;
    let (reply, closed) = common::raw::Raw::connect_with_auth(b.broker_port, "none", b"").await;
    let e = reply.error.clone().unwrap_or_else(|| panic!("{reply:?}"));
    assert_eq!(e.error, protocol::pb::ServerError::NotAllowedError as i32);
    assert!(
        e.message.contains("maximum number of connections"),
        "{}",
        e.message
    );
    assert!(closed);
    // A slot frees when a connection ends.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (reply, _) = common::raw::Raw::connect_with_auth(b.broker_port, "none", b"").await;
        if reply.connected.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "no slot freed: {reply:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(second);
}

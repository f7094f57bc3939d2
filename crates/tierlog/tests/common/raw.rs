//! A raw binary-protocol client for tests that need frames no real client sends, or need to
//! see exactly which commands the broker sends (CLOSE_PRODUCER, CLOSE_CONSUMER, …).

use std::time::Duration;

use prost::Message;
use protocol::io::FrameReader;
use protocol::pb::{self, BaseCommand, base_command::Type};
use protocol::{FrameDecoder, commands, encode_command, encode_send_parts};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;

pub struct Raw {
    reader: FrameReader<OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
}

impl Raw {
    pub async fn connect(port: u16) -> Raw {
        let (raw, reply) = Self::open(port, pb::CommandConnect::default()).await;
        assert_eq!(reply.r#type, Type::Connected as i32);
        raw
    }

    /// Opens a connection, sends `connect` (client name and version filled in) and returns
    /// the connection with the broker's first reply.
    async fn open(port: u16, connect: pb::CommandConnect) -> (Raw, BaseCommand) {
        let s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let (r, w) = s.into_split();
        let mut raw = Raw {
            reader: FrameReader::new(r, FrameDecoder::new(5 << 20)),
            writer: w,
        };
        raw.write(&encode_command(&BaseCommand {
            connect: Some(Box::new(pb::CommandConnect {
                client_version: "raw-test-client".into(),
                protocol_version: Some(20),
                ..connect
            })),
            ..commands::base(Type::Connect)
        }))
        .await;
        let reply = raw.next().await;
        (raw, reply)
    }

    /// GET_SCHEMA for `topic` (the latest, or `version`) on a new connection; the answer.
    pub async fn get_schema(
        port: u16,
        topic: &str,
        version: Option<u64>,
    ) -> pb::CommandGetSchemaResponse {
        let mut raw = Self::connect(port).await;
        raw.write(&encode_command(&BaseCommand {
            get_schema: Some(Box::new(pb::CommandGetSchema {
                request_id: 1,
                topic: topic.into(),
                schema_version: version.map(|v| v.to_be_bytes().to_vec().into()),
            })),
            ..commands::base(Type::GetSchema)
        }))
        .await;
        loop {
            let reply = raw.next().await;
            if let Some(r) = reply.get_schema_response {
                return *r;
            }
        }
    }

    /// PRODUCER for `topic` with `schema` on a new connection; the broker's answer
    /// (PRODUCER_SUCCESS or ERROR).
    pub async fn create_producer(
        port: u16,
        topic: &str,
        schema: Option<pb::Schema>,
    ) -> BaseCommand {
        let mut raw = Self::connect(port).await;
        raw.write(&encode_command(&BaseCommand {
            producer: Some(Box::new(pb::CommandProducer {
                topic: topic.into(),
                producer_id: 1,
                request_id: 1,
                schema,
                ..Default::default()
            })),
            ..commands::base(Type::Producer)
        }))
        .await;
        loop {
            let reply = raw.next().await;
            if reply.producer_success.is_some() || reply.error.is_some() {
                return reply;
            }
        }
    }

    /// CONNECT's fields carrying `method` and `data`.
    fn auth(method: &str, data: &[u8]) -> pb::CommandConnect {
        pb::CommandConnect {
            auth_method_name: Some(method.into()),
            auth_data: Some(data.to_vec().into()),
            ..Default::default()
        }
    }

    /// Sends CONNECT with `auth` (method name, data) and returns the broker's first reply,
    /// and whether the broker then closed the connection.
    pub async fn connect_with_auth(port: u16, method: &str, data: &[u8]) -> (BaseCommand, bool) {
        Self::connect_replied(port, Self::auth(method, data)).await
    }

    /// Sends CONNECT with no credentials; the broker's first reply, and whether it then closed.
    pub async fn connect_without_auth(port: u16) -> (BaseCommand, bool) {
        Self::connect_replied(port, pb::CommandConnect::default()).await
    }

    async fn connect_replied(port: u16, connect: pb::CommandConnect) -> (BaseCommand, bool) {
        let (mut raw, reply) = Self::open(port, connect).await;
        let closed = matches!(
            tokio::time::timeout(Duration::from_secs(5), raw.reader.next()).await,
            Ok(Ok(None)) | Ok(Err(_))
        );
        (reply, closed)
    }

    /// A connection that authenticated with `method`/`data`, telling the broker whether it
    /// answers AUTH_CHALLENGE (`supports_auth_refresh`).
    pub async fn connect_authenticated(
        port: u16,
        method: &str,
        data: &[u8],
        supports_refresh: bool,
    ) -> Raw {
        let connect = pb::CommandConnect {
            feature_flags: Some(pb::FeatureFlags {
                supports_auth_refresh: Some(supports_refresh),
                ..Default::default()
            }),
            ..Self::auth(method, data)
        };
        let (raw, reply) = Self::open(port, connect).await;
        assert_eq!(reply.r#type, Type::Connected as i32, "{reply:?}");
        raw
    }

    /// Whether the broker closes the connection within `wait` (pings answered, other commands
    /// returned as they come are collected into `seen`).
    pub async fn closed_within(&mut self, wait: Duration, seen: &mut Vec<BaseCommand>) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.reader.next()).await {
                Err(_) => return false,
                Ok(Ok(None)) | Ok(Err(_)) => return true,
                Ok(Ok(Some(f))) => {
                    if f.command.r#type == Type::Ping as i32 {
                        self.write(&encode_command(&commands::pong())).await;
                    } else {
                        seen.push(f.command);
                    }
                }
            }
        }
    }

    pub async fn write(&mut self, b: &[u8]) {
        self.writer.write_all(b).await.unwrap();
    }

    /// The next command other than a PING (answered).
    pub async fn next(&mut self) -> BaseCommand {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(10), self.reader.next())
                .await
                .expect("an answer within 10 s")
                .expect("a frame")
                .expect("the connection stays open");
            if frame.command.r#type == Type::Ping as i32 {
                self.write(&encode_command(&commands::pong())).await;
                continue;
            }
            return frame.command;
        }
    }

    pub async fn producer(&mut self, topic: &str) {
        self.write(&encode_command(&BaseCommand {
            producer: Some(Box::new(pb::CommandProducer {
                topic: topic.into(),
                producer_id: 1,
                request_id: 1,
                ..Default::default()
            })),
            ..commands::base(Type::Producer)
        }))
        .await;
        let answer = self.next().await;
        assert_eq!(answer.r#type, Type::ProducerSuccess as i32, "{answer:?}");
    }

    /// The next command other than a PING within `wait`, if any.
    /// The next command within `wait`; None on timeout or when the broker closed the
    /// connection (pings are answered).
    pub async fn try_next(&mut self, wait: Duration) -> Option<BaseCommand> {
        loop {
            let frame = tokio::time::timeout(wait, self.reader.next())
                .await
                .ok()?
                .ok()??;
            if frame.command.r#type == Type::Ping as i32 {
                let _ = self
                    .writer
                    .write_all(&encode_command(&commands::pong()))
                    .await;
                continue;
            }
            return Some(frame.command);
        }
    }

    /// LOOKUP of `topic`; returns the answer.
    pub async fn lookup(&mut self, topic: &str, request_id: u64) -> pb::CommandLookupTopicResponse {
        self.write(&encode_command(&BaseCommand {
            lookup_topic: Some(Box::new(pb::CommandLookupTopic {
                topic: topic.into(),
                request_id,
                ..Default::default()
            })),
            ..commands::base(Type::Lookup)
        }))
        .await;
        *self
            .next()
            .await
            .lookup_topic_response
            .expect("a LOOKUP_RESPONSE")
    }

    pub async fn next_within(&mut self, wait: Duration) -> Option<BaseCommand> {
        tokio::time::timeout(wait, self.next()).await.ok()
    }

    /// Subscribes `consumer_id` to `subscription` (Exclusive, from the earliest message).
    pub async fn subscribe(&mut self, topic: &str, subscription: &str, consumer_id: u64) {
        self.write(&encode_command(&BaseCommand {
            subscribe: Some(Box::new(pb::CommandSubscribe {
                topic: topic.into(),
                subscription: subscription.into(),
                sub_type: pb::command_subscribe::SubType::Exclusive as i32,
                consumer_id,
                request_id: 100 + consumer_id,
                initial_position: Some(pb::command_subscribe::InitialPosition::Earliest as i32),
                ..Default::default()
            })),
            ..commands::base(Type::Subscribe)
        }))
        .await;
        let answer = self.next().await;
        assert_eq!(answer.r#type, Type::Success as i32, "{answer:?}");
    }

    /// Writes one SEND of producer 1 without waiting for an answer.
    pub async fn send_only(&mut self, sequence_id: u64, meta: &impl Message, payload: &[u8]) {
        let cmd = BaseCommand {
            send: Some(Box::new(pb::CommandSend {
                producer_id: 1,
                sequence_id,
                ..Default::default()
            })),
            ..commands::base(Type::Send)
        };
        self.write(&encode_send_parts(&cmd, meta, &[payload])).await;
    }

    /// Sends one SEND and returns the broker's answer to it.
    pub async fn send(
        &mut self,
        sequence_id: u64,
        num_messages: Option<i32>,
        meta: &impl Message,
        payload: &[u8],
    ) -> BaseCommand {
        let cmd = BaseCommand {
            send: Some(Box::new(pb::CommandSend {
                producer_id: 1,
                sequence_id,
                num_messages,
                ..Default::default()
            })),
            ..commands::base(Type::Send)
        };
        self.write(&encode_send_parts(&cmd, meta, &[payload])).await;
        self.next().await
    }
}

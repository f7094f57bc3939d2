//! A small client for Pulsar's binary protocol, built on the `protocol` crate: one connection,
//! producers that pipeline SENDs (optionally as batches) and report receipts, consumers with
//! flow control and acks. It exists so `tierlog perf` measures the broker the way clients see it
//! without depending on a third-party client; it speaks only to brokers that serve every topic
//! themselves (LOOKUP answers are not followed).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message;
use protocol::io::{FrameReader, Outbox};
use protocol::pb::base_command::Type;
use protocol::pb::{self, BaseCommand};
use protocol::{FrameDecoder, commands, encode_command, encode_send_parts_into};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

mod tls;
pub use tls::TlsOptions;

/// How to connect: TLS for `pulsar+ssl://`, and the credentials CONNECT carries.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    pub tls: TlsOptions,
    pub auth: Option<AuthData>,
}

/// CONNECT's `auth_method_name` and `auth_data` (a token, say). Its bytes are never shown.
#[derive(Clone)]
pub struct AuthData {
    pub method: String,
    pub data: Vec<u8>,
}

impl std::fmt::Debug for AuthData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuthData({}, <redacted>)", self.method)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid service URL {0:?}: expected pulsar://host:port or pulsar+ssl://host:port")]
    Url(String),
    #[error("TLS: {0}")]
    Tls(String),
    /// The broker refused the handshake (authentication, say).
    #[error("the broker refused the connection ({code:?}): {message}")]
    Refused {
        code: pb::ServerError,
        message: String,
    },
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("connection closed")]
    Closed,
    #[error("broker error {code:?}: {message}")]
    Server {
        code: pb::ServerError,
        message: String,
    },
    /// In a cluster, the topic is served by another broker than this connection's.
    #[error(
        "{topic} is served by {url}: this client keeps one connection, so point it at that broker"
    )]
    Redirected { topic: String, url: String },
    #[error("unexpected reply: {0}")]
    Protocol(String),
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// A receipt for one SEND: its sequence id and the entry it became.
#[derive(Debug, Clone, Copy)]
pub struct Receipt {
    pub sequence_id: u64,
    pub ledger_id: u64,
    pub entry_id: u64,
}

/// A delivered entry: its id and the stored bytes (magic, checksum, metadata, payload).
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: pb::MessageIdData,
    pub entry: Bytes,
}

/// A channel that several producers' receipts share, each with its producer's id
/// ([`Producer::id`]): one task can drive thousands of producers without a wake-up per receipt.
pub type SharedReceipts = mpsc::UnboundedSender<(u64, std::result::Result<Receipt, ClientError>)>;

/// Where a producer's receipts go.
enum ReceiptRoute {
    /// Its own channel, in SEND order.
    Own(mpsc::UnboundedSender<std::result::Result<Receipt, ClientError>>),
    /// A channel shared with other producers.
    Shared(SharedReceipts),
}

impl ReceiptRoute {
    /// Hands `r` over; a receiver already gone stopped listening, so it is dropped.
    fn deliver(&self, producer_id: u64, r: std::result::Result<Receipt, ClientError>) {
        match self {
            ReceiptRoute::Own(tx) => drop(tx.send(r)),
            ReceiptRoute::Shared(tx) => drop(tx.send((producer_id, r))),
        }
    }
}

#[derive(Default)]
struct Routes {
    requests: HashMap<u64, oneshot::Sender<BaseCommand>>,
    producers: HashMap<u64, ReceiptRoute>,
    consumers: HashMap<u64, mpsc::UnboundedSender<Delivery>>,
}

/// One connection to a broker. Cheap to clone.
#[derive(Clone)]
pub struct Connection {
    out: Outbox,
    routes: Arc<Mutex<Routes>>,
    ids: Arc<AtomicU64>,
}

fn lock(r: &Mutex<Routes>) -> std::sync::MutexGuard<'_, Routes> {
    r.lock().unwrap_or_else(|p| p.into_inner())
}

impl Connection {
    /// Connects to `pulsar://host:port` and completes the handshake.
    pub async fn connect(url: &str) -> Result<Connection> {
        Self::connect_with(url, &ConnectOptions::default()).await
    }

    /// Connects to `pulsar://host:port` or `pulsar+ssl://host:port` with `options`.
    pub async fn connect_with(url: &str, options: &ConnectOptions) -> Result<Connection> {
        let (tls, addr) = match (
            url.strip_prefix("pulsar://"),
            url.strip_prefix("pulsar+ssl://"),
        ) {
            (Some(a), _) => (false, a),
            (_, Some(a)) => (true, a),
            _ => return Err(ClientError::Url(url.to_string())),
        };
        let addr = addr.trim_end_matches('/').to_string();
        let stream = TcpStream::connect(&addr)
            .await
            .map_err(|source| ClientError::Connect {
                addr: addr.clone(),
                source,
            })?;
        let _ = stream.set_nodelay(true);
        if !tls {
            let (rd, wr) = stream.into_split();
            return Self::handshake(rd, wr, options).await;
        }
        let host = addr.rsplit_once(':').map_or(addr.as_str(), |(h, _)| h);
        let name = rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(|_| ClientError::Url(url.to_string()))?;
        let stream = options
            .tls
            .connector()?
            .connect(name, stream)
            .await
            .map_err(|e| ClientError::Tls(format!("handshake with {addr}: {e}")))?;
        let (rd, wr) = tokio::io::split(stream);
        Self::handshake(rd, wr, options).await
    }

    async fn handshake<R, W>(rd: R, wr: W, options: &ConnectOptions) -> Result<Connection>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        // The writer task ends when the last sender (this connection's clones) is dropped.
        let (out, _writer) = protocol::io::spawn_writer(wr, 1 << 20);
        let routes: Arc<Mutex<Routes>> = Default::default();
        let (connected_tx, connected_rx) = oneshot::channel();
        let reader_routes = Arc::clone(&routes);
        // Weak: the connection closes once its last user (Connection, Producer, Consumer) is
        // dropped, instead of being kept open by its own reader.
        let pong = out.downgrade();
        tokio::spawn(async move {
            let mut frames =
                FrameReader::new(rd, FrameDecoder::new(protocol::DEFAULT_MAX_MESSAGE_SIZE))
                    .reserving_announced();
            let mut connected = Some(connected_tx);
            loop {
                match frames.next().await {
                    Ok(Some(f)) if f.command.r#type == Type::Connected as i32 => {
                        if let Some(tx) = connected.take() {
                            let _ = tx.send(Ok(()));
                        }
                    }
                    // A refused handshake: ERROR before CONNECTED.
                    Ok(Some(f)) if connected.is_some() && f.command.error.is_some() => {
                        let e = f.command.error.unwrap_or_default();
                        if let Some(tx) = connected.take() {
                            let _ = tx.send(Err(ClientError::Refused {
                                code: pb::ServerError::try_from(e.error)
                                    .unwrap_or(pb::ServerError::UnknownError),
                                message: e.message,
                            }));
                        }
                        break;
                    }
                    Ok(Some(f)) => match pong.upgrade() {
                        Some(out) => route(&reader_routes, &out, f.command, f.payload),
                        None => break,
                    },
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "bad frame from broker");
                        break;
                    }
                }
            }
            if let Some(tx) = connected.take() {
                let _ = tx.send(Err(ClientError::Closed));
            }
            let mut r = lock(&reader_routes);
            r.requests.clear();
            for (id, p) in r.producers.drain() {
                p.deliver(id, Err(ClientError::Closed));
            }
            r.consumers.clear();
        });
        let _ = out.send(encode_command(&BaseCommand {
            connect: Some(Box::new(pb::CommandConnect {
                client_version: format!("tierlog-perf-{}", env!("CARGO_PKG_VERSION")),
                protocol_version: Some(protocol::SERVER_PROTOCOL_VERSION),
                auth_method_name: options.auth.as_ref().map(|a| a.method.clone()),
                auth_data: options.auth.as_ref().map(|a| a.data.clone().into()),
                ..Default::default()
            })),
            ..commands::base(Type::Connect)
        }));
        connected_rx.await.map_err(|_| ClientError::Closed)??;
        Ok(Connection {
            out,
            routes,
            ids: Arc::new(AtomicU64::new(0)),
        })
    }

    fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed)
    }

    async fn request(&self, request_id: u64, cmd: BaseCommand) -> Result<BaseCommand> {
        let (tx, rx) = oneshot::channel();
        lock(&self.routes).requests.insert(request_id, tx);
        self.out
            .send(encode_command(&cmd))
            .map_err(|_| ClientError::Closed)?;
        let reply = rx.await.map_err(|_| ClientError::Closed)?;
        if let Some(e) = &reply.error {
            return Err(ClientError::Server {
                code: pb::ServerError::try_from(e.error).unwrap_or(pb::ServerError::UnknownError),
                message: e.message.clone(),
            });
        }
        Ok(reply)
    }

    /// Partition count of a topic (0 when not partitioned).
    pub async fn partitions(&self, topic: &str) -> Result<u32> {
        let rid = self.next_id();
        let reply = self
            .request(
                rid,
                BaseCommand {
                    partition_metadata: Some(Box::new(pb::CommandPartitionedTopicMetadata {
                        topic: topic.to_string(),
                        request_id: rid,
                        ..Default::default()
                    })),
                    ..commands::base(Type::PartitionedMetadata)
                },
            )
            .await?;
        let r = reply
            .partition_metadata_response
            .ok_or_else(|| ClientError::Protocol("no partitioned metadata".into()))?;
        if let Some(code) = r.error {
            return Err(ClientError::Server {
                code: pb::ServerError::try_from(code).unwrap_or(pb::ServerError::UnknownError),
                message: r.message.unwrap_or_default(),
            });
        }
        Ok(r.partitions.unwrap_or(0))
    }

    /// Looks `topic` up (as Pulsar's clients do before attaching): in a cluster this gives its
    /// bundle to a broker. Fine when this connection's broker serves it; a redirect elsewhere
    /// is [`ClientError::Redirected`] (one connection, no following).
    pub async fn lookup(&self, topic: &str) -> Result<()> {
        use pb::command_lookup_topic_response::LookupType;
        let rid = self.next_id();
        let reply = self
            .request(
                rid,
                BaseCommand {
                    lookup_topic: Some(Box::new(pb::CommandLookupTopic {
                        topic: topic.to_string(),
                        request_id: rid,
                        authoritative: Some(false),
                        ..Default::default()
                    })),
                    ..commands::base(Type::Lookup)
                },
            )
            .await?;
        let r = reply
            .lookup_topic_response
            .ok_or_else(|| ClientError::Protocol("no LOOKUP_RESPONSE".into()))?;
        match r.response.and_then(|t| LookupType::try_from(t).ok()) {
            Some(LookupType::Connect) => Ok(()),
            Some(LookupType::Redirect) => Err(ClientError::Redirected {
                topic: topic.to_string(),
                url: r.broker_service_url.unwrap_or_default(),
            }),
            _ => Err(ClientError::Server {
                code: r
                    .error
                    .and_then(|c| pb::ServerError::try_from(c).ok())
                    .unwrap_or(pb::ServerError::UnknownError),
                message: r.message.unwrap_or_default(),
            }),
        }
    }

    /// Creates a producer; receipts arrive on the returned channel in SEND order.
    pub async fn producer(
        &self,
        topic: &str,
    ) -> Result<(
        Producer,
        mpsc::UnboundedReceiver<std::result::Result<Receipt, ClientError>>,
    )> {
        let (tx, rx) = mpsc::unbounded_channel();
        let producer = self.create_producer(topic, ReceiptRoute::Own(tx)).await?;
        Ok((producer, rx))
    }

    /// Creates a producer whose receipts go to `receipts`, with its id, in SEND order.
    pub async fn producer_sharing(
        &self,
        topic: &str,
        receipts: SharedReceipts,
    ) -> Result<Producer> {
        self.create_producer(topic, ReceiptRoute::Shared(receipts))
            .await
    }

    async fn create_producer(&self, topic: &str, route: ReceiptRoute) -> Result<Producer> {
        let (id, rid) = (self.next_id(), self.next_id());
        lock(&self.routes).producers.insert(id, route);
        let reply = self
            .request(
                rid,
                BaseCommand {
                    producer: Some(Box::new(pb::CommandProducer {
                        topic: topic.to_string(),
                        producer_id: id,
                        request_id: rid,
                        ..Default::default()
                    })),
                    ..commands::base(Type::Producer)
                },
            )
            .await?;
        let name = reply
            .producer_success
            .map(|p| p.producer_name)
            .ok_or_else(|| ClientError::Protocol("no PRODUCER_SUCCESS".into()))?;
        Ok(Producer {
            conn: self.clone(),
            id,
            name,
            next_sequence: 0,
            scratch: BytesMut::new(),
        })
    }

    /// Subscribes; deliveries arrive on the returned channel. `sub_type` and `initial` use the
    /// protocol's numbers (Exclusive 0, Shared 1, Failover 2, Key_Shared 3; Latest 0, Earliest 1).
    pub async fn subscribe(
        &self,
        topic: &str,
        subscription: &str,
        sub_type: i32,
        initial: i32,
    ) -> Result<(Consumer, mpsc::UnboundedReceiver<Delivery>)> {
        let (id, rid) = (self.next_id(), self.next_id());
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.routes).consumers.insert(id, tx);
        self.request(
            rid,
            BaseCommand {
                subscribe: Some(Box::new(pb::CommandSubscribe {
                    topic: topic.to_string(),
                    subscription: subscription.to_string(),
                    sub_type,
                    consumer_id: id,
                    request_id: rid,
                    initial_position: Some(initial),
                    ..Default::default()
                })),
                ..commands::base(Type::Subscribe)
            },
        )
        .await?;
        Ok((
            Consumer {
                conn: self.clone(),
                id,
            },
            rx,
        ))
    }
}

fn route(
    routes: &Mutex<Routes>,
    out: &Outbox,
    cmd: BaseCommand,
    payload: Option<protocol::Payload>,
) {
    let ty = Type::try_from(cmd.r#type).ok();
    let mut r = lock(routes);
    let request_id = match ty {
        Some(Type::Ping) => {
            let _ = out.send(encode_command(&commands::pong()));
            return;
        }
        Some(Type::SendReceipt) => {
            if let Some(s) = cmd.send_receipt
                && let Some(p) = r.producers.get(&s.producer_id)
            {
                let id = s.message_id.unwrap_or_default();
                p.deliver(
                    s.producer_id,
                    Ok(Receipt {
                        sequence_id: s.sequence_id,
                        ledger_id: id.ledger_id,
                        entry_id: id.entry_id,
                    }),
                );
            }
            return;
        }
        Some(Type::SendError) => {
            if let Some(s) = cmd.send_error
                && let Some(p) = r.producers.get(&s.producer_id)
            {
                p.deliver(
                    s.producer_id,
                    Err(ClientError::Server {
                        code: pb::ServerError::try_from(s.error)
                            .unwrap_or(pb::ServerError::UnknownError),
                        message: s.message,
                    }),
                );
            }
            return;
        }
        Some(Type::Message) => {
            if let (Some(m), Some(p)) = (cmd.message, payload)
                && let Some(c) = r.consumers.get(&m.consumer_id)
            {
                let _ = c.send(Delivery {
                    id: m.message_id,
                    entry: p.entry,
                });
            }
            return;
        }
        Some(Type::Success) => cmd.success.as_ref().map(|s| s.request_id),
        Some(Type::Error) => cmd.error.as_ref().map(|s| s.request_id),
        Some(Type::ProducerSuccess) => cmd.producer_success.as_ref().map(|s| s.request_id),
        Some(Type::PartitionedMetadataResponse) => cmd
            .partition_metadata_response
            .as_ref()
            .map(|s| s.request_id),
        Some(Type::LookupResponse) => cmd.lookup_topic_response.as_ref().map(|s| s.request_id),
        _ => None,
    };
    if let Some(rid) = request_id
        && let Some(tx) = r.requests.remove(&rid)
    {
        let _ = tx.send(cmd);
    }
}

pub struct Producer {
    conn: Connection,
    id: u64,
    name: String,
    next_sequence: u64,
    /// Where SEND frames are encoded, kept so that their memory is reused.
    scratch: BytesMut,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Producer {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The id the broker knows this producer by; receipts on a shared channel carry it.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Sends `payloads` as one entry: a single message, or a batch when there are several.
    /// Returns the SEND's sequence id (its receipt carries it back).
    pub fn send(&mut self, payloads: &[Bytes]) -> Result<u64> {
        let seq = self.next_sequence;
        self.next_sequence += payloads.len().max(1) as u64;
        let mut meta = pb::MessageMetadata {
            producer_name: self.name.clone(),
            sequence_id: seq,
            publish_time: now_ms(),
            ..Default::default()
        };
        // A batch is `[u32 size][SingleMessageMetadata][payload]` per message.
        let mut headers: Vec<Vec<u8>> = Vec::new();
        if payloads.len() > 1 {
            meta.num_messages_in_batch = Some(payloads.len() as i32);
            headers = payloads
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let single = pb::SingleMessageMetadata {
                        payload_size: p.len() as i32,
                        sequence_id: Some(seq + i as u64),
                        ..Default::default()
                    };
                    let mut h = Vec::with_capacity(4 + single.encoded_len());
                    h.put_u32(single.encoded_len() as u32);
                    let _ = single.encode(&mut h);
                    h
                })
                .collect();
        }
        let mut parts: Vec<&[u8]> = Vec::with_capacity(payloads.len() * 2);
        if headers.is_empty() {
            parts.extend(payloads.iter().map(|p| p.as_ref()));
        } else {
            for (h, p) in headers.iter().zip(payloads) {
                parts.push(h);
                parts.push(p);
            }
        }
        let cmd = BaseCommand {
            send: Some(Box::new(pb::CommandSend {
                producer_id: self.id,
                sequence_id: seq,
                num_messages: (payloads.len() > 1).then_some(payloads.len() as i32),
                ..Default::default()
            })),
            ..commands::base(Type::Send)
        };
        self.conn
            .out
            .send(encode_send_parts_into(
                &mut self.scratch,
                &cmd,
                &meta,
                &parts,
            ))
            .map_err(|_| ClientError::Closed)?;
        Ok(seq)
    }
}

pub struct Consumer {
    conn: Connection,
    id: u64,
}

impl Consumer {
    pub fn flow(&self, permits: u32) -> Result<()> {
        self.conn
            .out
            .send(encode_command(&BaseCommand {
                flow: Some(Box::new(pb::CommandFlow {
                    consumer_id: self.id,
                    message_permits: permits,
                })),
                ..commands::base(Type::Flow)
            }))
            .map_err(|_| ClientError::Closed)
    }

    /// Acknowledges entries individually (one ACK frame).
    pub fn ack(&self, ids: Vec<pb::MessageIdData>) -> Result<()> {
        self.send_ack(pb::command_ack::AckType::Individual, ids)
    }

    /// Acknowledges everything up to and including `id`.
    pub fn ack_cumulative(&self, id: pb::MessageIdData) -> Result<()> {
        self.send_ack(pb::command_ack::AckType::Cumulative, vec![id])
    }

    fn send_ack(
        &self,
        ack_type: pb::command_ack::AckType,
        ids: Vec<pb::MessageIdData>,
    ) -> Result<()> {
        self.conn
            .out
            .send(encode_command(&BaseCommand {
                ack: Some(Box::new(pb::CommandAck {
                    consumer_id: self.id,
                    ack_type: ack_type as i32,
                    message_id: ids,
                    ..Default::default()
                })),
                ..commands::base(Type::Ack)
            }))
            .map_err(|_| ClientError::Closed)
    }
}

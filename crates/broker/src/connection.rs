//! One client connection: the handshake, then every command in arrival order. Replies and
//! MESSAGE frames go through one writer task; SEND receipts through a FIFO task that awaits each
//! append's durability in order, so receipts leave in SEND order. When too many sends are
//! pending, the reader stops reading the socket (back-pressure).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use ledger::{AckSet, AppendReceipt, Position};
use protocol::io::{FrameReader, ReadError};
use protocol::pb::base_command::Type;
use protocol::pb::{self, BaseCommand, ServerError};
use protocol::{FrameDecoder, FrameError, NamespaceName, TopicName, commands, encode_command};
use security::{NamespaceOperation, Role, TopicOperation};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};

use crate::error::BrokerError;
use crate::service::{BrokerService, Peer, schema_version_bytes, schema_version_from_bytes};
use crate::subscription::{
    ConsumerSpec, Outbox, SubType, Subscription, initial_position, read_position_for,
};
use crate::topic::{ProducerEntry, Start, Topic};

/// Sends waiting for durability per connection before the reader pauses (as Pulsar does).
const MAX_PENDING_SENDS: usize = 1000;
/// The largest frame accepted before CONNECT completes: a CONNECT with credentials fits, a
/// peer that has not said who it is cannot make the broker buffer megabytes.
pub(crate) const MAX_FRAME_BEFORE_CONNECT: u32 = 64 * 1024;

struct Conn {
    svc: Arc<BrokerService>,
    id: u64,
    peer: SocketAddr,
    /// The verified TLS client certificate's common name (the `tls` provider's role).
    tls_common_name: Option<String>,
    /// Who the client authenticated as (`None` with authentication off).
    role: Option<Role>,
    auth: AuthState,
    outbox: Outbox,
    sends: mpsc::Sender<PendingSend>,
    connected: bool,
    protocol_version: i32,
    client_version: String,
    producers: HashMap<u64, Arc<Topic>>,
    consumers: HashMap<u64, Consumer>,
    /// Producers and consumers of non-persistent topics.
    np_producers: HashMap<u64, Arc<crate::non_persistent::NonPersistentTopic>>,
    np_consumers: HashMap<u64, NpAttached>,
}

/// Why a connection is closed by the broker.
#[derive(Debug)]
struct Close(String);

mod auth;
mod consume;
mod lookup;
mod non_persistent;
mod produce;

use auth::AuthState;
use consume::{Consumer, position};
use non_persistent::NpAttached;
use produce::{PendingSend, send_receipts};

pub(crate) async fn run<R, W>(
    svc: Arc<BrokerService>,
    rd: R,
    wr: W,
    peer: Peer,
    id: u64,
    mut shutdown: watch::Receiver<bool>,
) where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let Peer {
        addr: peer,
        tls_common_name,
    } = peer;
    let (outbox, writer) = protocol::io::spawn_writer(wr, 256 * 1024);
    let (sends, send_rx) = mpsc::channel(MAX_PENDING_SENDS);
    let receipts = tokio::spawn(send_receipts(send_rx, outbox.clone(), Arc::clone(&svc)));
    let mut conn = Conn {
        svc: Arc::clone(&svc),
        id,
        peer,
        tls_common_name,
        role: None,
        auth: AuthState::default(),
        outbox,
        sends,
        connected: false,
        protocol_version: 0,
        client_version: String::new(),
        producers: HashMap::new(),
        consumers: HashMap::new(),
        np_producers: HashMap::new(),
        np_consumers: HashMap::new(),
    };
    let mut frames = FrameReader::new(rd, FrameDecoder::with_max_frame(MAX_FRAME_BEFORE_CONNECT))
        .with_budget(svc.receive_budget.clone());
    // The TLS handshake (if any) and CONNECT must complete within the keepalive interval.
    let connect_by = tokio::time::Instant::now() + svc.config.keepalive;
    let mut pinged = false;
    let auth_every = svc.authenticator.refresh_check();
    let mut auth_check = tokio::time::Instant::now() + auth_every;
    let reason = loop {
        let wait = if conn.connected {
            svc.config.keepalive
        } else {
            connect_by.saturating_duration_since(tokio::time::Instant::now())
        };
        let was_connected = conn.connected;
        let next = tokio::select! {
            r = tokio::time::timeout(wait, frames.next()) => r,
            _ = crate::service::until_true(&mut shutdown) => break "broker shutting down".to_string(),
            _ = tokio::time::sleep_until(auth_check), if conn.auth.expires_at.is_some() => {
                auth_check = tokio::time::Instant::now() + auth_every;
                if let Err(Close(why)) = conn.check_credentials() {
                    break why;
                }
                continue;
            }
        };
        match next {
            Ok(Ok(Some(frame))) => {
                // Any command proves the peer alive, as in Pulsar.
                pinged = false;
                if let Err(Close(why)) = conn.handle(frame.command, frame.payload).await {
                    break why;
                }
                if !was_connected && conn.connected {
                    // Full-size frames only once the peer has completed CONNECT.
                    frames.set_decoder(FrameDecoder::new(svc.config.max_message_size));
                }
            }
            Ok(Ok(None)) => break "closed by the client".to_string(),
            Ok(Err(ReadError::Frame(FrameError::Checksum {
                expected,
                actual,
                command,
            }))) => {
                if let Some(send) = &command.send {
                    conn.send(commands::send_error(
                        send.producer_id,
                        send.sequence_id,
                        ServerError::ChecksumError,
                        format!("checksum mismatch: {expected:#010x} != {actual:#010x}"),
                    ));
                }
                break format!("payload checksum mismatch ({expected:#010x} != {actual:#010x})");
            }
            Ok(Err(e)) => break e.to_string(),
            Err(_) if !conn.connected => break "no CONNECT within the deadline".to_string(),
            Err(_) if !pinged => {
                conn.send(commands::ping());
                pinged = true;
            }
            Err(_) => break "keepalive timeout".to_string(),
        }
    };
    tracing::debug!(conn = id, peer = %peer, reason, "connection closed");
    conn.cleanup();
    drop(conn);
    let _ = receipts.await;
    let _ = writer.await;
}

impl Conn {
    fn send(&self, cmd: BaseCommand) {
        let _ = self.outbox.send(encode_command(&cmd));
    }

    fn fail(&self, request_id: u64, e: &BrokerError) {
        self.send(commands::error(request_id, e.server_error(), e.to_string()));
    }

    fn topic_name(name: &str) -> Result<TopicName, BrokerError> {
        Ok(TopicName::parse(name)?)
    }

    async fn authorize(
        &self,
        topic: &TopicName,
        op: TopicOperation<'_>,
    ) -> Result<(), BrokerError> {
        self.svc
            .store
            .authorize_topic(self.role.as_ref(), topic, op)
            .await
    }

    async fn handle(
        &mut self,
        cmd: BaseCommand,
        payload: Option<protocol::Payload>,
    ) -> Result<(), Close> {
        let ty = Type::try_from(cmd.r#type)
            .map_err(|_| Close(format!("unknown command type {}", cmd.r#type)))?;
        if !self.connected {
            return match (ty, cmd.connect) {
                (Type::Connect, Some(c)) => {
                    self.authenticate_connect(&c)?;
                    self.protocol_version = c
                        .protocol_version
                        .unwrap_or(0)
                        .min(protocol::SERVER_PROTOCOL_VERSION);
                    self.connected = true;
                    self.client_version = c.client_version.clone();
                    tracing::debug!(conn = self.id, peer = %self.peer, client = %c.client_version, version = self.protocol_version, role = ?self.role.as_ref().map(Role::as_str), "connected");
                    self.send(BaseCommand {
                        connected: Some(Box::new(pb::CommandConnected {
                            server_version: self.svc.config.server_version.clone(),
                            protocol_version: Some(self.protocol_version),
                            max_message_size: Some(self.svc.config.max_message_size as i32),
                        })),
                        ..commands::base(Type::Connected)
                    });
                    Ok(())
                }
                _ => Err(Close(format!("{ty:?} before CONNECT"))),
            };
        }
        macro_rules! body {
            ($field:ident) => {
                *cmd.$field.ok_or_else(|| {
                    Close(format!("{ty:?} without its {} body", stringify!($field)))
                })?
            };
        }
        match ty {
            Type::Connect => return Err(Close("second CONNECT on a connection".into())),
            Type::AuthResponse => {
                let c = body!(auth_response);
                self.auth_response(c)?;
            }
            Type::Ping => self.send(commands::pong()),
            Type::Pong => {}
            Type::PartitionedMetadata => {
                let c = body!(partition_metadata);
                self.partitioned_metadata(c).await
            }
            Type::Lookup => {
                let c = body!(lookup_topic);
                self.lookup(c).await
            }
            Type::GetTopicsOfNamespace => {
                let c = body!(get_topics_of_namespace);
                let listed = match NamespaceName::parse(&c.namespace) {
                    Ok(ns) => match self
                        .svc
                        .store
                        .authorize_namespace(
                            self.role.as_ref(),
                            &ns,
                            NamespaceOperation::ListTopics,
                        )
                        .await
                    {
                        Ok(()) => {
                            // Pulsar's mode: PERSISTENT (the default), NON_PERSISTENT or ALL.
                            use pb::command_get_topics_of_namespace::Mode;
                            let mode = c.mode.unwrap_or(Mode::Persistent as i32);
                            let persistent = if mode == Mode::NonPersistent as i32 {
                                Ok(Vec::new())
                            } else {
                                self.svc.store.list(&ns).await
                            };
                            persistent.map(|mut topics| {
                                if mode != Mode::Persistent as i32 {
                                    topics.extend(self.svc.np_topics_of(&ns));
                                }
                                topics
                            })
                        }
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(e.into()),
                };
                match listed {
                    Ok(topics) => self.send(BaseCommand {
                        get_topics_of_namespace_response: Some(Box::new(
                            pb::CommandGetTopicsOfNamespaceResponse {
                                request_id: c.request_id,
                                // System topics (`__…`) are not listed, as in Pulsar.
                                topics: topics
                                    .into_iter()
                                    .filter(|t| !t.local().starts_with("__"))
                                    .map(|t| t.to_string())
                                    .collect(),
                                filtered: Some(false),
                                topics_hash: None,
                                changed: Some(true),
                            },
                        )),
                        ..commands::base(Type::GetTopicsOfNamespaceResponse)
                    }),
                    Err(e) => self.fail(c.request_id, &e),
                }
            }
            Type::Producer => {
                let c = body!(producer);
                let rid = c.request_id;
                if let Err(e) = self.producer(c).await {
                    self.fail(rid, &e);
                }
            }
            Type::Send => {
                let c = body!(send);
                let Some(payload) = payload else {
                    return Err(Close("SEND without a payload".into()));
                };
                self.publish(c, payload).await?;
            }
            Type::CloseProducer => {
                let c = body!(close_producer);
                if let Some(t) = self.producers.remove(&c.producer_id) {
                    t.remove_producer((self.id, c.producer_id));
                }
                self.np_close_producer(c.producer_id);
                self.send(commands::success(c.request_id));
            }
            Type::Subscribe => {
                let c = body!(subscribe);
                let rid = c.request_id;
                match self.subscribe(c).await {
                    Ok(()) => self.send(commands::success(rid)),
                    Err(e) => self.fail(rid, &e),
                }
            }
            Type::Flow => {
                let c = body!(flow);
                if let Some(k) = self.consumers.get(&c.consumer_id) {
                    k.sub.flow((self.id, c.consumer_id), c.message_permits);
                } else if let Some(k) = self.np_consumers.get(&c.consumer_id) {
                    k.topic
                        .flow(&k.subscription, (self.id, c.consumer_id), c.message_permits);
                }
            }
            Type::Ack => {
                let c = body!(ack);
                self.ack(c);
            }
            Type::RedeliverUnacknowledgedMessages => {
                let c = body!(redeliver_unacknowledged_messages);
                if let Some(k) = self.consumers.get(&c.consumer_id) {
                    let ids: Vec<Position> = c.message_ids.iter().map(position).collect();
                    k.sub.redeliver(
                        (self.id, c.consumer_id),
                        (!ids.is_empty()).then_some(ids.as_slice()),
                    );
                }
            }
            Type::Seek => {
                let c = body!(seek);
                let rid = c.request_id;
                match self.seek(c).await {
                    Ok(()) => self.send(commands::success(rid)),
                    Err(e) => self.fail(rid, &e),
                }
            }
            Type::GetLastMessageId => {
                let c = body!(get_last_message_id);
                let rid = c.request_id;
                if let Err(e) = self.last_message_id(c).await {
                    self.fail(rid, &e);
                }
            }
            Type::Unsubscribe => {
                let c = body!(unsubscribe);
                let rid = c.request_id;
                match self.unsubscribe(c).await {
                    Ok(()) => self.send(commands::success(rid)),
                    Err(e) => self.fail(rid, &e),
                }
            }
            Type::CloseConsumer => {
                let c = body!(close_consumer);
                if !self.np_close_consumer(c.consumer_id) {
                    self.close_consumer(c.consumer_id).await;
                }
                self.send(commands::success(c.request_id));
            }
            Type::GetSchema => {
                let c = body!(get_schema);
                self.get_schema(c).await;
            }
            Type::ConsumerStats => {
                let c = body!(consumer_stats);
                self.send(commands::error(
                    c.request_id,
                    ServerError::UnknownError,
                    "consumer stats are not supported",
                ));
            }
            other => {
                tracing::debug!(conn = self.id, command = ?other, "ignoring an unsupported command");
            }
        }
        Ok(())
    }

    async fn get_schema(&self, c: pb::CommandGetSchema) {
        let found = match Self::topic_name(&c.topic) {
            Ok(t) => match self.authorize(&t, TopicOperation::Lookup).await {
                Ok(()) => {
                    let version = c
                        .schema_version
                        .as_deref()
                        .and_then(schema_version_from_bytes);
                    self.svc.store.schema(&t, version).await.ok().flatten()
                }
                Err(e) => {
                    self.send(BaseCommand {
                        get_schema_response: Some(Box::new(pb::CommandGetSchemaResponse {
                            request_id: c.request_id,
                            error_code: Some(e.server_error() as i32),
                            error_message: Some(e.to_string()),
                            ..Default::default()
                        })),
                        ..commands::base(Type::GetSchemaResponse)
                    });
                    return;
                }
            },
            Err(_) => None,
        };
        let resp = match found {
            Some((version, schema)) => pb::CommandGetSchemaResponse {
                request_id: c.request_id,
                schema: Some(schema),
                schema_version: Some(schema_version_bytes(version)),
                ..Default::default()
            },
            // Pulsar's answer when the topic has no schema (or not that version).
            None => pb::CommandGetSchemaResponse {
                request_id: c.request_id,
                error_code: Some(ServerError::TopicNotFound as i32),
                error_message: Some("Topic not found or no-schema".into()),
                ..Default::default()
            },
        };
        self.send(BaseCommand {
            get_schema_response: Some(Box::new(resp)),
            ..commands::base(Type::GetSchemaResponse)
        });
    }

    /// Detaches everything this connection had attached.
    fn cleanup(&mut self) {
        self.np_cleanup();
        for (pid, t) in self.producers.drain() {
            t.remove_producer((self.id, pid));
        }
        for (cid, k) in self.consumers.drain() {
            let key = (self.id, cid);
            tokio::spawn(async move { k.detach(key).await });
        }
    }
}

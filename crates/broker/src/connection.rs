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

struct PendingSend {
    producer_id: u64,
    sequence_id: u64,
    highest_sequence_id: u64,
    receipt: AppendReceipt,
    topic: Arc<Topic>,
    /// Messages in the entry (a batch counts its messages) and its size, for stats.
    messages: u64,
    bytes: u64,
    /// The producer's name when deduplication checked this SEND: its sequence ids become
    /// "persisted" with the receipt.
    dedup_producer: Option<String>,
}

enum DedupOutcome {
    Off,
    New(String),
    Answered,
}

struct Consumer {
    topic: Arc<Topic>,
    sub: Arc<Subscription>,
}

impl Consumer {
    /// Detaches the consumer; a reader's subscription ends with its last consumer.
    async fn detach(self, key: (u64, u64)) {
        let left = self.sub.remove_consumer(key);
        if left == 0 && !self.sub.is_durable() {
            self.topic.remove_subscription(&self.sub.name).await;
            self.sub.close().await;
        }
    }
}

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
}

/// Why a connection is closed by the broker.
#[derive(Debug)]
struct Close(String);

mod auth;
use auth::AuthState;

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

/// Awaits each append in SEND order and answers it.
async fn send_receipts(
    mut rx: mpsc::Receiver<PendingSend>,
    outbox: Outbox,
    svc: Arc<BrokerService>,
) {
    while let Some(p) = rx.recv().await {
        let reply = match p.receipt.await {
            // Durable here, but this broker may have lost the topic meanwhile (a pause past its
            // session's TTL): no acknowledgement then; the client resends to the new owner.
            Ok(_) if !svc.may_acknowledge(&p.topic.name) => commands::send_error(
                p.producer_id,
                p.sequence_id,
                ServerError::ServiceNotReady,
                format!(
                    "this broker may no longer own {} (its metadata session lapsed)",
                    p.topic.name
                ),
            ),
            Ok(pos) => {
                p.topic.count_in(p.messages, p.bytes);
                p.topic.notify_appended();
                if let Some(producer) = &p.dedup_producer {
                    p.topic
                        .dedup
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .persisted(producer, p.highest_sequence_id as i64);
                    p.topic.maybe_snapshot_dedup(
                        Arc::clone(&svc.store),
                        svc.config.dedup_snapshot_interval,
                    );
                }
                BaseCommand {
                    send_receipt: Some(pb::CommandSendReceipt {
                        producer_id: p.producer_id,
                        sequence_id: p.sequence_id,
                        message_id: Some(pb::MessageIdData {
                            ledger_id: pos.ledger_id as u64,
                            entry_id: pos.entry_id as u64,
                            ..Default::default()
                        }),
                        highest_sequence_id: Some(p.highest_sequence_id),
                    }),
                    ..commands::base(Type::SendReceipt)
                }
            }
            Err(e) => {
                log_append_failure(&p.topic.name, &e, "append failed");
                commands::send_error(
                    p.producer_id,
                    p.sequence_id,
                    ServerError::PersistenceError,
                    format!("storing the message failed: {e}"),
                )
            }
        };
        if outbox.send(encode_command(&reply)).is_err() {
            return;
        }
    }
}

/// Logs a failed append: a full disk at debug (the managed ledger reports it once), anything
/// else as a warning.
fn log_append_failure(topic: &protocol::TopicName, e: &ledger::LedgerError, what: &str) {
    if e.is_out_of_space() {
        tracing::debug!(%topic, error = %e, "{what}");
    } else {
        tracing::warn!(%topic, error = %e, "{what}");
    }
}

fn position(id: &pb::MessageIdData) -> Position {
    Position::new(id.ledger_id as i64, id.entry_id as i64)
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
                        connected: Some(pb::CommandConnected {
                            server_version: self.svc.config.server_version.clone(),
                            protocol_version: Some(self.protocol_version),
                            max_message_size: Some(self.svc.config.max_message_size as i32),
                        }),
                        ..commands::base(Type::Connected)
                    });
                    Ok(())
                }
                _ => Err(Close(format!("{ty:?} before CONNECT"))),
            };
        }
        macro_rules! body {
            ($field:ident) => {
                cmd.$field.ok_or_else(|| {
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
                        Ok(()) => self.svc.store.list(&ns).await,
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(e.into()),
                };
                match listed {
                    Ok(topics) => self.send(BaseCommand {
                        get_topics_of_namespace_response: Some(
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
                        ),
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
                self.close_consumer(c.consumer_id).await;
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

    /// A slot among `maxConcurrentLookupRequest`, or Pulsar's TooManyRequests refusal.
    fn lookup_slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, BrokerError> {
        Arc::clone(&self.svc.lookups)
            .try_acquire_owned()
            .map_err(|_| BrokerError::TooManyRequests)
    }

    async fn partitioned_metadata(&self, c: pb::CommandPartitionedTopicMetadata) {
        let slot = self.lookup_slot();
        let result = match slot
            .as_ref()
            .map_err(|_| BrokerError::TooManyRequests)
            .and(Self::topic_name(&c.topic))
        {
            Ok(t) => match self.authorize(&t, TopicOperation::Lookup).await {
                Err(e) => Err(e),
                Ok(()) if t.partition_index().is_some() => Ok(0),
                Ok(()) => self.svc.store.partitions(&t).await,
            },
            Err(e) => Err(e),
        };
        let resp = match result {
            Ok(n) => pb::CommandPartitionedTopicMetadataResponse {
                partitions: Some(n),
                request_id: c.request_id,
                response: Some(
                    pb::command_partitioned_topic_metadata_response::LookupType::Success as i32,
                ),
                error: None,
                message: None,
            },
            Err(e) => pb::CommandPartitionedTopicMetadataResponse {
                partitions: None,
                request_id: c.request_id,
                response: Some(
                    pb::command_partitioned_topic_metadata_response::LookupType::Failed as i32,
                ),
                error: Some(e.server_error() as i32),
                message: Some(e.to_string()),
            },
        };
        self.send(BaseCommand {
            partition_metadata_response: Some(resp),
            ..commands::base(Type::PartitionedMetadataResponse)
        });
    }

    async fn lookup(&self, c: pb::CommandLookupTopic) {
        use pb::command_lookup_topic_response::LookupType;
        let failed = |error: pb::ServerError, message: String| pb::CommandLookupTopicResponse {
            response: Some(LookupType::Failed as i32),
            request_id: c.request_id,
            error: Some(error as i32),
            message: Some(message),
            ..Default::default()
        };
        let name = match Self::topic_name(&c.topic) {
            Ok(t) => self.authorize(&t, TopicOperation::Lookup).await.map(|()| t),
            Err(e) => Err(e),
        };
        // A client naming a listener (`advertisedListeners`) gets that listener's URLs.
        let listener = c
            .advertised_listener_name
            .as_deref()
            .filter(|n| !n.is_empty());
        let unknown_listener = |name: &str| {
            // Pulsar's words.
            failed(
                pb::ServerError::ServiceNotReady,
                format!("the broker do not have {name} listener"),
            )
        };
        let config = &self.svc.config;
        let own = (config.service_url.clone(), config.service_url_tls.clone());
        let resp = match (name, self.svc.cluster()) {
            (Err(e), _) => failed(e.server_error(), e.to_string()),
            (Ok(_), None) => match urls_for(listener, &config.listeners, own) {
                None => unknown_listener(listener.unwrap_or_default()),
                Some((url, url_tls)) => pb::CommandLookupTopicResponse {
                    broker_service_url: url,
                    broker_service_url_tls: url_tls,
                    response: Some(LookupType::Connect as i32),
                    request_id: c.request_id,
                    authoritative: Some(true),
                    // Pulsar standalone's answer: clients dial the URL they already use
                    // (unless they asked for a listener's).
                    proxy_through_service_url: Some(listener.is_none()),
                    ..Default::default()
                },
            },
            (Ok(topic), Some(cl)) => {
                match cl.lookup(&topic, c.authoritative.unwrap_or(false)).await {
                    Ok(owner) => {
                        let (urls, kind) = match owner {
                            cluster::Owner::This => (
                                urls_for(listener, &config.listeners, own),
                                LookupType::Connect,
                            ),
                            cluster::Owner::Other(b) => (
                                urls_for(
                                    listener,
                                    &b.advertised_listeners,
                                    (Some(b.broker_url.clone()), b.broker_url_tls.clone()),
                                ),
                                LookupType::Redirect,
                            ),
                        };
                        match urls {
                            None => unknown_listener(listener.unwrap_or_default()),
                            Some((url, url_tls)) => pb::CommandLookupTopicResponse {
                                broker_service_url: url,
                                broker_service_url_tls: url_tls,
                                response: Some(kind as i32),
                                request_id: c.request_id,
                                // The answer comes from the broker deciding placement: the
                                // redirected broker takes the bundle instead of redirecting
                                // again.
                                authoritative: Some(true),
                                proxy_through_service_url: Some(false),
                                ..Default::default()
                            },
                        }
                    }
                    Err(e) => {
                        tracing::warn!(topic = %topic, error = %e, "lookup failed");
                        failed(pb::ServerError::ServiceNotReady, e.to_string())
                    }
                }
            }
        };
        self.send(BaseCommand {
            lookup_topic_response: Some(resp),
            ..commands::base(Type::LookupResponse)
        });
    }

    async fn producer(&mut self, c: pb::CommandProducer) -> Result<(), BrokerError> {
        let name = Self::topic_name(&c.topic)?;
        self.authorize(&name, TopicOperation::Produce).await?;
        let topic = self.svc.topic(&name).await?;
        if topic.ml.is_out_of_space() {
            // Clients fail what they hold on this answer, instead of resending it forever.
            return Err(BrokerError::ProducerBlocked(format!(
                "{name} takes no messages while its storage is full"
            )));
        }
        let producer_name = match c.producer_name.as_deref() {
            Some(n) if !n.is_empty() => {
                protocol::validate_producer(n)?;
                n.to_string()
            }
            _ => self.svc.generate_producer_name(),
        };
        // Over a backlog quota, producers are refused (or the slowest subscriptions evicted).
        // Unknown while the metadata store is unreachable: the periodic check catches up.
        match self.svc.store.backlog_rules(&name).await {
            Ok(rules) => topic.admit_producer_under_quota(&rules).await?,
            Err(e) => {
                tracing::warn!(topic = %name, error = %e, "backlog quotas unknown: producer admitted")
            }
        }
        let mode = crate::producers::AccessMode::from_wire(c.producer_access_mode);
        // The namespace's rules, as last read when the metadata store cannot be reached now (a
        // loaded topic keeps taking producers through an outage, as Pulsar's policy cache
        // lets it).
        let dedup = match self.svc.store.deduplication(&name).await {
            Ok(on) => {
                topic.remember_rules(|r| r.deduplication = Some(on));
                on
            }
            Err(BrokerError::Metadata(why)) => match topic.remembered_rules().deduplication {
                Some(on) => {
                    tracing::warn!(topic = %name, error = %why, "metadata store unreachable: deduplication as last read");
                    on
                }
                None => return Err(BrokerError::Metadata(why)),
            },
            Err(e) => return Err(e),
        };
        topic
            .set_deduplication(dedup, self.svc.store.as_ref())
            .await?;
        // The schema first (as Pulsar): a refused schema leaves no producer behind.
        let schema_version = match self
            .svc
            .store
            .producer_schema(&name, c.schema.as_ref())
            .await
        {
            Ok(v) => {
                if c.schema.is_none() {
                    topic.remember_rules(|r| r.schemaless_allowed = true);
                }
                v.map(schema_version_bytes)
            }
            Err(BrokerError::Metadata(why))
                if c.schema.is_none() && topic.remembered_rules().schemaless_allowed =>
            {
                tracing::warn!(topic = %name, error = %why, "metadata store unreachable: a producer without schema admitted as before");
                None
            }
            Err(e) => return Err(e),
        };
        let admitted = topic.add_producer(
            (self.id, c.producer_id),
            ProducerEntry {
                name: producer_name.clone(),
                mode,
                address: self.peer.to_string(),
                client_version: self.client_version.clone(),
                connected_since: std::time::SystemTime::now(),
                outbox: self.outbox.clone(),
            },
            crate::topic::ProducerRequest {
                request_id: c.request_id,
                epoch: c.topic_epoch,
                schema_version: schema_version.clone(),
            },
        )?;
        if let Some(sub) = c
            .initial_subscription_name
            .as_deref()
            .filter(|s| !s.is_empty())
        {
            protocol::validate_subscription(sub)?;
            topic
                .ml
                .open_cursor(sub, ledger::InitialPosition::Earliest)
                .await?;
        }
        // A reconnecting producer continues after its last durable sequence id.
        let last_sequence_id = if dedup {
            topic
                .dedup
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .last_sequence_id(&producer_name)
        } else {
            -1
        };
        self.producers.insert(c.producer_id, topic);
        // A queued producer hears now that it waits, and again (from the topic) when it is
        // given exclusive access.
        let (topic_epoch, ready) = match admitted {
            crate::topic::Admitted::Ready { epoch } => (epoch, true),
            crate::topic::Admitted::Queued => (None, false),
        };
        self.send(BaseCommand {
            producer_success: Some(pb::CommandProducerSuccess {
                request_id: c.request_id,
                last_sequence_id: Some(last_sequence_id),
                producer_name,
                schema_version,
                topic_epoch,
                producer_ready: Some(ready),
            }),
            ..commands::base(Type::ProducerSuccess)
        });
        Ok(())
    }

    async fn publish(
        &mut self,
        c: pb::CommandSend,
        payload: protocol::Payload,
    ) -> Result<(), Close> {
        let Some(topic) = self.producers.get(&c.producer_id).cloned() else {
            return Err(Close(format!(
                "SEND for unknown producer {}",
                c.producer_id
            )));
        };
        if !topic.producer_attached((self.id, c.producer_id)) {
            // Waiting for exclusive access, or fenced out by an ExclusiveWithFencing producer
            // (told so with CLOSE_PRODUCER): Pulsar ignores such a producer's SENDs too.
            tracing::debug!(topic = %topic.name, producer_id = c.producer_id, sequence_id = c.sequence_id, "SEND from a producer not attached dropped");
            return Ok(());
        }
        if topic.is_fenced() {
            // The topic is being deleted and this producer was told to close (CLOSE_PRODUCER):
            // the client resends what it holds once it has re-created the producer.
            tracing::debug!(topic = %topic.name, producer_id = c.producer_id, sequence_id = c.sequence_id, "SEND to a fenced topic dropped");
            return Ok(());
        }
        // An entry reaches every consumer unchanged: one a client cannot parse is never stored.
        let messages = match protocol::check_send(&c, &payload, self.svc.config.max_message_size) {
            Ok(n) => u64::from(n),
            Err(e) => {
                tracing::debug!(topic = %topic.name, producer_id = c.producer_id, sequence_id = c.sequence_id, error = %e, "SEND refused");
                // NotAllowedError: Pulsar's Java client fails that message and goes on.
                self.send(commands::send_error(
                    c.producer_id,
                    c.sequence_id,
                    ServerError::NotAllowedError,
                    format!("message refused: {e}"),
                ));
                return Ok(());
            }
        };
        let highest_sequence_id = c
            .highest_sequence_id
            .filter(|h| *h > 0)
            .unwrap_or(c.sequence_id);
        let dedup_producer = match self.dedup_verdict(&topic, &c, highest_sequence_id) {
            DedupOutcome::Off => None,
            DedupOutcome::New(name) => Some(name),
            DedupOutcome::Answered => return Ok(()),
        };
        let bytes = payload.entry.len() as u64;
        match topic.ml.append(payload.entry).await {
            Ok(receipt) => {
                let p = PendingSend {
                    messages,
                    bytes,
                    producer_id: c.producer_id,
                    sequence_id: c.sequence_id,
                    highest_sequence_id,
                    receipt,
                    topic,
                    dedup_producer,
                };
                // Waits when MAX_PENDING_SENDS are in flight: the socket is not read meanwhile.
                self.sends
                    .send(p)
                    .await
                    .map_err(|_| Close("receipt task ended".into()))
            }
            Err(e) => {
                log_append_failure(&topic.name, &e, "append rejected");
                self.send(commands::send_error(
                    c.producer_id,
                    c.sequence_id,
                    ServerError::PersistenceError,
                    format!("storing the message failed: {e}"),
                ));
                Ok(())
            }
        }
    }

    /// Deduplication's verdict on a SEND; a duplicate is acknowledged again (message id -1:-1,
    /// as Pulsar does) and a SEND whose first copy is still being written is refused.
    fn dedup_verdict(&self, topic: &Topic, c: &pb::CommandSend, highest: u64) -> DedupOutcome {
        let key = (self.id, c.producer_id);
        let mut d = topic.dedup.lock().unwrap_or_else(|e| e.into_inner());
        if !d.enabled {
            return DedupOutcome::Off;
        }
        let Some(name) = topic.producer_name(key) else {
            return DedupOutcome::Off;
        };
        match d.check(&name, c.sequence_id as i64, highest as i64) {
            crate::dedup::Verdict::New => DedupOutcome::New(name),
            crate::dedup::Verdict::Duplicate => {
                drop(d);
                tracing::debug!(topic = %topic.name, producer = %name, sequence_id = c.sequence_id, "duplicate SEND acknowledged, not stored");
                self.send(BaseCommand {
                    send_receipt: Some(pb::CommandSendReceipt {
                        producer_id: c.producer_id,
                        sequence_id: c.sequence_id,
                        message_id: Some(pb::MessageIdData {
                            ledger_id: u64::MAX,
                            entry_id: u64::MAX,
                            ..Default::default()
                        }),
                        highest_sequence_id: Some(highest),
                    }),
                    ..commands::base(Type::SendReceipt)
                });
                DedupOutcome::Answered
            }
            crate::dedup::Verdict::Unknown => {
                drop(d);
                self.send(commands::send_error(
                    c.producer_id,
                    c.sequence_id,
                    ServerError::PersistenceError,
                    "Cannot determine whether the message is a duplicate at this time",
                ));
                DedupOutcome::Answered
            }
        }
    }

    async fn subscribe(&mut self, c: pb::CommandSubscribe) -> Result<(), BrokerError> {
        let key = (self.id, c.consumer_id);
        if let Some(k) = self.consumers.get(&c.consumer_id)
            && k.sub.has_consumer(key)
        {
            return Ok(());
        }
        let name = Self::topic_name(&c.topic)?;
        protocol::validate_subscription(&c.subscription)?;
        self.authorize(
            &name,
            TopicOperation::Consume {
                subscription: Some(&c.subscription),
            },
        )
        .await?;
        let topic = self.svc.topic(&name).await?;
        let sub_type = SubType::from_wire(c.sub_type);
        let durable = c.durable.unwrap_or(true);
        let start = if durable {
            Start::Durable(initial_position(c.initial_position))
        } else {
            Start::NonDurable(c.start_message_id.as_ref().map(position))
        };
        if let Some(s) = &c.schema
            && s.r#type != pb::schema::Type::None as i32
        {
            let active =
                topic.attached_clients().await > 0 || topic.ml.last_confirmed().entry_id >= 0;
            self.svc.store.consumer_schema(&name, s, active).await?;
        }
        let sub = topic.subscription(&c.subscription, sub_type, start).await?;
        sub.add_consumer(
            ConsumerSpec {
                key,
                name: c.consumer_name.clone().unwrap_or_default(),
                priority: c.priority_level.unwrap_or(0),
                outbox: self.outbox.clone(),
                address: self.peer.to_string(),
                client_version: self.client_version.clone(),
                connected_since: std::time::SystemTime::now(),
            },
            sub_type,
        )?;
        self.consumers
            .insert(c.consumer_id, Consumer { topic, sub });
        Ok(())
    }

    fn ack(&self, c: pb::CommandAck) {
        let Some(k) = self.consumers.get(&c.consumer_id) else {
            return; // Pulsar ignores acks of unknown consumers
        };
        let cumulative = c.ack_type == pb::command_ack::AckType::Cumulative as i32;
        // An ack_set lists the messages of a batch entry still unacknowledged; an empty one
        // (or none) acknowledges the whole entry. Longer sets than any batch are ignored.
        let partly = |id: &pb::MessageIdData| {
            AckSet::from_words(&id.ack_set)
                .filter(|s| !s.is_empty())
                .map(|s| (position(id), s))
        };
        let mut result = Ok(());
        if cumulative {
            if let Some(id) = c.message_id.first()
                && id.ack_set.len() <= ledger::ack_set::MAX_WORDS
            {
                let p = position(id);
                result = match partly(id) {
                    // Up to the entry before, and the messages acknowledged of this one.
                    Some(rest) => k
                        .sub
                        .ack_cumulative(Position::new(p.ledger_id, p.entry_id - 1), Some(rest)),
                    None => k.sub.ack_cumulative(p, None),
                };
            }
        } else {
            let (mut whole, mut part) = (Vec::new(), Vec::new());
            for id in &c.message_id {
                if id.ack_set.len() > ledger::ack_set::MAX_WORDS {
                    continue;
                }
                match partly(id) {
                    Some(p) => part.push(p),
                    None => whole.push(position(id)),
                }
            }
            k.sub.ack_individual(whole, part);
        }
        if let Some(rid) = c.request_id {
            let (error, message) = match &result {
                Ok(()) => (None, None),
                Err(e) => (Some(e.server_error() as i32), Some(e.to_string())),
            };
            self.send(BaseCommand {
                ack_response: Some(pb::CommandAckResponse {
                    consumer_id: c.consumer_id,
                    request_id: Some(rid),
                    error,
                    message,
                    ..Default::default()
                }),
                ..commands::base(Type::AckResponse)
            });
        } else if let Err(e) = result {
            tracing::debug!(conn = self.id, error = %e, "ack rejected");
        }
    }

    async fn seek(&mut self, c: pb::CommandSeek) -> Result<(), BrokerError> {
        let k = self
            .consumers
            .get(&c.consumer_id)
            .ok_or(BrokerError::ConsumerNotFound)?;
        let (topic, sub) = (Arc::clone(&k.topic), Arc::clone(&k.sub));
        let ml = &topic.ml;
        let target = if let Some(id) = &c.message_id {
            read_position_for(ml, position(id))
        } else if let Some(ts) = c.message_publish_time {
            find_by_publish_time(ml, ts).await?
        } else {
            return Err(BrokerError::Metadata(
                "SEEK needs a message id or a publish time".into(),
            ));
        };
        let detached = sub.seek(target).await?;
        // The detached consumers re-subscribe; forget them on this connection.
        for (conn, cid) in detached {
            if conn == self.id {
                self.consumers.remove(&cid);
            }
        }
        Ok(())
    }

    async fn last_message_id(&self, c: pb::CommandGetLastMessageId) -> Result<(), BrokerError> {
        let k = self
            .consumers
            .get(&c.consumer_id)
            .ok_or(BrokerError::ConsumerNotFound)?;
        let ml = &k.topic.ml;
        let last = ml.last_confirmed();
        let partition = k.topic.partition;
        let mut id = if last.entry_id < 0 {
            commands::message_id(-1, -1, partition)
        } else {
            commands::message_id(last.ledger_id, last.entry_id, partition)
        };
        if last.entry_id >= 0
            && let Some(e) = ml.read(last, 1, usize::MAX).await?.pop()
            && let Ok((meta, _)) = protocol::parse_entry(&e.data)
            && let Some(n) = meta.num_messages_in_batch
        {
            id.batch_index = Some(n - 1);
        }
        let md = k.sub.mark_delete();
        self.send(BaseCommand {
            get_last_message_id_response: Some(pb::CommandGetLastMessageIdResponse {
                last_message_id: id,
                request_id: c.request_id,
                consumer_mark_delete_position: Some(commands::message_id(
                    md.ledger_id,
                    md.entry_id,
                    partition,
                )),
            }),
            ..commands::base(Type::GetLastMessageIdResponse)
        });
        Ok(())
    }

    async fn unsubscribe(&mut self, c: pb::CommandUnsubscribe) -> Result<(), BrokerError> {
        let k = self
            .consumers
            .get(&c.consumer_id)
            .ok_or(BrokerError::ConsumerNotFound)?;
        if k.sub.consumer_count() > 1 {
            return Err(BrokerError::ConsumerBusy(format!(
                "Subscription {} has other connected consumers",
                k.sub.name
            )));
        }
        let k = self
            .consumers
            .remove(&c.consumer_id)
            .ok_or(BrokerError::ConsumerNotFound)?;
        k.sub.remove_consumer((self.id, c.consumer_id));
        k.topic.remove_subscription(&k.sub.name).await;
        k.sub.delete().await
    }

    async fn close_consumer(&mut self, consumer_id: u64) {
        if let Some(k) = self.consumers.remove(&consumer_id) {
            k.detach((self.id, consumer_id)).await;
        }
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
                        get_schema_response: Some(pb::CommandGetSchemaResponse {
                            request_id: c.request_id,
                            error_code: Some(e.server_error() as i32),
                            error_message: Some(e.to_string()),
                            ..Default::default()
                        }),
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
            get_schema_response: Some(resp),
            ..commands::base(Type::GetSchemaResponse)
        });
    }

    /// Detaches everything this connection had attached.
    fn cleanup(&mut self) {
        for (pid, t) in self.producers.drain() {
            t.remove_producer((self.id, pid));
        }
        for (cid, k) in self.consumers.drain() {
            let key = (self.id, cid);
            tokio::spawn(async move { k.detach(key).await });
        }
    }
}

/// The first entry published at or after `ts` (ms), or the end of the topic.
async fn find_by_publish_time(
    ml: &ledger::ManagedLedger,
    ts: u64,
) -> Result<Position, BrokerError> {
    let mut from = ml.first_position();
    loop {
        let batch = ml.read(from, 1000, 64 << 20).await?;
        let Some(last) = batch.last().map(|e| e.position) else {
            return Ok(ml.position_after(ml.last_confirmed()));
        };
        for e in &batch {
            if let Ok((meta, _)) = protocol::parse_entry(&e.data)
                && meta.publish_time >= ts
            {
                return Ok(e.position);
            }
        }
        from = Position::new(last.ledger_id, last.entry_id + 1);
    }
}

/// The broker URLs (plain, TLS) a lookup hands out: those of the listener the client named
/// (`None` when the broker has no such listener), else `default`.
fn urls_for(
    listener: Option<&str>,
    listeners: &cluster::AdvertisedListeners,
    default: (Option<String>, Option<String>),
) -> Option<(Option<String>, Option<String>)> {
    match listener {
        None => Some(default),
        Some(name) => listeners
            .get(name)
            .map(|l| (l.broker_url.clone(), l.broker_url_tls.clone())),
    }
}

//! A connection's produce path: PRODUCER (backlog quota, deduplication, schema and access-mode
//! admission), SEND (deduplication verdict, append) and the task answering each SEND, in order,
//! once it is durable.

use super::*;

pub(super) struct PendingSend {
    producer_id: u64,
    /// The producer's counters, which the stored entry adds to.
    publisher: Arc<crate::producers::PublisherCounts>,
    sequence_id: u64,
    highest_sequence_id: u64,
    receipt: AppendReceipt,
    /// When the append started: the receipt's arrival gives the storage write latency.
    started: std::time::Instant,
    topic: Arc<Topic>,
    /// Messages in the entry (a batch counts its messages) and its size, for stats.
    messages: u64,
    bytes: u64,
    /// The producer's name when deduplication checked this SEND: its sequence ids become
    /// "persisted" with the receipt.
    dedup_producer: Option<String>,
}

pub(super) enum DedupOutcome {
    Off,
    New(String),
    Answered,
}

/// Awaits each append in SEND order and answers it.
pub(super) async fn send_receipts(
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
                p.topic.record_write_latency(p.started.elapsed());
                p.topic.count_in(Some(&p.publisher), p.messages, p.bytes);
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
                    send_receipt: Some(Box::new(pb::CommandSendReceipt {
                        producer_id: p.producer_id,
                        sequence_id: p.sequence_id,
                        message_id: Some(pb::MessageIdData {
                            ledger_id: pos.ledger_id as u64,
                            entry_id: pos.entry_id as u64,
                            ..Default::default()
                        }),
                        highest_sequence_id: Some(p.highest_sequence_id),
                    })),
                    ..commands::base(Type::SendReceipt)
                }
            }
            Err(e) => {
                log_append_failure(&p.topic.name, &e, "append failed");
                commands::send_error(
                    p.producer_id,
                    p.sequence_id,
                    append_error_code(&e),
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
pub(super) fn log_append_failure(topic: &protocol::TopicName, e: &ledger::LedgerError, what: &str) {
    if e.is_out_of_space() {
        tracing::debug!(%topic, error = %e, "{what}");
    } else {
        tracing::warn!(%topic, error = %e, "{what}");
    }
}

impl Conn {
    pub(super) async fn producer(&mut self, c: pb::CommandProducer) -> Result<(), BrokerError> {
        let name = Self::topic_name(&c.topic)?;
        self.authorize(&name, TopicOperation::Produce).await?;
        if name.domain() == protocol::Domain::NonPersistent {
            return self.np_producer(c, name);
        }
        let topic = self.svc.topic(&name).await?;
        if topic.ml.is_terminated() {
            return Err(BrokerError::TopicTerminated(name.to_string()));
        }
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
                counted: Default::default(),
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
            producer_success: Some(Box::new(pb::CommandProducerSuccess {
                request_id: c.request_id,
                last_sequence_id: Some(last_sequence_id),
                producer_name,
                schema_version,
                topic_epoch,
                producer_ready: Some(ready),
            })),
            ..commands::base(Type::ProducerSuccess)
        });
        Ok(())
    }

    pub(super) async fn publish(
        &mut self,
        c: pb::CommandSend,
        payload: protocol::Payload,
    ) -> Result<(), Close> {
        if let Some(t) = self.np_producers.get(&c.producer_id) {
            self.np_publish(t, &c, payload);
            return Ok(());
        }
        let Some(topic) = self.producers.get(&c.producer_id).cloned() else {
            return Err(Close(format!(
                "SEND for unknown producer {}",
                c.producer_id
            )));
        };
        let Some(publisher) = topic.attached_producer((self.id, c.producer_id)) else {
            // Waiting for exclusive access, or fenced out by an ExclusiveWithFencing producer
            // (told so with CLOSE_PRODUCER): Pulsar ignores such a producer's SENDs too.
            tracing::debug!(topic = %topic.name, producer_id = c.producer_id, sequence_id = c.sequence_id, "SEND from a producer not attached dropped");
            return Ok(());
        };
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
        let started = std::time::Instant::now();
        match topic.ml.append(payload.entry).await {
            Ok(receipt) => {
                let p = PendingSend {
                    messages,
                    bytes,
                    producer_id: c.producer_id,
                    publisher,
                    sequence_id: c.sequence_id,
                    highest_sequence_id,
                    receipt,
                    started,
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
                    append_error_code(&e),
                    format!("storing the message failed: {e}"),
                ));
                Ok(())
            }
        }
    }

    /// Deduplication's verdict on a SEND; a duplicate is acknowledged again (message id -1:-1,
    /// as Pulsar does) and a SEND whose first copy is still being written is refused.
    pub(super) fn dedup_verdict(
        &self,
        topic: &Topic,
        c: &pb::CommandSend,
        highest: u64,
    ) -> DedupOutcome {
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
                    send_receipt: Some(Box::new(pb::CommandSendReceipt {
                        producer_id: c.producer_id,
                        sequence_id: c.sequence_id,
                        message_id: Some(pb::MessageIdData {
                            ledger_id: u64::MAX,
                            entry_id: u64::MAX,
                            ..Default::default()
                        }),
                        highest_sequence_id: Some(highest),
                    })),
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
}

/// The SEND_ERROR code of a failed append: a terminated topic says so (the client stops
/// sending to it); anything else is a persistence error the client may retry.
fn append_error_code(e: &ledger::LedgerError) -> ServerError {
    match e {
        ledger::LedgerError::Terminated(_) => ServerError::TopicTerminatedError,
        _ => ServerError::PersistenceError,
    }
}

//! A connection's consume path: SUBSCRIBE, ACK (whole entries, batch indexes, cumulative), SEEK,
//! GET_LAST_MESSAGE_ID, UNSUBSCRIBE and CLOSE_CONSUMER.

use super::*;

pub(super) struct Consumer {
    pub(super) topic: Arc<Topic>,
    pub(super) sub: Arc<Subscription>,
}

impl Consumer {
    /// Detaches the consumer; a reader's subscription ends with its last consumer.
    pub(super) async fn detach(self, key: (u64, u64)) {
        let left = self.sub.remove_consumer(key);
        if left == 0 && !self.sub.is_durable() {
            self.topic.remove_subscription(&self.sub.name).await;
            self.sub.close().await;
        }
    }
}

pub(super) fn position(id: &pb::MessageIdData) -> Position {
    Position::new(id.ledger_id as i64, id.entry_id as i64)
}

impl Conn {
    pub(super) async fn subscribe(&mut self, c: pb::CommandSubscribe) -> Result<(), BrokerError> {
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
        if name.domain() == protocol::Domain::NonPersistent {
            return self.np_subscribe(&c, name);
        }
        let topic = self.svc.topic(&name).await?;
        let sub_type = SubType::from_wire(c.sub_type);
        let read_compacted = c.read_compacted.unwrap_or(false);
        if read_compacted && matches!(sub_type, SubType::Shared | SubType::KeyShared) {
            return Err(BrokerError::NotAllowed(
                "readCompacted is only allowed on Exclusive and Failover subscriptions".into(),
            ));
        }
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
                read_compacted,
            },
            sub_type,
        )?;
        self.consumers
            .insert(c.consumer_id, Consumer { topic, sub });
        Ok(())
    }

    pub(super) fn ack(&self, c: pb::CommandAck) {
        if self.np_consumers.contains_key(&c.consumer_id) {
            // Nothing is kept to acknowledge; a client waiting for the receipt gets it.
            if let Some(rid) = c.request_id {
                self.send(BaseCommand {
                    ack_response: Some(Box::new(pb::CommandAckResponse {
                        consumer_id: c.consumer_id,
                        request_id: Some(rid),
                        ..Default::default()
                    })),
                    ..commands::base(Type::AckResponse)
                });
            }
            return;
        }
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
                ack_response: Some(Box::new(pb::CommandAckResponse {
                    consumer_id: c.consumer_id,
                    request_id: Some(rid),
                    error,
                    message,
                    ..Default::default()
                })),
                ..commands::base(Type::AckResponse)
            });
        } else if let Err(e) = result {
            tracing::debug!(conn = self.id, error = %e, "ack rejected");
        }
    }

    pub(super) async fn seek(&mut self, c: pb::CommandSeek) -> Result<(), BrokerError> {
        let k = self
            .consumers
            .get(&c.consumer_id)
            .ok_or(BrokerError::ConsumerNotFound)?;
        let (topic, sub) = (Arc::clone(&k.topic), Arc::clone(&k.sub));
        let ml = &topic.ml;
        let target = if let Some(id) = &c.message_id {
            read_position_for(ml, position(id))
        } else if let Some(ts) = c.message_publish_time {
            crate::subscription::find_by_publish_time(ml, ts).await?
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

    pub(super) async fn last_message_id(
        &self,
        c: pb::CommandGetLastMessageId,
    ) -> Result<(), BrokerError> {
        let k = self
            .consumers
            .get(&c.consumer_id)
            .ok_or(BrokerError::ConsumerNotFound)?;
        let ml = &k.topic.ml;
        let live = ml.last_confirmed();
        let partition = k.topic.partition;
        // A read_compacted consumer whose view covers the whole log reads its last message
        // from the view (a batch there may hold fewer messages than in the log).
        let view = match k.sub.reads_compacted((self.id, c.consumer_id)) {
            true => k.topic.compacted_view().await?,
            false => None,
        };
        let (last, entry) = match view.filter(|v| live.entry_id < 0 || live <= v.horizon) {
            Some(v) => match v.last().await? {
                Some(e) => (e.position, Some(e)),
                None => (Position::new(-1, -1), None),
            },
            None if live.entry_id >= 0 => (live, ml.read(live, 1, usize::MAX).await?.pop()),
            None => (live, None),
        };
        let mut id = if last.entry_id < 0 {
            commands::message_id(-1, -1, partition)
        } else {
            commands::message_id(last.ledger_id, last.entry_id, partition)
        };
        if let Some(e) = entry
            && let Ok((meta, _)) = protocol::parse_entry(&e.data)
            && let Some(n) = meta.num_messages_in_batch
        {
            id.batch_index = Some(n - 1);
        }
        let md = k.sub.mark_delete();
        self.send(BaseCommand {
            get_last_message_id_response: Some(Box::new(pb::CommandGetLastMessageIdResponse {
                last_message_id: id,
                request_id: c.request_id,
                consumer_mark_delete_position: Some(commands::message_id(
                    md.ledger_id,
                    md.entry_id,
                    partition,
                )),
            })),
            ..commands::base(Type::GetLastMessageIdResponse)
        });
        Ok(())
    }

    pub(super) async fn unsubscribe(
        &mut self,
        c: pb::CommandUnsubscribe,
    ) -> Result<(), BrokerError> {
        if self.np_close_consumer(c.consumer_id) {
            return Ok(());
        }
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

    pub(super) async fn close_consumer(&mut self, consumer_id: u64) {
        if let Some(k) = self.consumers.remove(&consumer_id) {
            k.detach((self.id, consumer_id)).await;
        }
    }
}

//! A connection's producers and consumers of non-persistent topics (see
//! [`crate::non_persistent`]): attached like persistent ones, but a SEND is handed to the
//! consumers and acknowledged at once, and acks and redelivery requests change nothing.

use super::*;
use crate::non_persistent::{NonPersistentTopic, NpConsumer};

/// A consumer of a non-persistent subscription.
pub(super) struct NpAttached {
    pub(super) topic: Arc<NonPersistentTopic>,
    pub(super) subscription: String,
}

impl Conn {
    pub(super) fn np_producer(
        &mut self,
        c: pb::CommandProducer,
        name: TopicName,
    ) -> Result<(), BrokerError> {
        let topic = self.svc.np_topic(&name)?;
        let producer_name = match c.producer_name.as_deref() {
            Some(n) if !n.is_empty() => {
                protocol::validate_producer(n)?;
                n.to_string()
            }
            _ => self.svc.generate_producer_name(),
        };
        topic.add_producer((self.id, c.producer_id), &producer_name)?;
        self.np_producers.insert(c.producer_id, topic);
        self.send(BaseCommand {
            producer_success: Some(Box::new(pb::CommandProducerSuccess {
                request_id: c.request_id,
                last_sequence_id: Some(-1),
                producer_name,
                producer_ready: Some(true),
                ..Default::default()
            })),
            ..commands::base(Type::ProducerSuccess)
        });
        Ok(())
    }

    /// Hands the entry to the topic's consumers and acknowledges it (message id 0:0, as
    /// Pulsar answers non-persistent sends).
    pub(super) fn np_publish(
        &self,
        topic: &NonPersistentTopic,
        c: &pb::CommandSend,
        payload: protocol::Payload,
    ) {
        if let Err(e) = protocol::check_send(c, &payload, self.svc.config.max_message_size) {
            self.send(commands::send_error(
                c.producer_id,
                c.sequence_id,
                ServerError::NotAllowedError,
                format!("message refused: {e}"),
            ));
            return;
        }
        topic.publish(&payload.entry);
        self.send(BaseCommand {
            send_receipt: Some(Box::new(pb::CommandSendReceipt {
                producer_id: c.producer_id,
                sequence_id: c.sequence_id,
                message_id: Some(commands::message_id(0, 0, -1)),
                highest_sequence_id: c.highest_sequence_id,
            })),
            ..commands::base(Type::SendReceipt)
        });
    }

    pub(super) fn np_close_producer(&mut self, producer_id: u64) -> bool {
        let Some(t) = self.np_producers.remove(&producer_id) else {
            return false;
        };
        t.remove_producer((self.id, producer_id));
        self.svc.forget_np_topic_if_idle(&t.name);
        true
    }

    pub(super) fn np_subscribe(
        &mut self,
        c: &pb::CommandSubscribe,
        name: TopicName,
    ) -> Result<(), BrokerError> {
        if c.read_compacted == Some(true) {
            return Err(BrokerError::NotAllowed(
                "readCompacted only valid on persistent topics".into(),
            ));
        }
        let topic = self.svc.np_topic(&name)?;
        let added = topic.add_consumer(
            &c.subscription,
            SubType::from_wire(c.sub_type),
            NpConsumer {
                key: (self.id, c.consumer_id),
                name: c.consumer_name.clone().unwrap_or_default(),
                priority: c.priority_level.unwrap_or(0),
                outbox: self.outbox.clone(),
                permits: 0,
            },
        );
        if let Err(e) = added {
            self.svc.forget_np_topic_if_idle(&name);
            return Err(e);
        }
        self.np_consumers.insert(
            c.consumer_id,
            NpAttached {
                topic,
                subscription: c.subscription.clone(),
            },
        );
        Ok(())
    }

    /// Detaches a non-persistent consumer (close, unsubscribe); false if it is not one.
    pub(super) fn np_close_consumer(&mut self, consumer_id: u64) -> bool {
        let Some(k) = self.np_consumers.remove(&consumer_id) else {
            return false;
        };
        k.topic
            .remove_consumer(&k.subscription, (self.id, consumer_id));
        self.svc.forget_np_topic_if_idle(&k.topic.name);
        true
    }

    pub(super) fn np_cleanup(&mut self) {
        let producers: Vec<u64> = self.np_producers.keys().copied().collect();
        for p in producers {
            self.np_close_producer(p);
        }
        let consumers: Vec<u64> = self.np_consumers.keys().copied().collect();
        for c in consumers {
            self.np_close_consumer(c);
        }
    }
}

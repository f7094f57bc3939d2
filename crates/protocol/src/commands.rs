//! Constructors for the commands the broker sends, so every reply sets the fields clients check
//! for presence (proto2) the same way.

use crate::pb::base_command::Type;
use crate::pb::{self, BaseCommand, MessageIdData, ServerError};

/// `request_id` of commands the broker starts on its own (Pulsar writes -1).
pub const BROKER_REQUEST_ID: u64 = u64::MAX;

/// A command of `ty` with no sub-message set yet.
pub fn base(ty: Type) -> BaseCommand {
    BaseCommand {
        r#type: ty as i32,
        ..Default::default()
    }
}

pub fn message_id(ledger_id: i64, entry_id: i64, partition: i32) -> MessageIdData {
    MessageIdData {
        ledger_id: ledger_id as u64,
        entry_id: entry_id as u64,
        partition: Some(partition),
        ..Default::default()
    }
}

pub fn error(request_id: u64, error: ServerError, message: impl Into<String>) -> BaseCommand {
    BaseCommand {
        error: Some(Box::new(pb::CommandError {
            request_id,
            error: error as i32,
            message: message.into(),
        })),
        ..base(Type::Error)
    }
}

pub fn success(request_id: u64) -> BaseCommand {
    BaseCommand {
        success: Some(Box::new(pb::CommandSuccess {
            request_id,
            schema: None,
        })),
        ..base(Type::Success)
    }
}

pub fn ping() -> BaseCommand {
    BaseCommand {
        ping: Some(Box::new(pb::CommandPing {})),
        ..base(Type::Ping)
    }
}

pub fn pong() -> BaseCommand {
    BaseCommand {
        pong: Some(Box::new(pb::CommandPong {})),
        ..base(Type::Pong)
    }
}

pub fn close_consumer(consumer_id: u64) -> BaseCommand {
    BaseCommand {
        close_consumer: Some(Box::new(pb::CommandCloseConsumer {
            consumer_id,
            request_id: BROKER_REQUEST_ID,
        })),
        ..base(Type::CloseConsumer)
    }
}

pub fn close_producer(producer_id: u64) -> BaseCommand {
    BaseCommand {
        close_producer: Some(Box::new(pb::CommandCloseProducer {
            producer_id,
            request_id: BROKER_REQUEST_ID,
        })),
        ..base(Type::CloseProducer)
    }
}

pub fn send_error(
    producer_id: u64,
    sequence_id: u64,
    error: ServerError,
    message: impl Into<String>,
) -> BaseCommand {
    BaseCommand {
        send_error: Some(Box::new(pb::CommandSendError {
            producer_id,
            sequence_id,
            error: error as i32,
            message: message.into(),
        })),
        ..base(Type::SendError)
    }
}

/// The MESSAGE command in front of a dispatched entry.
/// MESSAGE for a consumer; `ack_set` (batch-index acknowledgement) lists the messages of a
/// batch entry still unacknowledged, empty for all of them.
pub fn message(
    consumer_id: u64,
    id: MessageIdData,
    redelivery_count: u32,
    ack_set: Vec<i64>,
) -> BaseCommand {
    BaseCommand {
        message: Some(Box::new(pb::CommandMessage {
            consumer_id,
            message_id: id,
            redelivery_count: (redelivery_count > 0).then_some(redelivery_count),
            ack_set,
            ..Default::default()
        })),
        ..base(Type::Message)
    }
}

//! pulsar-admin's commands on a topic's subscriptions and messages: `topics subscriptions`,
//! `create-subscription`, `unsubscribe`, `skip`, `clear-backlog`, `reset-cursor`,
//! `peek-messages`, `examine-message`, `get-message-by-id`, `last-message-id`, `terminate` —
//! their flags,
//! and their output (messages as pulsar-admin prints them: id, times, properties, hex dump).

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use clap::Subcommand;
use policy::types::{MessageIdJson, ResetCursorData};
use protocol::TopicName;
use serde_json::Value;

use super::client::{Client, RawMessage};
use super::units::parse_time_seconds;
use super::{path_segment, persistent_topic, print_json, print_list};
use crate::offload_cli::OutputFormat;

#[derive(Debug, Subcommand)]
pub enum TopicSubscriptions {
    /// The subscriptions of a topic.
    Subscriptions { topic: String },
    /// Create a subscription with no consumer, at a message id.
    CreateSubscription {
        topic: String,
        #[arg(long, short = 's')]
        subscription: String,
        /// latest, earliest, or ledgerId:entryId.
        #[arg(long = "messageId", short = 'm', default_value = "latest")]
        message_id: String,
        /// Accepted for pulsar-admin's sake; tierlog does not replicate.
        #[arg(long, short = 'r')]
        replicated: bool,
    },
    /// Delete a subscription (refused while consumers are attached, unless forced).
    Unsubscribe {
        topic: String,
        #[arg(long, short = 's')]
        subscription: String,
        /// Disconnect the consumers first.
        #[arg(long, short = 'f')]
        force: bool,
    },
    /// Acknowledge the next messages of a subscription without delivering them.
    Skip {
        topic: String,
        #[arg(long, short = 's')]
        subscription: String,
        #[arg(long, short = 'n')]
        count: u64,
    },
    /// Acknowledge every message of a subscription.
    ClearBacklog {
        topic: String,
        #[arg(long, short = 's')]
        subscription: String,
    },
    /// Move a subscription back or forward, to a time or a message id.
    ResetCursor {
        topic: String,
        #[arg(long, short = 's')]
        subscription: String,
        /// How far back: seconds, or 100m, 3h, 2d, 5w.
        #[arg(long, short = 't')]
        time: Option<String>,
        /// latest, earliest, or ledgerId:entryId.
        #[arg(long = "messageId", short = 'm')]
        message_id: Option<String>,
        /// Start after the message id rather than at it.
        #[arg(long = "exclude-reset-position", short = 'e')]
        exclude: bool,
    },
    /// Show the next messages of a subscription without acknowledging them.
    PeekMessages {
        topic: String,
        #[arg(long, short = 's')]
        subscription: String,
        #[arg(long, short = 'n', default_value_t = 1)]
        count: u64,
    },
    /// Show the message at a position counted from the earliest or the latest one.
    ExamineMessage {
        topic: String,
        /// latest or earliest.
        #[arg(long = "initialPosition", short = 'i', default_value = "latest")]
        initial_position: String,
        #[arg(long = "messagePosition", short = 'm', default_value_t = 1)]
        message_position: u64,
    },
    /// Show the message stored at a ledger id and entry id.
    GetMessageById {
        topic: String,
        #[arg(long = "ledgerId", short = 'l', allow_hyphen_values = true)]
        ledger_id: i64,
        #[arg(long = "entryId", short = 'e', allow_hyphen_values = true)]
        entry_id: i64,
    },
    /// The id of the topic's last message.
    LastMessageId { topic: String },
    /// Take no more messages on the topic, ever (consumers are told when they reach its end).
    Terminate { topic: String },
    /// The URL of the broker serving the topic.
    Lookup { topic: String },
}

/// pulsar-admin's message id argument: `latest`, `earliest`, `ledgerId:entryId[:partition]`.
fn message_id(s: &str) -> anyhow::Result<MessageIdJson> {
    match s {
        "latest" => return Ok(MessageIdJson::new(i64::MAX, i64::MAX)),
        "earliest" => return Ok(MessageIdJson::new(-1, -1)),
        _ => {}
    }
    let parts: Vec<&str> = s.split(':').collect();
    let num = |p: &str| -> anyhow::Result<i64> {
        p.trim().parse().with_context(|| {
            format!("Invalid message id {s:?}: latest, earliest or ledgerId:entryId")
        })
    };
    match parts.as_slice() {
        [l, e] => Ok(MessageIdJson::new(num(l)?, num(e)?)),
        [l, e, p] => Ok(MessageIdJson {
            partition_index: num(p)? as i32,
            ..MessageIdJson::new(num(l)?, num(e)?)
        }),
        _ => bail!("Invalid message id {s:?}: latest, earliest or ledgerId:entryId"),
    }
}

pub(super) async fn run(
    c: &Client,
    cmd: TopicSubscriptions,
    output: OutputFormat,
) -> anyhow::Result<()> {
    use reqwest::Method as M;
    let path = |topic: &str| -> anyhow::Result<(String, TopicName)> {
        let t = persistent_topic(topic)?;
        Ok((format!("/admin/v2/{}", t.rest_path()), t))
    };
    let sub_path = |topic: &str, sub: &str| -> anyhow::Result<String> {
        Ok(format!(
            "{}/subscription/{}",
            path(topic)?.0,
            path_segment(sub)
        ))
    };
    match cmd {
        TopicSubscriptions::Subscriptions { topic } => {
            let p = format!("{}/subscriptions", path(&topic)?.0);
            let names: Vec<String> = c.get(&p).await?.unwrap_or_default();
            print_list(&names, output)?;
        }
        TopicSubscriptions::CreateSubscription {
            topic,
            subscription,
            message_id: id,
            replicated: _,
        } => {
            let body = message_id(&id)?;
            c.call(M::PUT, &sub_path(&topic, &subscription)?, Some(&body))
                .await?;
        }
        TopicSubscriptions::Unsubscribe {
            topic,
            subscription,
            force,
        } => {
            let p = format!("{}?force={force}", sub_path(&topic, &subscription)?);
            c.send(M::DELETE, &p).await?;
        }
        TopicSubscriptions::Skip {
            topic,
            subscription,
            count,
        } => {
            let p = format!("{}/skip/{count}", sub_path(&topic, &subscription)?);
            c.send(M::POST, &p).await?;
        }
        TopicSubscriptions::ClearBacklog {
            topic,
            subscription,
        } => {
            let p = format!("{}/skip_all", sub_path(&topic, &subscription)?);
            c.send(M::POST, &p).await?;
        }
        TopicSubscriptions::ResetCursor {
            topic,
            subscription,
            time,
            message_id: id,
            exclude,
        } => {
            let base = sub_path(&topic, &subscription)?;
            if let Some(id) = id.filter(|s| !s.trim().is_empty()) {
                let body = ResetCursorData {
                    id: message_id(&id)?,
                    is_excluded: exclude,
                };
                c.call(M::POST, &format!("{base}/resetcursor"), Some(&body))
                    .await?;
            } else if let Some(t) = time {
                let back_ms = parse_time_seconds(&t)?.saturating_mul(1000);
                let now_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)?
                    .as_millis() as i64;
                let ts = now_ms.saturating_sub(back_ms).max(0);
                c.send(M::POST, &format!("{base}/resetcursor/{ts}")).await?;
            } else {
                bail!(
                    "Either Timestamp (--time) or messageId (--messageId) has to be provided to reset cursor"
                );
            }
        }
        TopicSubscriptions::PeekMessages {
            topic,
            subscription,
            count,
        } => {
            let base = sub_path(&topic, &subscription)?;
            let mut printed = 0u64;
            let mut n = 1u64;
            while printed < count {
                let Some(m) = c.get_message(&format!("{base}/position/{n}")).await? else {
                    if n == 1 {
                        // Nothing to peek, or no such subscription: say which.
                        let p = format!("{}/subscriptions", path(&topic)?.0);
                        let subs: Vec<String> = c.get(&p).await?.unwrap_or_default();
                        if !subs.contains(&subscription) {
                            bail!("Subscription not found\n\nReason: HTTP 404");
                        }
                    }
                    break;
                };
                for msg in messages(&m)?.into_iter().take((count - printed) as usize) {
                    if printed > 0 {
                        println!(
                            "-------------------------------------------------------------------------\n"
                        );
                    }
                    print_message(&msg, false);
                    printed += 1;
                }
                n += 1;
            }
        }
        TopicSubscriptions::ExamineMessage {
            topic,
            initial_position,
            message_position,
        } => {
            let p = format!(
                "{}/examinemessage?initialPosition={initial_position}&messagePosition={message_position}",
                path(&topic)?.0
            );
            let Some(m) = c.get_message(&p).await? else {
                bail!(
                    "Message not found: the topic has fewer than {message_position} messages\n\nReason: HTTP 404"
                );
            };
            if let Some(msg) = messages(&m)?.first() {
                print_message(msg, false);
            }
        }
        TopicSubscriptions::GetMessageById {
            topic,
            ledger_id,
            entry_id,
        } => {
            let p = format!("{}/ledger/{ledger_id}/entry/{entry_id}", path(&topic)?.0);
            match c.get_message(&p).await? {
                None => println!(
                    "Cannot find any messages based on ledgerId:{ledger_id} entryId:{entry_id}"
                ),
                Some(m) => {
                    if let Some(msg) = messages(&m)?.first() {
                        print_message(msg, true);
                    }
                }
            }
        }
        TopicSubscriptions::Terminate { topic } => {
            let p = format!("{}/terminate", path(&topic)?.0);
            let id: MessageIdJson = serde_json::from_str(&c.send(M::POST, &p).await?)
                .context("unexpected answer to terminate")?;
            // MessageIdImpl's text: ledger:entry:partition.
            println!(
                "Topic successfully terminated at {}:{}:{}",
                id.ledger_id, id.entry_id, id.partition_index
            );
        }
        TopicSubscriptions::Lookup { topic } => {
            let t = persistent_topic(&topic)?;
            let p = format!("/lookup/v2/topic/{}", t.rest_path());
            let data: Value = c.get(&p).await?.unwrap_or_default();
            // As pulsar-admin: the TLS URL when the admin service is reached over TLS.
            let key = if c.base.starts_with("https://") {
                "brokerUrlTls"
            } else {
                "brokerUrl"
            };
            println!("{}", data[key].as_str().unwrap_or_default());
        }
        TopicSubscriptions::LastMessageId { topic } => {
            let p = format!("{}/lastMessageId", path(&topic)?.0);
            let id: Option<MessageIdJson> = c.get(&p).await?;
            print_json(&id)?;
        }
    }
    Ok(())
}

/// One message of a [`RawMessage`] (a batch entry holds several).
struct Message {
    id: String,
    publish_time: i64,
    event_time: i64,
    deliver_at_time: i64,
    properties: BTreeMap<String, String>,
    data: Vec<u8>,
}

/// Milliseconds since the epoch of a time header (`2024-01-01T00:00:00.123Z`); 0 when absent.
fn time_ms(m: &RawMessage, name: &str) -> i64 {
    header(m, name)
        .and_then(|v| humantime::parse_rfc3339_weak(v).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as i64)
}

fn header<'a>(m: &'a RawMessage, name: &str) -> Option<&'a str> {
    m.headers.get(name).and_then(|v| v.to_str().ok())
}

/// The messages of an admin API answer: its batch split as pulsar-admin does.
fn messages(m: &RawMessage) -> anyhow::Result<Vec<Message>> {
    let id = header(m, "X-Pulsar-Message-ID").unwrap_or("?").to_string();
    let mut properties: BTreeMap<String, String> = header(m, "X-Pulsar-PROPERTY")
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_default();
    let base = |properties: BTreeMap<String, String>, id: String, data: Vec<u8>| Message {
        id,
        publish_time: time_ms(m, "X-Pulsar-publish-time"),
        event_time: time_ms(m, "X-Pulsar-event-time"),
        deliver_at_time: time_ms(m, "X-Pulsar-deliver-at-time"),
        properties,
        data,
    };
    let encrypted = header(m, "X-Pulsar-Is-Encrypted") == Some("true");
    let batch = header(m, "X-Pulsar-num-batch-message").and_then(|n| n.parse::<usize>().ok());
    let compressed = header(m, "X-Pulsar-compression").is_some();
    match batch {
        Some(count) if !encrypted && !compressed => {
            let records = protocol::entry::split_batch(&m.body, count)
                .context("the broker sent a malformed batch")?;
            Ok(records
                .into_iter()
                .enumerate()
                .map(|(i, r)| {
                    for kv in &r.meta.properties {
                        properties.insert(kv.key.clone(), kv.value.clone());
                    }
                    base(
                        properties.clone(),
                        format!("{id}:{i}"),
                        m.body[r.payload].to_vec(),
                    )
                })
                .collect())
        }
        _ => Ok(vec![base(properties, id, m.body.to_vec())]),
    }
}

/// A message as pulsar-admin prints it.
fn print_message(m: &Message, redelivery_count: bool) {
    if m.id.matches(':').count() >= 2 {
        println!("Batch Message ID: {}", m.id);
    } else {
        println!("Message ID: {}", m.id);
    }
    println!("Publish time: {}", m.publish_time);
    println!("Event time: {}", m.event_time);
    if redelivery_count {
        println!("Redelivery count: 0");
    }
    if m.deliver_at_time != 0 {
        println!("Deliver at time: {}", m.deliver_at_time);
    }
    if !m.properties.is_empty() {
        println!("Properties:");
        let _ = print_json(&m.properties);
    }
    println!("{}", pretty_hex_dump(&m.data));
}

/// The hex dump pulsar-admin prints (Netty's `ByteBufUtil.prettyHexDump` layout): 16 bytes a
/// row, offset, hex, and the printable characters.
fn pretty_hex_dump(data: &[u8]) -> String {
    if data.is_empty() {
        return String::new();
    }
    let rule = "+--------+-------------------------------------------------+----------------+";
    let mut out = String::new();
    out.push_str("         +-------------------------------------------------+\n");
    out.push_str("         |  0  1  2  3  4  5  6  7  8  9  a  b  c  d  e  f |\n");
    out.push_str(rule);
    for (row, chunk) in data.chunks(16).enumerate() {
        out.push_str(&format!("\n|{:08x}|", row * 16));
        for b in chunk {
            out.push_str(&format!(" {b:02x}"));
        }
        out.push_str(&"   ".repeat(16 - chunk.len()));
        out.push_str(" |");
        for b in chunk {
            out.push(if (0x20..0x7f).contains(b) {
                *b as char
            } else {
                '.'
            });
        }
        out.push_str(&" ".repeat(16 - chunk.len()));
        out.push('|');
    }
    out.push('\n');
    out.push_str(rule);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hex_dump_has_netty_s_layout() {
        let dump = pretty_hex_dump(b"hello world, tierlog!\x01");
        let lines: Vec<&str> = dump.lines().collect();
        assert_eq!(lines.len(), 6, "{dump}");
        assert_eq!(
            lines[3],
            "|00000000| 68 65 6c 6c 6f 20 77 6f 72 6c 64 2c 20 74 69 65 |hello world, tie|"
        );
        assert_eq!(
            lines[4],
            "|00000010| 72 6c 6f 67 21 01                               |rlog!.          |"
        );
        assert_eq!(pretty_hex_dump(b""), "");
    }

    #[test]
    fn message_ids_as_pulsar_admin_takes_them() {
        assert_eq!(
            message_id("latest").unwrap(),
            MessageIdJson::new(i64::MAX, i64::MAX)
        );
        assert_eq!(message_id("earliest").unwrap(), MessageIdJson::new(-1, -1));
        assert_eq!(message_id("12:3").unwrap(), MessageIdJson::new(12, 3));
        assert_eq!(message_id("12:3:1").unwrap().partition_index, 1);
        assert!(message_id("12").is_err());
        assert!(message_id("a:b").is_err());
    }
}

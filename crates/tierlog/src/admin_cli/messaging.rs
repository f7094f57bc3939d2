//! pulsar-admin's commands on how a namespace's and a topic's messages are kept:
//! `namespaces set|get|remove-message-ttl`, `set|get|remove-compaction-threshold`,
//! `set-backlog-quota|get-backlog-quotas|remove-backlog-quota`, `topics set|get|remove-message-ttl`,
//! `topics expire-messages[-all-subscriptions]`, `topics compact|compaction-status`,
//! `topics set|get|remove-deduplication`, `topics set-backlog-quota|get-backlog-quotas|
//! remove-backlog-quota`, `topics set|get|remove-compaction-threshold`.

use clap::Subcommand;
use protocol::NamespaceName;
use serde_json::{Value, json};

use super::client::Client;
use super::units::{parse_size, parse_time_seconds};
use super::{persistent_topic, print_json};

#[derive(Debug, Subcommand)]
pub enum NamespaceMessaging {
    /// Messages older than this are acknowledged for every subscription (0: no TTL).
    SetMessageTtl {
        namespace: String,
        /// Seconds, or with a unit: 100m, 3h, 2d, 5w.
        #[arg(long = "messageTTL")]
        message_ttl: String,
    },
    /// The namespace's message TTL in seconds (null: the broker's ttlDurationDefaultInSeconds).
    GetMessageTtl {
        namespace: String,
    },
    RemoveMessageTtl {
        namespace: String,
    },
    /// Limit the backlog of the namespace's topics by size or by the age of its oldest message.
    SetBacklogQuota {
        namespace: String,
        /// Size limit (destination_storage): 4096, 10M, 16G; -1 for none.
        #[arg(long, short = 'l', allow_hyphen_values = true)]
        limit: Option<String>,
        /// Age limit (message_age): 30s, 10m, 1h; -1 for none.
        #[arg(long = "limitTime", allow_hyphen_values = true)]
        limit_time: Option<String>,
        /// producer_request_hold, producer_exception or consumer_backlog_eviction.
        #[arg(long, short = 'p')]
        policy: String,
        /// destination_storage (default) or message_age.
        #[arg(long = "type", short = 't', default_value = "destination_storage")]
        kind: String,
    },
    /// Compact the namespace's topics once this much is written since their last compaction
    /// (4096, 10M, 16G; 0: never).
    SetCompactionThreshold {
        namespace: String,
        #[arg(long, short = 't')]
        threshold: String,
    },
    /// The namespace's compaction threshold in bytes (null: the broker's
    /// brokerServiceCompactionThresholdInBytes).
    GetCompactionThreshold {
        namespace: String,
    },
    RemoveCompactionThreshold {
        namespace: String,
    },
    /// The namespace's backlog quotas by type.
    GetBacklogQuotas {
        namespace: String,
    },
    RemoveBacklogQuota {
        namespace: String,
        #[arg(long = "type", short = 't', default_value = "destination_storage")]
        kind: String,
    },
}

/// Prints a setting as the server has it (`null` when unset).
async fn show(c: &Client, path: &str) -> anyhow::Result<()> {
    let v: Option<Value> = c.get(path).await?;
    print_json(&v.unwrap_or_default())
}

/// pulsar-admin's backlog quota body from `--limit`, `--limitTime` and `--policy`.
fn quota_body(
    limit: Option<&str>,
    limit_time: Option<&str>,
    policy: &str,
) -> anyhow::Result<Value> {
    let limit_size = limit.map(parse_size).transpose()?.unwrap_or(-1);
    let limit_time = limit_time
        .map(parse_time_seconds)
        .transpose()?
        .unwrap_or(-1);
    Ok(json!({
        "limit": limit_size,
        "limitSize": limit_size,
        "limitTime": limit_time,
        "policy": policy,
    }))
}

#[derive(Debug, Subcommand)]
pub enum TopicMessaging {
    /// The topic's own compaction threshold, over its namespace's (4096, 10M, 16G; 0: never).
    SetCompactionThreshold {
        topic: String,
        #[arg(long, short = 't')]
        threshold: String,
    },
    /// The topic's own compaction threshold in bytes (null: its namespace's applies).
    GetCompactionThreshold {
        topic: String,
    },
    RemoveCompactionThreshold {
        topic: String,
    },
    /// The topic's own backlog quota of a type, over its namespace's.
    SetBacklogQuota {
        topic: String,
        #[arg(long, short = 'l', allow_hyphen_values = true)]
        limit: Option<String>,
        #[arg(long = "limitTime", allow_hyphen_values = true)]
        limit_time: Option<String>,
        #[arg(long, short = 'p')]
        policy: String,
        #[arg(long = "type", short = 't', default_value = "destination_storage")]
        kind: String,
    },
    /// The topic's own backlog quotas by type.
    GetBacklogQuotas {
        topic: String,
    },
    RemoveBacklogQuota {
        topic: String,
        #[arg(long = "type", short = 't', default_value = "destination_storage")]
        kind: String,
    },
    /// The topic's own message TTL, over its namespace's (0: no TTL for this topic).
    SetMessageTtl {
        topic: String,
        /// Seconds, or with a unit: 100m, 3h, 2d, 5w.
        #[arg(long = "ttl", short = 't')]
        ttl: String,
    },
    /// The topic's own deduplication setting, over its namespace's.
    SetDeduplication {
        topic: String,
        #[arg(long, short = 'e', conflicts_with = "disable")]
        enable: bool,
        #[arg(long, short = 'd')]
        disable: bool,
    },
    /// The topic's own deduplication setting (null: its namespace's applies).
    GetDeduplication {
        topic: String,
    },
    RemoveDeduplication {
        topic: String,
    },
    /// The topic's own message TTL in seconds (null: its namespace's applies).
    GetMessageTtl {
        topic: String,
    },
    RemoveMessageTtl {
        topic: String,
    },
    /// Acknowledge, for one subscription, the messages published more than the given time ago.
    ExpireMessages {
        topic: String,
        #[arg(long, short = 's')]
        subscription: String,
        /// Seconds, or with a unit: 10m, 1h.
        #[arg(long = "expireTime", short = 't')]
        expire_time: String,
    },
    /// Compact the topic: the latest message per key, for read_compacted consumers.
    Compact {
        topic: String,
    },
    /// How the topic's last compaction went (`-w`: wait while it runs).
    CompactionStatus {
        topic: String,
        #[arg(long = "wait-complete", short = 'w')]
        wait: bool,
    },
    /// As expire-messages, for every subscription of the topic.
    ExpireMessagesAllSubscriptions {
        topic: String,
        #[arg(long = "expireTime", short = 't')]
        expire_time: String,
    },
}

pub(super) async fn namespaces(c: &Client, cmd: NamespaceMessaging) -> anyhow::Result<()> {
    use reqwest::Method as M;
    let base = |ns: &str| -> anyhow::Result<String> {
        Ok(format!(
            "/admin/v2/namespaces/{}",
            NamespaceName::parse(ns)?
        ))
    };
    match cmd {
        NamespaceMessaging::SetMessageTtl {
            namespace,
            message_ttl,
        } => {
            let secs = parse_time_seconds(&message_ttl)?;
            let p = format!("{}/messageTTL", base(&namespace)?);
            c.call(M::POST, &p, Some(&secs)).await?;
        }
        NamespaceMessaging::GetMessageTtl { namespace } => {
            show(c, &format!("{}/messageTTL", base(&namespace)?)).await?
        }
        NamespaceMessaging::RemoveMessageTtl { namespace } => {
            c.send(M::DELETE, &format!("{}/messageTTL", base(&namespace)?))
                .await?;
        }
        NamespaceMessaging::SetBacklogQuota {
            namespace,
            limit,
            limit_time,
            policy,
            kind,
        } => {
            let body = quota_body(limit.as_deref(), limit_time.as_deref(), &policy)?;
            let p = format!("{}/backlogQuota?backlogQuotaType={kind}", base(&namespace)?);
            c.call(M::POST, &p, Some(&body)).await?;
        }
        NamespaceMessaging::SetCompactionThreshold {
            namespace,
            threshold,
        } => {
            let bytes = parse_size(&threshold)?;
            let p = format!("{}/compactionThreshold", base(&namespace)?);
            c.call(M::PUT, &p, Some(&bytes)).await?;
        }
        NamespaceMessaging::GetCompactionThreshold { namespace } => {
            show(c, &format!("{}/compactionThreshold", base(&namespace)?)).await?
        }
        NamespaceMessaging::RemoveCompactionThreshold { namespace } => {
            c.send(
                M::DELETE,
                &format!("{}/compactionThreshold", base(&namespace)?),
            )
            .await?;
        }
        NamespaceMessaging::GetBacklogQuotas { namespace } => {
            show(c, &format!("{}/backlogQuotaMap", base(&namespace)?)).await?
        }
        NamespaceMessaging::RemoveBacklogQuota { namespace, kind } => {
            let p = format!("{}/backlogQuota?backlogQuotaType={kind}", base(&namespace)?);
            c.send(M::DELETE, &p).await?;
        }
    }
    Ok(())
}

pub(super) async fn topics(c: &Client, cmd: TopicMessaging) -> anyhow::Result<()> {
    use reqwest::Method as M;
    let path = |topic: &str| -> anyhow::Result<String> {
        Ok(format!(
            "/admin/v2/{}",
            persistent_topic(topic)?.rest_path()
        ))
    };
    match cmd {
        TopicMessaging::SetBacklogQuota {
            topic,
            limit,
            limit_time,
            policy,
            kind,
        } => {
            let body = quota_body(limit.as_deref(), limit_time.as_deref(), &policy)?;
            let p = format!("{}/backlogQuota?backlogQuotaType={kind}", path(&topic)?);
            c.call(M::POST, &p, Some(&body)).await?;
        }
        TopicMessaging::SetCompactionThreshold { topic, threshold } => {
            let bytes = parse_size(&threshold)?;
            let p = format!("{}/compactionThreshold", path(&topic)?);
            c.call(M::POST, &p, Some(&bytes)).await?;
        }
        TopicMessaging::GetCompactionThreshold { topic } => {
            show(c, &format!("{}/compactionThreshold", path(&topic)?)).await?
        }
        TopicMessaging::RemoveCompactionThreshold { topic } => {
            c.send(M::DELETE, &format!("{}/compactionThreshold", path(&topic)?))
                .await?;
        }
        TopicMessaging::GetBacklogQuotas { topic } => {
            show(c, &format!("{}/backlogQuotaMap", path(&topic)?)).await?
        }
        TopicMessaging::RemoveBacklogQuota { topic, kind } => {
            let p = format!("{}/backlogQuota?backlogQuotaType={kind}", path(&topic)?);
            c.send(M::DELETE, &p).await?;
        }
        TopicMessaging::SetMessageTtl { topic, ttl } => {
            let secs = parse_time_seconds(&ttl)?;
            let p = format!("{}/messageTTL?messageTTL={secs}", path(&topic)?);
            c.send(M::POST, &p).await?;
        }
        TopicMessaging::SetDeduplication {
            topic,
            enable,
            disable,
        } => {
            let on = super::on_off(enable, disable)?;
            let p = format!("{}/deduplicationEnabled", path(&topic)?);
            c.call(M::POST, &p, Some(&on)).await?;
        }
        TopicMessaging::GetDeduplication { topic } => {
            show(c, &format!("{}/deduplicationEnabled", path(&topic)?)).await?
        }
        TopicMessaging::RemoveDeduplication { topic } => {
            c.send(
                M::DELETE,
                &format!("{}/deduplicationEnabled", path(&topic)?),
            )
            .await?;
        }
        TopicMessaging::GetMessageTtl { topic } => {
            show(c, &format!("{}/messageTTL", path(&topic)?)).await?
        }
        TopicMessaging::RemoveMessageTtl { topic } => {
            c.send(M::DELETE, &format!("{}/messageTTL", path(&topic)?))
                .await?;
        }
        TopicMessaging::ExpireMessages {
            topic,
            subscription,
            expire_time,
        } => {
            let secs = parse_time_seconds(&expire_time)?;
            let sub = percent_encoding::utf8_percent_encode(
                &subscription,
                percent_encoding::NON_ALPHANUMERIC,
            );
            let p = format!("{}/subscription/{sub}/expireMessages/{secs}", path(&topic)?);
            c.send(M::POST, &p).await?;
        }
        TopicMessaging::Compact { topic } => {
            c.send(M::PUT, &format!("{}/compaction", path(&topic)?))
                .await?;
            println!(
                "Topic compaction requested for {}",
                persistent_topic(&topic)?
            );
        }
        TopicMessaging::CompactionStatus { topic, wait } => {
            let status = loop {
                let s: Value = c
                    .get(&format!("{}/compaction", path(&topic)?))
                    .await?
                    .unwrap_or_default();
                if !(wait && s["status"] == "RUNNING") {
                    break s;
                }
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            };
            match status["status"].as_str().unwrap_or_default() {
                "SUCCESS" => println!("Compaction was a success"),
                "RUNNING" => println!("Compaction is currently running"),
                "ERROR" => {
                    println!("Error in compaction");
                    anyhow::bail!(
                        "Error compacting: {}",
                        status["lastError"].as_str().unwrap_or_default()
                    );
                }
                _ => println!("Compaction has not been run for {topic} since broker startup"),
            }
        }
        TopicMessaging::ExpireMessagesAllSubscriptions { topic, expire_time } => {
            let secs = parse_time_seconds(&expire_time)?;
            let p = format!("{}/all_subscription/expireMessages/{secs}", path(&topic)?);
            c.send(M::POST, &p).await?;
        }
    }
    Ok(())
}

//! `tierlog admin`: pulsar-admin's commands, arguments and output, over the admin REST API.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use policy::OffloadPolicies;
use policy::types::{
    LedgerInfoJson, MessageIdJson, OffloadProcessStatus, PersistentTopicInternalStats,
    ProcessStatus, RetentionPolicies,
};
use protocol::{NamespaceName, TopicName};
use serde::Serialize;
use serde_json::Value;

use crate::offload_cli::OutputFormat;

mod client;
mod cluster;
mod messaging;
mod namespaces;
mod schemas;
mod subscriptions;
mod units;
use client::Client;
use units::{parse_size, parse_time_seconds, retention};

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// Admin service URL of the broker (default: client.conf's webServiceUrl, else
    /// http://localhost:8080).
    #[arg(long, global = true)]
    pub admin_url: Option<String>,
    #[command(flatten)]
    pub client: crate::client_conf::ClientArgs,
    /// Output format where a command prints data.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub output: OutputFormat,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    #[command(subcommand)]
    Clusters(cluster::Clusters),
    #[command(subcommand)]
    Brokers(cluster::Brokers),
    #[command(subcommand)]
    Tenants(cluster::Tenants),
    #[command(subcommand)]
    Namespaces(namespaces::Namespaces),
    #[command(subcommand)]
    Topics(Topics),
    #[command(subcommand)]
    Schemas(schemas::Schemas),
}

/// pulsar-admin's `set-offload-policies` options (multi-letter short forms such as `-mbs` are
/// rewritten to their long forms by [`expand_short_flags`]).
#[derive(Debug, clap::Args)]
pub struct OffloadPolicyArgs {
    #[arg(long, short = 'd')]
    driver: String,
    #[arg(long, short = 'r')]
    region: Option<String>,
    #[arg(long, short = 'b')]
    bucket: Option<String>,
    #[arg(long, short = 'e')]
    endpoint: Option<String>,
    #[arg(long = "s3-role")]
    role: Option<String>,
    #[arg(long = "s3-role-session-name")]
    role_session_name: Option<String>,
    #[arg(long = "maxBlockSize")]
    max_block_size: Option<String>,
    #[arg(long = "readBufferSize")]
    read_buffer_size: Option<String>,
    #[arg(long = "offloadAfterThreshold", allow_hyphen_values = true)]
    threshold: Option<String>,
    #[arg(long = "offloadAfterThresholdInSeconds", allow_hyphen_values = true)]
    threshold_seconds: Option<String>,
    #[arg(long = "offloadAfterElapsed", allow_hyphen_values = true)]
    deletion_lag: Option<String>,
    #[arg(long = "offloadedReadPriority")]
    read_priority: Option<String>,
    /// tierlog's: bytes per second the offloads of the namespace's (topic's) topics may upload
    /// together, on top of the broker's limit (size units allowed: 50M; <= 0: none).
    #[arg(long = "offloadFlowPermitsPerSecond", allow_hyphen_values = true)]
    flow_permits: Option<String>,
    /// tierlog's: the same for cold reads from the tier.
    #[arg(long = "offloadReadFlowPermitsPerSecond", allow_hyphen_values = true)]
    read_flow_permits: Option<String>,
}

impl OffloadPolicyArgs {
    /// The policies, with pulsar-admin's client-side checks; like pulsar-admin, the location
    /// goes into the generic fields and into the driver's own (`s3…`/`gcs…`) fields.
    fn policies(&self) -> anyhow::Result<OffloadPolicies> {
        let driver = self.driver.to_ascii_lowercase();
        if ![
            "s3",
            "aws-s3",
            "google-cloud-storage",
            "filesystem",
            "azureblob",
            "aliyun-oss",
        ]
        .contains(&driver.as_str())
        {
            bail!(
                "The driver {} is not supported, you can use one of S3, aws-s3, google-cloud-storage, filesystem, azureblob, aliyun-oss",
                self.driver
            );
        }
        let s3 = driver == "s3" || driver == "aws-s3";
        let gcs = driver == "google-cloud-storage";
        if s3 && self.region.is_none() && self.endpoint.is_none() {
            bail!(
                "Either s3ManagedLedgerOffloadRegion or s3ManagedLedgerOffloadServiceEndpoint must be set if s3 offload enabled"
            );
        }
        let size = |v: &Option<String>| -> anyhow::Result<Option<u64>> {
            v.as_deref()
                .map(|v| {
                    u64::try_from(parse_size(v)?)
                        .map_err(|_| anyhow::anyhow!("Invalid size '{v}': must not be negative"))
                })
                .transpose()
        };
        let (max_block, read_buffer) = (size(&self.max_block_size)?, size(&self.read_buffer_size)?);
        if let Some(v) = &self.read_priority
            && v != "tiered-storage-first"
            && v != "bookkeeper-first"
        {
            bail!("--offloadedReadPriority must be tiered-storage-first or bookkeeper-first");
        }
        let only = |on: bool, v: &Option<String>| if on { v.clone() } else { None };
        let only_size = |on: bool, v: Option<u64>| if on { v } else { None };
        Ok(OffloadPolicies {
            managed_ledger_offload_driver: Some(self.driver.clone()),
            managed_ledger_offload_region: self.region.clone(),
            managed_ledger_offload_bucket: self.bucket.clone(),
            managed_ledger_offload_service_endpoint: self.endpoint.clone(),
            managed_ledger_offload_max_block_size_in_bytes: max_block,
            managed_ledger_offload_read_buffer_size_in_bytes: read_buffer,
            s3_managed_ledger_offload_region: only(s3, &self.region),
            s3_managed_ledger_offload_bucket: only(s3, &self.bucket),
            s3_managed_ledger_offload_service_endpoint: only(s3, &self.endpoint),
            s3_managed_ledger_offload_max_block_size_in_bytes: only_size(s3, max_block),
            s3_managed_ledger_offload_read_buffer_size_in_bytes: only_size(s3, read_buffer),
            s3_managed_ledger_offload_role: only(s3, &self.role),
            s3_managed_ledger_offload_role_session_name: only(s3, &self.role_session_name),
            gcs_managed_ledger_offload_region: only(gcs, &self.region),
            gcs_managed_ledger_offload_bucket: only(gcs, &self.bucket),
            gcs_managed_ledger_offload_max_block_size_in_bytes: only_size(gcs, max_block),
            gcs_managed_ledger_offload_read_buffer_size_in_bytes: only_size(gcs, read_buffer),
            managed_ledger_offload_threshold_in_bytes: self
                .threshold
                .as_deref()
                .map(parse_size)
                .transpose()?,
            managed_ledger_offload_threshold_in_seconds: self
                .threshold_seconds
                .as_deref()
                .map(parse_time_seconds)
                .transpose()?,
            managed_ledger_offload_deletion_lag_in_millis: self
                .deletion_lag
                .as_deref()
                .map(|v| parse_time_seconds(v).map(|s| if s < 0 { s } else { s * 1000 }))
                .transpose()?,
            managed_ledger_offloaded_read_priority: self.read_priority.clone(),
            managed_ledger_offload_flow_permits_per_second: self
                .flow_permits
                .as_deref()
                .map(parse_size)
                .transpose()?,
            managed_ledger_offload_read_flow_permits_per_second: self
                .read_flow_permits
                .as_deref()
                .map(parse_size)
                .transpose()?,
            ..OffloadPolicies::default()
        })
    }
}

/// Rewrites pulsar-admin's multi-letter short options (`-mbs 64M`) to their long forms.
pub fn expand_short_flags(args: impl Iterator<Item = String>) -> Vec<String> {
    const MAP: [(&str, &str); 8] = [
        ("-ro", "--s3-role"),
        ("-rsn", "--s3-role-session-name"),
        ("-mbs", "--maxBlockSize"),
        ("-rbs", "--readBufferSize"),
        ("-oat", "--offloadAfterThreshold"),
        ("-oats", "--offloadAfterThresholdInSeconds"),
        ("-oae", "--offloadAfterElapsed"),
        ("-orp", "--offloadedReadPriority"),
    ];
    args.map(|a| {
        MAP.iter()
            .find(|(short, _)| *short == a)
            .map(|(_, long)| long.to_string())
            .unwrap_or(a)
    })
    .collect()
}

#[derive(Debug, Subcommand)]
pub enum Topics {
    /// List the topics of a namespace.
    List {
        namespace: String,
    },
    #[command(flatten)]
    Messaging(messaging::TopicMessaging),
    #[command(flatten)]
    Subscriptions(subscriptions::TopicSubscriptions),
    /// The roles granted actions on the topic (namespace-wide grants included).
    Permissions {
        topic: String,
    },
    /// Grant a role actions on the topic.
    GrantPermission {
        topic: String,
        #[arg(long)]
        role: String,
        /// produce, consume, functions, sources, sinks, packages (comma-separated).
        #[arg(long, value_delimiter = ',', required = true)]
        actions: Vec<String>,
    },
    /// Revoke a role's grant on the topic.
    RevokePermission {
        topic: String,
        #[arg(long)]
        role: String,
    },
    /// Unload a topic: its broker closes it and its clients, who reconnect.
    Unload {
        topic: String,
    },
    Create {
        topic: String,
    },
    /// Delete a topic; refused while clients are attached unless --force closes them.
    Delete {
        topic: String,
        #[arg(long, short = 'f')]
        force: bool,
    },
    /// Create a partitioned topic with --partitions N.
    CreatePartitionedTopic {
        #[arg(long, short = 'p')]
        partitions: u32,
        topic: String,
    },
    /// Topic-level offload policies (win over the namespace's, field by field).
    SetOffloadPolicies {
        #[command(flatten)]
        policy: Box<OffloadPolicyArgs>,
        topic: String,
    },
    GetOffloadPolicies {
        topic: String,
    },
    RemoveOffloadPolicies {
        topic: String,
    },
    /// Topic-level retention: --size and --time as for namespaces.
    SetRetention {
        topic: String,
        #[arg(long, short = 's', allow_hyphen_values = true)]
        size: String,
        #[arg(long, short = 't', allow_hyphen_values = true)]
        time: String,
    },
    GetRetention {
        topic: String,
    },
    RemoveRetention {
        topic: String,
    },
    /// Partition count of a partitioned topic ({"partitions": N}).
    GetPartitionedTopicMetadata {
        topic: String,
    },
    /// Raise a partitioned topic's partition count.
    UpdatePartitionedTopic {
        topic: String,
        #[arg(long, short = 'p')]
        partitions: u32,
    },
    /// The partitions' stats summed (and each partition's with --per-partition).
    PartitionedStats {
        topic: String,
        #[arg(long = "per-partition")]
        per_partition: bool,
    },
    /// Delete a partitioned topic and its partitions.
    DeletePartitionedTopic {
        topic: String,
        #[arg(long, short = 'f')]
        force: bool,
    },
    /// List the partitioned topics of a namespace.
    #[command(name = "list-partitioned-topics")]
    ListPartitioned {
        namespace: String,
    },
    Stats {
        topic: String,
    },
    StatsInternal {
        topic: String,
    },
    /// Offload everything but the newest --size-threshold bytes.
    Offload {
        #[arg(long, short = 's', allow_hyphen_values = true)]
        size_threshold: String,
        topic: String,
    },
    /// Status of the last offload; -w waits while it runs.
    OffloadStatus {
        #[arg(long = "wait-complete", short = 'w')]
        wait: bool,
        topic: String,
    },
}

/// A persistent topic name as pulsar-admin takes it (`t`, `tenant/ns/t` or the full name).
fn persistent_topic(topic: &str) -> anyhow::Result<TopicName> {
    let t = TopicName::parse(topic)?;
    if !t.is_persistent() {
        bail!("Unsupported topic domain of '{topic}' (only persistent topics)");
    }
    Ok(t)
}

/// pulsar-admin's `--size-threshold` rule: the first ledger at which the newest ledgers' sizes
/// (the current ledger counted at its live size) exceed the threshold gives the message id.
pub fn offload_message_id(
    ledgers: &[LedgerInfoJson],
    current_ledger_size: i64,
    threshold: i64,
) -> anyhow::Result<Option<MessageIdJson>> {
    if ledgers.is_empty() {
        bail!("Topic doesn't have any data");
    }
    let sizes: Vec<(i64, i64)> = ledgers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let size = if i + 1 == ledgers.len() {
                current_ledger_size
            } else {
                l.size
            };
            (l.ledger_id, size)
        })
        .collect();
    let mut total = 0i64;
    let mut prev = sizes.last().map(|s| s.0).unwrap_or(-1);
    for &(id, size) in sizes.iter().rev() {
        total += size;
        if total > threshold {
            return Ok(Some(MessageIdJson::new(prev, 0)));
        }
        prev = id;
    }
    Ok(None)
}

/// A role as one URL path segment.
fn path_segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// `--actions` as Pulsar's `AuthAction`s (an unknown one is named).
fn auth_actions(names: &[String]) -> anyhow::Result<Vec<security::AuthAction>> {
    names
        .iter()
        .map(|n| {
            security::AuthAction::parse(n).with_context(|| {
                format!(
                    "unknown action {n:?} (produce, consume, functions, sources, sinks, packages)"
                )
            })
        })
        .collect()
}

/// pulsar-admin's `--enable` / `--disable` pair: exactly one.
fn on_off(enable: bool, disable: bool) -> anyhow::Result<bool> {
    match (enable, disable) {
        (true, false) => Ok(true),
        (false, true) => Ok(false),
        _ => bail!("give --enable or --disable"),
    }
}

fn print_json<T: Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn print_list(names: &[String], output: OutputFormat) -> anyhow::Result<()> {
    match output {
        OutputFormat::Json => println!("{}", serde_json::to_string(names)?),
        OutputFormat::Text => {
            for n in names {
                println!("{n}");
            }
        }
    }
    Ok(())
}

pub async fn run(args: AdminArgs) -> anyhow::Result<()> {
    let settings = crate::client_conf::ClientSettings::resolve(&args.client)?;
    let http = settings.http_client(Duration::from_secs(60))?;
    let base = args
        .admin_url
        .clone()
        .or(settings.web_service_url)
        .unwrap_or_else(|| "http://localhost:8080".into());
    let c = Client { http, base };
    match args.command {
        AdminCommand::Clusters(cmd) => cluster::clusters(&c, cmd, args.output).await?,
        AdminCommand::Brokers(cmd) => cluster::brokers(&c, cmd, args.output).await?,
        AdminCommand::Tenants(cmd) => cluster::tenants(&c, cmd, args.output).await?,
        AdminCommand::Namespaces(n) => namespaces::run(&c, n, args.output).await?,
        AdminCommand::Topics(t) => topics(&c, t, args.output).await?,
        AdminCommand::Schemas(s) => schemas::run(&c, s).await?,
    }
    Ok(())
}

async fn topics(c: &Client, cmd: Topics, output: OutputFormat) -> anyhow::Result<()> {
    use reqwest::Method as M;
    let path = |topic: &str| -> anyhow::Result<(String, TopicName)> {
        let t = persistent_topic(topic)?;
        Ok((format!("/admin/v2/{}", t.rest_path()), t))
    };
    let names = |ns: &str| -> anyhow::Result<String> {
        Ok(format!(
            "/admin/v2/persistent/{}",
            NamespaceName::parse(ns)?
        ))
    };
    match cmd {
        Topics::Messaging(cmd) => messaging::topics(c, cmd).await?,
        Topics::Subscriptions(cmd) => subscriptions::run(c, cmd, output).await?,
        Topics::List { namespace } => {
            let topics: Vec<String> = c.get(&names(&namespace)?).await?.unwrap_or_default();
            print_list(&topics, output)?;
        }
        Topics::ListPartitioned { namespace } => {
            let topics: Vec<String> = c
                .get(&format!("{}/partitioned", names(&namespace)?))
                .await?
                .unwrap_or_default();
            print_list(&topics, output)?;
        }
        Topics::Create { topic } => {
            c.send(M::PUT, &path(&topic)?.0).await?;
        }
        Topics::Unload { topic } => {
            c.send(M::PUT, &format!("{}/unload", path(&topic)?.0))
                .await?;
        }
        Topics::Delete { topic, force } => {
            c.send(M::DELETE, &format!("{}?force={force}", path(&topic)?.0))
                .await?;
        }
        Topics::SetOffloadPolicies { policy, topic } => {
            let p = format!("{}/offloadPolicies", path(&topic)?.0);
            c.call(M::POST, &p, Some(&policy.policies()?)).await?;
        }
        Topics::GetOffloadPolicies { topic } => {
            let p: Option<OffloadPolicies> = c
                .get(&format!("{}/offloadPolicies", path(&topic)?.0))
                .await?;
            print_json(&p.unwrap_or_default())?
        }
        Topics::RemoveOffloadPolicies { topic } => {
            c.send(M::DELETE, &format!("{}/offloadPolicies", path(&topic)?.0))
                .await?;
        }
        Topics::SetRetention { topic, size, time } => {
            let p = format!("{}/retention", path(&topic)?.0);
            c.call(M::POST, &p, Some(&retention(&size, &time)?)).await?;
        }
        Topics::Permissions { topic } => {
            let p: Option<Value> = c.get(&format!("{}/permissions", path(&topic)?.0)).await?;
            print_json(&p.unwrap_or_default())?
        }
        Topics::GrantPermission {
            topic,
            role,
            actions,
        } => {
            let p = format!("{}/permissions/{}", path(&topic)?.0, path_segment(&role));
            c.call(M::POST, &p, Some(&auth_actions(&actions)?)).await?;
        }
        Topics::RevokePermission { topic, role } => {
            let p = format!("{}/permissions/{}", path(&topic)?.0, path_segment(&role));
            c.send(M::DELETE, &p).await?;
        }
        Topics::GetRetention { topic } => {
            let r: Option<RetentionPolicies> =
                c.get(&format!("{}/retention", path(&topic)?.0)).await?;
            print_json(&r)?
        }
        Topics::RemoveRetention { topic } => {
            c.send(M::DELETE, &format!("{}/retention", path(&topic)?.0))
                .await?;
        }
        Topics::CreatePartitionedTopic { partitions, topic } => {
            let p = format!("{}/partitions", path(&topic)?.0);
            c.call(M::PUT, &p, Some(&partitions)).await?;
        }
        Topics::GetPartitionedTopicMetadata { topic } => {
            let m: Option<policy::types::PartitionedTopicMetadata> =
                c.get(&format!("{}/partitions", path(&topic)?.0)).await?;
            print_json(&m)?
        }
        Topics::UpdatePartitionedTopic { topic, partitions } => {
            c.call(
                M::POST,
                &format!("{}/partitions", path(&topic)?.0),
                Some(&partitions),
            )
            .await?;
        }
        Topics::PartitionedStats {
            topic,
            per_partition,
        } => {
            let p = format!(
                "{}/partitioned-stats?perPartition={per_partition}",
                path(&topic)?.0
            );
            let stats: Option<Value> = c.get(&p).await?;
            print_json(&stats.unwrap_or_default())?
        }
        Topics::DeletePartitionedTopic { topic, force } => {
            let p = format!("{}/partitions?force={force}", path(&topic)?.0);
            c.send(M::DELETE, &p).await?;
        }
        Topics::Stats { topic } => {
            let v: Option<Value> = c.get(&format!("{}/stats", path(&topic)?.0)).await?;
            print_json(&v)?
        }
        Topics::StatsInternal { topic } => {
            let v: Option<Value> = c.get(&format!("{}/internalStats", path(&topic)?.0)).await?;
            print_json(&v)?
        }
        Topics::Offload {
            size_threshold,
            topic,
        } => {
            let threshold = parse_size(&size_threshold)?;
            let (p, full) = path(&topic)?;
            let stats: PersistentTopicInternalStats = c
                .get(&format!("{p}/internalStats?metadata=false"))
                .await?
                .context("no internal stats")?;
            match offload_message_id(&stats.ledgers, stats.current_ledger_size, threshold)? {
                None => println!("Nothing to offload"),
                Some(id) => {
                    c.call(M::PUT, &format!("{p}/offload"), Some(&id)).await?;
                    println!(
                        "Offload triggered for {full} for messages before {}:{}:-1",
                        id.ledger_id, id.entry_id
                    );
                }
            }
        }
        Topics::OffloadStatus { wait, topic } => {
            let (p, full) = path(&topic)?;
            let spinner = (wait && std::io::stderr().is_terminal()).then(|| {
                let s = indicatif::ProgressBar::new_spinner();
                s.set_message("offload running");
                s.enable_steady_tick(Duration::from_millis(120));
                s
            });
            let status = loop {
                let s: OffloadProcessStatus = c
                    .get(&format!("{p}/offload"))
                    .await?
                    .context("no offload status")?;
                if !(wait && s.status == ProcessStatus::Running) {
                    break s;
                }
                if let Some(spinner) = &spinner {
                    spinner.set_message(format!("offload running{}", running_detail(&s)));
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            };
            if let Some(s) = spinner {
                s.finish_and_clear();
            }
            if output == OutputFormat::Json {
                print_json(&status)?;
                if status.status == ProcessStatus::Error {
                    bail!("Error offloading: {}", status.last_error);
                }
                return Ok(());
            }
            match status.status {
                ProcessStatus::NotRun => {
                    println!("Offload has not been run for {full} since broker startup")
                }
                ProcessStatus::Running => {
                    println!("Offload is currently running{}", running_detail(&status))
                }
                ProcessStatus::Success => println!("Offload was a success"),
                ProcessStatus::Error => {
                    println!("Error in offload");
                    bail!("Error offloading: {}", status.last_error);
                }
            }
        }
    }
    Ok(())
}

/// How far a running offload has got, for a human: ` (2 of 5 ledgers offloaded, …)`.
fn running_detail(s: &OffloadProcessStatus) -> String {
    let Some(p) = &s.progress else {
        return String::new();
    };
    let total = p.ledgers_offloaded + p.ledgers_failed + p.ledgers_remaining;
    let mut out = format!(" ({} of {total} ledgers offloaded", p.ledgers_offloaded);
    if p.ledgers_failed > 0 {
        out += &format!(", {} failed", p.ledgers_failed);
    }
    if let Some(l) = p.current_ledger {
        out += &format!(", uploading ledger {l}");
    }
    if !s.last_error.is_empty() {
        out += &format!("; last error: {}", s.last_error);
    }
    out + ")"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_expand_and_only_persistent_ones_are_taken() {
        let path = |t: &str| persistent_topic(t).unwrap().rest_path();
        assert_eq!(path("test-topic"), "persistent/public/default/test-topic");
        assert_eq!(path("t/ns/x"), "persistent/t/ns/x");
        assert_eq!(path("persistent://t/ns/a b"), "persistent/t/ns/a%20b");
        assert!(persistent_topic("persistent://t/ns/a/b").is_err());
        assert!(persistent_topic("a/b").is_err());
        assert!(persistent_topic("non-persistent://t/ns/x").is_err());
    }

    #[test]
    fn size_threshold_rule() {
        let ledgers = |sizes: &[i64]| -> Vec<LedgerInfoJson> {
            sizes
                .iter()
                .enumerate()
                .map(|(i, s)| LedgerInfoJson {
                    ledger_id: 10 + i as i64,
                    entries: 1,
                    size: *s,
                    offloaded: false,
                    metadata: None,
                    under_replicated: false,
                    offload_read_error: None,
                })
                .collect()
        };
        let at = |l: i64| Some(MessageIdJson::new(l, 0));
        // Ledgers 10, 11, 12 (10 MiB each) + current 13 with 1 MiB; keep 10 MiB:
        // 1 (13) -> 11 (12) > 10 -> offload before 13.
        let m = 1 << 20;
        let three = ledgers(&[10 * m, 10 * m, 10 * m, 0]);
        assert_eq!(offload_message_id(&three, m, 10 * m).unwrap(), at(13));
        // Keep 25 MiB: 1, 11, 21, 31 > 25 at ledger 10 -> before 11.
        assert_eq!(offload_message_id(&three, m, 25 * m).unwrap(), at(11));
        assert_eq!(
            offload_message_id(&ledgers(&[10 * m, 0]), 0, 100 * m).unwrap(),
            None
        );
        // The current ledger alone over the threshold: offload everything closed.
        assert_eq!(
            offload_message_id(&ledgers(&[5, 0]), 50 * m, m).unwrap(),
            at(11)
        );
        assert!(offload_message_id(&[], 0, 0).is_err());
    }
}

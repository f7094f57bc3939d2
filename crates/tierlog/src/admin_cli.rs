//! `tierlog admin`: pulsar-admin's commands, arguments and output, over the admin REST API.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::offload_dump::OutputFormat;

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// Admin service URL of the broker.
    #[arg(long, global = true, default_value = "http://localhost:8080")]
    pub admin_url: String,
    /// Output format where a command prints data.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub output: OutputFormat,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    #[command(subcommand)]
    Tenants(Tenants),
    #[command(subcommand)]
    Namespaces(Namespaces),
    #[command(subcommand)]
    Topics(Topics),
}

#[derive(Debug, Subcommand)]
pub enum Tenants {
    /// List the tenants.
    List,
    /// Create a tenant.
    Create {
        tenant: String,
        /// Comma-separated clusters the tenant may use.
        #[arg(long, short = 'c', default_value = "standalone")]
        allowed_clusters: String,
    },
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
}

impl OffloadPolicyArgs {
    /// The OffloadPolicies JSON body, with pulsar-admin's client-side checks.
    fn body(&self) -> anyhow::Result<serde_json::Value> {
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
        if s3 && self.region.is_none() && self.endpoint.is_none() {
            bail!(
                "Either s3ManagedLedgerOffloadRegion or s3ManagedLedgerOffloadServiceEndpoint must be set if s3 offload enabled"
            );
        }
        let prefix = if driver == "google-cloud-storage" {
            "gcs"
        } else {
            "s3"
        };
        let mut b = serde_json::Map::new();
        b.insert("managedLedgerOffloadDriver".into(), json!(self.driver));
        let mut put = |k: String, v: serde_json::Value| {
            b.insert(k, v);
        };
        if let Some(v) = &self.region {
            put(format!("{prefix}ManagedLedgerOffloadRegion"), json!(v));
            put("managedLedgerOffloadRegion".into(), json!(v));
        }
        if let Some(v) = &self.bucket {
            put(format!("{prefix}ManagedLedgerOffloadBucket"), json!(v));
            put("managedLedgerOffloadBucket".into(), json!(v));
        }
        if let Some(v) = &self.endpoint {
            put("s3ManagedLedgerOffloadServiceEndpoint".into(), json!(v));
            put("managedLedgerOffloadServiceEndpoint".into(), json!(v));
        }
        if let Some(v) = &self.role {
            put("s3ManagedLedgerOffloadRole".into(), json!(v));
        }
        if let Some(v) = &self.role_session_name {
            put("s3ManagedLedgerOffloadRoleSessionName".into(), json!(v));
        }
        if let Some(v) = &self.max_block_size {
            put(
                "s3ManagedLedgerOffloadMaxBlockSizeInBytes".into(),
                json!(parse_size(v)?),
            );
        }
        if let Some(v) = &self.read_buffer_size {
            put(
                "s3ManagedLedgerOffloadReadBufferSizeInBytes".into(),
                json!(parse_size(v)?),
            );
        }
        if let Some(v) = &self.threshold {
            put(
                "managedLedgerOffloadThresholdInBytes".into(),
                json!(parse_size(v)?),
            );
        }
        if let Some(v) = &self.threshold_seconds {
            put(
                "managedLedgerOffloadThresholdInSeconds".into(),
                json!(parse_time_seconds(v)?),
            );
        }
        if let Some(v) = &self.deletion_lag {
            let secs = parse_time_seconds(v)?;
            put(
                "managedLedgerOffloadDeletionLagInMillis".into(),
                json!(if secs < 0 { secs } else { secs * 1000 }),
            );
        }
        if let Some(v) = &self.read_priority {
            if v != "tiered-storage-first" && v != "bookkeeper-first" {
                bail!("--offloadedReadPriority must be tiered-storage-first or bookkeeper-first");
            }
            put("managedLedgerOffloadedReadPriority".into(), json!(v));
        }
        Ok(serde_json::Value::Object(b))
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
pub enum Namespaces {
    /// List the namespaces of a tenant.
    List {
        tenant: String,
    },
    /// Create a namespace (tenant/namespace).
    Create {
        namespace: String,
    },
    /// Set retention: --size (e.g. 10G, -1) and --time (e.g. 3d, -1).
    SetRetention {
        namespace: String,
        #[arg(long, short = 's', allow_hyphen_values = true)]
        size: String,
        #[arg(long, short = 't', allow_hyphen_values = true)]
        time: String,
    },
    GetRetention {
        namespace: String,
    },
    /// Keep at most --size bytes in the hot tier (0 = offload as soon as possible, -1 = unset).
    SetOffloadThreshold {
        namespace: String,
        #[arg(long, short = 's', allow_hyphen_values = true)]
        size: String,
    },
    GetOffloadThreshold {
        namespace: String,
    },
    /// Delete hot copies --lag (e.g. 1h) after a ledger is offloaded.
    SetOffloadDeletionLag {
        namespace: String,
        #[arg(long, short = 'l', allow_hyphen_values = true)]
        lag: String,
    },
    GetOffloadDeletionLag {
        namespace: String,
    },
    ClearOffloadDeletionLag {
        namespace: String,
    },
    /// Set the namespace's offload policies (driver, location, thresholds, lag, read priority).
    SetOffloadPolicies {
        #[command(flatten)]
        policy: Box<OffloadPolicyArgs>,
        namespace: String,
    },
    GetOffloadPolicies {
        namespace: String,
    },
    RemoveOffloadPolicies {
        namespace: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum Topics {
    /// List the topics of a namespace.
    List {
        namespace: String,
    },
    Create {
        topic: String,
    },
    Delete {
        topic: String,
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
    /// Delete a partitioned topic and its partitions.
    DeletePartitionedTopic {
        topic: String,
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

/// `POST …/retention` body from pulsar-admin's --size and --time (only a literal -1 stays -1).
fn retention_body(size: &str, time: &str) -> anyhow::Result<serde_json::Value> {
    let bytes = parse_size(size)?;
    let secs = parse_time_seconds(time)?;
    let minutes = if secs == -1 { -1 } else { secs / 60 };
    let mb = if bytes == -1 { -1 } else { bytes / (1 << 20) };
    Ok(json!({"retentionTimeInMinutes": minutes, "retentionSizeInMB": mb}))
}

/// pulsar-admin's size syntax: an integer, optionally followed by k/m/g/t (binary units).
pub fn parse_size(s: &str) -> anyhow::Result<i64> {
    let bad =
        || anyhow::anyhow!("Invalid size '{s}'. Valid formats are: (4096, 100K, 10M, 16G, 2T)");
    let (num, mult) = match s.chars().last() {
        Some(c @ ('k' | 'K' | 'm' | 'M' | 'g' | 'G' | 't' | 'T')) => {
            let shift = match c.to_ascii_lowercase() {
                'k' => 10,
                'm' => 20,
                'g' => 30,
                _ => 40,
            };
            (&s[..s.len() - 1], 1i64 << shift)
        }
        _ => (s, 1),
    };
    num.parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(bad)
}

/// pulsar-admin's relative time syntax, in seconds: `30`, `30s`, `10m`, `1h`, `3d`, `2w`, `1y`.
pub fn parse_time_seconds(s: &str) -> anyhow::Result<i64> {
    if s.is_empty() {
        bail!("Time cannot be empty");
    }
    let last = s.chars().last().unwrap_or('0');
    if !last.is_ascii_alphabetic() {
        return s.parse().map_err(|_| anyhow::anyhow!("Invalid time '{s}'"));
    }
    let n: i64 = s[..s.len() - 1]
        .parse()
        .map_err(|_| anyhow::anyhow!("Invalid time '{s}'"))?;
    let unit = match last.to_ascii_lowercase() {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        'y' => 365 * 86_400,
        c => bail!("Invalid time unit '{c}'"),
    };
    Ok(n * unit)
}

/// Expands a topic name as Pulsar does: `t` → `persistent://public/default/t`,
/// `tenant/ns/t` → `persistent://tenant/ns/t`. Returns (tenant, namespace, local name).
pub fn topic_parts(topic: &str) -> anyhow::Result<(String, String, String)> {
    let rest = match topic.split_once("://") {
        Some(("persistent", rest)) => rest.to_string(),
        Some((domain, _)) => bail!("Unsupported topic domain {domain:?} (only persistent topics)"),
        None => match topic.split('/').count() {
            1 => format!("public/default/{topic}"),
            3 => topic.to_string(),
            _ => bail!(
                "Invalid short topic name '{topic}', it should be in the format of <tenant>/<namespace>/<topic> or <topic>"
            ),
        },
    };
    let mut it = rest.splitn(3, '/');
    match (it.next(), it.next(), it.next()) {
        (Some(t), Some(ns), Some(local))
            if !t.is_empty() && !ns.is_empty() && !local.is_empty() =>
        {
            Ok((t.into(), ns.into(), local.into()))
        }
        _ => bail!("Invalid topic name '{topic}'"),
    }
}

fn namespace_parts(ns: &str) -> anyhow::Result<(String, String)> {
    match ns.split_once('/') {
        Some((t, n)) if !t.is_empty() && !n.is_empty() && !n.contains('/') => {
            Ok((t.into(), n.into()))
        }
        _ => bail!("Invalid namespace name '{ns}', it should be <tenant>/<namespace>"),
    }
}

/// pulsar-admin's `--size-threshold` rule: the first ledger at which the newest ledgers' sizes
/// (the current ledger counted at its live size) exceed the threshold gives the message id.
pub fn offload_message_id(stats: &Value, threshold: i64) -> anyhow::Result<Option<(i64, i64)>> {
    let ledgers = stats["ledgers"]
        .as_array()
        .context("internal stats without ledgers")?;
    if ledgers.is_empty() {
        bail!("Topic doesn't have any data");
    }
    let sizes: Vec<(i64, i64)> = ledgers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let size = if i + 1 == ledgers.len() {
                stats["currentLedgerSize"].as_i64()
            } else {
                l["size"].as_i64()
            };
            (l["ledgerId"].as_i64().unwrap_or(-1), size.unwrap_or(0))
        })
        .collect();
    let mut total = 0i64;
    let mut prev = sizes.last().map(|s| s.0).unwrap_or(-1);
    for &(id, size) in sizes.iter().rev() {
        total += size;
        if total > threshold {
            return Ok(Some((prev, 0)));
        }
        prev = id;
    }
    Ok(None)
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, String)> {
        let url = format!("{}{path}", self.base.trim_end_matches('/'));
        let mut req = self
            .http
            .request(method, &url)
            .header("Accept", "application/json");
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach the admin service at {}", self.base))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        if status >= 400 {
            let reason = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["reason"].as_str().map(str::to_string))
                .unwrap_or(text);
            bail!("{reason}\n\nReason: HTTP {status}");
        }
        Ok((status, text))
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let (_, text) = self.call(reqwest::Method::GET, path, None).await?;
        Ok(if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)?
        })
    }
}

fn print_json(v: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn print_list(v: &Value, output: OutputFormat) -> anyhow::Result<()> {
    match output {
        OutputFormat::Json => println!("{v}"),
        OutputFormat::Text => {
            for item in v.as_array().into_iter().flatten() {
                println!("{}", item.as_str().unwrap_or_default());
            }
        }
    }
    Ok(())
}

pub async fn run(args: AdminArgs) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let c = Client {
        http,
        base: args.admin_url.clone(),
    };
    use reqwest::Method as M;
    match args.command {
        AdminCommand::Tenants(Tenants::List) => {
            print_list(&c.get("/admin/v2/tenants").await?, args.output)?
        }
        AdminCommand::Tenants(Tenants::Create {
            tenant,
            allowed_clusters,
        }) => {
            let clusters: Vec<&str> = allowed_clusters
                .split(',')
                .filter(|s| !s.is_empty())
                .collect();
            c.call(
                M::PUT,
                &format!("/admin/v2/tenants/{tenant}"),
                Some(json!({"adminRoles": [], "allowedClusters": clusters})),
            )
            .await?;
        }
        AdminCommand::Namespaces(n) => namespaces(&c, n, args.output).await?,
        AdminCommand::Topics(t) => topics(&c, t, args.output).await?,
    }
    Ok(())
}

async fn namespaces(c: &Client, cmd: Namespaces, output: OutputFormat) -> anyhow::Result<()> {
    use reqwest::Method as M;
    let base = |ns: &str| -> anyhow::Result<String> {
        let (t, n) = namespace_parts(ns)?;
        Ok(format!("/admin/v2/namespaces/{t}/{n}"))
    };
    match cmd {
        Namespaces::List { tenant } => print_list(
            &c.get(&format!("/admin/v2/namespaces/{tenant}")).await?,
            output,
        )?,
        Namespaces::Create { namespace } => {
            c.call(M::PUT, &base(&namespace)?, None).await?;
        }
        Namespaces::SetRetention {
            namespace,
            size,
            time,
        } => {
            c.call(
                M::POST,
                &format!("{}/retention", base(&namespace)?),
                Some(retention_body(&size, &time)?),
            )
            .await?;
        }
        Namespaces::SetOffloadPolicies { policy, namespace } => {
            let p = format!("{}/offloadPolicies", base(&namespace)?);
            c.call(M::POST, &p, Some(policy.body()?)).await?;
        }
        Namespaces::GetOffloadPolicies { namespace } => print_json(
            &c.get(&format!("{}/offloadPolicies", base(&namespace)?))
                .await?,
        )?,
        Namespaces::RemoveOffloadPolicies { namespace } => {
            let p = format!("{}/removeOffloadPolicies", base(&namespace)?);
            c.call(M::DELETE, &p, None).await?;
        }
        Namespaces::GetRetention { namespace } => {
            print_json(&c.get(&format!("{}/retention", base(&namespace)?)).await?)?
        }
        Namespaces::SetOffloadThreshold { namespace, size } => {
            let bytes = parse_size(&size)?;
            c.call(
                M::PUT,
                &format!("{}/offloadThreshold", base(&namespace)?),
                Some(json!(bytes)),
            )
            .await?;
        }
        Namespaces::GetOffloadThreshold { namespace } => {
            println!(
                "{}",
                c.get(&format!("{}/offloadThreshold", base(&namespace)?))
                    .await?
            );
        }
        Namespaces::SetOffloadDeletionLag { namespace, lag } => {
            let ms = parse_time_seconds(&lag)? * 1000;
            c.call(
                M::PUT,
                &format!("{}/offloadDeletionLagMs", base(&namespace)?),
                Some(json!(ms)),
            )
            .await?;
        }
        Namespaces::GetOffloadDeletionLag { namespace } => {
            match c
                .get(&format!("{}/offloadDeletionLagMs", base(&namespace)?))
                .await?
                .as_i64()
            {
                Some(ms) => println!("{} minute(s)", ms / 60_000),
                None => println!("Unset for namespace. Defaulting to broker setting."),
            }
        }
        Namespaces::ClearOffloadDeletionLag { namespace } => {
            c.call(
                M::DELETE,
                &format!("{}/offloadDeletionLagMs", base(&namespace)?),
                None,
            )
            .await?;
        }
    }
    Ok(())
}

async fn topics(c: &Client, cmd: Topics, output: OutputFormat) -> anyhow::Result<()> {
    use reqwest::Method as M;
    let path = |topic: &str| -> anyhow::Result<(String, String)> {
        let (t, ns, local) = topic_parts(topic)?;
        Ok((
            format!("/admin/v2/persistent/{t}/{ns}/{local}"),
            format!("persistent://{t}/{ns}/{local}"),
        ))
    };
    match cmd {
        Topics::List { namespace } => {
            let (t, n) = namespace_parts(&namespace)?;
            print_list(
                &c.get(&format!("/admin/v2/persistent/{t}/{n}")).await?,
                output,
            )?;
        }
        Topics::Create { topic } => {
            c.call(M::PUT, &path(&topic)?.0, None).await?;
        }
        Topics::Delete { topic } => {
            c.call(M::DELETE, &path(&topic)?.0, None).await?;
        }
        Topics::SetOffloadPolicies { policy, topic } => {
            let p = format!("{}/offloadPolicies", path(&topic)?.0);
            c.call(M::POST, &p, Some(policy.body()?)).await?;
        }
        Topics::GetOffloadPolicies { topic } => print_json(
            &c.get(&format!("{}/offloadPolicies", path(&topic)?.0))
                .await?,
        )?,
        Topics::RemoveOffloadPolicies { topic } => {
            c.call(
                M::DELETE,
                &format!("{}/offloadPolicies", path(&topic)?.0),
                None,
            )
            .await?;
        }
        Topics::SetRetention { topic, size, time } => {
            let p = format!("{}/retention", path(&topic)?.0);
            c.call(M::POST, &p, Some(retention_body(&size, &time)?))
                .await?;
        }
        Topics::GetRetention { topic } => {
            print_json(&c.get(&format!("{}/retention", path(&topic)?.0)).await?)?
        }
        Topics::RemoveRetention { topic } => {
            c.call(M::DELETE, &format!("{}/retention", path(&topic)?.0), None)
                .await?;
        }
        Topics::CreatePartitionedTopic { partitions, topic } => {
            let p = format!("{}/partitions", path(&topic)?.0);
            c.call(M::PUT, &p, Some(json!(partitions))).await?;
        }
        Topics::GetPartitionedTopicMetadata { topic } => {
            print_json(&c.get(&format!("{}/partitions", path(&topic)?.0)).await?)?
        }
        Topics::DeletePartitionedTopic { topic } => {
            c.call(M::DELETE, &format!("{}/partitions", path(&topic)?.0), None)
                .await?;
        }
        Topics::ListPartitioned { namespace } => {
            let (t, n) = namespace_parts(&namespace)?;
            print_list(
                &c.get(&format!("/admin/v2/persistent/{t}/{n}/partitioned"))
                    .await?,
                output,
            )?;
        }
        Topics::Stats { topic } => {
            print_json(&c.get(&format!("{}/stats", path(&topic)?.0)).await?)?
        }
        Topics::StatsInternal { topic } => {
            print_json(&c.get(&format!("{}/internalStats", path(&topic)?.0)).await?)?
        }
        Topics::Offload {
            size_threshold,
            topic,
        } => {
            let threshold = parse_size(&size_threshold)?;
            let (p, full) = path(&topic)?;
            let stats = c.get(&format!("{p}/internalStats?metadata=false")).await?;
            match offload_message_id(&stats, threshold)? {
                None => println!("Nothing to offload"),
                Some((ledger, entry)) => {
                    let body = json!({"ledgerId": ledger, "entryId": entry, "partitionIndex": -1});
                    c.call(M::PUT, &format!("{p}/offload"), Some(body)).await?;
                    println!(
                        "Offload triggered for {full} for messages before {ledger}:{entry}:-1"
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
                let s = c.get(&format!("{p}/offload")).await?;
                if !(wait && s["status"] == "RUNNING") {
                    break s;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            };
            if let Some(s) = spinner {
                s.finish_and_clear();
            }
            match status["status"].as_str().unwrap_or("") {
                "NOT_RUN" => println!("Offload has not been run for {full} since broker startup"),
                "RUNNING" => println!("Offload is currently running"),
                "SUCCESS" => println!("Offload was a success"),
                _ => {
                    println!("Error in offload");
                    bail!(
                        "Error offloading: {}",
                        status["lastError"].as_str().unwrap_or("")
                    );
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_pulsar_admin_parses_them() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("100K").unwrap(), 102_400);
        assert_eq!(parse_size("10M").unwrap(), 10_485_760);
        assert_eq!(parse_size("-10G").unwrap(), -10_737_418_240);
        assert_eq!(parse_size("2t").unwrap(), 2 << 40);
        assert_eq!(parse_size("-1").unwrap(), -1);
        let e = parse_size("10MB").unwrap_err().to_string();
        assert_eq!(
            e,
            "Invalid size '10MB'. Valid formats are: (4096, 100K, 10M, 16G, 2T)"
        );
        assert!(parse_size("1.5G").is_err());
    }

    #[test]
    fn times_parse_as_pulsar_admin_parses_them() {
        assert_eq!(parse_time_seconds("3d").unwrap(), 259_200);
        assert_eq!(parse_time_seconds("1h").unwrap(), 3600);
        assert_eq!(parse_time_seconds("90").unwrap(), 90);
        assert_eq!(parse_time_seconds("-1").unwrap(), -1);
        assert_eq!(parse_time_seconds("2W").unwrap(), 14 * 86_400);
        assert_eq!(
            parse_time_seconds("1x").unwrap_err().to_string(),
            "Invalid time unit 'x'"
        );
        assert!(parse_time_seconds("").is_err());
    }

    #[test]
    fn topic_names_expand() {
        assert_eq!(
            topic_parts("test-topic").unwrap(),
            ("public".into(), "default".into(), "test-topic".into())
        );
        assert_eq!(
            topic_parts("t/ns/x").unwrap(),
            ("t".into(), "ns".into(), "x".into())
        );
        assert_eq!(
            topic_parts("persistent://t/ns/a/b").unwrap(),
            ("t".into(), "ns".into(), "a/b".into())
        );
        assert!(topic_parts("a/b").is_err());
        assert!(topic_parts("non-persistent://t/ns/x").is_err());
    }

    #[test]
    fn size_threshold_rule() {
        let stats = |sizes: &[i64], current: i64| {
            let ledgers: Vec<Value> = sizes
                .iter()
                .enumerate()
                .map(|(i, s)| json!({"ledgerId": 10 + i, "size": s}))
                .collect();
            json!({"ledgers": ledgers, "currentLedgerSize": current})
        };
        // Ledgers 10, 11, 12 (10 MiB each) + current 13 with 1 MiB; keep 10 MiB:
        // 1 (13) -> 11 (12) > 10 -> offload before 13.
        let m = 1 << 20;
        assert_eq!(
            offload_message_id(&stats(&[10 * m, 10 * m, 10 * m, 0], m), 10 * m).unwrap(),
            Some((13, 0))
        );
        // Keep 25 MiB: 1, 11, 21, 31 > 25 at ledger 10 -> before 11.
        assert_eq!(
            offload_message_id(&stats(&[10 * m, 10 * m, 10 * m, 0], m), 25 * m).unwrap(),
            Some((11, 0))
        );
        assert_eq!(
            offload_message_id(&stats(&[10 * m, 0], 0), 100 * m).unwrap(),
            None
        );
        // The current ledger alone over the threshold: offload everything closed.
        assert_eq!(
            offload_message_id(&stats(&[5, 0], 50 * m), m).unwrap(),
            Some((11, 0))
        );
        assert!(offload_message_id(&json!({"ledgers": []}), 0).is_err());
    }
}

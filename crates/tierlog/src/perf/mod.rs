//! `tierlog perf produce|consume`: pulsar-perf's load generator over the binary protocol. A
//! stats line every interval (10 s by default) and an aggregated summary with HdrHistogram
//! percentiles when `-m` is reached, the duration ends or on Ctrl-C; `--output json` for the
//! summary.

mod consume;
mod produce;
mod rate;
mod stats;

use std::time::Duration;

use anyhow::{Context, bail};

impl Common {
    /// Connects to the service URL with client.conf's and the flags' TLS and credentials.
    pub(crate) async fn connect(&self) -> anyhow::Result<client::Connection> {
        let settings = crate::client_conf::ClientSettings::resolve(&self.client)?;
        let url = self
            .service_url
            .clone()
            .or_else(|| settings.broker_service_url.clone())
            .unwrap_or_else(|| "pulsar://localhost:6650".into());
        client::Connection::connect_with(&url, &settings.connect_options())
            .await
            .with_context(|| format!("connecting to {url}"))
    }
}
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum PerfCommand {
    /// Publish messages at a rate and measure publish latency (send → durable receipt).
    Produce(ProduceArgs),
    /// Consume topics and measure throughput and end-to-end latency (publish time → receipt).
    Consume(ConsumeArgs),
}

#[derive(Debug, Args)]
pub struct Common {
    /// Broker service URL, pulsar:// or pulsar+ssl:// (default: client.conf's
    /// brokerServiceUrl, else pulsar://localhost:6650).
    #[arg(long = "service-url", short = 'u')]
    service_url: Option<String>,
    #[command(flatten)]
    client: crate::client_conf::ClientArgs,
    /// Seconds between stats lines.
    #[arg(long = "stats-interval", default_value_t = 10)]
    stats_interval: u64,
    /// Stop after this many seconds (0 = until -m or Ctrl-C).
    #[arg(long = "test-duration", visible_alias = "time", default_value_t = 0)]
    test_duration: u64,
    /// Summary format: human lines or one JSON object.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    output: String,
    topics: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// Messages per second over all producers (0 = as fast as possible).
    #[arg(long, short = 'r', default_value_t = 100)]
    rate: u64,
    /// Payload size in bytes.
    #[arg(long, short = 's', default_value_t = 1024)]
    size: usize,
    /// Producers per topic.
    #[arg(long = "num-producers", short = 'n', default_value_t = 1)]
    producers: usize,
    /// Tasks that send (pulsar-perf's test threads): each drives its share of the producers
    /// in turn and collects their receipts from one channel.
    #[arg(long = "num-test-threads", default_value_t = 1)]
    threads: usize,
    /// Stop after this many messages (0 = no limit).
    #[arg(long = "num-messages", short = 'm', default_value_t = 0)]
    total: u64,
    #[arg(long = "batch-max-messages", default_value_t = 1000)]
    batch_max_messages: usize,
    #[arg(long = "batch-delay-ms", default_value_t = 1)]
    batch_delay_ms: u64,
    /// Send every message as its own entry.
    #[arg(long = "disable-batching", short = 'd')]
    disable_batching: bool,
    /// Topics to produce to (pulsar-perf's --num-topic): with one topic name `t` given, the
    /// topics `t<separator>0` … `t<separator>N-1`; the rate is over all of them.
    #[arg(
        long = "num-topic",
        visible_alias = "num-topics",
        short = 't',
        default_value_t = 1
    )]
    num_topics: usize,
    /// What goes between the topic name and its number with --num-topic.
    #[arg(long, default_value = "-")]
    separator: String,
    /// Messages in flight per producer before sending waits (pulsar-perf's --max-outstanding;
    /// several batches in flight keep the broker's group commit busy).
    #[arg(
        long = "max-pending",
        visible_alias = "max-outstanding",
        default_value_t = 10000
    )]
    max_pending: usize,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Args)]
pub struct ConsumeArgs {
    #[arg(long = "subscriber-name", short = 's', default_value = "sub")]
    subscription: String,
    #[arg(long = "subscription-type", short = 't', default_value = "Exclusive",
          value_parser = ["Exclusive", "Shared", "Failover", "Key_Shared"])]
    sub_type: String,
    #[arg(long = "subscription-position", short = 'p', default_value = "Latest",
          value_parser = ["Latest", "Earliest"])]
    position: String,
    /// Stop after this many messages (0 = no limit).
    #[arg(long = "num-messages", short = 'm', default_value_t = 0)]
    total: u64,
    #[arg(long = "receiver-queue-size", short = 'q', default_value_t = 1000)]
    queue: u32,
    /// Acknowledgements are sent together once the oldest has waited this long (or 1000 are
    /// waiting), as the Pulsar client's acknowledgment group time.
    #[arg(long = "acks-delay-millis", default_value_t = 100)]
    acks_delay_ms: u64,
    #[command(flatten)]
    common: Common,
}

/// Waits for Ctrl-C or the test duration, whichever comes first (duration 0 = no limit).
async fn stop_signal(duration: u64) {
    let timer = async {
        if duration == 0 {
            std::future::pending::<()>().await
        } else {
            tokio::time::sleep(Duration::from_secs(duration)).await
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = timer => {}
    }
}

/// Topic names as pulsar-perf expands them: partitions of a partitioned topic separately.
/// The topics `--num-topic` names: `t<separator>i` for one given name `t` (pulsar-perf's rule);
/// the names as given when there are already as many.
fn numbered_topics(topics: &[String], n: usize, separator: &str) -> anyhow::Result<Vec<String>> {
    match topics {
        _ if n <= 1 || topics.len() == n => Ok(topics.to_vec()),
        [one] => Ok((0..n).map(|i| format!("{one}{separator}{i}")).collect()),
        _ => bail!(
            "--num-topic {n} needs one topic name (a prefix) or {n} names, not {}",
            topics.len()
        ),
    }
}

async fn expand_topics(
    conn: &client::Connection,
    topics: &[String],
) -> anyhow::Result<Vec<String>> {
    if topics.is_empty() {
        bail!("no topic given");
    }
    let mut out = Vec::new();
    for t in topics {
        let n = conn
            .partitions(t)
            .await
            .with_context(|| format!("partitions of {t}"))?;
        if n == 0 {
            out.push(t.clone());
        } else {
            let base = protocol::TopicName::parse(t)?;
            out.extend((0..n).map(|i| base.partition(i).to_string()));
        }
    }
    Ok(out)
}

async fn futures_join(
    workers: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
) -> anyhow::Result<()> {
    for w in workers {
        w.await.context("producer task")??;
    }
    Ok(())
}

pub async fn run(cmd: PerfCommand) -> anyhow::Result<()> {
    match cmd {
        PerfCommand::Produce(a) => produce::produce(a).await,
        PerfCommand::Consume(a) => consume::consume(a).await,
    }
}

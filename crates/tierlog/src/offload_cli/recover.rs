//! `tierlog offload recover`: rebuilds the ledger lists of topics from the objects in the tier,
//! into the broker's metadata store, for a broker whose disk and metadata were lost. Every
//! complete offload (data and index object) names its ledger, entry count, length and managed
//! ledger in its index; a topic gets a list of those ledgers (`ledger::restore`), its namespace
//! and tenant are created if missing, and the broker then serves every offloaded message again.
//! Topics that already have a ledger list are left alone. Run it with the broker stopped.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Context;
use ledger::info::{LedgerInfo, OffloadContext};
use ledger::restore::{Restored, restore_ledger_list};
use offload::LedgerOffloader;
use offload::inventory::{describe, list_attempts};
use policy::BrokerConfig;
use protocol::{Domain, NamespaceName, TopicName};

use super::{OutputFormat, StoreArgs};

#[derive(Debug, clap::Args)]
pub struct RecoverArgs {
    /// The broker's configuration (default: conf/standalone.conf if it exists; TIERLOG_<key>
    /// variables apply): where the metadata store is, and where offloaded objects are unless
    /// --driver says otherwise.
    #[arg(long, short = 'c')]
    pub config: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Only this topic (e.g. persistent://public/default/t); every topic found when absent.
    #[arg(long)]
    pub topic: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    pub output: OutputFormat,
}

/// One topic's outcome.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct TopicRecovery {
    topic: String,
    ledgers: usize,
    entries: i64,
    /// `restored` or `exists` (the topic already had a ledger list: left alone).
    result: &'static str,
}

/// The topic a managed ledger of a persistent topic belongs to (`t/ns/persistent/<encoded>`);
/// `None` for other managed ledgers (compacted views, anything not a topic's).
fn topic_of(managed_ledger: &str) -> Option<TopicName> {
    let mut parts = managed_ledger.splitn(4, '/');
    let (tenant, namespace, domain, local) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if domain != "persistent" || local.contains('/') {
        return None;
    }
    let local = percent_encoding::percent_decode_str(local)
        .decode_utf8()
        .ok()?;
    let ns = NamespaceName::new(tenant, namespace).ok()?;
    let topic = TopicName::new(Domain::Persistent, ns, &local).ok()?;
    (topic.managed_ledger_name() == managed_ledger).then_some(topic)
}

pub async fn run(args: RecoverArgs, config: BrokerConfig) -> anyhow::Result<()> {
    let wanted = match &args.topic {
        Some(t) => Some(
            TopicName::parse(t)
                .with_context(|| format!("--topic {t:?}"))?
                .managed_ledger_name(),
        ),
        None => None,
    };
    let offloader = match &args.store.driver {
        Some(_) => args.store.offloader().await?,
        None => {
            let target = config.offload_target().context(
                "no offload location: the configuration sets no managedLedgerOffloadDriver; give --driver and its location",
            )?;
            offload::BlobStoreOffloader::new(target).await?
        }
    };
    let store = offloader.store().await?;
    let location = offloader.location().clone();
    let meta = crate::server::open_metadata_store(&config)
        .await
        .context("opening the metadata store (is the broker still running? stop it first)")?;

    // Managed ledger → its offloaded ledgers, one per ledger id (the newest complete attempt).
    let mut found: BTreeMap<String, BTreeMap<i64, (u64, LedgerInfo)>> = BTreeMap::new();
    let mut skipped = Vec::new();
    for attempt in list_attempts(&store, &location).await? {
        let (Some(data), Some(_)) = (attempt.data, attempt.index) else {
            continue; // an offload that never finished: nothing to restore
        };
        let described = match describe(&store, &location, &attempt).await {
            Ok(d) => d,
            Err(e @ offload::OffloadError::Corrupt { .. }) => {
                skipped.push(format!("{}: {e}", attempt.index_key()));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let Some(ml) = described.managed_ledger else {
            skipped.push(format!(
                "{}: its index names no managed ledger",
                attempt.data_key()
            ));
            continue;
        };
        if wanted.as_deref().is_some_and(|w| w != ml) || topic_of(&ml).is_none() {
            continue;
        }
        let index = &described.index;
        let created_ms = index
            .metadata
            .as_ref()
            .and_then(|m| m.ctime)
            .unwrap_or(0)
            .max(0) as u64;
        let info = LedgerInfo::offloaded(
            attempt.ledger_id,
            index.last_entry_id + 1,
            index.length,
            created_ms,
            data.last_modified_ms,
            OffloadContext::restored(&attempt.uuid, &location, data.last_modified_ms),
        );
        let ledgers = found.entry(ml).or_default();
        match ledgers.get(&attempt.ledger_id) {
            Some((written, _)) if *written >= data.last_modified_ms => {}
            _ => {
                ledgers.insert(attempt.ledger_id, (data.last_modified_ms, info));
            }
        }
    }

    let policies = policy::PolicyStore::new(std::sync::Arc::clone(&meta));
    let mut results = Vec::new();
    for (ml, ledgers) in found {
        let Some(topic) = topic_of(&ml) else { continue };
        let ledgers: Vec<LedgerInfo> = ledgers.into_values().map(|(_, l)| l).collect();
        let entries = ledgers.iter().map(|l| l.entries).sum();
        let count = ledgers.len();
        policies
            .ensure_namespace(topic.namespace(), &config.cluster_name)
            .await
            .with_context(|| format!("creating namespace {}", topic.namespace()))?;
        let result = match restore_ledger_list(std::sync::Arc::clone(&meta), &ml, ledgers)
            .await
            .with_context(|| format!("writing the ledger list of {topic}"))?
        {
            Restored::Written => "restored",
            Restored::AlreadyListed => "exists",
        };
        results.push(TopicRecovery {
            topic: topic.to_string(),
            ledgers: count,
            entries,
            result,
        });
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match args.output {
        OutputFormat::Json => writeln!(
            out,
            "{}",
            serde_json::json!({"topics": results, "skipped": skipped})
        )?,
        OutputFormat::Text => {
            for r in &results {
                match r.result {
                    "restored" => writeln!(
                        out,
                        "restored {}: {} ledgers, {} entries",
                        r.topic, r.ledgers, r.entries
                    )?,
                    _ => writeln!(
                        out,
                        "exists   {}: it already has a ledger list, left alone",
                        r.topic
                    )?,
                }
            }
            for s in &skipped {
                writeln!(out, "skipped  {s}")?;
            }
            writeln!(
                out,
                "{} topics restored",
                results.iter().filter(|r| r.result == "restored").count()
            )?;
        }
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_persistent_topics_managed_ledgers_are_restored() {
        let t = topic_of("public/default/persistent/a%20b").unwrap();
        assert_eq!(t.to_string(), "persistent://public/default/a b");
        assert!(topic_of("public/default/compacted/t/3").is_none());
        assert!(topic_of("public/default/non-persistent/t").is_none());
        assert!(topic_of("nonsense").is_none());
    }
}

//! `tierlog offload scrub`: reads every offloaded object of a location (or of one topic) back and
//! checks it (`offload::scrub`); prints what is wrong and exits non-zero if anything is.

use std::io::Write;

use anyhow::Context;
use offload::LedgerOffloader;
use offload::scrub::{LedgerScrub, scrub_location};

use super::{OutputFormat, StoreArgs};

#[derive(Debug, clap::Args)]
pub struct ScrubArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Only the ledgers of this topic (e.g. persistent://public/default/t); all when absent.
    #[arg(long)]
    pub topic: Option<String>,
    /// Also compare with the topic's ledger list in this broker configuration's metadata store
    /// (needs --topic; stop the broker first when it uses the embedded store): every offloaded
    /// ledger of the list has its objects, with the entries and bytes the list says, and every
    /// object of the topic is one the list names.
    #[arg(long, short = 'c')]
    pub config: Option<std::path::PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    pub output: OutputFormat,
}

/// Where the objects of `report` disagree with `ledgers`, the topic's ledger list: one sentence
/// per disagreement.
pub fn compare_with_ledger_list(
    report: &offload::scrub::LocationScrub,
    ledgers: &[ledger::info::LedgerInfo],
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut listed = std::collections::HashSet::new();
    for l in ledgers {
        let Some(ctx) = l.offload.as_ref().filter(|c| c.complete) else {
            continue;
        };
        listed.insert((ctx.uuid.clone(), l.ledger_id));
        match report
            .ledgers
            .iter()
            .find(|s| s.ledger_id == l.ledger_id && s.uuid == ctx.uuid)
        {
            None => problems.push(format!(
                "ledger {} is offloaded as {} by the ledger list, but those objects are not there",
                l.ledger_id,
                offload::keys::data_key(&ctx.uuid().unwrap_or_default(), l.ledger_id)
            )),
            Some(s) => {
                if s.entries as i64 != l.entries || s.payload_bytes as i64 != l.size {
                    problems.push(format!(
                        "ledger {}: the ledger list says {} entries and {} bytes, {} holds {} entries and {} bytes",
                        l.ledger_id, l.entries, l.size, s.data_key, s.entries, s.payload_bytes
                    ));
                }
            }
        }
    }
    for s in &report.ledgers {
        if !listed.contains(&(s.uuid.clone(), s.ledger_id)) {
            problems.push(format!(
                "{} (ledger {}) is not in the ledger list: an orphan, or the list lost it",
                s.data_key, s.ledger_id
            ));
        }
    }
    problems
}

/// The topic's ledger list from the metadata store `config` names.
async fn ledger_list(
    config: &policy::BrokerConfig,
    managed_ledger: &str,
) -> anyhow::Result<Vec<ledger::info::LedgerInfo>> {
    let meta = crate::server::open_metadata_store(config)
        .await
        .context("opening the metadata store (is the broker still running? stop it first)")?;
    let key = ledger::info::ml_key(managed_ledger);
    let Some(v) = meta.get(&key).await? else {
        anyhow::bail!("the metadata store has no ledger list for {managed_ledger} ({key})");
    };
    let info: ledger::info::ManagedLedgerInfo = ledger::info::decode(&key, &v.value)?;
    Ok(info.ledgers)
}

/// Problems found: the process exits with status 1 when there are any.
pub async fn run(args: ScrubArgs, config: Option<policy::BrokerConfig>) -> anyhow::Result<usize> {
    let managed_ledger = match &args.topic {
        Some(t) => Some(
            protocol::names::TopicName::parse(t)
                .with_context(|| format!("--topic {t:?}"))?
                .managed_ledger_name(),
        ),
        None => None,
    };
    let offloader = args.store.offloader().await?;
    let store = offloader.store().await?;
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {pos} ledgers scrubbed, {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let mut bytes = 0u64;
    let report = scrub_location(
        &store,
        offloader.location(),
        managed_ledger.as_deref(),
        |l: &LedgerScrub| {
            bytes += l.payload_bytes;
            bar.inc(1);
            bar.set_message(format!("{} MiB of entries", bytes >> 20));
        },
    )
    .await?;
    bar.finish_and_clear();
    let list_problems = match (&config, &managed_ledger) {
        (Some(config), Some(ml)) => {
            compare_with_ledger_list(&report, &ledger_list(config, ml).await?)
        }
        (Some(_), None) => {
            anyhow::bail!("--config compares with a topic's ledger list: give --topic")
        }
        _ => Vec::new(),
    };
    let problems = report.problems() + list_problems.len();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match args.output {
        OutputFormat::Json => {
            let mut value = serde_json::to_value(&report)?;
            if let Some(obj) = value.as_object_mut() {
                obj.insert("ledgerList".into(), serde_json::json!(list_problems));
            }
            writeln!(out, "{value}")?
        }
        OutputFormat::Text => {
            for l in &report.ledgers {
                let status = if l.problems.is_empty() {
                    "OK"
                } else {
                    "DAMAGED"
                };
                writeln!(
                    out,
                    "{status:8} ledger {:>8}  {}  {} entries, {} bytes in {} blocks{}",
                    l.ledger_id,
                    l.data_key,
                    l.entries,
                    l.payload_bytes,
                    l.blocks,
                    l.managed_ledger
                        .as_deref()
                        .map(|m| format!("  ({m})"))
                        .unwrap_or_default()
                )?;
                for p in &l.problems {
                    writeln!(out, "         - {p}")?;
                }
            }
            for i in &report.incomplete {
                writeln!(out, "INCOMPLETE {i}")?;
            }
            for p in &list_problems {
                writeln!(out, "LIST     {p}")?;
            }
            writeln!(
                out,
                "{} ledgers scrubbed, {problems} problem(s)",
                report.ledgers.len()
            )?;
        }
    }
    out.flush()?;
    Ok(problems)
}

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
    #[arg(long, value_enum, default_value = "text")]
    pub output: OutputFormat,
}

/// Problems found: the process exits with status 1 when there are any.
pub async fn run(args: ScrubArgs) -> anyhow::Result<usize> {
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
    let problems = report.problems();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match args.output {
        OutputFormat::Json => writeln!(out, "{}", serde_json::to_string(&report)?)?,
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

//! `tierlog offload gc`: one orphan collection pass over the broker's offload location (or the
//! one `--driver …` names), as the broker's periodic pass does it; `--dry-run` only reports.

use std::io::Write;

use anyhow::Context;
use offload::gc::GcSettings;
use policy::BrokerConfig;

use super::{OutputFormat, StoreArgs};

#[derive(Debug, clap::Args)]
pub struct GcArgs {
    /// The broker's configuration (default: conf/standalone.conf if it exists; TIERLOG_<key>
    /// variables apply): the metadata store whose ledger lists say what is referenced, the
    /// cluster name, the grace period and the offload location unless --driver says otherwise.
    #[arg(long, short = 'c')]
    pub config: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Report what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Nothing younger is touched, in seconds (default: managedLedgerOffloadOrphanGracePeriodSeconds).
    #[arg(long)]
    pub grace_seconds: Option<u64>,
    #[arg(long, value_enum, default_value = "text")]
    pub output: OutputFormat,
}

pub async fn run(args: GcArgs, config: BrokerConfig) -> anyhow::Result<()> {
    let target = match &args.store.driver {
        Some(_) => args.store.offloader().await?.config().clone(),
        None => config.offload_target().context(
            "no offload location: the configuration sets no managedLedgerOffloadDriver; give --driver and its location",
        )?,
    };
    let meta = crate::server::open_metadata_store(&config).await.context(
        "opening the metadata store (is the broker still running? stop it first, or let its periodic pass collect)",
    )?;
    let settings = GcSettings {
        grace: args
            .grace_seconds
            .map(std::time::Duration::from_secs)
            .unwrap_or(config.orphan_gc.grace),
        cluster_name: config.cluster_name.clone(),
        dry_run: args.dry_run,
        max_deletes_per_second: config.orphan_gc.deletes_per_second,
    };
    let stores = offload::ObjectStores::new(config.object_store_client.clone());
    let report = crate::orphan_gc::pass(
        meta.as_ref(),
        &stores,
        &target.location,
        &target.credentials,
        &settings,
    )
    .await?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match args.output {
        OutputFormat::Json => writeln!(out, "{}", serde_json::to_string(&report)?)?,
        OutputFormat::Text => {
            let verb = if args.dry_run {
                "would delete"
            } else {
                "deleted"
            };
            for k in &report.deleted_objects {
                writeln!(out, "{verb} {k}")?;
            }
            let verb = if args.dry_run {
                "would abort"
            } else {
                "aborted"
            };
            for u in &report.aborted_uploads {
                writeln!(out, "{verb} upload {u}")?;
            }
            writeln!(
                out,
                "{} objects {}, {} uploads {}; kept {} referenced, {} younger than {} s, {} of another cluster",
                report.deleted_objects.len(),
                if args.dry_run { "to delete" } else { "deleted" },
                report.aborted_uploads.len(),
                if args.dry_run { "to abort" } else { "aborted" },
                report.referenced,
                report.kept_young,
                settings.grace.as_secs(),
                report.kept_foreign
            )?;
        }
    }
    out.flush()?;
    Ok(())
}

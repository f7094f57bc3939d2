//! `tierlog offload dump`: inspect an offloaded ledger straight from the object store, without a
//! broker. Prints the ledger metadata, then one line per entry (size and SHA-256 of the payload).

use std::io::Write;

use anyhow::Context;
use offload::{LedgerOffloader, TierReader};

use super::{OutputFormat, StoreArgs};
use sha2::{Digest, Sha256};

#[derive(Debug, clap::Args)]
pub struct DumpArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The data object's key: <uuid>-ledger-<ledgerId> (an -index suffix is accepted).
    #[arg(long)]
    pub key: String,
    #[arg(long, value_enum, default_value = "text")]
    pub output: OutputFormat,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub async fn run(args: DumpArgs) -> anyhow::Result<()> {
    let (uuid, ledger_id) = offload::keys::parse_key(&args.key).with_context(|| {
        format!(
            "--key {:?} is not of the form <uuid>-ledger-<ledgerId>",
            args.key
        )
    })?;
    let offloader = args.store.offloader().await?;
    let handle = offloader
        .read(ledger_id, uuid, offloader.location())
        .await?;
    let index = handle.index();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let meta = index.metadata.as_ref();
    let state = if index.closed { "CLOSED" } else { "OPEN" };
    match args.output {
        OutputFormat::Json => {
            let blocks: Vec<serde_json::Value> = index
                .entries
                .iter()
                .map(|e| serde_json::json!({"firstEntryId": e.first_entry_id, "partId": e.part_id, "offset": e.block_offset}))
                .collect();
            let custom: serde_json::Map<String, serde_json::Value> = meta
                .map(|m| {
                    m.custom_metadata
                        .iter()
                        .map(|c| {
                            (
                                c.key.clone().unwrap_or_default(),
                                serde_json::Value::String(
                                    String::from_utf8_lossy(c.value.as_deref().unwrap_or_default())
                                        .into(),
                                ),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let header = serde_json::json!({
                "ledger": ledger_id,
                "uuid": uuid.to_string(),
                "lastEntryId": index.last_entry_id,
                "length": index.length,
                "state": state,
                "dataObjectLength": index.data_object_len,
                "ctime": meta.and_then(|m| m.ctime),
                "ensembleSize": meta.map(|m| m.ensemble_size),
                "customMetadata": custom,
                "blocks": blocks,
            });
            writeln!(out, "{header}")?;
        }
        OutputFormat::Text => {
            writeln!(out, "ledger {ledger_id} (offload {uuid})")?;
            writeln!(out, "  state          {state}")?;
            writeln!(out, "  last entry id  {}", index.last_entry_id)?;
            writeln!(out, "  length         {} bytes", index.length)?;
            writeln!(
                out,
                "  data object    {} bytes in {} blocks",
                index.data_object_len,
                index.entries.len()
            )?;
            if let Some(m) = meta {
                writeln!(out, "  ctime          {}", m.ctime.unwrap_or(0))?;
                for c in &m.custom_metadata {
                    writeln!(
                        out,
                        "  metadata       {} = {}",
                        c.key.as_deref().unwrap_or(""),
                        String::from_utf8_lossy(c.value.as_deref().unwrap_or_default())
                    )?;
                }
            }
        }
    }
    let total = (index.last_entry_id + 1).max(0) as u64;
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} entries ({per_sec})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut first = 0i64;
    while first <= index.last_entry_id {
        let last = (first + 999).min(index.last_entry_id);
        for (i, payload) in handle.read(first, last).await?.iter().enumerate() {
            let entry = first + i as i64;
            let sha = hex(&Sha256::digest(payload));
            match args.output {
                OutputFormat::Json => writeln!(
                    out,
                    "{{\"ledger\":{ledger_id},\"entry\":{entry},\"size\":{},\"sha256\":\"{sha}\"}}",
                    payload.len()
                )?,
                OutputFormat::Text => writeln!(
                    out,
                    "entry {entry:>8}  size {:>9}  sha256 {sha}",
                    payload.len()
                )?,
            }
        }
        bar.inc((last - first + 1) as u64);
        first = last + 1;
    }
    bar.finish_and_clear();
    out.flush()?;
    Ok(())
}

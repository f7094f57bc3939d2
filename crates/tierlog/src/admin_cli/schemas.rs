//! `tierlog admin schemas …` (pulsar-admin's `schemas get|upload|delete|compatibility`) over
//! `/admin/v2/schemas/…`.

use anyhow::Context;
use clap::Subcommand;
use serde_json::Value;

use super::client::Client;
use super::{persistent_topic, print_json};

#[derive(Debug, Subcommand)]
pub enum Schemas {
    /// The topic's latest schema, one version, or every version since the last deletion.
    Get {
        topic: String,
        #[arg(long)]
        version: Option<u64>,
        #[arg(long = "all-version")]
        all_version: bool,
    },
    /// Upload a schema: a file with Pulsar's schema payload
    /// (`{"type": "AVRO", "schema": "<definition>", "properties": {}}`).
    Upload {
        topic: String,
        #[arg(long, short = 'f')]
        filename: std::path::PathBuf,
    },
    /// Delete the topic's schema (older versions stay readable by their number).
    Delete { topic: String },
    /// Whether a schema (a payload file, as for upload) may be uploaded.
    Compatibility {
        topic: String,
        #[arg(long, short = 'f')]
        filename: std::path::PathBuf,
    },
}

pub(super) async fn run(c: &Client, cmd: Schemas) -> anyhow::Result<()> {
    use reqwest::Method as M;
    let base = |topic: &str| -> anyhow::Result<String> {
        let t = persistent_topic(topic)?;
        Ok(format!(
            "/admin/v2/schemas/{}/{}/{}",
            t.tenant(),
            t.namespace().local(),
            t.encoded_local()
        ))
    };
    let payload = |file: &std::path::Path| -> anyhow::Result<Value> {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading the schema payload {}", file.display()))?;
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a schema payload ({{\"type\": …, \"schema\": …, \"properties\": …}})",
                file.display()
            )
        })
    };
    match cmd {
        Schemas::Get {
            topic,
            version,
            all_version,
        } => {
            let path = match (version, all_version) {
                (_, true) => format!("{}/schemas", base(&topic)?),
                (Some(v), false) => format!("{}/schema/{v}", base(&topic)?),
                (None, false) => format!("{}/schema", base(&topic)?),
            };
            let v: Option<Value> = c.get(&path).await?;
            print_json(&v.unwrap_or_default())?;
        }
        Schemas::Upload { topic, filename } => {
            let body = payload(&filename)?;
            c.call(M::POST, &format!("{}/schema", base(&topic)?), Some(&body))
                .await?;
        }
        Schemas::Delete { topic } => {
            c.send(M::DELETE, &format!("{}/schema", base(&topic)?))
                .await?;
        }
        Schemas::Compatibility { topic, filename } => {
            let body = payload(&filename)?;
            let answer = c
                .call(
                    M::POST,
                    &format!("{}/compatibility", base(&topic)?),
                    Some(&body),
                )
                .await?;
            let v: Value = serde_json::from_str(&answer).unwrap_or(Value::String(answer));
            print_json(&v)?;
        }
    }
    Ok(())
}

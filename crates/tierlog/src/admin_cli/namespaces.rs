//! pulsar-admin's `namespaces` commands.

use clap::Subcommand;
use policy::OffloadPolicies;
use policy::types::RetentionPolicies;
use protocol::NamespaceName;
use serde_json::Value;

use super::client::Client;
use super::messaging;
use super::units::{parse_size, parse_time_seconds, retention};
use super::{OffloadPolicyArgs, auth_actions, on_off, path_segment, print_json, print_list};

use crate::offload_cli::OutputFormat;

#[derive(Debug, Subcommand)]
pub enum Namespaces {
    /// List the namespaces of a tenant.
    List {
        tenant: String,
    },
    /// Unload a namespace (all its bundles, or one): their owners close the topics and give
    /// the bundles up; the next lookup places them again.
    Unload {
        namespace: String,
        /// One bundle (0x<low>_0x<high>).
        #[arg(long, short = 'b')]
        bundle: Option<String>,
    },
    /// Create a namespace (tenant/namespace).
    Create {
        namespace: String,
    },
    /// Delete a namespace (refused while it has topics, unless forced).
    Delete {
        namespace: String,
        /// Delete its topics first, closing their producers and consumers.
        #[arg(long, short = 'f')]
        force: bool,
    },
    /// A namespace's policies (Pulsar's `Policies` JSON).
    Policies {
        namespace: String,
    },
    /// The topics of a namespace, persistent and non-persistent.
    Topics {
        namespace: String,
    },
    /// The roles granted actions on the whole namespace.
    Permissions {
        namespace: String,
    },
    /// Grant a role actions on the whole namespace (replaces its previous grant).
    GrantPermission {
        namespace: String,
        #[arg(long)]
        role: String,
        /// produce, consume, functions, sources, sinks, packages (comma-separated).
        #[arg(long, value_delimiter = ',', required = true)]
        actions: Vec<String>,
    },
    /// Revoke a role's namespace-wide grant.
    RevokePermission {
        namespace: String,
        #[arg(long)]
        role: String,
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
    /// Whether the namespace's topics drop messages a producer re-sends (null: the broker's
    /// brokerDeduplicationEnabled).
    GetDeduplication {
        namespace: String,
    },
    SetDeduplication {
        namespace: String,
        #[arg(long, short = 'e', conflicts_with = "disable")]
        enable: bool,
        #[arg(long, short = 'd')]
        disable: bool,
    },
    RemoveDeduplication {
        namespace: String,
    },
    #[command(flatten)]
    Messaging(messaging::NamespaceMessaging),
    /// The namespace's schema compatibility strategy (UNDEFINED: the broker's).
    GetSchemaCompatibilityStrategy {
        namespace: String,
    },
    /// ALWAYS_INCOMPATIBLE, ALWAYS_COMPATIBLE, BACKWARD, FORWARD, FULL, BACKWARD_TRANSITIVE,
    /// FORWARD_TRANSITIVE, FULL_TRANSITIVE or UNDEFINED.
    SetSchemaCompatibilityStrategy {
        namespace: String,
        #[arg(long, short = 'c')]
        compatibility: String,
    },
    /// Whether producers may add schema versions.
    GetIsAllowAutoUpdateSchema {
        namespace: String,
    },
    SetIsAllowAutoUpdateSchema {
        namespace: String,
        #[arg(long, short = 'e', conflicts_with = "disable")]
        enable: bool,
        #[arg(long, short = 'd')]
        disable: bool,
    },
    /// Whether producers and consumers without a schema are refused once the topic has one.
    GetSchemaValidationEnforce {
        namespace: String,
    },
    SetSchemaValidationEnforce {
        namespace: String,
        #[arg(long, short = 'e', conflicts_with = "disable")]
        enable: bool,
        #[arg(long, short = 'd')]
        disable: bool,
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
    /// Keep the hot copies of the namespace's new ledgers on the broker's disk (`local`) or in
    /// object storage (`object`: the broker's WAL; nothing lives only on a broker).
    SetHotTier {
        namespace: String,
        #[arg(long, short = 't', value_parser = ["local", "object"])]
        tier: String,
    },
    /// The namespace's hot tier (the broker default if it sets none).
    GetHotTier {
        namespace: String,
    },
    /// Back to the broker's `managedLedgerHotTier`.
    RemoveHotTier {
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

pub(super) async fn run(c: &Client, cmd: Namespaces, output: OutputFormat) -> anyhow::Result<()> {
    use reqwest::Method as M;
    let base = |ns: &str| -> anyhow::Result<String> {
        Ok(format!(
            "/admin/v2/namespaces/{}",
            NamespaceName::parse(ns)?
        ))
    };
    match cmd {
        Namespaces::List { tenant } => {
            let names: Vec<String> = c
                .get(&format!("/admin/v2/namespaces/{tenant}"))
                .await?
                .unwrap_or_default();
            print_list(&names, output)?
        }
        Namespaces::Create { namespace } => {
            c.send(M::PUT, &base(&namespace)?).await?;
        }
        Namespaces::Delete { namespace, force } => {
            c.send(M::DELETE, &format!("{}?force={force}", base(&namespace)?))
                .await?;
        }
        Namespaces::Policies { namespace } => {
            let p: Option<Value> = c.get(&base(&namespace)?).await?;
            print_json(&p.unwrap_or_default())?
        }
        Namespaces::Topics { namespace } => {
            let names: Vec<String> = c
                .get(&format!("{}/topics", base(&namespace)?))
                .await?
                .unwrap_or_default();
            print_list(&names, output)?
        }
        Namespaces::Permissions { namespace } => {
            let p: Option<Value> = c.get(&format!("{}/permissions", base(&namespace)?)).await?;
            print_json(&p.unwrap_or_default())?
        }
        Namespaces::GrantPermission {
            namespace,
            role,
            actions,
        } => {
            let p = format!("{}/permissions/{}", base(&namespace)?, path_segment(&role));
            c.call(M::POST, &p, Some(&auth_actions(&actions)?)).await?;
        }
        Namespaces::RevokePermission { namespace, role } => {
            let p = format!("{}/permissions/{}", base(&namespace)?, path_segment(&role));
            c.send(M::DELETE, &p).await?;
        }
        Namespaces::Unload { namespace, bundle } => {
            let p = match bundle {
                Some(b) => format!("{}/{b}/unload", base(&namespace)?),
                None => format!("{}/unload", base(&namespace)?),
            };
            c.send(M::PUT, &p).await?;
        }
        Namespaces::SetRetention {
            namespace,
            size,
            time,
        } => {
            let p = format!("{}/retention", base(&namespace)?);
            c.call(M::POST, &p, Some(&retention(&size, &time)?)).await?;
        }
        Namespaces::GetDeduplication { namespace } => {
            let v: Option<Value> = c
                .get(&format!("{}/deduplication", base(&namespace)?))
                .await?;
            print_json(&v.unwrap_or_default())?
        }
        Namespaces::SetDeduplication {
            namespace,
            enable,
            disable,
        } => {
            let on = on_off(enable, disable)?;
            let p = format!("{}/deduplication", base(&namespace)?);
            c.call(M::POST, &p, Some(&on)).await?;
        }
        Namespaces::Messaging(cmd) => messaging::namespaces(c, cmd).await?,
        Namespaces::RemoveDeduplication { namespace } => {
            c.send(M::DELETE, &format!("{}/deduplication", base(&namespace)?))
                .await?;
        }
        Namespaces::GetSchemaCompatibilityStrategy { namespace } => {
            let v: Option<Value> = c
                .get(&format!(
                    "{}/schemaCompatibilityStrategy",
                    base(&namespace)?
                ))
                .await?;
            print_json(&v.unwrap_or_default())?
        }
        Namespaces::SetSchemaCompatibilityStrategy {
            namespace,
            compatibility,
        } => {
            let p = format!("{}/schemaCompatibilityStrategy", base(&namespace)?);
            c.call(M::PUT, &p, Some(&compatibility.to_ascii_uppercase()))
                .await?;
        }
        Namespaces::GetIsAllowAutoUpdateSchema { namespace } => {
            let v: Option<Value> = c
                .get(&format!("{}/isAllowAutoUpdateSchema", base(&namespace)?))
                .await?;
            print_json(&v.unwrap_or_default())?
        }
        Namespaces::SetIsAllowAutoUpdateSchema {
            namespace,
            enable,
            disable,
        } => {
            let on = on_off(enable, disable)?;
            let p = format!("{}/isAllowAutoUpdateSchema", base(&namespace)?);
            c.call(M::POST, &p, Some(&on)).await?;
        }
        Namespaces::GetSchemaValidationEnforce { namespace } => {
            let v: Option<Value> = c
                .get(&format!("{}/schemaValidationEnforced", base(&namespace)?))
                .await?;
            print_json(&v.unwrap_or_default())?
        }
        Namespaces::SetSchemaValidationEnforce {
            namespace,
            enable,
            disable,
        } => {
            let on = on_off(enable, disable)?;
            let p = format!("{}/schemaValidationEnforced", base(&namespace)?);
            c.call(M::POST, &p, Some(&on)).await?;
        }
        Namespaces::GetRetention { namespace } => {
            let r: Option<RetentionPolicies> =
                c.get(&format!("{}/retention", base(&namespace)?)).await?;
            print_json(&r)?
        }
        Namespaces::SetOffloadPolicies { policy, namespace } => {
            let p = format!("{}/offloadPolicies", base(&namespace)?);
            c.call(M::POST, &p, Some(&policy.policies()?)).await?;
        }
        Namespaces::GetOffloadPolicies { namespace } => {
            let p: Option<OffloadPolicies> = c
                .get(&format!("{}/offloadPolicies", base(&namespace)?))
                .await?;
            print_json(&p.unwrap_or_default())?
        }
        Namespaces::RemoveOffloadPolicies { namespace } => {
            let p = format!("{}/removeOffloadPolicies", base(&namespace)?);
            c.send(M::DELETE, &p).await?;
        }
        Namespaces::SetOffloadThreshold { namespace, size } => {
            let p = format!("{}/offloadThreshold", base(&namespace)?);
            c.call(M::PUT, &p, Some(&parse_size(&size)?)).await?;
        }
        Namespaces::GetOffloadThreshold { namespace } => {
            let v: Option<i64> = c
                .get(&format!("{}/offloadThreshold", base(&namespace)?))
                .await?;
            println!("{}", v.unwrap_or(-1));
        }
        Namespaces::SetOffloadDeletionLag { namespace, lag } => {
            let p = format!("{}/offloadDeletionLagMs", base(&namespace)?);
            c.call(M::PUT, &p, Some(&(parse_time_seconds(&lag)? * 1000)))
                .await?;
        }
        Namespaces::GetOffloadDeletionLag { namespace } => {
            let v: Option<i64> = c
                .get(&format!("{}/offloadDeletionLagMs", base(&namespace)?))
                .await?;
            match v {
                Some(ms) => println!("{} minute(s)", ms / 60_000),
                None => println!("Unset for namespace. Defaulting to broker setting."),
            }
        }
        Namespaces::ClearOffloadDeletionLag { namespace } => {
            let p = format!("{}/offloadDeletionLagMs", base(&namespace)?);
            c.send(M::DELETE, &p).await?;
        }
        Namespaces::SetHotTier { namespace, tier } => {
            let p = format!("{}/hotTier", base(&namespace)?);
            c.call(M::POST, &p, Some(&tier)).await?;
        }
        Namespaces::GetHotTier { namespace } => {
            let v: Option<String> = c.get(&format!("{}/hotTier", base(&namespace)?)).await?;
            println!("{}", v.unwrap_or_else(|| "local".into()));
        }
        Namespaces::RemoveHotTier { namespace } => {
            let p = format!("{}/hotTier", base(&namespace)?);
            c.send(M::DELETE, &p).await?;
        }
    }
    Ok(())
}

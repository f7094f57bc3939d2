//! pulsar-admin's `clusters`, `brokers` and `tenants` commands.

use clap::Subcommand;
use policy::types::{ClusterData, TenantInfo};
use serde_json::Value;

use super::client::Client;
use super::{path_segment, print_json, print_list};
use crate::offload_cli::OutputFormat;

#[derive(Debug, Subcommand)]
pub enum Clusters {
    /// List the clusters.
    List,
    /// A cluster's service URLs.
    Get { cluster: String },
    /// Record a cluster and where its brokers are reached.
    Create {
        cluster: String,
        #[command(flatten)]
        urls: ClusterUrls,
    },
    /// Change where a cluster's brokers are reached.
    Update {
        cluster: String,
        #[command(flatten)]
        urls: ClusterUrls,
    },
    /// Forget a cluster (not the one the broker serves).
    Delete { cluster: String },
}

#[derive(Debug, clap::Args)]
pub struct ClusterUrls {
    /// The cluster's web service URL (http://…).
    #[arg(long)]
    url: Option<String>,
    /// Its TLS web service URL (https://…).
    #[arg(long = "url-secure")]
    url_secure: Option<String>,
    /// Its binary protocol URL (pulsar://…).
    #[arg(long = "broker-url")]
    broker_url: Option<String>,
    /// Its TLS binary protocol URL (pulsar+ssl://…).
    #[arg(long = "broker-url-secure")]
    broker_url_secure: Option<String>,
}

impl ClusterUrls {
    fn data(self) -> ClusterData {
        ClusterData {
            service_url: self.url,
            service_url_tls: self.url_secure,
            broker_service_url: self.broker_url,
            broker_service_url_tls: self.broker_url_secure,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Brokers {
    /// List the live brokers of a cluster (host:webServicePort).
    List { cluster: String },
    /// The bundles a broker owns.
    Namespaces {
        cluster: String,
        /// The broker (host:webServicePort).
        #[arg(long)]
        url: String,
    },
    /// The broker every broker names as leader.
    LeaderBroker,
    /// Where the brokers' metadata lives.
    GetInternalConfiguration,
    /// Write a message to the broker's heartbeat topic and read it back.
    Healthcheck {
        /// V2 (the only heartbeat topic tierlog has).
        #[arg(long = "topic-version")]
        topic_version: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum Tenants {
    /// List the tenants.
    List,
    /// A tenant's admin roles and allowed clusters.
    Get { tenant: String },
    /// Create a tenant.
    Create {
        tenant: String,
        #[command(flatten)]
        info: TenantArgs,
    },
    /// Replace a tenant's admin roles and allowed clusters.
    Update {
        tenant: String,
        #[command(flatten)]
        info: TenantArgs,
    },
    /// Delete a tenant (refused while it has namespaces).
    Delete { tenant: String },
}

#[derive(Debug, clap::Args)]
pub struct TenantArgs {
    /// Comma-separated roles that administrate the tenant.
    #[arg(long = "admin-roles", short = 'r', default_value = "")]
    admin_roles: String,
    /// Comma-separated clusters the tenant may use.
    #[arg(long = "allowed-clusters", short = 'c', default_value = "standalone")]
    allowed_clusters: String,
}

fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

impl TenantArgs {
    fn info(&self) -> TenantInfo {
        TenantInfo {
            admin_roles: list(&self.admin_roles),
            allowed_clusters: list(&self.allowed_clusters),
        }
    }
}

pub(super) async fn clusters(
    c: &Client,
    cmd: Clusters,
    output: OutputFormat,
) -> anyhow::Result<()> {
    use reqwest::Method as M;
    let path = |name: &str| format!("/admin/v2/clusters/{}", path_segment(name));
    match cmd {
        Clusters::List => {
            let names: Vec<String> = c.get("/admin/v2/clusters").await?.unwrap_or_default();
            print_list(&names, output)?;
        }
        Clusters::Get { cluster } => {
            let data: Option<Value> = c.get(&path(&cluster)).await?;
            print_json(&data.unwrap_or_default())?;
        }
        Clusters::Create { cluster, urls } => {
            c.call(M::PUT, &path(&cluster), Some(&urls.data())).await?;
        }
        Clusters::Update { cluster, urls } => {
            c.call(M::POST, &path(&cluster), Some(&urls.data())).await?;
        }
        Clusters::Delete { cluster } => {
            c.send(M::DELETE, &path(&cluster)).await?;
        }
    }
    Ok(())
}

pub(super) async fn brokers(c: &Client, cmd: Brokers, output: OutputFormat) -> anyhow::Result<()> {
    match cmd {
        Brokers::List { cluster } => {
            let ids: Vec<String> = c
                .get(&format!("/admin/v2/brokers/{}", path_segment(&cluster)))
                .await?
                .unwrap_or_default();
            print_list(&ids, output)?
        }
        Brokers::Namespaces { cluster, url } => {
            let owned: Option<Value> = c
                .get(&format!(
                    "/admin/v2/brokers/{}/{url}/ownedNamespaces",
                    path_segment(&cluster)
                ))
                .await?;
            print_json(&owned.unwrap_or_default())?;
        }
        Brokers::LeaderBroker => {
            let leader: Option<Value> = c.get("/admin/v2/brokers/leaderBroker").await?;
            print_json(&leader.unwrap_or_default())?;
        }
        Brokers::GetInternalConfiguration => {
            let conf: Option<Value> = c.get("/admin/v2/brokers/internal-configuration").await?;
            print_json(&conf.unwrap_or_default())?;
        }
        Brokers::Healthcheck { topic_version } => {
            let p = match topic_version {
                Some(v) => format!("/admin/v2/brokers/health?topicVersion={}", path_segment(&v)),
                None => "/admin/v2/brokers/health".into(),
            };
            c.send(reqwest::Method::GET, &p).await?;
            println!("ok");
        }
    }
    Ok(())
}

pub(super) async fn tenants(c: &Client, cmd: Tenants, output: OutputFormat) -> anyhow::Result<()> {
    use reqwest::Method as M;
    // Encoded, so the server sees the name as given (and refuses a bad one itself).
    let path = |name: &str| format!("/admin/v2/tenants/{}", path_segment(name));
    match cmd {
        Tenants::List => {
            let tenants: Vec<String> = c.get("/admin/v2/tenants").await?.unwrap_or_default();
            print_list(&tenants, output)?
        }
        Tenants::Get { tenant } => {
            let info: Option<Value> = c.get(&path(&tenant)).await?;
            print_json(&info.unwrap_or_default())?;
        }
        Tenants::Create { tenant, info } => {
            c.call(M::PUT, &path(&tenant), Some(&info.info())).await?;
        }
        Tenants::Update { tenant, info } => {
            c.call(M::POST, &path(&tenant), Some(&info.info())).await?;
        }
        Tenants::Delete { tenant } => {
            c.send(M::DELETE, &path(&tenant)).await?;
        }
    }
    Ok(())
}

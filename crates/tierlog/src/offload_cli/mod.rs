//! `tierlog offload …`: tools that work on offloaded objects straight from the object store,
//! without a broker (`dump` one ledger, `scrub` a location or a topic, `recover` the ledger lists
//! of topics from what the tier holds, `gc` orphaned objects and uploads).

pub mod dump;
pub mod gc;
pub mod recover;
pub mod scrub;

use offload::{BlobStoreOffloader, Driver, Location, OffloadConfig};

/// Output format of the CLI tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

/// Where the offloaded objects are (credentials come from the environment, as the broker's).
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// Offload driver: aws-s3, S3, google-cloud-storage, azureblob or filesystem.
    #[arg(long)]
    pub driver: Option<String>,
    /// Bucket (container for azureblob); not used by the filesystem driver.
    #[arg(long, default_value = "")]
    pub bucket: String,
    /// Service endpoint of an S3-compatible store (or Azure endpoint).
    #[arg(long)]
    pub endpoint: Option<String>,
    #[arg(long)]
    pub region: Option<String>,
    /// Directory of the filesystem driver.
    #[arg(long)]
    pub path: Option<std::path::PathBuf>,
}

impl StoreArgs {
    /// An offloader (and reader) for that location.
    pub async fn offloader(&self) -> anyhow::Result<BlobStoreOffloader> {
        let Some(driver) = &self.driver else {
            anyhow::bail!(
                "--driver is required (aws-s3, S3, google-cloud-storage, azureblob or filesystem)"
            );
        };
        let driver = Driver::parse(driver)?;
        if driver == Driver::Filesystem && self.path.is_none() {
            anyhow::bail!("--path is required with the filesystem driver");
        }
        let location = Location::new(
            driver,
            Some(self.bucket.clone()),
            self.region.clone(),
            self.endpoint.clone(),
            self.path.clone().unwrap_or_default(),
        );
        Ok(BlobStoreOffloader::new(OffloadConfig::new(location)).await?)
    }
}

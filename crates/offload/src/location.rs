//! Where offloaded objects live: the storage family (driver) and its bucket, container or
//! directory. A [`Location`] is recorded with every offloaded ledger, so the ledger is read and
//! deleted where it was written whatever the configuration says later. It is converted to and
//! from Pulsar's driver-metadata map (`bucket`, `region`, `serviceEndpoint`, …) only where that map
//! is persisted ([`Location::driver_metadata`], [`Location::from_driver_metadata`]).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use crate::error::{OffloadError, Result};

/// A storage family, selected by `managedLedgerOffloadDriver` (case-insensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Driver {
    AwsS3,
    S3,
    GoogleCloudStorage,
    AzureBlob,
    Filesystem,
}

impl Driver {
    pub const NAMES: [&'static str; 5] = [
        "aws-s3",
        "S3",
        "google-cloud-storage",
        "azureblob",
        "filesystem",
    ];

    pub fn parse(name: &str) -> Result<Driver> {
        match name.to_ascii_lowercase().as_str() {
            "aws-s3" => Ok(Driver::AwsS3),
            "s3" => Ok(Driver::S3),
            "google-cloud-storage" => Ok(Driver::GoogleCloudStorage),
            "azureblob" => Ok(Driver::AzureBlob),
            "filesystem" => Ok(Driver::Filesystem),
            _ => Err(OffloadError::Config(format!(
                "unknown managedLedgerOffloadDriver {name:?} (supported: {})",
                Driver::NAMES.join(", ")
            ))),
        }
    }

    /// The driver name as Pulsar's configuration spells it (and the offload context records it).
    pub fn name(self) -> &'static str {
        match self {
            Driver::AwsS3 => "aws-s3",
            Driver::S3 => "S3",
            Driver::GoogleCloudStorage => "google-cloud-storage",
            Driver::AzureBlob => "azureblob",
            Driver::Filesystem => "filesystem",
        }
    }

    /// Pulsar's provider identifier, stored as `managedLedgerOffloadDriver` in driver metadata.
    fn provider_id(self) -> &'static str {
        match self {
            Driver::AwsS3 => "AWS_S3",
            Driver::S3 => "S3",
            Driver::GoogleCloudStorage => "GOOGLE_CLOUD_STORAGE",
            Driver::AzureBlob => "AZURE_BLOB",
            Driver::Filesystem => "FILESYSTEM",
        }
    }

    /// The prefix of this driver's own configuration keys (`s3ManagedLedgerOffloadBucket`, …).
    pub fn key_prefix(self) -> &'static str {
        match self {
            Driver::AwsS3 | Driver::S3 => "s3ManagedLedgerOffload",
            Driver::GoogleCloudStorage => "gcsManagedLedgerOffload",
            Driver::AzureBlob | Driver::Filesystem => "managedLedgerOffload",
        }
    }
}

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which of Pulsar's two S3 drivers: `aws-s3` (AWS, endpoint optional) or `S3` (any
/// S3-compatible endpoint, path-style addressing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum S3Flavor {
    Aws,
    Compatible,
}

/// Where one offloader's objects go.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Location {
    S3 {
        flavor: S3Flavor,
        bucket: String,
        region: Option<String>,
        endpoint: Option<String>,
    },
    Gcs {
        bucket: String,
        region: Option<String>,
        endpoint: Option<String>,
    },
    Azure {
        container: String,
        endpoint: Option<String>,
    },
    Filesystem {
        path: PathBuf,
    },
}

/// A storage family's naming rules for buckets or containers (its documented ones).
struct NameRules {
    what: &'static str,
    min: usize,
    max: usize,
    /// Characters allowed besides lowercase ASCII letters and digits.
    extra: &'static str,
    /// `--` is refused (Azure containers).
    no_double_dash: bool,
}

/// S3's rules (AWS's general-purpose buckets; S3-compatible stores follow them).
const S3_BUCKET: NameRules = NameRules {
    what: "S3 bucket name (3-63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit)",
    min: 3,
    max: 63,
    extra: ".-",
    no_double_dash: false,
};
const GCS_BUCKET: NameRules = NameRules {
    what: "GCS bucket name (3-222 lowercase letters, digits, '.', '-' and '_', starting and ending with a letter or digit)",
    min: 3,
    max: 222,
    extra: ".-_",
    no_double_dash: false,
};
const AZURE_CONTAINER: NameRules = NameRules {
    what: "Azure container name (3-63 lowercase letters, digits and single '-', starting and ending with a letter or digit)",
    min: 3,
    max: 63,
    extra: "-",
    no_double_dash: true,
};

impl NameRules {
    fn check(&self, name: &str) -> std::result::Result<(), String> {
        let len = name.chars().count();
        if len < self.min || len > self.max {
            return Err(format!("{len} characters"));
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || self.extra.contains(*c)))
        {
            return Err(format!("{c:?} is not allowed"));
        }
        let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
        if !alnum(name.chars().next()) || !alnum(name.chars().last()) {
            return Err("it must start and end with a letter or digit".into());
        }
        if name.contains("..") {
            return Err("'..' is not allowed".into());
        }
        if self.no_double_dash && name.contains("--") {
            return Err("'--' is not allowed".into());
        }
        Ok(())
    }
}

/// An endpoint must be an absolute `http` or `https` URL with a host.
fn check_endpoint(endpoint: &str) -> std::result::Result<(), String> {
    let url = url::Url::parse(endpoint).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "scheme {:?} (expected http or https)",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("no host".into());
    }
    Ok(())
}

/// A ledger's location as Pulsar records it in the offload context: the driver name and a map
/// of `managedLedgerOffloadDriver`, `bucket`, `region`, `serviceEndpoint` (object stores) or
/// `storageBasePath` (filesystem).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DriverMetadata {
    pub driver_name: String,
    pub properties: BTreeMap<String, String>,
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|v| !v.is_empty())
}

impl Location {
    /// A location of `driver` from the values of its settings (empty values count as unset).
    pub fn new(
        driver: Driver,
        bucket: Option<String>,
        region: Option<String>,
        endpoint: Option<String>,
        path: PathBuf,
    ) -> Location {
        let bucket = bucket.unwrap_or_default();
        let (region, endpoint) = (non_empty(region), non_empty(endpoint));
        match driver {
            Driver::AwsS3 | Driver::S3 => Location::S3 {
                flavor: if driver == Driver::S3 {
                    S3Flavor::Compatible
                } else {
                    S3Flavor::Aws
                },
                bucket,
                region,
                endpoint,
            },
            Driver::GoogleCloudStorage => Location::Gcs {
                bucket,
                region,
                endpoint,
            },
            Driver::AzureBlob => Location::Azure {
                container: bucket,
                endpoint,
            },
            Driver::Filesystem => Location::Filesystem { path },
        }
    }

    /// An S3-compatible store (`S3` driver) at `endpoint`.
    pub fn s3_compatible(bucket: &str, endpoint: &str) -> Location {
        Location::S3 {
            flavor: S3Flavor::Compatible,
            bucket: bucket.into(),
            region: None,
            endpoint: Some(endpoint.into()),
        }
    }

    /// A local directory (`filesystem` driver).
    pub fn filesystem(path: impl Into<PathBuf>) -> Location {
        Location::Filesystem { path: path.into() }
    }

    pub fn driver(&self) -> Driver {
        match self {
            Location::S3 {
                flavor: S3Flavor::Aws,
                ..
            } => Driver::AwsS3,
            Location::S3 { .. } => Driver::S3,
            Location::Gcs { .. } => Driver::GoogleCloudStorage,
            Location::Azure { .. } => Driver::AzureBlob,
            Location::Filesystem { .. } => Driver::Filesystem,
        }
    }

    /// The S3 region to sign with (AWS's default when none is set).
    pub fn region_or_default(&self) -> String {
        match self {
            Location::S3 {
                region: Some(r), ..
            }
            | Location::Gcs {
                region: Some(r), ..
            } => r.clone(),
            _ => "us-east-1".into(),
        }
    }

    /// The service endpoint, if one is set.
    pub fn endpoint(&self) -> Option<&str> {
        match self {
            Location::S3 { endpoint, .. }
            | Location::Gcs { endpoint, .. }
            | Location::Azure { endpoint, .. } => endpoint.as_deref(),
            Location::Filesystem { .. } => None,
        }
    }

    /// Whether objects here carry Pulsar's user metadata (the filesystem driver stores none).
    pub fn has_object_metadata(&self) -> bool {
        !matches!(self, Location::Filesystem { .. })
    }

    /// Checks what Pulsar checks, with messages that name the setting.
    pub fn validate(&self) -> Result<()> {
        let prefix = self.driver().key_prefix();
        let bucket = match self {
            Location::S3 { bucket, .. } | Location::Gcs { bucket, .. } => bucket,
            Location::Azure { container, .. } => container,
            Location::Filesystem { .. } => return Ok(()),
        };
        if bucket.is_empty() {
            return Err(OffloadError::Config(format!(
                "{prefix}Bucket is required for the {} offload driver",
                self.driver()
            )));
        }
        if let Location::S3 {
            flavor: S3Flavor::Compatible,
            endpoint: None,
            ..
        } = self
        {
            return Err(OffloadError::Config(
                "the S3 offload driver requires s3ManagedLedgerOffloadServiceEndpoint".into(),
            ));
        }
        Ok(())
    }

    /// [`validate`](Self::validate) and the rules a location must follow to be written to: the
    /// store's naming rules for buckets and containers, and an endpoint that is an `http(s)` URL.
    /// Only for new offload settings: ledgers already offloaded are read wherever they are.
    pub fn validate_target(&self) -> Result<()> {
        self.validate()?;
        let prefix = self.driver().key_prefix();
        let (name, rules, endpoint) = match self {
            Location::S3 {
                bucket, endpoint, ..
            } => (bucket, &S3_BUCKET, endpoint),
            Location::Gcs {
                bucket, endpoint, ..
            } => (bucket, &GCS_BUCKET, endpoint),
            Location::Azure {
                container,
                endpoint,
            } => (container, &AZURE_CONTAINER, endpoint),
            Location::Filesystem { .. } => return Ok(()),
        };
        if let Err(why) = rules.check(name) {
            return Err(OffloadError::Config(format!(
                "{prefix}Bucket {name:?} is not a valid {} for the {} offload driver: {why}",
                rules.what,
                self.driver()
            )));
        }
        if let Some(e) = endpoint
            && let Err(why) = check_endpoint(e)
        {
            return Err(OffloadError::Config(format!(
                "{prefix}ServiceEndpoint {e:?} is not a valid endpoint: {why}"
            )));
        }
        Ok(())
    }

    /// The location as Pulsar's offload context records it.
    pub fn driver_metadata(&self) -> DriverMetadata {
        let driver = self.driver();
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        let (bucket, region, endpoint) = match self {
            Location::Filesystem { path } => {
                let properties =
                    BTreeMap::from([("storageBasePath".to_string(), path.display().to_string())]);
                return DriverMetadata {
                    driver_name: driver.name().into(),
                    properties,
                };
            }
            Location::S3 {
                bucket,
                region,
                endpoint,
                ..
            }
            | Location::Gcs {
                bucket,
                region,
                endpoint,
            } => (bucket.clone(), text(region), text(endpoint)),
            Location::Azure {
                container,
                endpoint,
            } => (container.clone(), String::new(), text(endpoint)),
        };
        let properties = BTreeMap::from([
            (
                "managedLedgerOffloadDriver".to_string(),
                driver.provider_id().to_string(),
            ),
            ("bucket".to_string(), bucket),
            ("region".to_string(), region),
            ("serviceEndpoint".to_string(), endpoint),
        ]);
        DriverMetadata {
            driver_name: driver.name().into(),
            properties,
        }
    }

    /// The location recorded in an offload context.
    pub fn from_driver_metadata(meta: &DriverMetadata) -> Result<Location> {
        let driver = Driver::parse(&meta.driver_name)?;
        let get = |k: &str| non_empty(meta.properties.get(k).cloned());
        let path = match driver {
            Driver::Filesystem => PathBuf::from(get("storageBasePath").ok_or_else(|| {
                OffloadError::Config("a filesystem offload context without storageBasePath".into())
            })?),
            _ => PathBuf::new(),
        };
        let location = Location::new(
            driver,
            get("bucket"),
            get("region"),
            get("serviceEndpoint"),
            path,
        );
        location.validate()?;
        Ok(location)
    }
}

impl fmt::Display for Location {
    /// The bucket, container or directory, for messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::S3 { bucket, .. } | Location::Gcs { bucket, .. } => f.write_str(bucket),
            Location::Azure { container, .. } => f.write_str(container),
            Location::Filesystem { path } => write!(f, "{}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_names_are_case_insensitive_and_unknown_ones_listed() {
        assert_eq!(Driver::parse("AWS-S3").unwrap(), Driver::AwsS3);
        assert_eq!(Driver::parse("s3").unwrap(), Driver::S3);
        assert_eq!(Driver::parse("AzureBlob").unwrap(), Driver::AzureBlob);
        let e = Driver::parse("tape").unwrap_err().to_string();
        assert!(
            e.contains("unknown managedLedgerOffloadDriver \"tape\""),
            "{e}"
        );
        assert!(
            e.contains("aws-s3, S3, google-cloud-storage, azureblob, filesystem"),
            "{e}"
        );
    }

    #[test]
    fn validation_names_the_setting() {
        let e = |l: Location| l.validate().unwrap_err().to_string();
        assert!(
            e(Location::new(
                Driver::AwsS3,
                None,
                None,
                None,
                PathBuf::new()
            ))
            .contains("s3ManagedLedgerOffloadBucket is required")
        );
        assert!(
            e(Location::new(
                Driver::S3,
                Some("b".into()),
                None,
                None,
                PathBuf::new()
            ))
            .contains("requires s3ManagedLedgerOffloadServiceEndpoint")
        );
        assert!(
            e(Location::new(
                Driver::GoogleCloudStorage,
                None,
                None,
                None,
                PathBuf::new()
            ))
            .contains("gcsManagedLedgerOffloadBucket is required")
        );
        assert!(Location::filesystem("").validate().is_ok());
    }

    #[test]
    fn targets_follow_the_stores_naming_rules_and_take_only_http_endpoints() {
        let at = |driver, bucket: &str, endpoint: Option<&str>| {
            Location::new(
                driver,
                Some(bucket.into()),
                None,
                endpoint.map(Into::into),
                PathBuf::new(),
            )
            .validate_target()
            .map_err(|e| e.to_string())
        };
        let local = Some("http://127.0.0.1:9000");
        for ok in ["abc", "my-bucket.logs", "0a9", &"b".repeat(63)] {
            assert_eq!(at(Driver::S3, ok, local), Ok(()), "{ok}");
        }
        for bad in [
            "bad bucket name!!",
            "ab",
            "Upper",
            "-dash",
            "dot.",
            "a..b",
            "under_score",
            &"b".repeat(64),
        ] {
            let e = at(Driver::AwsS3, bad, None).unwrap_err();
            assert!(
                e.contains(&format!(
                    "s3ManagedLedgerOffloadBucket {bad:?} is not a valid S3 bucket name"
                )),
                "{bad}: {e}"
            );
        }
        assert_eq!(at(Driver::GoogleCloudStorage, "under_score", None), Ok(()));
        assert!(
            at(Driver::AzureBlob, "a--b", None)
                .unwrap_err()
                .contains("'--'")
        );
        assert!(
            at(Driver::AzureBlob, "a.b", None)
                .unwrap_err()
                .contains("'.' is not allowed")
        );
        for bad in ["not a url", "ftp://host", "http://", "127.0.0.1:9000"] {
            let e = at(Driver::S3, "abc", Some(bad)).unwrap_err();
            assert!(
                e.contains(&format!(
                    "s3ManagedLedgerOffloadServiceEndpoint {bad:?} is not a valid endpoint"
                )),
                "{bad}: {e}"
            );
        }
        assert_eq!(
            at(Driver::S3, "abc", Some("https://s3.example.com:443/base")),
            Ok(())
        );
        // Names already written by Pulsar under older rules still read: only targets are checked.
        assert!(
            Location::s3_compatible("Legacy_Bucket", "http://127.0.0.1:9000")
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn every_location_survives_its_driver_metadata() {
        let all = [
            Location::s3_compatible("b1", "http://127.0.0.1:9000"),
            Location::new(
                Driver::AwsS3,
                Some("b2".into()),
                Some("eu-west-1".into()),
                None,
                PathBuf::new(),
            ),
            Location::new(
                Driver::GoogleCloudStorage,
                Some("g".into()),
                None,
                None,
                PathBuf::new(),
            ),
            Location::new(
                Driver::AzureBlob,
                Some("c".into()),
                None,
                Some("http://127.0.0.1:10000/devstoreaccount1".into()),
                PathBuf::new(),
            ),
            Location::filesystem("/srv/tier"),
        ];
        for l in all {
            let m = l.driver_metadata();
            assert_eq!(Location::from_driver_metadata(&m).unwrap(), l, "{m:?}");
        }
        let m = Location::s3_compatible("b1", "http://e").driver_metadata();
        assert_eq!(m.driver_name, "S3");
        assert_eq!(m.properties["bucket"], "b1");
        assert_eq!(m.properties["managedLedgerOffloadDriver"], "S3");
        assert_eq!(m.properties["region"], "");
    }
}

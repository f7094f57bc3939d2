//! Incomplete multipart uploads of an S3 bucket: ListMultipartUploads and AbortMultipartUpload,
//! which object_store does not offer. Requests are signed for the location's bucket and
//! credentials ([`crate::s3_signing`]) and sent with reqwest (object_store's HTTP client).

use serde::Deserialize;

use crate::config::Credentials;
use crate::error::{OffloadError, Result};
use crate::location::Location;
use crate::s3_signing::{S3Target, without_url};

/// One upload that was started and neither completed nor aborted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncompleteUpload {
    pub key: String,
    pub upload_id: String,
    pub initiated_ms: u64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListResult {
    #[serde(default)]
    upload: Vec<UploadXml>,
    #[serde(default)]
    is_truncated: bool,
    next_key_marker: Option<String>,
    next_upload_id_marker: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UploadXml {
    key: String,
    upload_id: String,
    initiated: String,
}

fn failed(location: &Location, op: &'static str, detail: String) -> OffloadError {
    OffloadError::Multipart {
        op,
        location: location.to_string(),
        detail,
    }
}

/// Every incomplete multipart upload of the location's bucket (none for non-S3 locations).
pub async fn list(location: &Location, config: &Credentials) -> Result<Vec<IncompleteUpload>> {
    let Some(target) = S3Target::new(location, config, None).await? else {
        return Ok(Vec::new());
    };
    let client = reqwest::Client::new();
    let mut out = Vec::new();
    let mut markers: Option<(String, String)> = None;
    loop {
        let mut query: Vec<(&str, &str)> = vec![("uploads", "")];
        if let Some((k, u)) = &markers {
            query.push(("key-marker", k));
            query.push(("upload-id-marker", u));
        }
        let creds = target.credentials().await?;
        let request = target.signed(&client, &creds, reqwest::Method::GET, None, &query, &[])?;
        let response = request.send().await.map_err(|e| {
            failed(
                location,
                "listing multipart uploads",
                without_url(e).to_string(),
            )
        })?;
        let status = response.status();
        let body = response.text().await.map_err(|e| {
            failed(
                location,
                "listing multipart uploads",
                without_url(e).to_string(),
            )
        })?;
        if !status.is_success() {
            return Err(failed(
                location,
                "listing multipart uploads",
                format!(
                    "HTTP {status}: {}",
                    body.chars().take(300).collect::<String>()
                ),
            ));
        }
        let page: ListResult = quick_xml::de::from_str(&body)
            .map_err(|e| failed(location, "listing multipart uploads", e.to_string()))?;
        for u in page.upload {
            let initiated_ms = u
                .initiated
                .parse::<jiff::Timestamp>()
                .map(|t| t.as_millisecond().max(0) as u64)
                .map_err(|e| {
                    failed(
                        location,
                        "listing multipart uploads",
                        format!("upload of {}: initiated {:?}: {e}", u.key, u.initiated),
                    )
                })?;
            out.push(IncompleteUpload {
                key: u.key,
                upload_id: u.upload_id,
                initiated_ms,
            });
        }
        match (
            page.is_truncated,
            page.next_key_marker,
            page.next_upload_id_marker,
        ) {
            (true, Some(k), Some(u)) => markers = Some((k, u)),
            _ => return Ok(out),
        }
    }
}

/// Aborts one upload (its parts are freed). Aborting one that is gone succeeds.
pub async fn abort(
    location: &Location,
    config: &Credentials,
    upload: &IncompleteUpload,
) -> Result<()> {
    let Some(target) = S3Target::new(location, config, None).await? else {
        return Ok(());
    };
    let creds = target.credentials().await?;
    let response = target
        .signed(
            &reqwest::Client::new(),
            &creds,
            reqwest::Method::DELETE,
            Some(&upload.key),
            &[("uploadId", &upload.upload_id)],
            &[],
        )?
        .send()
        .await
        .map_err(|e| {
            failed(
                location,
                "aborting a multipart upload",
                without_url(e).to_string(),
            )
        })?;
    let status = response.status();
    if status.is_success() || status == reqwest::StatusCode::NOT_FOUND {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    Err(failed(
        location,
        "aborting a multipart upload",
        format!(
            "{} (upload {}): HTTP {status}: {}",
            upload.key,
            upload.upload_id,
            body.chars().take(300).collect::<String>()
        ),
    ))
}

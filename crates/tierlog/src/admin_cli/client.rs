//! The admin REST client: one request at a time, Pulsar's `{"reason": …}` errors turned into
//! messages that end with the HTTP status, as pulsar-admin prints them.

use anyhow::{Context, bail};
use policy::types::ErrorBody;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub(super) struct Client {
    pub(super) http: reqwest::Client,
    pub(super) base: String,
}

impl Client {
    /// One request; an error status becomes an error carrying the server's reason.
    pub(super) async fn call<B: Serialize>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
    ) -> anyhow::Result<String> {
        let url = format!("{}{path}", self.base.trim_end_matches('/'));
        let mut req = self
            .http
            .request(method, &url)
            .header("Accept", "application/json");
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(serde_json::to_vec(b)?);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach the admin service at {}", self.base))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        if status >= 400 {
            let reason = serde_json::from_str::<ErrorBody>(&text)
                .map(|e| e.reason)
                .unwrap_or(text);
            bail!("{reason}\n\nReason: HTTP {status}");
        }
        Ok(text)
    }

    /// A request without a body.
    pub(super) async fn send(&self, method: reqwest::Method, path: &str) -> anyhow::Result<String> {
        self.call(method, path, None::<&()>).await
    }

    /// A GET of Pulsar's type `T` (`None` for an empty answer).
    pub(super) async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<Option<T>> {
        let text = self.send(reqwest::Method::GET, path).await?;
        if text.is_empty() {
            return Ok(None);
        }
        serde_json::from_str(&text)
            .map(Some)
            .with_context(|| format!("unexpected answer from {path}: {text}"))
    }
}

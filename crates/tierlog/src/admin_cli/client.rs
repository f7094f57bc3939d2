//! The admin REST client: one request at a time, Pulsar's `{"reason": …}` errors turned into
//! messages that end with the HTTP status, as pulsar-admin prints them.

use anyhow::{Context, bail};
use policy::types::ErrorBody;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A message as the admin API sends it.
pub(super) struct RawMessage {
    pub(super) headers: reqwest::header::HeaderMap,
    pub(super) body: bytes::Bytes,
}

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

    /// A GET of a message as Pulsar's admin API answers it (payload body, `X-Pulsar-*`
    /// headers); `None` when the server has none there (404).
    pub(super) async fn get_message(&self, path: &str) -> anyhow::Result<Option<RawMessage>> {
        let url = format!("{}{path}", self.base.trim_end_matches('/'));
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("cannot reach the admin service at {}", self.base))?;
        let status = resp.status().as_u16();
        if status == 404 {
            return Ok(None);
        }
        let headers = resp.headers().clone();
        let body = resp.bytes().await?;
        if status >= 400 {
            let reason = serde_json::from_slice::<ErrorBody>(&body)
                .map(|e| e.reason)
                .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
            bail!("{reason}\n\nReason: HTTP {status}");
        }
        Ok(Some(RawMessage { headers, body }))
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

//! [`MetadataStore`] on etcd's v3 API: the metadata of brokers that share their topics.
//!
//! A key's version is etcd's own per-key `version` (1 at creation, +1 on every put, gone with
//! the key), so compare-and-set is one transaction comparing it: the write and the read of the
//! new version happen in that transaction, and a failed comparison reads what is there instead,
//! so a conflict reports the version found. Nothing is cached: every call is one round trip.
//! Clients are tonic channels over every configured endpoint (etcd's members), cloned per call,
//! so no lock is held across a request.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use crate::{Expected, MetaError, MetadataStore, Result, Versioned};

/// Generated from etcd's vendored protos (`build.rs`).
#[allow(clippy::all, clippy::pedantic, dead_code, missing_docs, rustdoc::all)]
mod pb {
    pub mod mvccpb {
        tonic::include_proto!("mvccpb");
    }
    pub mod authpb {
        tonic::include_proto!("authpb");
    }
    pub mod etcdserverpb {
        tonic::include_proto!("etcdserverpb");
    }
}

use pb::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use pb::etcdserverpb::kv_client::KvClient;
use pb::etcdserverpb::range_request::{SortOrder, SortTarget};
use pb::etcdserverpb::request_op::Request;
use pb::etcdserverpb::response_op::Response;
use pb::etcdserverpb::{
    Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest, TxnResponse,
};

/// How long one request to etcd may take, and connecting to a member.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Metadata in an etcd cluster.
#[derive(Clone)]
pub struct EtcdStore {
    kv: KvClient<Channel>,
    /// The endpoints, for messages.
    endpoints: String,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

fn backend(op: &'static str, key: &str, detail: impl std::fmt::Display) -> MetaError {
    MetaError::Backend {
        op,
        key: key.to_string(),
        detail: detail.to_string(),
    }
}

fn status(op: &'static str, key: &str, s: tonic::Status) -> MetaError {
    backend(op, key, format!("etcd: {:?}: {}", s.code(), s.message()))
}

/// The end of the key range holding every key that starts with `prefix` (etcd's `range_end`).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Empty, or all 0xff: every key from `prefix` on.
    vec![0]
}

fn version_is(key: &str, version: i64) -> Compare {
    Compare {
        result: CompareResult::Equal as i32,
        target: CompareTarget::Version as i32,
        key: key.as_bytes().to_vec(),
        target_union: Some(TargetUnion::Version(version)),
        range_end: Vec::new(),
    }
}

fn range(key: &str) -> RequestOp {
    RequestOp {
        request: Some(Request::RequestRange(RangeRequest {
            key: key.as_bytes().to_vec(),
            ..Default::default()
        })),
    }
}

/// The version of `key` in the `i`th response of a transaction (None: absent).
fn version_in(resp: &TxnResponse, i: usize) -> Option<u64> {
    match resp.responses.get(i).and_then(|r| r.response.as_ref()) {
        Some(Response::ResponseRange(r)) => r.kvs.first().map(|kv| kv.version as u64),
        _ => None,
    }
}

impl EtcdStore {
    /// Connects to the etcd members at `endpoints` (`http://host:port`) and checks that one
    /// answers.
    pub async fn connect(endpoints: &[String]) -> Result<EtcdStore> {
        let shown = endpoints.join(",");
        if endpoints.is_empty() {
            return Err(backend("connect", "", "no etcd endpoint given"));
        }
        let mut list = Vec::with_capacity(endpoints.len());
        for e in endpoints {
            let ep = Endpoint::from_shared(e.clone())
                .map_err(|err| backend("connect", "", format!("etcd endpoint {e:?}: {err}")))?
                .connect_timeout(CONNECT_TIMEOUT)
                .timeout(REQUEST_TIMEOUT);
            list.push(ep);
        }
        let store = EtcdStore {
            kv: KvClient::new(Channel::balance_list(list.into_iter())),
            endpoints: shown.clone(),
        };
        // One request now, so a wrong address stops start-up instead of the first topic.
        let probe = RangeRequest {
            key: b"/".to_vec(),
            count_only: true,
            ..Default::default()
        };
        tokio::time::timeout(REQUEST_TIMEOUT, store.kv.clone().range(probe))
            .await
            .map_err(|_| backend("connect", "", format!("no answer from etcd at {shown}")))?
            .map_err(|s| {
                backend(
                    "connect",
                    "",
                    format!("etcd at {shown}: {:?}: {}", s.code(), s.message()),
                )
            })?;
        Ok(store)
    }

    async fn txn(&self, op: &'static str, key: &str, req: TxnRequest) -> Result<TxnResponse> {
        self.kv
            .clone()
            .txn(req)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| status(op, key, s))
    }
}

#[async_trait::async_trait]
impl MetadataStore for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<Versioned>> {
        let resp = self
            .kv
            .clone()
            .range(RangeRequest {
                key: key.as_bytes().to_vec(),
                ..Default::default()
            })
            .await
            .map_err(|s| status("get", key, s))?
            .into_inner();
        Ok(resp.kvs.into_iter().next().map(|kv| Versioned {
            value: kv.value,
            version: kv.version as u64,
        }))
    }

    async fn put(&self, key: &str, value: Vec<u8>, expected: Expected) -> Result<u64> {
        let compare = match expected {
            Expected::Any => vec![],
            Expected::Absent => vec![version_is(key, 0)],
            Expected::Version(v) => vec![version_is(
                key,
                i64::try_from(v).map_err(|_| backend("put", key, "version out of range"))?,
            )],
        };
        let put = RequestOp {
            request: Some(Request::RequestPut(PutRequest {
                key: key.as_bytes().to_vec(),
                value,
                ..Default::default()
            })),
        };
        let resp = self
            .txn(
                "put",
                key,
                TxnRequest {
                    compare,
                    success: vec![put, range(key)],
                    failure: vec![range(key)],
                },
            )
            .await?;
        if resp.succeeded {
            version_in(&resp, 1)
                .ok_or_else(|| backend("put", key, "etcd did not return the written key"))
        } else {
            Err(MetaError::Conflict {
                key: key.to_string(),
                expected,
                found: version_in(&resp, 0),
            })
        }
    }

    async fn delete(&self, key: &str, expected: Expected) -> Result<()> {
        let compare = match expected {
            Expected::Any => vec![],
            Expected::Absent => vec![version_is(key, 0)],
            Expected::Version(v) => vec![version_is(
                key,
                i64::try_from(v).map_err(|_| backend("delete", key, "version out of range"))?,
            )],
        };
        let delete = RequestOp {
            request: Some(Request::RequestDeleteRange(DeleteRangeRequest {
                key: key.as_bytes().to_vec(),
                ..Default::default()
            })),
        };
        let resp = self
            .txn(
                "delete",
                key,
                TxnRequest {
                    compare,
                    success: vec![delete],
                    failure: vec![range(key)],
                },
            )
            .await?;
        if resp.succeeded {
            Ok(())
        } else {
            Err(MetaError::Conflict {
                key: key.to_string(),
                expected,
                found: version_in(&resp, 0),
            })
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let resp = self
            .kv
            .clone()
            .range(RangeRequest {
                key: prefix.as_bytes().to_vec(),
                range_end: prefix_end(prefix.as_bytes()),
                keys_only: true,
                sort_order: SortOrder::Ascend as i32,
                sort_target: SortTarget::Key as i32,
                ..Default::default()
            })
            .await
            .map_err(|s| status("list", prefix, s))?
            .into_inner();
        resp.kvs
            .into_iter()
            .map(|kv| {
                String::from_utf8(kv.key).map_err(|_| backend("list", prefix, "a key is not UTF-8"))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_ends_cover_exactly_the_prefix() {
        assert_eq!(prefix_end(b"/a"), b"/b");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b""), [0]);
        assert_eq!(prefix_end(b"\xff\xff"), [0]);
    }
}

//! [`MetadataStore`] on etcd's v3 API: the metadata of brokers that share their topics.
//!
//! A key's version is etcd's `mod_revision`, so compare-and-set is one transaction comparing
//! it, and a transaction of several operations is one etcd transaction: one compare per
//! precondition, the writes on success, a range of every key on failure (so a conflict reports
//! the version found). Leases and watches are etcd's own. Nothing is cached: every call is one
//! round trip. Clients are tonic channels over every configured endpoint (etcd's members),
//! cloned per call, so no lock is held across a request.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tonic::transport::{Channel, Endpoint};

use crate::{
    Expected, LeaseId, MetaError, MetadataStore, Op, Result, Versioned, WatchEvent, WatchStream,
};

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
use pb::etcdserverpb::lease_client::LeaseClient;
use pb::etcdserverpb::range_request::{SortOrder, SortTarget};
use pb::etcdserverpb::request_op::Request;
use pb::etcdserverpb::response_op::Response;
use pb::etcdserverpb::watch_client::WatchClient;
use pb::etcdserverpb::watch_request::RequestUnion;
use pb::etcdserverpb::{
    CompactionRequest, Compare, DeleteRangeRequest, LeaseGrantRequest, LeaseKeepAliveRequest,
    LeaseRevokeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest, TxnResponse,
    WatchCreateRequest, WatchRequest, WatchResponse,
};
use pb::mvccpb::event::EventType;

/// How long one request to etcd may take, and connecting to a member.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Keys per request of a listing, and key/value pairs per request of a scan: a prefix's keys
/// are read a page at a time, so no answer outgrows the client's message limit.
const LIST_PAGE_KEYS: i64 = 1000;
const SCAN_PAGE_KEYS: i64 = 128;
/// The largest answer the client takes: gRPC's default 4 MiB would refuse a page of large
/// values (a topic's ledger list can reach megabytes).
const MAX_ANSWER_BYTES: usize = 64 << 20;

/// Metadata in an etcd cluster.
#[derive(Clone)]
pub struct EtcdStore {
    kv: KvClient<Channel>,
    lease: LeaseClient<Channel>,
    watch: WatchClient<Channel>,
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

fn compare(key: &str, target: CompareTarget, value: TargetUnion) -> Compare {
    Compare {
        result: CompareResult::Equal as i32,
        target: target as i32,
        key: key.as_bytes().to_vec(),
        target_union: Some(value),
        range_end: Vec::new(),
    }
}

/// The etcd comparison that holds exactly when `expected` does (none for `Any`).
fn precondition(key: &str, expected: Expected) -> Result<Option<Compare>> {
    Ok(match expected {
        Expected::Any => None,
        // An absent key has version 0 in etcd's comparisons.
        Expected::Absent => Some(compare(
            key,
            CompareTarget::Version,
            TargetUnion::Version(0),
        )),
        Expected::Version(v) => {
            let v = i64::try_from(v).map_err(|_| backend("commit", key, "version out of range"))?;
            Some(compare(
                key,
                CompareTarget::Mod,
                TargetUnion::ModRevision(v),
            ))
        }
    })
}

fn range(key: &str) -> RequestOp {
    RequestOp {
        request: Some(Request::RequestRange(RangeRequest {
            key: key.as_bytes().to_vec(),
            ..Default::default()
        })),
    }
}

/// The version of the key in the `i`th response of a transaction (None: absent).
fn version_in(resp: &TxnResponse, i: usize) -> Option<u64> {
    match resp.responses.get(i).and_then(|r| r.response.as_ref()) {
        Some(Response::ResponseRange(r)) => r.kvs.first().map(|kv| kv.mod_revision as u64),
        _ => None,
    }
}

fn lease_secs(ttl: Duration) -> i64 {
    // Whole seconds, rounded up: a lease never ends before the TTL asked for.
    i64::try_from(ttl.as_millis().div_ceil(1000))
        .unwrap_or(i64::MAX)
        .max(1)
}

/// The events of one watch response, or the reason the watch ended.
fn watch_events(prefix: &str, resp: WatchResponse) -> Vec<Result<WatchEvent>> {
    if resp.canceled {
        return vec![Err(MetaError::WatchLost {
            prefix: prefix.to_string(),
            detail: format!("etcd cancelled the watch: {}", resp.cancel_reason),
        })];
    }
    resp.events
        .into_iter()
        .filter_map(|ev| {
            let kv = ev.kv?;
            let key = match String::from_utf8(kv.key) {
                Ok(k) => k,
                Err(_) => {
                    return Some(Err(MetaError::WatchLost {
                        prefix: prefix.to_string(),
                        detail: "a key is not UTF-8".into(),
                    }));
                }
            };
            Some(Ok(match EventType::try_from(ev.r#type) {
                Ok(EventType::Delete) => WatchEvent::Delete { key },
                _ => WatchEvent::Put {
                    key,
                    version: kv.mod_revision as u64,
                },
            }))
        })
        .collect()
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
        let channel = Channel::balance_list(list.into_iter());
        let store = EtcdStore {
            kv: KvClient::new(channel.clone()).max_decoding_message_size(MAX_ANSWER_BYTES),
            lease: LeaseClient::new(channel.clone()),
            watch: WatchClient::new(channel),
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

    /// The store's current revision: every write so far has a version at or below it.
    pub async fn revision(&self) -> Result<u64> {
        let resp = self
            .kv
            .clone()
            .range(RangeRequest {
                key: b"/".to_vec(),
                count_only: true,
                ..Default::default()
            })
            .await
            .map_err(|s| status("revision", "", s))?
            .into_inner();
        resp.header
            .map(|h| h.revision as u64)
            .ok_or_else(|| backend("revision", "", "etcd's answer has no header"))
    }

    /// Drops every version older than `revision` of every key but its latest (etcd's
    /// compaction). A revision compacted already (by another broker) is not an error.
    pub async fn compact(&self, revision: u64) -> Result<()> {
        let request = CompactionRequest {
            revision: revision as i64,
            physical: false,
        };
        match self.kv.clone().compact(request).await {
            Ok(_) => Ok(()),
            // etcd's answer to a revision at or below its last compaction.
            Err(s) if s.code() == tonic::Code::OutOfRange => Ok(()),
            Err(s) => Err(status("compact", &revision.to_string(), s)),
        }
    }

    /// Every key under `prefix` in key order, `page` keys per request, all pages read at the
    /// first page's revision (one snapshot however many pages). One answer is bounded by the
    /// client's message limit: a prefix with more keys than that fit would fail in one request.
    async fn range_pages(
        &self,
        op: &'static str,
        prefix: &str,
        keys_only: bool,
        page: i64,
        mut each: impl FnMut(pb::mvccpb::KeyValue) -> Result<()>,
    ) -> Result<()> {
        let range_end = prefix_end(prefix.as_bytes());
        let mut from = prefix.as_bytes().to_vec();
        let mut revision = 0;
        loop {
            let resp = self
                .kv
                .clone()
                .range(RangeRequest {
                    key: from,
                    range_end: range_end.clone(),
                    limit: page,
                    revision,
                    keys_only,
                    sort_order: SortOrder::Ascend as i32,
                    sort_target: SortTarget::Key as i32,
                    ..Default::default()
                })
                .await
                .map_err(|s| status(op, prefix, s))?
                .into_inner();
            if revision == 0 {
                revision = resp.header.as_ref().map(|h| h.revision).unwrap_or(0);
            }
            let last = resp.kvs.last().map(|kv| kv.key.clone());
            for kv in resp.kvs {
                each(kv)?;
            }
            match last {
                // The next page starts right after the last key of this one.
                Some(mut key) if resp.more => {
                    key.push(0);
                    from = key;
                }
                _ => return Ok(()),
            }
        }
    }
}

/// Keeps etcd's history from growing without end, as Kubernetes' API server does for its own:
/// every `interval`, the history before the revision read one interval earlier is compacted.
/// etcd keeps every version of every key until compacted, and once its space quota (2 GiB by
/// default) is full it refuses every write: for object-tier topics, every acknowledgement (a
/// 100-topic broker writes ~400 versions a second at 2000 msg/s). Only reads and watches of
/// revisions older than one interval are affected; this store's watches and paged reads start
/// at the current revision. Runs until its runtime stops.
pub async fn compact_history(store: EtcdStore, interval: Duration) {
    let mut previous: Option<u64> = None;
    loop {
        match store.revision().await {
            Ok(now) => {
                if let Some(before) = previous.filter(|r| *r < now) {
                    match store.compact(before).await {
                        Ok(()) => tracing::debug!(revision = before, "etcd history compacted"),
                        Err(e) => {
                            tracing::warn!(error = %e, "compacting etcd's history failed (retried)")
                        }
                    }
                }
                previous = Some(now);
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading etcd's revision to compact its history failed (retried)")
            }
        }
        tokio::time::sleep(interval).await;
    }
}

fn key_string(op: &'static str, prefix: &str, key: Vec<u8>) -> Result<String> {
    String::from_utf8(key).map_err(|_| backend(op, prefix, "a key is not UTF-8"))
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
            version: kv.mod_revision as u64,
        }))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        self.range_pages("list", prefix, true, LIST_PAGE_KEYS, |kv| {
            keys.push(key_string("list", prefix, kv.key)?);
            Ok(())
        })
        .await?;
        Ok(keys)
    }

    async fn scan(&self, prefix: &str) -> Result<Vec<(String, Versioned)>> {
        let mut out = Vec::new();
        self.range_pages("scan", prefix, false, SCAN_PAGE_KEYS, |kv| {
            let version = kv.mod_revision as u64;
            out.push((
                key_string("scan", prefix, kv.key)?,
                Versioned {
                    value: kv.value,
                    version,
                },
            ));
            Ok(())
        })
        .await?;
        Ok(out)
    }

    async fn commit(&self, ops: Vec<Op>) -> Result<u64> {
        crate::check_distinct_keys(&ops)?;
        let first_key = ops.first().map(|o| o.key().to_string()).unwrap_or_default();
        let mut compares = Vec::new();
        let mut writes = Vec::new();
        let mut lease_used = None;
        for op in &ops {
            if let Some(c) = precondition(op.key(), op.expected())? {
                compares.push(c);
            }
            match op {
                Op::Put {
                    key, value, lease, ..
                } => {
                    lease_used = lease_used.or(*lease);
                    writes.push(RequestOp {
                        request: Some(Request::RequestPut(PutRequest {
                            key: key.as_bytes().to_vec(),
                            value: value.clone(),
                            lease: lease.map_or(0, |l| l.0),
                            ..Default::default()
                        })),
                    });
                }
                Op::Delete { key, .. } => writes.push(RequestOp {
                    request: Some(Request::RequestDeleteRange(DeleteRangeRequest {
                        key: key.as_bytes().to_vec(),
                        ..Default::default()
                    })),
                }),
                Op::Check { .. } => {}
            }
        }
        let req = TxnRequest {
            compare: compares,
            success: writes,
            failure: ops.iter().map(|o| range(o.key())).collect(),
        };
        let resp = match self.kv.clone().txn(req).await {
            Ok(r) => r.into_inner(),
            // The only key-independent "not found" a transaction can meet is its lease's.
            Err(s) if s.code() == tonic::Code::NotFound && lease_used.is_some() => {
                return Err(MetaError::LeaseExpired {
                    lease: lease_used.unwrap_or(LeaseId(0)),
                });
            }
            Err(s) => return Err(status("commit", &first_key, s)),
        };
        if resp.succeeded {
            return resp
                .header
                .map(|h| h.revision as u64)
                .ok_or_else(|| backend("commit", &first_key, "etcd returned no revision"));
        }
        for (i, op) in ops.iter().enumerate() {
            let found = version_in(&resp, i);
            if !crate::holds(op.expected(), found) {
                return Err(MetaError::Conflict {
                    key: op.key().to_string(),
                    expected: op.expected(),
                    found,
                });
            }
        }
        // Every precondition holds now: it failed against a value changed since.
        Err(MetaError::Conflict {
            key: first_key,
            expected: ops.first().map_or(Expected::Any, Op::expected),
            found: version_in(&resp, 0),
        })
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId> {
        let resp = self
            .lease
            .clone()
            .lease_grant(LeaseGrantRequest {
                ttl: lease_secs(ttl),
                id: 0,
            })
            .await
            .map_err(|s| status("grant lease", "", s))?
            .into_inner();
        if !resp.error.is_empty() {
            return Err(backend("grant lease", "", resp.error));
        }
        Ok(LeaseId(resp.id))
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<()> {
        let key = lease.to_string();
        let req = futures::stream::iter([LeaseKeepAliveRequest { id: lease.0 }]);
        let mut answers = self
            .lease
            .clone()
            .lease_keep_alive(req)
            .await
            .map_err(|s| status("keep lease alive", &key, s))?
            .into_inner();
        match answers.message().await {
            Ok(Some(r)) if r.ttl > 0 => Ok(()),
            // etcd answers an ended lease with a TTL of 0.
            Ok(Some(_)) => Err(MetaError::LeaseExpired { lease }),
            Ok(None) => Err(backend("keep lease alive", &key, "etcd closed the stream")),
            Err(s) => Err(status("keep lease alive", &key, s)),
        }
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<()> {
        match self
            .lease
            .clone()
            .lease_revoke(LeaseRevokeRequest { id: lease.0 })
            .await
        {
            Ok(_) => Ok(()),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
            Err(s) => Err(status("revoke lease", &lease.to_string(), s)),
        }
    }

    async fn watch(&self, prefix: &str) -> Result<WatchStream> {
        // The request side stays open for as long as the stream lives: closing it would end
        // the watch on etcd's side.
        let (mut requests, rx) = futures::channel::mpsc::channel::<WatchRequest>(1);
        requests
            .send(WatchRequest {
                request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
                    key: prefix.as_bytes().to_vec(),
                    range_end: prefix_end(prefix.as_bytes()),
                    ..Default::default()
                })),
            })
            .await
            .map_err(|e| backend("watch", prefix, e))?;
        let mut responses = self
            .watch
            .clone()
            .watch(rx)
            .await
            .map_err(|s| status("watch", prefix, s))?
            .into_inner();
        // Established once etcd confirms it: from here on no change is missed.
        match responses.message().await {
            Ok(Some(r)) if r.created && !r.canceled => {}
            Ok(Some(r)) => {
                return Err(backend(
                    "watch",
                    prefix,
                    format!("etcd refused the watch: {}", r.cancel_reason),
                ));
            }
            Ok(None) => return Err(backend("watch", prefix, "etcd closed the watch stream")),
            Err(s) => return Err(status("watch", prefix, s)),
        }
        let prefix = prefix.to_string();
        let stream =
            futures::stream::unfold(Some((responses, requests, prefix)), |state| async move {
                let (mut responses, requests, prefix) = state?;
                let batch = match responses.message().await {
                    Ok(Some(r)) => watch_events(&prefix, r),
                    Ok(None) => vec![Err(MetaError::WatchLost {
                        prefix: prefix.clone(),
                        detail: "etcd closed the watch stream".into(),
                    })],
                    Err(s) => vec![Err(MetaError::WatchLost {
                        prefix: prefix.clone(),
                        detail: format!("etcd: {:?}: {}", s.code(), s.message()),
                    })],
                };
                let ended = batch.iter().any(|e| e.is_err());
                let next = (!ended).then_some((responses, requests, prefix));
                Some((futures::stream::iter(batch), next))
            })
            .flatten();
        Ok(Box::pin(stream))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Expected, MetadataStore};

    /// The value of `key` at `revision`, read with etcd's own range (the store's API reads the
    /// latest only).
    async fn value_at(
        s: &EtcdStore,
        key: &str,
        revision: u64,
    ) -> std::result::Result<Vec<u8>, tonic::Status> {
        let resp =
            s.kv.clone()
                .range(RangeRequest {
                    key: key.as_bytes().to_vec(),
                    revision: revision as i64,
                    ..Default::default()
                })
                .await?
                .into_inner();
        Ok(resp
            .kvs
            .into_iter()
            .next()
            .map(|kv| kv.value)
            .unwrap_or_default())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_history_is_compacted_one_interval_behind() {
        let etcd = testkit::etcd::EtcdServer::start();
        let s = EtcdStore::connect(&[etcd.endpoint()]).await.unwrap();
        let first = s.put("/k", b"1".to_vec(), Expected::Any).await.unwrap();
        assert_eq!(value_at(&s, "/k", first).await.unwrap(), b"1");
        let interval = std::time::Duration::from_millis(100);
        let started = std::time::Instant::now();
        let task = tokio::spawn(compact_history(s.clone(), interval));
        // Writes go on while it runs; the first version goes once an interval has passed
        // since a later revision was read.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut n = 2;
        let gone = loop {
            s.put("/k", n.to_string().into_bytes(), Expected::Any)
                .await
                .unwrap();
            n += 1;
            match value_at(&s, "/k", first).await {
                Err(status) => break status,
                Ok(_) => {
                    assert!(std::time::Instant::now() < deadline, "never compacted");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            }
        };
        assert_eq!(gone.code(), tonic::Code::OutOfRange, "{gone:?}");
        assert!(
            started.elapsed() >= interval,
            "compacted one interval behind, not at once"
        );
        task.abort();
        // The latest version stays, and compacting an older revision again is no error.
        assert_eq!(
            s.get("/k").await.unwrap().unwrap().value,
            (n - 1).to_string().into_bytes()
        );
        s.compact(first).await.unwrap();
    }

    #[test]
    fn prefix_ends_cover_exactly_the_prefix() {
        assert_eq!(prefix_end(b"/a"), b"/b");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b""), [0]);
        assert_eq!(prefix_end(b"\xff\xff"), [0]);
    }
}

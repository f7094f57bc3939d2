//! Security on the web port: the listeners (plain and TLS) that tell handlers who is at the
//! other end, authentication of every request (401 with Pulsar's `{"reason": …}`), and the
//! access rule each endpoint is registered with (403 otherwise).
//!
//! Routes are added through [`Api`], which takes the rule together with the handler: an
//! endpoint cannot be added without one, and the list of registered routes is what the
//! authorization test walks.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, MatchedPath, RawPathParams, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use protocol::{Domain, NamespaceName, TopicName};
use security::{NamespaceOperation, Role, TopicOperation};

use super::{ApiError, WebState};

/// Who is at the other end of an HTTP connection.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    pub addr: SocketAddr,
    /// Whether the connection is TLS (the web port it came in on).
    pub tls: bool,
    /// The verified TLS client certificate's common name.
    pub tls_common_name: Option<String>,
}

/// The plain web port.
pub struct PlainListener(pub tokio::net::TcpListener);

impl axum::serve::Listener for PlainListener {
    type Io = tokio::net::TcpStream;
    type Addr = PeerInfo;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = axum::serve::Listener::accept(&mut self.0).await;
        (
            io,
            PeerInfo {
                addr,
                tls: false,
                tls_common_name: None,
            },
        )
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(PeerInfo {
            addr: self.0.local_addr()?,
            tls: false,
            tls_common_name: None,
        })
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, PlainListener>>
    for PeerInfo
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, PlainListener>) -> Self {
        stream.remote_addr().clone()
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsListener>>
    for PeerInfo
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// The TLS web port: handshakes run in their own tasks (a slow client holds up no one) and
/// completed connections are handed to the server.
pub struct TlsListener {
    local: SocketAddr,
    ready: tokio::sync::mpsc::Receiver<(
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        PeerInfo,
    )>,
}

impl TlsListener {
    /// `deadline`: how long a client has for its handshake (`keepAliveIntervalSeconds`).
    pub fn new(
        tcp: tokio::net::TcpListener,
        tls: Arc<security::TlsServer>,
        deadline: std::time::Duration,
    ) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, ready) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (stream, addr) = match tcp.accept().await {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accepting a web connection failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    return;
                }
                let (tls, tx) = (Arc::clone(&tls), tx.clone());
                tokio::spawn(async move {
                    match tls.accept(stream, deadline).await {
                        Ok(a) => {
                            let peer = PeerInfo {
                                addr,
                                tls: true,
                                tls_common_name: a.client_common_name,
                            };
                            let _ = tx.send((a.stream, peer)).await;
                        }
                        Err(e) => tracing::debug!(peer = %addr, error = %e, "TLS handshake failed"),
                    }
                });
            }
        });
        Ok(TlsListener { local, ready })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = PeerInfo;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // The accept task ends only with the runtime.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(PeerInfo {
            addr: self.local,
            tls: true,
            tls_common_name: None,
        })
    }
}

/// The role a request authenticated as (`None`: authentication is off).
#[derive(Debug, Clone)]
pub struct Caller(pub Option<Role>);

/// Whether a request came over TLS (redirects then point at the other broker's TLS port).
#[derive(Debug, Clone, Copy)]
pub struct OverTls(pub bool);

/// Paths that answer without authentication (Pulsar's `authenticateMetricsEndpoint=false`).
const OPEN_PATHS: &[&str] = &["/metrics"];

/// Authenticates every request (except [`OPEN_PATHS`]) and records its [`Caller`].
pub async fn authenticate(
    State(s): State<Arc<WebState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let authn = &s.authenticator;
    let over_tls = req
        .extensions()
        .get::<ConnectInfo<PeerInfo>>()
        .is_some_and(|c| c.0.tls);
    req.extensions_mut().insert(OverTls(over_tls));
    if !authn.is_enabled() || OPEN_PATHS.contains(&req.uri().path()) {
        req.extensions_mut().insert(Caller(None));
        return next.run(req).await;
    }
    let peer = req
        .extensions()
        .get::<ConnectInfo<PeerInfo>>()
        .map(|c| c.0.clone());
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let tls_cn = peer.as_ref().and_then(|p| p.tls_common_name.as_deref());
    match authn.authenticate_http(header, tls_cn) {
        Ok(a) => {
            req.extensions_mut().insert(Caller(a.map(|a| a.role)));
            next.run(req).await
        }
        Err(e) => {
            tracing::info!(
                peer = ?peer.map(|p| p.addr),
                path = %req.uri().path(),
                reason = %e,
                "authentication failed"
            );
            let mut r = ApiError::new(
                StatusCode::UNAUTHORIZED,
                format!("Authentication required: {e}"),
            )
            .into_response();
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            r
        }
    }
}

/// What an endpoint requires, in terms of its path parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Anyone authenticated.
    Authenticated,
    SuperUser,
    /// Admins of `{t}`.
    TenantAdmin,
    /// The operation on `{t}/{ns}` (admin, or listing its topics).
    Namespace(NamespaceOperation),
    /// The operation on `[{domain}/]{t}/{ns}/{topic}` (admin, or lookup: produce or consume).
    Topic(TopicOperation<'static>),
}

impl Rule {
    /// Admins of `{t}` for `{t}/{ns}`.
    pub const NAMESPACE_ADMIN: Rule = Rule::Namespace(NamespaceOperation::Admin);
    /// `consume` on `{t}/{ns}` (listing its topics).
    pub const NAMESPACE_TOPICS: Rule = Rule::Namespace(NamespaceOperation::ListTopics);
    /// Admins of the topic's tenant.
    pub const TOPIC_ADMIN: Rule = Rule::Topic(TopicOperation::Admin);
    /// `produce` or `consume` on the topic (lookups, stats).
    pub const TOPIC_LOOKUP: Rule = Rule::Topic(TopicOperation::Lookup);
}

/// The router under construction, with the rule of every route.
pub struct Api {
    router: Router<Arc<WebState>>,
    rules: HashMap<(Method, &'static str), Rule>,
}

impl Api {
    pub fn new() -> Self {
        Api {
            router: Router::new(),
            rules: HashMap::new(),
        }
    }

    /// Adds `handler` for `method` on `path`, allowed by `rule`.
    pub fn route(
        mut self,
        method: Method,
        path: &'static str,
        rule: Rule,
        handler: MethodRouter<Arc<WebState>>,
    ) -> Self {
        let previous = self.rules.insert((method.clone(), path), rule);
        assert!(previous.is_none(), "{method} {path} registered twice");
        self.router = self.router.route(path, handler);
        self
    }

    /// Every registered (method, path) with its rule (what the authorization test walks).
    #[cfg(test)]
    pub fn rules(&self) -> impl Iterator<Item = (&Method, &'static str, Rule)> {
        self.rules.iter().map(|((m, p), r)| (m, *p, *r))
    }

    /// The router, each route behind its access check.
    pub fn into_router(self, state: &Arc<WebState>) -> Router<Arc<WebState>> {
        let rules = Arc::new(self.rules);
        let state = Arc::clone(state);
        self.router.route_layer(axum::middleware::from_fn(
            move |req: Request, next: Next| {
                let (rules, state) = (Arc::clone(&rules), Arc::clone(&state));
                async move { authorize(state, rules, req, next).await }
            },
        ))
    }
}

type Rules = HashMap<(Method, &'static str), Rule>;

/// Checks the matched route's rule for the request's caller.
async fn authorize(state: Arc<WebState>, rules: Arc<Rules>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    match check(&state, &rules, &mut parts).await {
        Ok(()) => next.run(Request::from_parts(parts, body)).await,
        Err(e) => e.into_response(),
    }
}

async fn check(
    state: &WebState,
    rules: &Rules,
    req: &mut axum::http::request::Parts,
) -> Result<(), ApiError> {
    use axum::extract::FromRequestParts;
    let path = req
        .extensions
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    // HEAD is answered by GET's handler, and its rule.
    let method = if req.method == Method::HEAD {
        Method::GET
    } else {
        req.method.clone()
    };
    let Some(rule) = rules.get(&(method, path.as_str())).copied() else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("{} {path} has no access rule", req.method),
        ));
    };
    let caller = req
        .extensions
        .get::<Caller>()
        .cloned()
        .unwrap_or(Caller(None));
    let params: HashMap<String, String> = RawPathParams::from_request_parts(req, &())
        .await
        .map(|p| {
            p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let param = |k: &str| params.get(k).map(String::as_str).unwrap_or_default();
    let ns = || NamespaceName::new(param("t"), param("ns"));
    let topic = || -> Result<TopicName, ApiError> {
        let domain = match params.get("domain") {
            Some(d) => Domain::parse(d).ok_or_else(|| {
                ApiError::new(
                    StatusCode::PRECONDITION_FAILED,
                    format!("unknown topic domain {d:?}"),
                )
            })?,
            None => Domain::Persistent,
        };
        Ok(ns()?.topic(domain, param("topic"))?)
    };
    let role = caller.0.as_ref();
    let policy = &state.policy;
    use policy::Access as A;
    let result = match rule {
        Rule::Authenticated => policy.check_access(role, A::Authenticated).await,
        Rule::SuperUser => policy.check_access(role, A::SuperUser).await,
        Rule::TenantAdmin => policy.check_access(role, A::TenantAdmin(param("t"))).await,
        Rule::Namespace(op) => {
            let ns = ns()?;
            policy.check_access(role, A::Namespace(&ns, op)).await
        }
        Rule::Topic(op) => {
            let t = topic()?;
            policy.check_access(role, A::Topic(&t, op)).await
        }
    };
    if let Err(policy::PolicyError::NotAuthorized(reason)) = &result {
        tracing::info!(role = ?role.map(Role::as_str), method = %req.method, path = %req.uri.path(), "{reason}");
    }
    Ok(result?)
}

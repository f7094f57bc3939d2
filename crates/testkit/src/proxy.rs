//! An HTTP/1.1 proxy on 127.0.0.1 in front of a real server, for fault and latency injection.
//!
//! Each request is read whole (head + `Content-Length` body), then either answered locally with an
//! error status (a fault rule matched) or, after the configured delay, forwarded on a fresh
//! upstream connection with `Connection: close`, and the response streamed back. The proxy runs
//! its own runtime on its own thread, so any test can use it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone)]
struct Rule {
    method: String,
    path_contains: String,
    skip: usize,
    seen: usize,
    /// How many requests the rule acts on (after the skipped ones); `None`: all.
    times: Option<usize>,
    action: Action,
}

/// What a fault rule does to a request it matches.
#[derive(Debug, Clone, Copy)]
enum Action {
    /// Answers this status itself.
    Answer(u16),
    /// Forwards the request with one byte of its body flipped (corruption on the way).
    CorruptBody,
}

/// One request as the proxy received it: method, path and header lines (names lower-cased).
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl SeenRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    delay: Mutex<Duration>,
    /// Every request's head, in arrival order.
    seen: Mutex<Vec<SeenRequest>>,
    rules: Mutex<Vec<Rule>>,
    requests: AtomicU64,
    failed: AtomicU64,
    /// Requests being forwarded now, and the most ever at once.
    forwarding: AtomicU64,
    max_forwarding: AtomicU64,
}

/// Counts a request as being forwarded while it lives.
struct Forwarding<'a>(&'a State);

impl<'a> Forwarding<'a> {
    fn start(state: &'a State) -> Self {
        let now = state.forwarding.fetch_add(1, Ordering::SeqCst) + 1;
        state.max_forwarding.fetch_max(now, Ordering::SeqCst);
        Forwarding(state)
    }
}

impl Drop for Forwarding<'_> {
    fn drop(&mut self) {
        self.0.forwarding.fetch_sub(1, Ordering::SeqCst);
    }
}

pub struct HttpProxy {
    pub port: u16,
    state: Arc<State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HttpProxy {
    /// Starts a proxy forwarding to `127.0.0.1:upstream_port`.
    pub fn start(upstream_port: u16) -> HttpProxy {
        let state = Arc::new(State::default());
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let port = std_listener.local_addr().expect("addr").port();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let st = Arc::clone(&state);
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("proxy runtime");
            rt.block_on(async move {
                let listener = TcpListener::from_std(std_listener).expect("listener");
                let accept = async {
                    loop {
                        let Ok((client, _)) = listener.accept().await else {
                            continue;
                        };
                        let st = Arc::clone(&st);
                        tokio::spawn(async move {
                            let _ = serve(client, upstream_port, st).await;
                        });
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stop_rx => {}
                }
            });
        });
        HttpProxy {
            port,
            state,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Delay added before forwarding each request.
    pub fn set_delay(&self, delay: Duration) {
        *self.state.delay.lock().unwrap_or_else(|p| p.into_inner()) = delay;
    }

    /// Answers `status` to every request whose method is `method` and whose path contains
    /// `path_contains`, after letting the first `skip` such requests through.
    pub fn fail(&self, method: &str, path_contains: &str, skip: usize, status: u16) {
        self.add_rule(method, path_contains, skip, Action::Answer(status));
    }

    /// Forwards every request whose method is `method` and whose path contains `path_contains`
    /// with one byte in the middle of its body flipped (a request without a body is forwarded
    /// as it is), after letting the first `skip` such requests through.
    pub fn corrupt_body(&self, method: &str, path_contains: &str, skip: usize) {
        self.add_rule(method, path_contains, skip, Action::CorruptBody);
    }

    /// Like [`HttpProxy::corrupt_body`], for one request only (a resent one goes through).
    pub fn corrupt_body_once(&self, method: &str, path_contains: &str, skip: usize) {
        self.add_limited_rule(method, path_contains, skip, Some(1), Action::CorruptBody);
    }

    fn add_rule(&self, method: &str, path_contains: &str, skip: usize, action: Action) {
        self.add_limited_rule(method, path_contains, skip, None, action);
    }

    fn add_limited_rule(
        &self,
        method: &str,
        path_contains: &str,
        skip: usize,
        times: Option<usize>,
        action: Action,
    ) {
        self.state
            .rules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Rule {
                method: method.into(),
                path_contains: path_contains.into(),
                skip,
                seen: 0,
                times,
                action,
            });
    }

    pub fn clear_faults(&self) {
        self.state
            .rules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// The most requests forwarded at once (from the end of reading a request to the store's
    /// answer, the added delay included).
    pub fn max_concurrent(&self) -> u64 {
        self.state.max_forwarding.load(Ordering::SeqCst)
    }

    /// The head of every request received so far.
    pub fn requests_seen(&self) -> Vec<SeenRequest> {
        self.state
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Requests received, and requests a fault rule matched (answered with an injected error or
    /// forwarded corrupted).
    pub fn counts(&self) -> (u64, u64) {
        (
            self.state.requests.load(Ordering::Relaxed),
            self.state.failed.load(Ordering::Relaxed),
        )
    }
}

impl Drop for HttpProxy {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn injected_fault(state: &State, method: &str, path: &str) -> Option<Action> {
    let mut rules = state.rules.lock().unwrap_or_else(|p| p.into_inner());
    for r in rules.iter_mut() {
        if r.method.eq_ignore_ascii_case(method) && path.contains(&r.path_contains) {
            r.seen += 1;
            if r.seen > r.skip && r.times.is_none_or(|t| r.seen - r.skip <= t) {
                return Some(r.action);
            }
        }
    }
    None
}

async fn serve(client: TcpStream, upstream_port: u16, state: Arc<State>) -> std::io::Result<()> {
    let (read, mut write) = client.into_split();
    let mut reader = BufReader::new(read);
    // Read the request head.
    let mut head_lines = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
        head_lines.push(line.trim_end().to_string());
    }
    let Some(request_line) = head_lines.first().cloned() else {
        return Ok(());
    };
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let content_length: usize = head_lines
        .iter()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; content_length];
    reader.read_exact(&mut body).await?;
    state.requests.fetch_add(1, Ordering::Relaxed);
    state
        .seen
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(SeenRequest {
            method: method.clone(),
            path: path.clone(),
            headers: head_lines
                .iter()
                .skip(1)
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                .collect(),
        });

    let fault = injected_fault(&state, &method, &path);
    if let Some(Action::CorruptBody) = fault {
        state.failed.fetch_add(1, Ordering::Relaxed);
        let middle = body.len() / 2;
        if let Some(b) = body.get_mut(middle) {
            *b ^= 0x5A;
        }
    }
    if let Some(Action::Answer(status)) = fault {
        state.failed.fetch_add(1, Ordering::Relaxed);
        let msg = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError</Code><Message>injected fault {status}</Message></Error>"
        );
        let resp = format!(
            "HTTP/1.1 {status} Injected\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{msg}",
            msg.len()
        );
        write.write_all(resp.as_bytes()).await?;
        return write.shutdown().await;
    }

    let forwarding = Forwarding::start(&state);
    let delay = *state.delay.lock().unwrap_or_else(|p| p.into_inner());
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut upstream = TcpStream::connect(("127.0.0.1", upstream_port)).await?;
    let mut head = String::new();
    for l in &head_lines {
        if l.split_once(':')
            .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("connection"))
        {
            continue;
        }
        head.push_str(l);
        head.push_str("\r\n");
    }
    head.push_str("Connection: close\r\n\r\n");
    upstream.write_all(head.as_bytes()).await?;
    upstream.write_all(&body).await?;

    // Response head: force Connection: close, then stream the rest.
    let (up_read, _up_write) = upstream.into_split();
    let mut up = BufReader::new(up_read);
    let mut resp_head = String::new();
    loop {
        let mut line = String::new();
        if up.read_line(&mut line).await? == 0 {
            break;
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
        if line
            .split_once(':')
            .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("connection"))
        {
            continue;
        }
        resp_head.push_str(&line);
    }
    resp_head.push_str("Connection: close\r\n\r\n");
    // The store has answered: the request stops counting before its client can see the answer
    // (and start another request in its place).
    drop(forwarding);
    write.write_all(resp_head.as_bytes()).await?;
    tokio::io::copy(&mut up, &mut write).await?;
    write.shutdown().await
}

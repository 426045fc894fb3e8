//! The one HTTP forwarder: a route and a request in, a status, headers and a
//! body (whole or chunked) out. One shared reqwest client pools connections
//! to every backend.
//!
//! Life of a forwarded call:
//!
//! ```text
//! ApiRequest ──build──▶ reqwest::Request ──send (connect ≤ connect_timeout)──▶ backend
//!                                                   │
//!    unary:  collect body (≤ max_unary_response_bytes, ≤ unary_timeout in all)
//!    stream: yield chunks (each ≤ stream_idle_timeout after the last)
//! ```

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::routes::Route;
use crate::wire::ApiRequest;

/// Default time allowed to open a TCP connection to a backend.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time allowed for a whole unary call to a backend.
pub const DEFAULT_UNARY_TIMEOUT: Duration = Duration::from_secs(60);
/// Default time allowed between two chunks of a streamed response (and before the first).
pub const DEFAULT_STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default most idle connections kept open to one backend: as many as the
/// default concurrent-call limit, so steady load never reconnects (a cap of
/// 32 made 64 concurrent callers open and close a backend connection per
/// call beyond the 32nd: 20,500 -> 25,000 calls/s when raised), yet a burst
/// of thousands of streams does not leave thousands of sockets idling.
pub const DEFAULT_MAX_IDLE_CONNECTIONS_PER_BACKEND: usize = 256;
/// Default cap on a unary response body held in memory before it is sent.
pub const DEFAULT_MAX_UNARY_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

/// Limits on the backend side of a call.
#[derive(Clone, Debug)]
pub struct UpstreamConfig {
    pub connect_timeout: Duration,
    pub unary_timeout: Duration,
    pub stream_idle_timeout: Duration,
    pub max_unary_response_bytes: usize,
    pub max_idle_connections_per_backend: usize,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            unary_timeout: DEFAULT_UNARY_TIMEOUT,
            stream_idle_timeout: DEFAULT_STREAM_IDLE_TIMEOUT,
            max_unary_response_bytes: DEFAULT_MAX_UNARY_RESPONSE_BYTES,
            max_idle_connections_per_backend: DEFAULT_MAX_IDLE_CONNECTIONS_PER_BACKEND,
        }
    }
}

/// Why forwarding failed. The `Display` text is the full detail for our own
/// log (it names the backend); what a caller may see is
/// [`UpstreamError::public_message`].
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("invalid HTTP method {0:?}")]
    BadMethod(String),
    #[error("invalid header {0:?}")]
    BadHeader(String),
    #[error("invalid backend URL {url:?}: {message}")]
    BadUrl { url: String, message: String },
    #[error("backend {url} is unavailable: {message}")]
    Unavailable {
        url: String,
        message: String,
        reason: &'static str,
    },
    #[error("backend {url} timed out after {after:?}")]
    Timeout { url: String, after: Duration },
    #[error("backend {url} failed: {message}")]
    Failed {
        url: String,
        message: String,
        reason: &'static str,
    },
    #[error("backend response exceeds the limit of {limit} bytes")]
    TooLarge { limit: usize },
}

impl UpstreamError {
    /// What a caller is told: the error class and a safe reason. Never the
    /// backend's scheme, host, port, path or query (URLs carry credentials),
    /// nor the HTTP client's error chain; those stay in our own log.
    pub fn public_message(&self) -> String {
        match self {
            UpstreamError::BadMethod(_) => "invalid HTTP method".into(),
            // The name may come from the route's own headers: not the caller's business.
            UpstreamError::BadHeader(_) => "invalid request header".into(),
            UpstreamError::BadUrl { .. } => "backend misconfigured: invalid route URL".into(),
            UpstreamError::Unavailable { reason, .. } => format!("backend unavailable: {reason}"),
            UpstreamError::Timeout { after, .. } => {
                format!("backend timed out after {after:?}")
            }
            UpstreamError::Failed { reason, .. } => format!("backend failed: {reason}"),
            UpstreamError::TooLarge { limit } => {
                format!("backend response exceeds the limit of {limit} bytes")
            }
        }
    }
}

/// A reason for a failed backend request that is safe to tell a caller: the
/// kind of the underlying I/O error where there is one, else reqwest's class.
fn safe_reason(e: &reqwest::Error) -> &'static str {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            match io.kind() {
                ConnectionRefused => return "connection refused",
                ConnectionReset => return "connection reset",
                ConnectionAborted => return "connection aborted",
                TimedOut => return "connect timed out",
                HostUnreachable | NetworkUnreachable => return "host unreachable",
                AddrNotAvailable => return "address not available",
                UnexpectedEof => return "connection closed early",
                _ => {}
            }
        }
        source = s.source();
    }
    let chain = error_chain(e).to_ascii_lowercase();
    if chain.contains("dns error") || chain.contains("failed to lookup") {
        "name resolution failed"
    } else if chain.contains("certificate") || chain.contains("tls") {
        "TLS handshake failed"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() {
        "response body interrupted"
    } else if e.is_decode() {
        "invalid response body"
    } else if e.is_request() {
        "request failed"
    } else {
        "HTTP error"
    }
}

/// Separates the values of a repeated header in the one map entry that
/// 2.0.0's head has per name (`Set-Cookie` may not be joined with commas; a
/// newline cannot occur inside a header value).
pub const REPEATED_HEADER_SEPARATOR: char = '\n';

/// Headers as a map, repeated names kept: their values joined by
/// [`REPEATED_HEADER_SEPARATOR`] in order.
pub fn header_map(headers: &[(String, String)]) -> std::collections::HashMap<String, String> {
    let mut map: std::collections::HashMap<String, String> =
        std::collections::HashMap::with_capacity(headers.len());
    for (name, value) in headers {
        map.entry(name.clone())
            .and_modify(|v| {
                v.push(REPEATED_HEADER_SEPARATOR);
                v.push_str(value);
            })
            .or_insert_with(|| value.clone());
    }
    map
}

/// Headers that describe one hop and must not be forwarded.
pub fn is_hop_by_hop(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "connection"
            | "keep-alive"
            | "transfer-encoding"
            | "upgrade"
            | "te"
            | "trailer"
            | "trailers"
            | "host"
            | "content-length"
    ) || n.starts_with("proxy-")
}

/// A backend's answer, before its body is read.
pub struct UpstreamResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    response: reqwest::Response,
    url: String,
    config: UpstreamConfig,
}

impl UpstreamResponse {
    /// Reads the whole body within the unary limits.
    pub async fn collect(self, deadline: tokio::time::Instant) -> Result<Bytes, UpstreamError> {
        let limit = self.config.max_unary_response_bytes;
        let url = self.url;
        let mut body = BytesMut::new();
        let mut stream = self.response.bytes_stream();
        loop {
            let next = tokio::time::timeout_at(deadline, stream.next())
                .await
                .map_err(|_| UpstreamError::Timeout {
                    url: url.clone(),
                    after: self.config.unary_timeout,
                })?;
            match next {
                None => return Ok(body.freeze()),
                Some(Ok(chunk)) => {
                    if body.len().saturating_add(chunk.len()) > limit {
                        return Err(UpstreamError::TooLarge { limit });
                    }
                    body.extend_from_slice(&chunk);
                }
                Some(Err(e)) => {
                    return Err(UpstreamError::Failed {
                        url,
                        message: error_chain(&e),
                        reason: safe_reason(&e),
                    })
                }
            }
        }
    }

    /// The body as chunks, each within the idle timeout of the previous one.
    pub fn chunks(self) -> impl Stream<Item = Result<Bytes, UpstreamError>> + Send + 'static {
        let idle = self.config.stream_idle_timeout;
        let url = self.url;
        let mut inner = Box::pin(self.response.bytes_stream());
        // One timer for the whole body, moved on only when it fires: a
        // chunk costs a clock read, not a timer armed and cancelled (token
        // streams carry hundreds of thousands of chunks a second).
        let mut timer = Box::pin(tokio::time::sleep(idle));
        let mut last_chunk = tokio::time::Instant::now();
        let mut done = false;
        futures::stream::poll_fn(move |cx| {
            use std::task::Poll;
            if done {
                return Poll::Ready(None);
            }
            match inner.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    last_chunk = tokio::time::Instant::now();
                    return Poll::Ready(Some(Ok(chunk)));
                }
                Poll::Ready(None) => {
                    done = true;
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(Err(e))) => {
                    done = true;
                    return Poll::Ready(Some(Err(UpstreamError::Failed {
                        url: url.clone(),
                        message: error_chain(&e),
                        reason: safe_reason(&e),
                    })));
                }
                Poll::Pending => {}
            }
            while std::future::Future::poll(timer.as_mut(), cx).is_ready() {
                let due = last_chunk + idle;
                if due <= tokio::time::Instant::now() {
                    done = true;
                    return Poll::Ready(Some(Err(UpstreamError::Timeout {
                        url: url.clone(),
                        after: idle,
                    })));
                }
                timer.as_mut().reset(due);
            }
            Poll::Pending
        })
    }
}

/// The shared forwarder.
#[derive(Clone)]
pub struct Upstream {
    client: reqwest::Client,
    config: UpstreamConfig,
    health: std::sync::Arc<Health>,
}

impl Upstream {
    pub fn new(config: UpstreamConfig) -> Result<Self, UpstreamError> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(config.max_idle_connections_per_backend)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| UpstreamError::Failed {
                url: String::new(),
                message: format!("cannot build HTTP client: {e}"),
                reason: "HTTP client unavailable",
            })?;
        Ok(Self {
            client,
            config,
            health: Default::default(),
        })
    }

    pub fn config(&self) -> &UpstreamConfig {
        &self.config
    }

    /// Sends the request to one of the route's backends (round-robin, with
    /// failover to the next when one refuses connections or times out before
    /// answering) and waits for the response head, at most `wait` per try.
    pub async fn send(
        &self,
        route: &Route,
        req: &ApiRequest,
        wait: Duration,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let method = reqwest::Method::from_bytes(req.method_or_default().as_bytes())
            .map_err(|_| UpstreamError::BadMethod(req.method.clone()))?;
        let mut headers = HeaderMap::with_capacity(req.headers.len() + route.policy.headers.len());
        let forwarded = req.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()));
        // The route's own headers come last and win (e.g. an API key).
        let own = route
            .policy
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()));
        for (name, value) in forwarded.chain(own) {
            if is_hop_by_hop(name) {
                continue;
            }
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| UpstreamError::BadHeader(name.to_string()))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| UpstreamError::BadHeader(name.to_string()))?;
            headers.insert(name, value);
        }
        let mut last_err = None;
        for url in self.health.order(&route.urls) {
            match self
                .send_one(&url, method.clone(), headers.clone(), req, wait)
                .await
            {
                Ok(resp) => {
                    self.health.succeeded(&url);
                    return Ok(resp);
                }
                Err(e @ (UpstreamError::Unavailable { .. } | UpstreamError::Timeout { .. })) => {
                    self.health.failed(&url);
                    tracing::warn!(%url, "backend failed, trying the next: {e}");
                    last_err = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or(UpstreamError::BadUrl {
            url: String::new(),
            message: "the route has no backend".into(),
        }))
    }

    async fn send_one(
        &self,
        url: &str,
        method: reqwest::Method,
        headers: HeaderMap,
        req: &ApiRequest,
        wait: Duration,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let parsed = reqwest::Url::parse(url).map_err(|e| UpstreamError::BadUrl {
            url: url.to_string(),
            message: e.to_string(),
        })?;
        let mut builder = self.client.request(method, parsed).headers(headers);
        if !req.body.is_empty() {
            builder = builder.body(req.body.clone());
        }
        let response = tokio::time::timeout(wait, builder.send())
            .await
            .map_err(|_| UpstreamError::Timeout {
                url: url.to_string(),
                after: wait,
            })?
            .map_err(|e| classify(url, e, self.config.connect_timeout))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter(|(n, _)| !is_hop_by_hop(n.as_str()))
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        Ok(UpstreamResponse {
            status,
            headers,
            response,
            url: url.to_string(),
            config: self.config.clone(),
        })
    }
}

/// Consecutive failures after which a backend is left alone for a while.
pub const FAILURES_BEFORE_COOLDOWN: u32 = 3;
/// How long a failing backend is skipped (passive health).
pub const BACKEND_COOLDOWN: Duration = Duration::from_secs(10);

#[derive(Default)]
struct BackendHealth {
    failures: u32,
    cooldown_until: Option<std::time::Instant>,
}

/// Round-robin position per backend set and passive health per backend.
#[derive(Default)]
struct Health {
    inner: std::sync::Mutex<HealthState>,
}

#[derive(Default)]
struct HealthState {
    backends: std::collections::HashMap<String, BackendHealth>,
    turns: std::collections::HashMap<Vec<String>, usize>,
}

impl Health {
    fn lock(&self) -> std::sync::MutexGuard<'_, HealthState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The order to try `urls` in: the next in turn first, backends cooling
    /// down last (still tried when nothing else is left).
    fn order(&self, urls: &[String]) -> Vec<String> {
        if urls.len() <= 1 {
            return urls.to_vec();
        }
        let mut guard = self.lock();
        let HealthState { backends, turns } = &mut *guard;
        let turn = turns.entry(urls.to_vec()).or_insert(0);
        let start = *turn % urls.len();
        *turn = turn.wrapping_add(1);
        let now = std::time::Instant::now();
        let (mut ready, mut cooling): (Vec<String>, Vec<String>) = (0..urls.len())
            .map(|i| urls[(start + i) % urls.len()].clone())
            .partition(|u| {
                backends
                    .get(u)
                    .and_then(|h| h.cooldown_until)
                    .is_none_or(|t| t <= now)
            });
        ready.append(&mut cooling);
        ready
    }

    fn succeeded(&self, url: &str) {
        if let Some(h) = self.lock().backends.get_mut(url) {
            h.failures = 0;
            h.cooldown_until = None;
        }
    }

    fn failed(&self, url: &str) {
        let mut guard = self.lock();
        let h = guard.backends.entry(url.to_string()).or_default();
        h.failures += 1;
        if h.failures >= FAILURES_BEFORE_COOLDOWN {
            h.cooldown_until = Some(std::time::Instant::now() + BACKEND_COOLDOWN);
            tracing::warn!(%url, cooldown = ?BACKEND_COOLDOWN, "backend keeps failing: skipping it for a while");
        }
    }
}

/// `connect_timeout` is the configured one: reqwest reports its own timeout
/// only while connecting (the call's deadline is ours, outside reqwest).
fn classify(url: &str, e: reqwest::Error, connect_timeout: Duration) -> UpstreamError {
    let message = error_chain(&e);
    let reason = safe_reason(&e);
    if e.is_timeout() {
        UpstreamError::Timeout {
            url: url.to_string(),
            after: connect_timeout,
        }
    } else if e.is_connect() {
        UpstreamError::Unavailable {
            url: url.to_string(),
            message,
            reason,
        }
    } else {
        UpstreamError::Failed {
            url: url.to_string(),
            message,
            reason,
        }
    }
}

/// reqwest's top-level message is vague ("error sending request"); the cause
/// chain says what actually happened (e.g. "Connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        source = s.source();
    }
    msg
}

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

mod error;

pub use error::UpstreamError;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::routes::Route;
use crate::wire::ApiRequest;
use error::{classify, error_chain, safe_reason};

/// Default time allowed to open a TCP connection to a backend.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time allowed for a whole unary call to a backend.
pub const DEFAULT_UNARY_TIMEOUT: Duration = Duration::from_secs(60);
/// Default time allowed between two chunks of a streamed response (and
/// before the first): a model may think for minutes before its first token.
pub const DEFAULT_STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
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

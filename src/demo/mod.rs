//! The demo backend: a small axum server with the routes `peerapi demo` serves
//! (health, a paced OpenAI-style SSE token stream, NDJSON events, echo).
//! Tests use it as a real loopback backend too.

pub mod subnet;

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;

use crate::routes::{Route, RouteTable};

/// The text the demo model "generates", one word per token.
pub const DEMO_TEXT: &str = include_str!("../../assets/inference.txt");

/// How fast the demo model talks.
#[derive(Clone, Copy, Debug)]
pub struct DemoPace {
    /// Delay before the first token, like a model reading its prompt.
    pub first_token: Duration,
    /// Delay between tokens.
    pub per_token: Duration,
}

impl DemoPace {
    /// A realistic pace: 400 ms to the first token, then about 25 tokens/s.
    pub const REALISTIC: DemoPace = DemoPace {
        first_token: Duration::from_millis(400),
        per_token: Duration::from_millis(40),
    };
    /// No delays, for tests and benchmarks.
    pub const INSTANT: DemoPace = DemoPace {
        first_token: Duration::ZERO,
        per_token: Duration::ZERO,
    };
}

/// A running demo backend.
pub struct DemoBackend {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DemoBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DemoBackend {
    /// Starts on `addr` (use port 0 for any free port).
    pub async fn start(addr: SocketAddr, pace: DemoPace) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let app = router(pace);
        // Tokens are small writes: send each at once (no Nagle delay).
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!("demo backend stopped: {e}");
            }
        });
        Ok(Self { addr, task })
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The route table that serves this backend.
    pub fn routes(&self) -> RouteTable {
        [
            ("health", Route::new(self.url("/health"), false)),
            (
                "inference",
                Route::new(self.url("/v1/chat/completions"), true),
            ),
            ("events", Route::new(self.url("/events"), true)),
            ("echo", Route::new(self.url("/echo"), false)),
            ("inspect", Route::new(self.url("/inspect"), false)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The same table as route-file JSON.
    pub fn routes_json(&self) -> String {
        let map: serde_json::Map<String, serde_json::Value> = self
            .routes()
            .into_iter()
            .map(|(k, r)| (k, serde_json::json!({ "url": r.url, "stream": r.stream })))
            .collect();
        serde_json::to_string_pretty(&serde_json::Value::Object(map)).unwrap_or_default()
    }
}

fn router(pace: DemoPace) -> Router {
    Router::new()
        .route("/health", any(health))
        .route("/v1/chat/completions", any(inference))
        .route("/events", any(events))
        .route("/echo", any(echo))
        .route("/inspect", any(inspect))
        .layer(axum::extract::DefaultBodyLimit::max(DEMO_MAX_BODY_BYTES))
        .with_state(pace)
}

/// The demo backend accepts bodies up to this size (axum's default is 2 MB).
const DEMO_MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

async fn health() -> impl IntoResponse {
    axum::Json(
        serde_json::json!({ "status": "ok", "model": "demo-1", "version": env!("CARGO_PKG_VERSION") }),
    )
}

fn max_tokens(body: &[u8]) -> usize {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("max_tokens").and_then(|m| m.as_u64()))
        .map(|m| m as usize)
        .unwrap_or(usize::MAX)
}

/// Splits text into word tokens, each keeping its leading space.
pub fn demo_tokens() -> Vec<String> {
    let mut out = Vec::new();
    for (i, word) in DEMO_TEXT.split_whitespace().enumerate() {
        out.push(if i == 0 {
            word.to_string()
        } else {
            format!(" {word}")
        });
    }
    out
}

async fn inference(State(pace): State<DemoPace>, body: Bytes) -> Response {
    let tokens: Vec<String> = demo_tokens().into_iter().take(max_tokens(&body)).collect();
    let n = tokens.len();
    let stream = async_stream(pace, tokens.into_iter().enumerate().map(move |(i, tok)| {
        let chunk = serde_json::json!({
            "id": "chatcmpl-demo",
            "object": "chat.completion.chunk",
            "model": "demo-1",
            "choices": [{ "index": 0, "delta": { "content": tok }, "finish_reason": null }]
        });
        let mut event = format!("data: {chunk}\n\n");
        if i + 1 == n {
            let usage = serde_json::json!({
                "id": "chatcmpl-demo", "object": "chat.completion.chunk", "model": "demo-1",
                "choices": [{ "index": 0, "delta": {}, "finish_reason": "stop" }],
                "usage": { "prompt_tokens": 12, "completion_tokens": n, "total_tokens": n + 12 }
            });
            event.push_str(&format!("data: {usage}\n\ndata: [DONE]\n\n"));
        }
        event
    }).collect());
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

async fn events(State(pace): State<DemoPace>, body: Bytes) -> Response {
    let count = max_tokens(&body).min(20);
    let lines = (0..count)
        .map(|i| {
            format!(
                "{}\n",
                serde_json::json!({ "seq": i, "event": "tick", "load": (i * 7) % 10 })
            )
        })
        .collect();
    Response::builder()
        .header("content-type", "application/x-ndjson")
        .body(Body::from_stream(async_stream(pace, lines)))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

async fn echo(body: Bytes) -> Bytes {
    body
}

async fn inspect(method: Method, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let headers: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                serde_json::Value::String(String::from_utf8_lossy(v.as_bytes()).into()),
            )
        })
        .collect();
    axum::Json(serde_json::json!({
        "method": method.as_str(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
        "body_len": body.len(),
    }))
}

/// Yields `items` with the pace's delays.
fn async_stream(
    pace: DemoPace,
    items: Vec<String>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    futures::stream::unfold(
        (items.into_iter(), true),
        move |(mut it, first)| async move {
            let item = it.next()?;
            let delay = if first {
                pace.first_token
            } else {
                pace.per_token
            };
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            Some((Ok(Bytes::from(item)), (it, false)))
        },
    )
}

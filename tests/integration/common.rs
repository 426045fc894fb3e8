use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use libp2p::Multiaddr;
use peerapi::demo::{DemoBackend, DemoPace};
use peerapi::{Node, NodeConfig, RouteTable, Routes};
use tokio::sync::Notify;

/// Every await in a test is bounded by this.
pub const LIMIT: Duration = Duration::from_secs(60);

pub async fn within<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("test step timed out")
}

pub fn config() -> NodeConfig {
    NodeConfig::new(libp2p::identity::Keypair::generate_ed25519())
}

/// A serving node on 127.0.0.1 with `routes`; returns it and its full address.
pub async fn serving_node(routes: RouteTable) -> (Node, Multiaddr) {
    let mut cfg = config();
    cfg.routes = Routes::new(routes);
    start(cfg).await
}

pub async fn start(cfg: NodeConfig) -> (Node, Multiaddr) {
    let node = within(Node::start(cfg)).await.expect("node starts");
    let addr = within(node.handle().listen_addrs())
        .await
        .unwrap()
        .into_iter()
        .next()
        .expect("a listen address");
    (node, addr)
}

/// A node that only calls.
pub async fn client() -> Node {
    let mut cfg = config();
    cfg.listen = vec![];
    within(Node::start(cfg)).await.expect("client starts")
}

pub async fn demo_backend() -> DemoBackend {
    DemoBackend::start("127.0.0.1:0".parse().unwrap(), DemoPace::INSTANT)
        .await
        .unwrap()
}

/// A backend for streaming tests: `/chunks?n=N` sends N SSE events as N
/// body chunks; `/gated` sends one event, waits for the gate, then the rest.
pub struct StreamBackend {
    pub addr: SocketAddr,
    pub gate: Arc<Notify>,
    _task: tokio::task::JoinHandle<()>,
}

#[derive(serde::Deserialize)]
struct N {
    n: usize,
}

async fn chunks(Query(N { n }): Query<N>) -> Response {
    let stream = futures::stream::iter(
        (0..n).map(|i| Ok::<_, std::io::Error>(Bytes::from(format!("data: {i}\n\n")))),
    );
    Response::new(Body::from_stream(stream))
}

async fn gated(State(gate): State<Arc<Notify>>) -> Response {
    let stream = futures::stream::unfold(0u32, move |i| {
        let gate = gate.clone();
        async move {
            match i {
                0 => Some((
                    Ok::<_, std::io::Error>(Bytes::from_static(b"data: first\n\n")),
                    1,
                )),
                1 => {
                    gate.notified().await;
                    Some((Ok(Bytes::from_static(b"data: second\n\n")), 2))
                }
                _ => None,
            }
        }
    });
    Response::new(Body::from_stream(stream))
}

impl StreamBackend {
    pub async fn start() -> Self {
        let gate = Arc::new(Notify::new());
        let app = Router::new()
            .route("/chunks", get(chunks))
            .route("/gated", get(gated))
            .with_state(gate.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            gate,
            _task: task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// A loopback port with nothing listening on it.
pub fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

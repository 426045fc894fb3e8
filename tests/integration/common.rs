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
use peerapi::node::ProtocolChoice;
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

/// A node that only calls (2.0.0 where the peer has it, else 1.0.0).
pub async fn client() -> Node {
    client_speaking(ProtocolChoice::Auto).await
}

/// A calling node that speaks only 1.0.0, as the Python nodes do.
pub async fn client_v1() -> Node {
    client_speaking(ProtocolChoice::V1).await
}

pub async fn client_speaking(choice: ProtocolChoice) -> Node {
    let mut cfg = config();
    cfg.listen = vec![];
    cfg.call.protocol = choice;
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
    pub state: BackendState,
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

/// Counts, per backend, the slow streams its clients dropped.
struct DropGuard(Arc<tokio::sync::watch::Sender<usize>>);
impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n += 1);
    }
}

/// A chunk every 100 ms for 60 s; reports when the client goes away.
async fn slow(State(s): State<BackendState>) -> Response {
    let guard = DropGuard(s.dropped.clone());
    let stream = futures::stream::unfold((0u32, guard), |(i, guard)| async move {
        if i >= 600 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        Some((
            Ok::<_, std::io::Error>(Bytes::from(format!("data: {i}\n\n"))),
            (i + 1, guard),
        ))
    });
    Response::new(Body::from_stream(stream))
}

/// Never answers.
async fn hang() -> Response {
    tokio::time::sleep(Duration::from_secs(3600)).await;
    Response::new(Body::empty())
}

/// A status and headers to pass through, hop-by-hop ones to strip.
async fn teapot() -> Response {
    Response::builder()
        .status(418)
        .header("x-teapot", "short and stout")
        .header("keep-alive", "timeout=5")
        .header("proxy-agent", "nope")
        .body(Body::from("I'm a teapot"))
        .unwrap()
}

/// Two cookies: a repeated header that must not collapse.
async fn cookies() -> Response {
    Response::builder()
        .header("set-cookie", "a=1; Expires=Wed, 21 Oct 2026 07:28:00 GMT")
        .header("set-cookie", "b=2; Path=/")
        .body(Body::from("two cookies"))
        .unwrap()
}

/// A backend error with a body.
async fn fail500() -> Response {
    Response::builder()
        .status(500)
        .body(Body::from("model crashed: CUDA out of memory"))
        .unwrap()
}

/// One chunk, then silence.
async fn stall() -> Response {
    let stream = futures::stream::unfold(0u8, |i| async move {
        if i == 0 {
            return Some((
                Ok::<_, std::io::Error>(Bytes::from_static(b"data: first\n\n")),
                1,
            ));
        }
        tokio::time::sleep(Duration::from_secs(3600)).await;
        None
    });
    Response::new(Body::from_stream(stream))
}

#[derive(serde::Deserialize)]
struct Size {
    mib: usize,
}

/// `mib` MiB of body in 64 KiB chunks.
async fn blob(Query(Size { mib }): Query<Size>) -> Response {
    let chunk = Bytes::from(vec![b'z'; 64 * 1024]);
    let stream =
        futures::stream::iter((0..mib * 16).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    Response::new(Body::from_stream(stream))
}

/// One chunk, then the body breaks.
async fn broken() -> Response {
    let stream = futures::stream::unfold(0u8, |i| async move {
        match i {
            0 => Some((Ok(Bytes::from_static(b"data: partial\n\n")), 1)),
            // Fail only after the head and first chunk are on the wire.
            1 => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Some((Err(std::io::Error::other("backend crashed")), 2))
            }
            _ => None,
        }
    });
    // A crashing backend takes its connection with it.
    Response::builder()
        .header("connection", "close")
        .body(Body::from_stream(stream))
        .unwrap()
}

/// Counts hits, to see round-robin spread. Closes each connection, so a
/// killed backend refuses the next call instead of serving a pooled one.
async fn count(State(s): State<BackendState>) -> Response {
    let n = s.hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
    Response::builder()
        .header("connection", "close")
        .body(Body::from(format!("{} {n}", s.name)))
        .unwrap()
}

#[derive(Clone)]
pub struct BackendState {
    gate: Arc<Notify>,
    /// Slow streams of this backend that their client dropped.
    dropped: Arc<tokio::sync::watch::Sender<usize>>,
    pub hits: Arc<std::sync::atomic::AtomicUsize>,
    name: &'static str,
}

impl axum::extract::FromRef<BackendState> for Arc<Notify> {
    fn from_ref(s: &BackendState) -> Self {
        s.gate.clone()
    }
}

impl StreamBackend {
    pub async fn start() -> Self {
        Self::named("backend").await
    }

    pub async fn named(name: &'static str) -> Self {
        let gate = Arc::new(Notify::new());
        let state = BackendState {
            gate: gate.clone(),
            dropped: Arc::new(tokio::sync::watch::channel(0).0),
            hits: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            name,
        };
        let app = Router::new()
            .route("/chunks", get(chunks))
            .route("/gated", get(gated))
            .route("/slow", get(slow))
            .route("/hang", get(hang).post(hang))
            .route("/teapot", get(teapot))
            .route("/cookies", get(cookies))
            .route("/broken", get(broken))
            .route("/count", get(count))
            .route("/fail500", get(fail500))
            .route("/stall", get(stall))
            .route("/blob", get(blob))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            gate,
            state,
            _task: task,
        }
    }

    /// Stops serving: new connections are refused (in-flight ones end too).
    pub fn kill(&self) {
        self._task.abort();
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Slow streams of this backend whose client went away so far.
    pub fn dropped_streams(&self) -> usize {
        *self.state.dropped.borrow()
    }

    /// Waits until more than `before` slow streams were dropped.
    pub async fn wait_dropped_beyond(&self, before: usize) {
        let mut rx = self.state.dropped.subscribe();
        let _ = rx.wait_for(|n| *n > before).await;
    }
}

/// Writes `routes` as a route file (url and stream of each) at `path`.
pub fn write_routes_file(path: &std::path::Path, routes: &RouteTable) {
    let json: serde_json::Map<String, serde_json::Value> = routes
        .iter()
        .map(|(k, r)| {
            (
                k.clone(),
                serde_json::json!({"url": r.url, "stream": r.stream}),
            )
        })
        .collect();
    std::fs::write(path, serde_json::to_string(&json).unwrap()).unwrap();
}

/// A loopback port with nothing listening on it.
pub fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The `peerapi` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_peerapi");

/// A `peerapi node` process, killed on drop.
pub struct Proc(pub std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `peerapi node` on a loopback port with `routes`, and returns it
/// with the full multiaddr it prints.
pub fn node_process(routes: &std::path::Path) -> (Proc, Multiaddr) {
    node_process_with(routes, &[])
}

/// Like [`node_process`], with more `peerapi node` flags.
/// A `peerapi node` process serving the demo backend's routes, with no
/// control socket: the peer a test's own node calls. Hold it as long as
/// the peer is needed (its backend, node and route file go with it).
pub struct ServedPeer {
    pub addr: Multiaddr,
    _node: Proc,
    _backend: DemoBackend,
    _dir: tempfile::TempDir,
}

pub async fn served_peer() -> ServedPeer {
    let backend = demo_backend().await;
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("routes.json");
    write_routes_file(&served, &backend.routes());
    let (node, addr) = node_process_with(&served, &["--no-control"]);
    ServedPeer {
        addr,
        _node: node,
        _backend: backend,
        _dir: dir,
    }
}

pub fn node_process_with(routes: &std::path::Path, flags: &[&str]) -> (Proc, Multiaddr) {
    let (child, addr) = peerapi::testkit::spawn_node(
        std::path::Path::new(BIN),
        routes,
        flags,
        &[],
        Duration::from_secs(30),
    )
    .expect("peerapi node starts and prints its address");
    (Proc(child), addr)
}

/// Waits for the next served call to finish and returns how it ended.
pub async fn next_serve_outcome(
    events: &mut tokio::sync::broadcast::Receiver<peerapi::NodeEvent>,
) -> peerapi::node::ServeOutcome {
    within(async {
        loop {
            if let Ok(peerapi::NodeEvent::ServeFinished { outcome, .. }) = events.recv().await {
                return outcome;
            }
        }
    })
    .await
}

/// The peer id at the end of `addr` (`.../p2p/<id>`).
/// A temporary directory holding an empty `routes.json`: the directory (it
/// is removed when dropped) and the file's path.
pub fn empty_routes() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.json");
    std::fs::write(&routes, "{}").unwrap();
    (dir, routes)
}

pub fn peer_id_of(addr: &Multiaddr) -> libp2p::PeerId {
    peerapi::node::peer_of(addr).expect("the address ends in /p2p/<peer id>")
}

//! How one measurement runs: a bounded unary loop at a concurrency, streams
//! drained while their events are counted, the verified `small` call, and
//! the nodes that make and serve the calls.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use libp2p::Multiaddr;
use peerapi::node::{CallRequest, Node, NodeConfig, NodeHandle, ProtocolChoice};
use peerapi::testkit::{bench_routes, call_limit, TempDir, SMALL_BODY};

use super::report::percentile;

/// The serving node in this process, for the hop measurements.
pub(super) struct InProcessNode {
    pub(super) node: Node,
    pub(super) addr: Multiaddr,
    _dir: TempDir,
}

impl InProcessNode {
    pub(super) async fn start(backend: SocketAddr, streams: usize) -> Result<Self, String> {
        let (dir, routes) = bench_routes(backend, "inprocess")?;
        let mut cfg = NodeConfig::new(libp2p::identity::Keypair::generate_ed25519());
        cfg.route_file = Some(routes);
        cfg.serve.max_concurrent_calls = call_limit(streams);
        cfg.serve.max_calls_per_peer = call_limit(streams);
        let node = Node::start(cfg).await.map_err(|e| e.to_string())?;
        let addr = first_address(&node).await?;
        Ok(Self {
            node,
            addr,
            _dir: dir,
        })
    }
}

/// A serving node's first listen address.
pub(super) async fn first_address(node: &Node) -> Result<libp2p::Multiaddr, String> {
    let addrs = node.handle().listen_addrs().await;
    let addrs = addrs.map_err(|e| e.to_string())?;
    addrs
        .into_iter()
        .next()
        .ok_or_else(|| "the serving node has no listen address".to_string())
}

pub(super) async fn client(protocol: ProtocolChoice) -> Result<Node, String> {
    let mut cfg = NodeConfig::new(libp2p::identity::Keypair::generate_ed25519());
    cfg.listen = vec![];
    cfg.call.protocol = protocol;
    Node::start(cfg).await.map_err(|e| e.to_string())
}

/// One `small` call through the hop, verified: a 2.0.0 status of 200 and
/// the backend's exact body (a 1.0.0 error text is a body that differs).
pub(super) async fn small_call_ok(h: &NodeHandle, addr: &Multiaddr) -> bool {
    match h.call_full(addr, CallRequest::new("small")).await {
        Ok(r) => r.head.status.is_none_or(|s| s == 200) && r.body == SMALL_BODY.as_bytes(),
        Err(_) => false,
    }
}

pub(super) struct Unary {
    pub(super) p50: Duration,
    pub(super) p99: Duration,
    pub(super) per_sec: f64,
    pub(super) failed: usize,
}

pub(super) async fn unary_run<F, Fut>(
    calls: usize,
    concurrency: usize,
    max: Duration,
    call: F,
) -> Unary
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let call = call.clone();
        let next = next.clone();
        tasks.spawn(async move {
            let mut lat = Vec::new();
            let mut failed = 0;
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < calls
                && started.elapsed() < max
            {
                let t = Instant::now();
                if call().await {
                    lat.push(t.elapsed());
                } else {
                    failed += 1;
                }
            }
            (lat, failed)
        });
    }
    let mut all = Vec::new();
    let mut failed = 0;
    while let Some(Ok((lat, f))) = tasks.join_next().await {
        all.extend(lat);
        failed += f;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Unary {
        p50: percentile(&mut all, 0.5),
        p99: percentile(&mut all, 0.99),
        per_sec: all.len() as f64 / elapsed,
        failed,
    }
}

/// A direct GET to the backend, its body as it arrives.
pub(super) async fn get_stream(
    http: &reqwest::Client,
    url: String,
) -> Result<impl futures::Stream<Item = reqwest::Result<Bytes>>, String> {
    let resp = http.get(url).send().await.map_err(|e| e.to_string())?;
    Ok(resp.bytes_stream())
}

fn count_events(bytes: &[u8], carry: &mut bool) -> usize {
    // Events end in "\n\n"; a boundary may be split across chunks.
    let mut n = 0;
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'\n' {
            let prev_newline = if i == 0 {
                *carry
            } else {
                bytes[i - 1] == b'\n'
            };
            if prev_newline {
                n += 1;
            }
        }
    }
    *carry = bytes.last() == Some(&b'\n');
    n
}

/// Reads a stream to its end (or `stop` events), counting events; an error
/// or a short count is a failure with its reason.
pub(super) async fn drain_events<S, E>(
    mut s: S,
    want: usize,
    stop_at_want: bool,
    max: Duration,
) -> Result<usize, String>
where
    S: futures::Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let t = Instant::now();
    let (mut events, mut carry) = (0usize, false);
    while let Some(item) = s.next().await {
        let c = item.map_err(|e| format!("stream failed after {events} events: {e}"))?;
        events += count_events(&c, &mut carry);
        if (stop_at_want && events >= want) || t.elapsed() > max {
            break;
        }
    }
    if events < want && t.elapsed() <= max {
        return Err(format!("stream ended after {events} of {want} events"));
    }
    Ok(events)
}

//! Load and soak, bounded in count and time, loopback only:
//! 1,000 concurrent streams from 10 peers, then 100,000 sequential unary
//! calls, against a serving node in its own process. Prints peak resident
//! memory, open descriptors before and after, failed calls and latency.
//! Run: cargo bench --bench soak

use std::time::{Duration, Instant};

use futures::StreamExt;
use peerapi::node::CallRequest;
use peerapi::testkit::{start_backend, ServingNode};
use peerapi::{Node, NodeConfig};

const PEERS: usize = 10;
const STREAMS_PER_PEER: usize = 100;
const SEQUENTIAL_CALLS: usize = 100_000;
const MAX_RUN: Duration = Duration::from_secs(240);

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v.get(((v.len().saturating_sub(1)) as f64 * p).round() as usize)
        .copied()
        .unwrap_or_default()
}

#[tokio::main]
async fn main() {
    let exe = std::path::PathBuf::from(env!("CARGO_BIN_EXE_peerapi"));
    let backend = start_backend().await.expect("backend");
    let server =
        ServingNode::start(&exe, backend, PEERS * STREAMS_PER_PEER, &[]).expect("serving node");
    let addr = server.addr.clone();
    let started = Instant::now();
    let mut peers = Vec::new();
    for _ in 0..PEERS {
        let mut cfg = NodeConfig::new(libp2p::identity::Keypair::generate_ed25519());
        cfg.listen = vec![];
        let node = Node::start(cfg).await.expect("peer");
        node.handle().dial(&addr).await.expect("dial");
        peers.push(node);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fds_before = server.fds().unwrap_or(0);
    let rss_before = server.rss_mb().unwrap_or(0.0);

    // 1,000 concurrent streams of 500 SSE events each.
    let t = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for p in &peers {
        for _ in 0..STREAMS_PER_PEER {
            let (h, addr) = (p.handle(), addr.clone());
            tasks.spawn(async move {
                let t = Instant::now();
                let mut s = h
                    .stream(&addr, CallRequest::new("tokens500"))
                    .await
                    .map_err(|e| e.to_string())?;
                let mut bytes = 0;
                while let Some(c) = s.next().await {
                    bytes += c.map_err(|e| e.to_string())?.len();
                }
                Ok::<_, String>((bytes, t.elapsed()))
            });
        }
    }
    let (mut stream_failed, mut stream_lat, mut stream_bytes) = (0, Vec::new(), 0usize);
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(Ok((b, d))) if b > 0 => {
                stream_bytes += b;
                stream_lat.push(d);
            }
            other => {
                stream_failed += 1;
                if stream_failed <= 3 {
                    eprintln!("stream failed: {other:?}");
                }
            }
        }
    }
    let streams_took = t.elapsed();

    // 100,000 sequential unary calls.
    let h = peers[0].handle();
    let (mut unary_failed, mut lat) = (0, Vec::with_capacity(SEQUENTIAL_CALLS));
    let t = Instant::now();
    for _ in 0..SEQUENTIAL_CALLS {
        if started.elapsed() > MAX_RUN {
            break;
        }
        let c = Instant::now();
        match h.call(&addr, CallRequest::new("small")).await {
            Ok(_) => lat.push(c.elapsed()),
            Err(_) => unary_failed += 1,
        }
    }
    let unary_took = t.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;

    println!(
        "soak ({} cores, loopback; serving node in its own process)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!(
        "  {} concurrent streams from {PEERS} peers: {} failed, {:.1} MB moved in {:.2?}, completion p50 {:.2?} p99 {:.2?}",
        PEERS * STREAMS_PER_PEER,
        stream_failed,
        stream_bytes as f64 / 1e6,
        streams_took,
        pct(&mut stream_lat.clone(), 0.5),
        pct(&mut stream_lat, 0.99)
    );
    println!(
        "  {} sequential unary calls: {} failed, {:.0} calls/s, p50 {:.0?} p99 {:.0?}",
        lat.len() + unary_failed,
        unary_failed,
        lat.len() as f64 / unary_took.as_secs_f64(),
        pct(&mut lat.clone(), 0.5),
        pct(&mut lat, 0.99)
    );
    println!(
        "  serving node: resident {:.1} MB before, peak {:.1} MB; descriptors {} before, {} after",
        rss_before,
        server.peak_rss_mb().unwrap_or(0.0),
        fds_before,
        server.fds().unwrap_or(0)
    );
}

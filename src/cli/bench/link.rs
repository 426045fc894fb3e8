//! `peerapi bench --link RTT[,RATE]`: the hop across an impaired link
//! (`testkit::link`, a proxy on loopback in front of the serving node),
//! each figure beside a plain TCP stream through the same kind of link in
//! the same run: what a first call costs in round trips (2.0.0 and 1.0.0,
//! Noise first and `--pos-first`), a call on a warm connection, the time to
//! the first token, a large body against plain TCP, and a fan-out to 20
//! peers cold and warm.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::Multiaddr;
use peerapi::node::{CallRequest, NodeConfig, ProtocolChoice};
use peerapi::routes::{Route, RouteTable, Routes};
use peerapi::testkit::link::{Impairment, LinkProxy};
use peerapi::testkit::plain_tcp;
use peerapi::Node;

/// Peers of the fan-out.
const FAN_OUT_PEERS: usize = 20;

struct Served {
    _node: Node,
    proxy: LinkProxy,
    addr: Multiaddr,
}

/// A serving node for `backend`'s routes behind its own impaired link.
async fn served(backend: SocketAddr, link: Impairment) -> Result<Served, String> {
    let url = |p: &str| format!("http://{backend}{p}");
    let table: RouteTable = [
        ("small", Route::new(url("/small"), false)),
        ("first", Route::new(url("/first"), true)),
        ("blob", Route::new(url("/blob?n=268435456"), true)),
        ("blob32", Route::new(url("/blob?n=33554432"), true)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut config = NodeConfig::new(libp2p::identity::Keypair::generate_ed25519()).only_calls();
    config.routes = Routes::new(table);
    let node = Node::start(config).await.map_err(|e| e.to_string())?;
    let direct = super::measure::first_address(&node).await?;
    let (proxy, addr) = LinkProxy::in_front_of(&direct, link)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Served {
        _node: node,
        proxy,
        addr,
    })
}

/// A fresh caller (its first call dials) speaking `protocol`, offering
/// pos-transport first when `pos_first`.
async fn caller(protocol: ProtocolChoice, pos_first: bool) -> Result<Node, String> {
    let mut config = NodeConfig::new(libp2p::identity::Keypair::generate_ed25519()).only_calls();
    config.listen = Vec::new();
    config.call.protocol = protocol;
    if pos_first {
        config.security_names.reverse();
    }
    Node::start(config).await.map_err(|e| e.to_string())
}

pub(super) async fn run(link: Impairment, quick: bool) -> Result<String, String> {
    let progress = |s: &str| eprintln!("bench: link: {s}…");
    let backend = peerapi::testkit::start_backend()
        .await
        .map_err(|e| format!("cannot start the backend: {e}"))?;
    let server = served(backend, link).await?;
    let tcp = plain_tcp::server().await?;
    let tcp_proxy = LinkProxy::start(tcp, link)
        .await
        .map_err(|e| e.to_string())?;
    progress("the link's round trip");
    let rtt = plain_tcp::round_trip(tcp_proxy.addr()).await?;
    let rtts = |d: Duration| d.as_secs_f64() / rtt.as_secs_f64().max(1e-6);
    let mut out = format!(
        "across a link of {} RTT{} (proxy on loopback; measured TCP round trip {:.1} ms)\n",
        fmt_ms(link.rtt),
        link.rate
            .map(|r| format!(", {} Mbit/s", r * 8 / 1_000_000))
            .unwrap_or_default(),
        rtt.as_secs_f64() * 1e3
    );

    progress("first calls on new connections");
    out.push_str("  call (small)                         first call        then, warm\n");
    let mut breakdown = String::from(
        "  first call, step by step (from the caller's events; the proxy does not delay TCP's own handshake)\n",
    );
    for (protocol, name) in [(ProtocolChoice::V2, "2.0.0"), (ProtocolChoice::V1, "1.0.0")] {
        for pos_first in [false, true] {
            let node = caller(protocol, pos_first).await?;
            let h = node.handle();
            let t = Instant::now();
            let recording = FirstCallSteps::record(h.subscribe(), t);
            h.call(&server.addr, CallRequest::new("small"))
                .await
                .map_err(|e| format!("first call ({name}): {e}"))?;
            let first = t.elapsed();
            let steps = recording.await.unwrap_or_default();
            let mut warm = Vec::new();
            for _ in 0..5 {
                let t = Instant::now();
                h.call(&server.addr, CallRequest::new("small"))
                    .await
                    .map_err(|e| format!("warm call ({name}): {e}"))?;
                warm.push(t.elapsed());
            }
            warm.sort();
            let warm = warm[warm.len() / 2];
            let security = if pos_first {
                "pos-first"
            } else {
                "noise first"
            };
            out.push_str(&format!(
                "  {name} {security:<12}                {:>8.1} ms = {:>4.1} RTT   {:>7.1} ms = {:.1} RTT\n",
                first.as_secs_f64() * 1e3,
                rtts(first),
                warm.as_secs_f64() * 1e3,
                rtts(warm)
            ));
            breakdown.push_str(&steps.line(name, security, &rtts));
        }
    }
    out.push_str(&breakdown);

    progress("time to the first token");
    let node = caller(ProtocolChoice::Auto, false).await?;
    let h = node.handle();
    h.call(&server.addr, CallRequest::new("small"))
        .await
        .map_err(|e| format!("warming the connection: {e}"))?;
    let http = reqwest::Client::new();
    let mut over_link = Vec::new();
    let mut at_backend = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let mut s = h
            .stream(&server.addr, CallRequest::new("first"))
            .await
            .map_err(|e| format!("stream: {e}"))?;
        s.next()
            .await
            .ok_or("no first token")?
            .map_err(|e| e.to_string())?;
        over_link.push(t.elapsed());
        while s.next().await.is_some() {}
        let t = Instant::now();
        let r = http
            .get(format!("http://{backend}/first"))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let mut body = r.bytes_stream();
        body.next().await;
        at_backend.push(t.elapsed());
        while body.next().await.is_some() {}
    }
    over_link.sort();
    at_backend.sort();
    let (link_ttft, backend_ttft) = (over_link[2], at_backend[2]);
    out.push_str(&format!(
        "  time to first token                  {:>8.1} ms over the link, {:.2} ms at the backend: +{:.1} RTT\n",
        link_ttft.as_secs_f64() * 1e3,
        backend_ttft.as_secs_f64() * 1e3,
        rtts(link_ttft.saturating_sub(backend_ttft))
    ));

    let (route, bytes) = if quick {
        ("blob32", 32u64 << 20)
    } else {
        ("blob", 256u64 << 20)
    };
    progress(&format!(
        "a {} MiB body, plain TCP then the hop",
        bytes >> 20
    ));
    let plain = plain_tcp::body_time(tcp_proxy.addr(), bytes).await?;
    let t = Instant::now();
    let mut s = h
        .stream(&server.addr, CallRequest::new(route))
        .await
        .map_err(|e| format!("body: {e}"))?;
    let mut got = 0u64;
    while let Some(chunk) = s.next().await {
        got += chunk.map_err(|e| format!("body: {e}"))?.len() as u64;
    }
    let hop = t.elapsed();
    if got != bytes {
        return Err(format!("the hop's body was {got} bytes, not {bytes}"));
    }
    let mbps = |d: Duration| bytes as f64 * 8.0 / d.as_secs_f64() / 1e6;
    out.push_str(&format!(
        "  {} MiB body                         {:>8.1} Mbit/s through the hop, {:.1} Mbit/s plain TCP: {:.2} of it (target 0.8)\n",
        bytes >> 20,
        mbps(hop),
        mbps(plain),
        plain.as_secs_f64() / hop.as_secs_f64()
    ));
    drop(s);

    progress(&format!(
        "a fan-out to {FAN_OUT_PEERS} peers, cold then warm"
    ));
    let mut peers = Vec::new();
    for _ in 0..FAN_OUT_PEERS {
        peers.push(served(backend, link).await?);
    }
    let targets: Vec<Multiaddr> = peers.iter().map(|p| p.addr.clone()).collect();
    let node = caller(ProtocolChoice::Auto, false).await?;
    let h = node.handle();
    let mut walls = Vec::new();
    let mut failed = 0;
    for _ in 0..3 {
        let t = Instant::now();
        let results = peerapi::load::fan_out(
            &h,
            &targets,
            &CallRequest::new("small"),
            false,
            FAN_OUT_PEERS,
        )
        .await;
        walls.push(t.elapsed());
        failed += results.iter().filter(|r| r.sample.error.is_some()).count();
    }
    out.push_str(&format!(
        "  fan-out to {FAN_OUT_PEERS} peers                   {:>8.1} ms = {:.1} RTT cold (dials), {:.1} ms = {:.1} RTT warm; {failed} failed\n",
        walls[0].as_secs_f64() * 1e3,
        rtts(walls[0]),
        walls[2].as_secs_f64() * 1e3,
        rtts(walls[2])
    ));
    let connections: u64 = peers.iter().map(|p| p.proxy.connections()).sum();
    out.push_str(&format!(
        "  (connections through the fan-out's links: {connections}, one per peer)\n"
    ));
    Ok(out)
}

/// When the first call's steps ended, from the caller's own events: the
/// connection up (dial, multistream, security, muxer), identify, the
/// response head, the whole call.
#[derive(Default)]
struct FirstCallSteps {
    connected: Option<Duration>,
    identified: Option<Duration>,
    head: Option<Duration>,
    done: Duration,
}

impl FirstCallSteps {
    /// Stamps the caller's events as they come, until its call ends (or
    /// 60 s): started before the call, awaited after it.
    fn record(
        mut events: tokio::sync::broadcast::Receiver<peerapi::node::NodeEvent>,
        start: Instant,
    ) -> tokio::task::JoinHandle<Self> {
        use peerapi::node::NodeEvent;
        tokio::spawn(async move {
            let mut steps = Self::default();
            let until = tokio::time::Instant::now() + Duration::from_secs(60);
            while let Ok(Ok(event)) = tokio::time::timeout_at(until, events.recv()).await {
                let at = start.elapsed();
                match event {
                    NodeEvent::PeerConnected { .. } => {
                        steps.connected.get_or_insert(at);
                    }
                    NodeEvent::PeerIdentified { .. } => {
                        steps.identified.get_or_insert(at);
                    }
                    NodeEvent::CallResponding { .. } => {
                        steps.head.get_or_insert(at);
                    }
                    NodeEvent::CallFinished { .. } | NodeEvent::CallFailed { .. } => {
                        steps.done = at;
                        break;
                    }
                    _ => {}
                }
            }
            steps
        })
    }

    fn line(&self, name: &str, security: &str, rtts: &dyn Fn(Duration) -> f64) -> String {
        let at = |d: Option<Duration>| d.map_or("-".to_string(), |d| format!("{:.1}", rtts(d)));
        let call = match (self.connected, self.head) {
            (Some(c), Some(h)) => format!("{:.1}", rtts(h.saturating_sub(c))),
            _ => "-".into(),
        };
        format!(
            "    {name} {security:<12} connection up at {} RTT, identified at {}, response head at {} ({call} after the connection), done at {:.1}\n",
            at(self.connected),
            at(self.identified),
            at(self.head),
            rtts(self.done)
        )
    }
}

fn fmt_ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

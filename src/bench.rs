//! `peerapi bench`: the end-to-end cost of the hop against the physical
//! floor (a direct HTTP call to the same backend), on this machine.
//!
//! One process runs a fast loopback backend, a serving node and a calling
//! node, talking over real TCP + Noise + yamux on loopback, for the hop's
//! latency and throughput (as the direct floor is measured in-process too).
//! The serving node's memory, the one-shot `peerapi call`, and one latency
//! row for comparison are measured against a separate `peerapi node`
//! process. Every measurement is bounded in count and time, repeated, and
//! reported as the median of its repeats.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::Query;
use axum::response::Response;
use axum::routing::{any, get};
use axum::Router;
use futures::StreamExt;
use libp2p::Multiaddr;
use serde::Serialize;

use crate::node::{CallRequest, Node, NodeConfig, NodeHandle, ProtocolChoice};

/// How much to measure.
#[derive(Clone, Copy, Debug)]
pub struct BenchSize {
    pub repeats: usize,
    pub unary_calls: [usize; 3],
    pub stream_events: usize,
    /// Streams opened to time their first byte.
    pub first_byte_samples: usize,
    pub blob_bytes: usize,
    pub first_calls: usize,
    pub concurrent_streams: usize,
    pub cli_calls: usize,
    /// No single measurement runs longer than this.
    pub max_secs: f64,
    /// Untimed calls before the unary measurements of each protocol.
    pub warmup_secs: f64,
}

/// Which parts to run: all by default, or a subset for profiling one thing.
#[derive(Clone, Debug, Default)]
pub struct BenchFilter {
    /// Section names (`unary`, `stream`, `blob`, `first`, `cli`, `memory`); empty = all.
    pub sections: Vec<String>,
    /// Protocol versions (`2.0.0`, `1.0.0`); empty = both.
    pub protocols: Vec<String>,
    /// Unary concurrencies; empty = 1, 16 and 64.
    pub concurrency: Vec<usize>,
}

impl BenchFilter {
    pub const SECTIONS: [&'static str; 6] = ["unary", "stream", "blob", "first", "cli", "memory"];

    fn section(&self, name: &str) -> bool {
        self.sections.is_empty() || self.sections.iter().any(|s| s == name)
    }

    fn protocol(&self, label: &str) -> bool {
        self.protocols.is_empty() || self.protocols.iter().any(|p| label.starts_with(p.as_str()))
    }

    fn concurrency(&self, c: usize) -> bool {
        self.concurrency.is_empty() || self.concurrency.contains(&c)
    }
}

impl BenchSize {
    pub const FULL: BenchSize = BenchSize {
        repeats: 3,
        unary_calls: [2_000, 20_000, 40_000],
        stream_events: 1_000_000,
        first_byte_samples: 100,
        blob_bytes: 256 * 1024 * 1024,
        first_calls: 20,
        concurrent_streams: 1_000,
        cli_calls: 10,
        max_secs: 20.0,
        warmup_secs: 3.0,
    };
    pub const QUICK: BenchSize = BenchSize {
        repeats: 1,
        unary_calls: [300, 3_000, 6_000],
        stream_events: 100_000,
        first_byte_samples: 30,
        blob_bytes: 32 * 1024 * 1024,
        first_calls: 5,
        concurrent_streams: 200,
        cli_calls: 3,
        max_secs: 5.0,
        warmup_secs: 1.0,
    };
}

/// One row of the report.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub name: String,
    pub direct: Option<f64>,
    pub hop: f64,
    pub unit: String,
    pub note: String,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub cores: usize,
    pub size: String,
    pub rows: Vec<Row>,
}

impl Report {
    pub fn table(&self) -> String {
        let mut out = format!(
            "peerapi bench ({} run, {} cores, loopback, medians)\n{:<44} {:>14} {:>14} {:>8}\n",
            self.size, self.cores, "measurement", "direct", "through hop", "ratio"
        );
        for r in &self.rows {
            let direct = r
                .direct
                .map(|d| fmt_num(d, &r.unit))
                .unwrap_or_else(|| "-".into());
            let ratio = match r.direct {
                Some(d) if d > 0.0 => format!("{:.2}", r.hop / d),
                _ => "-".into(),
            };
            out.push_str(&format!(
                "{:<44} {:>14} {:>14} {:>8}  {}\n",
                r.name,
                direct,
                fmt_num(r.hop, &r.unit),
                ratio,
                r.note
            ));
        }
        out
    }
}

fn fmt_num(v: f64, unit: &str) -> String {
    match unit {
        "us" => format!("{v:.0} µs"),
        "ms" => format!("{v:.2} ms"),
        "MB" => format!("{v:.1} MB"),
        "MB/s" => format!("{v:.0} MB/s"),
        "/s" => format!("{v:.0} /s"),
        other => format!("{v:.1} {other}"),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v.get(((v.len().saturating_sub(1)) as f64 * p).round() as usize)
        .copied()
        .unwrap_or_default()
}

#[derive(serde::Deserialize)]
struct Count {
    n: usize,
}

/// The body of the backend's `/small`: every unary sample is compared with it.
const SMALL_BODY: &str =
    r#"{"id":"cmpl-1","object":"text_completion","choices":[{"text":"ok","index":0}]}"#;
/// Events of the backend's `/paced` stream.
const PACED_EVENTS: usize = 40;

/// Samples of one measurement: the values of the verified ones, and the
/// failed ones counted (never dropped silently) with the first reason.
#[derive(Default)]
struct Samples {
    values: Vec<f64>,
    failed: usize,
    first_error: Option<String>,
}

impl Samples {
    fn ok(&mut self, v: f64) {
        self.values.push(v);
    }

    fn fail(&mut self, why: impl Into<String>) {
        self.failed += 1;
        self.first_error.get_or_insert_with(|| why.into());
    }

    fn median(&self) -> f64 {
        median(self.values.clone())
    }

    /// "verified: <what>; K failed (first: ...)".
    fn note(&self, verified: &str) -> String {
        match &self.first_error {
            None => format!("{verified}; 0 failed"),
            Some(e) => format!(
                "{verified}; {} of {} FAILED (first: {e})",
                self.failed,
                self.failed + self.values.len()
            ),
        }
    }
}

/// Reads a stream to its end (or `stop` events), counting events; an error
/// or a short count is a failure with its reason.
async fn drain_events<S, E>(
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

/// A loopback backend as fast as axum gets: small JSON, echo, SSE tokens as
/// separate chunks, a large blob, and paced tokens for the memory test.
pub async fn start_backend() -> std::io::Result<SocketAddr> {
    let small = || async { ([("content-type", "application/json")], SMALL_BODY) };
    let app = Router::new()
        .route("/small", any(small))
        .route("/echo", any(|b: Bytes| async move { b }))
        .route(
            "/tokens",
            get(|Query(Count { n }): Query<Count>| async move {
                let s = futures::stream::iter((0..n).map(|i| {
                    Ok::<_, std::io::Error>(Bytes::from(format!(
                        "data: {{\"token\":\"t{i}\"}}\n\n"
                    )))
                }));
                Response::builder()
                    .header("content-type", "text/event-stream")
                    .body(Body::from_stream(s))
                    .unwrap_or_default()
            }),
        )
        .route(
            "/blob",
            get(|Query(Count { n }): Query<Count>| async move {
                let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
                let chunks = n.div_ceil(chunk.len());
                let s = futures::stream::iter(
                    (0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
                );
                Body::from_stream(s)
            }),
        )
        .route(
            "/first",
            // One event at once, the end a little later: the time to the
            // first byte is the path's, not the backend's buffering.
            get(|| async {
                let s = futures::stream::unfold(0u32, |i| async move {
                    match i {
                        0 => Some((
                            Ok::<_, std::io::Error>(Bytes::from_static(
                                b"data: {\"token\":\"t0\"}\n\n",
                            )),
                            1,
                        )),
                        1 => {
                            tokio::time::sleep(Duration::from_millis(2)).await;
                            Some((Ok(Bytes::from_static(b"data: [DONE]\n\n")), 2))
                        }
                        _ => None,
                    }
                });
                Response::builder()
                    .header("content-type", "text/event-stream")
                    .body(Body::from_stream(s))
                    .unwrap_or_default()
            }),
        )
        .route(
            "/paced",
            get(|| async {
                let s = futures::stream::unfold(0usize, |i| async move {
                    if i >= PACED_EVENTS {
                        return None;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Some((
                        Ok::<_, std::io::Error>(Bytes::from(format!(
                            "data: {{\"token\":\"t{i}\"}}\n\n"
                        ))),
                        i + 1,
                    ))
                });
                Body::from_stream(s)
            }),
        )
        .layer(axum::extract::DefaultBodyLimit::disable());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        // Like a production server: small writes (a head, then each token)
        // go out at once, not held back by Nagle's algorithm.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}

/// Writes the bench routes for `backend` to a fresh temporary directory.
fn route_file(backend: SocketAddr, tag: &str) -> Result<(PathGuard, std::path::PathBuf), String> {
    let dir = std::env::temp_dir().join(format!("peerapi-bench-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let routes = dir.join("routes.json");
    let table = serde_json::json!({
        "small": { "url": format!("http://{backend}/small") },
        "echo": { "url": format!("http://{backend}/echo") },
        "tokens": { "url": format!("http://{backend}/tokens?n=1000000"), "stream": true },
        "tokens500": { "url": format!("http://{backend}/tokens?n=500"), "stream": true },
        "blob": { "url": format!("http://{backend}/blob?n={}", 256 * 1024 * 1024), "stream": true },
        "paced": { "url": format!("http://{backend}/paced"), "stream": true },
        "first": { "url": format!("http://{backend}/first"), "stream": true },
    });
    std::fs::write(&routes, table.to_string()).map_err(|e| e.to_string())?;
    Ok((PathGuard(dir), routes))
}

/// Call limits that let `streams` concurrent streams through.
fn call_limit(streams: usize) -> usize {
    (streams * 2).max(256)
}

/// The serving node in this process, for the hop measurements.
struct InProcessNode {
    node: Node,
    addr: Multiaddr,
    _dir: PathGuard,
}

impl InProcessNode {
    async fn start(backend: SocketAddr, streams: usize) -> Result<Self, String> {
        let (dir, routes) = route_file(backend, "inprocess")?;
        let mut cfg = NodeConfig::new(libp2p::identity::Keypair::generate_ed25519());
        cfg.route_file = Some(routes);
        cfg.serve.max_concurrent_calls = call_limit(streams);
        cfg.serve.max_calls_per_peer = call_limit(streams);
        let node = Node::start(cfg).await.map_err(|e| e.to_string())?;
        let addr = node
            .handle()
            .listen_addrs()
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .next()
            .ok_or("the serving node has no listen address")?;
        Ok(Self {
            node,
            addr,
            _dir: dir,
        })
    }
}

/// Starts `exe node` on a loopback port with `routes`, more `flags` and
/// `envs`, and returns it with the full multiaddr it prints within `wait`.
pub fn spawn_node(
    exe: &Path,
    routes: &Path,
    flags: &[&str],
    envs: &[(&str, &str)],
    wait: Duration,
) -> Result<(std::process::Child, Multiaddr), String> {
    use std::io::BufRead;
    let mut child = std::process::Command::new(exe)
        .args(["node", "--listen", "/ip4/127.0.0.1/tcp/0", "--routes"])
        .arg(routes)
        .args(flags)
        .envs(envs.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    let Some(stdout) = child.stdout.take() else {
        let _ = child.kill();
        return Err("the node's stdout is not piped".into());
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(a) = line.strip_prefix("listening on ") {
                let _ = tx.send(a.to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(wait)
        .map_err(|_| format!("the node did not print its address within {wait:?}"))
        .and_then(|a| {
            a.parse()
                .map_err(|e| format!("bad address from the node: {e}"))
        });
    match addr {
        Ok(addr) => Ok((child, addr)),
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(e)
        }
    }
}

/// The serving node as a child process, killed on drop.
pub struct ServingNode {
    child: std::process::Child,
    pub addr: Multiaddr,
    _dir: PathGuard,
}

struct PathGuard(std::path::PathBuf);
impl Drop for PathGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for ServingNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServingNode {
    /// Starts `exe node` serving the bench backend's routes, with call
    /// limits sized for `streams` concurrent streams.
    pub fn start(exe: &Path, backend: SocketAddr, streams: usize) -> Result<Self, String> {
        let (dir, routes) = route_file(backend, "process")?;
        let limit = call_limit(streams).to_string();
        let flags = [
            "--max-concurrent-calls",
            &limit,
            "--max-calls-per-peer",
            &limit,
        ];
        // Quiet: an info line per served call would be part of what is measured.
        let (child, addr) = spawn_node(
            exe,
            &routes,
            &flags,
            &[("RUST_LOG", "error")],
            Duration::from_secs(20),
        )?;
        Ok(Self {
            child,
            addr,
            _dir: dir,
        })
    }

    /// Resident memory now.
    pub fn rss_mb(&self) -> Option<f64> {
        self.status_mb("VmRSS:")
    }

    /// Peak resident memory so far.
    pub fn peak_rss_mb(&self) -> Option<f64> {
        self.status_mb("VmHWM:")
    }

    /// Open file descriptors now.
    pub fn fds(&self) -> Option<usize> {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .ok()
            .map(|d| d.count())
    }

    fn status_mb(&self, key: &str) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let kb: f64 = status
            .lines()
            .find(|l| l.starts_with(key))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        Some(kb / 1024.0)
    }
}

async fn client(protocol: ProtocolChoice) -> Result<Node, String> {
    let mut cfg = NodeConfig::new(libp2p::identity::Keypair::generate_ed25519());
    cfg.listen = vec![];
    cfg.call.protocol = protocol;
    Node::start(cfg).await.map_err(|e| e.to_string())
}

/// One `small` call through the hop, verified: a 2.0.0 status of 200 and
/// the backend's exact body (a 1.0.0 error text is a body that differs).
async fn small_call_ok(h: &NodeHandle, addr: &Multiaddr) -> bool {
    match h.call_full(addr, CallRequest::new("small")).await {
        Ok(r) => r.head.status.is_none_or(|s| s == 200) && r.body == SMALL_BODY.as_bytes(),
        Err(_) => false,
    }
}

struct Unary {
    p50: Duration,
    p99: Duration,
    per_sec: f64,
    failed: usize,
}

async fn unary_run<F, Fut>(calls: usize, concurrency: usize, max: Duration, call: F) -> Unary
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
async fn get_stream(
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

/// Runs everything and returns the report. `progress` gets a line per step.
pub async fn run(
    exe: &Path,
    size: BenchSize,
    filter: &BenchFilter,
    progress: impl Fn(&str),
) -> Result<Report, String> {
    let backend = start_backend().await.map_err(|e| e.to_string())?;
    let in_process = InProcessNode::start(backend, size.concurrent_streams).await?;
    // The separate process serves the memory rows, the one-shot CLI and the
    // cross-process latency row.
    let server = ServingNode::start(exe, backend, size.concurrent_streams)?;
    let http = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(256)
        .build()
        .map_err(|e| e.to_string())?;
    let max = Duration::from_secs_f64(size.max_secs);
    let mut rows = Vec::new();
    let addr = in_process.addr.clone();

    // Idle memory before any call.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle_rss = server.rss_mb();

    for (label, choice) in [("2.0.0", ProtocolChoice::V2), ("1.0.0", ProtocolChoice::V1)] {
        if !filter.protocol(label) {
            continue;
        }
        let node = client(choice).await?;
        let h = node.handle();
        h.dial(&addr).await.map_err(|e| e.to_string())?;
        // Untimed calls first, both ways, as benchmark harnesses do: the
        // first seconds after start measured up to 1.6x slower here.
        if filter.section("unary") {
            progress(&format!("warming up {label}"));
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs_f64(size.warmup_secs) {
                let _ = h.call(&addr, CallRequest::new("small")).await;
                let _ = http.get(format!("http://{backend}/small")).send().await;
            }
        }
        for (i, conc) in [1usize, 16, 64].into_iter().enumerate() {
            if !filter.section("unary") || !filter.concurrency(conc) {
                continue;
            }
            progress(&format!("unary {label} at concurrency {conc}"));
            let calls = size.unary_calls[i];
            let (mut d50, mut d99, mut drate, mut h50, mut h99, mut hrate, mut failed) =
                (vec![], vec![], vec![], vec![], vec![], vec![], 0);
            let mut direct_failed = 0;
            for _ in 0..size.repeats {
                let url = format!("http://{backend}/small");
                let client = http.clone();
                let direct = unary_run(calls, conc, max, move || {
                    let client = client.clone();
                    let url = url.clone();
                    async move {
                        match client.get(&url).send().await {
                            Ok(r) if r.status().is_success() => {
                                r.bytes().await.is_ok_and(|b| b == SMALL_BODY.as_bytes())
                            }
                            _ => false,
                        }
                    }
                })
                .await;
                let (hh, a) = (h.clone(), addr.clone());
                let hop = unary_run(calls, conc, max, move || {
                    let (hh, a) = (hh.clone(), a.clone());
                    async move { small_call_ok(&hh, &a).await }
                })
                .await;
                d50.push(direct.p50.as_secs_f64() * 1e6);
                d99.push(direct.p99.as_secs_f64() * 1e6);
                drate.push(direct.per_sec);
                h50.push(hop.p50.as_secs_f64() * 1e6);
                h99.push(hop.p99.as_secs_f64() * 1e6);
                hrate.push(hop.per_sec);
                failed += hop.failed;
                direct_failed += direct.failed;
            }
            let note = format!(
                "every body compared; {failed} failed through the hop, {direct_failed} direct"
            );
            rows.push(Row {
                name: format!("unary {label} c={conc} p50"),
                direct: Some(median(d50)),
                hop: median(h50),
                unit: "us".into(),
                note: String::new(),
            });
            rows.push(Row {
                name: format!("unary {label} c={conc} p99"),
                direct: Some(median(d99)),
                hop: median(h99),
                unit: "us".into(),
                note: String::new(),
            });
            rows.push(Row {
                name: format!("unary {label} c={conc} calls/s"),
                direct: Some(median(drate)),
                hop: median(hrate),
                unit: "/s".into(),
                note,
            });
        }
        if filter.section("unary") && filter.concurrency(1) {
            // The same call with the serving node as its own process, as
            // deployed: every hop between processes costs a thread wake-up.
            progress(&format!(
                "unary {label} at concurrency 1, serving node in its own process"
            ));
            h.dial(&server.addr).await.map_err(|e| e.to_string())?;
            let (mut p50, mut failed) = (vec![], 0);
            for _ in 0..size.repeats {
                let (hh, a) = (h.clone(), server.addr.clone());
                let hop = unary_run(size.unary_calls[0], 1, max, move || {
                    let (hh, a) = (hh.clone(), a.clone());
                    async move { small_call_ok(&hh, &a).await }
                })
                .await;
                p50.push(hop.p50.as_secs_f64() * 1e6);
                failed += hop.failed;
            }
            rows.push(Row {
                name: format!("unary {label} c=1 p50, node as own process"),
                direct: None,
                hop: median(p50),
                unit: "us".into(),
                note: format!("every body compared; {failed} failed"),
            });
        }

        if filter.section("stream") {
            progress(&format!("small stream chunks {label}"));
            let n = size.stream_events;
            let (mut direct, mut hop) = (Samples::default(), Samples::default());
            let (mut direct_events, mut hop_events) = (0usize, 0usize);
            for _ in 0..size.repeats {
                let url = format!("http://{backend}/tokens?n={n}");
                let t = Instant::now();
                match get_stream(&http, url).await {
                    Ok(body) => match drain_events(Box::pin(body), n, false, max).await {
                        Ok(events) => {
                            direct_events = events;
                            direct.ok(events as f64 / t.elapsed().as_secs_f64());
                        }
                        Err(e) => direct.fail(e),
                    },
                    Err(e) => direct.fail(e),
                }
                // Through the hop: the route asks for 1,000,000; stop at n.
                let t = Instant::now();
                match h.stream(&addr, CallRequest::new("tokens")).await {
                    Ok(s) => match drain_events(s, n, true, max).await {
                        Ok(events) => {
                            hop_events = events;
                            hop.ok(events as f64 / t.elapsed().as_secs_f64());
                        }
                        Err(e) => hop.fail(e),
                    },
                    Err(e) => hop.fail(e.to_string()),
                }
            }
            progress(&format!("stream time to first byte {label}"));
            let (mut dttfb, mut httfb) = (Samples::default(), Samples::default());
            for _ in 0..size.first_byte_samples {
                let t = Instant::now();
                match get_stream(&http, format!("http://{backend}/first")).await {
                    Ok(mut body) => match body.next().await {
                        Some(Ok(_)) => {
                            dttfb.ok(t.elapsed().as_secs_f64() * 1e6);
                            while let Some(Ok(_)) = body.next().await {}
                        }
                        other => dttfb.fail(format!("no first chunk: {other:?}")),
                    },
                    Err(e) => dttfb.fail(e),
                }
                let t = Instant::now();
                match h.stream(&addr, CallRequest::new("first")).await {
                    Ok(mut s) => match s.next().await {
                        Some(Ok(_)) => {
                            httfb.ok(t.elapsed().as_secs_f64() * 1e6);
                            while let Some(Ok(_)) = s.next().await {}
                        }
                        Some(Err(e)) => httfb.fail(e.to_string()),
                        None => httfb.fail("the stream ended without a chunk"),
                    },
                    Err(e) => httfb.fail(e.to_string()),
                }
            }
            rows.push(Row {
                name: format!("stream {label} small chunks/s"),
                direct: Some(direct.median()),
                hop: hop.median(),
                unit: "/s".into(),
                note: hop.note(&format!(
                    "events counted: {hop_events} per sample through the hop, {direct_events} direct{}",
                    if direct.failed > 0 { format!(" ({} direct samples failed)", direct.failed) } else { String::new() }
                )),
            });
            rows.push(Row {
                name: format!("stream {label} time to first byte"),
                direct: Some(dttfb.median()),
                hop: httfb.median(),
                unit: "us".into(),
                note: httfb.note("first event ready at once"),
            });
        }
        if filter.section("blob") {
            progress(&format!("large body {label}"));
            let n = size.blob_bytes;
            let (mut direct, mut hop) = (Samples::default(), Samples::default());
            for _ in 0..size.repeats {
                let t = Instant::now();
                match get_stream(&http, format!("http://{backend}/blob?n={n}")).await {
                    Ok(mut body) => {
                        let mut got = 0usize;
                        let mut error = None;
                        while let Some(item) = body.next().await {
                            match item {
                                Ok(c) => got += c.len(),
                                Err(e) => {
                                    error = Some(e.to_string());
                                    break;
                                }
                            }
                        }
                        match error {
                            None if got >= n => {
                                direct.ok(got as f64 / 1e6 / t.elapsed().as_secs_f64())
                            }
                            None => direct.fail(format!("body ended after {got} of {n} bytes")),
                            Some(e) => direct.fail(e),
                        }
                    }
                    Err(e) => direct.fail(e),
                }
                let t = Instant::now();
                match h.stream(&addr, CallRequest::new("blob")).await {
                    Ok(mut s) => {
                        let mut got = 0usize;
                        let mut error = None;
                        while let Some(item) = s.next().await {
                            match item {
                                Ok(c) => got += c.len(),
                                Err(e) => {
                                    error = Some(e.to_string());
                                    break;
                                }
                            }
                            if got >= n || t.elapsed() > max {
                                break;
                            }
                        }
                        match error {
                            None if got >= n || t.elapsed() > max => {
                                hop.ok(got as f64 / 1e6 / t.elapsed().as_secs_f64())
                            }
                            None => hop.fail(format!("body ended after {got} of {n} bytes")),
                            Some(e) => hop.fail(e),
                        }
                    }
                    Err(e) => hop.fail(e.to_string()),
                }
            }
            rows.push(Row {
                name: format!("stream {label} large body"),
                direct: Some(direct.median()),
                hop: hop.median(),
                unit: "MB/s".into(),
                note: hop.note(&format!("{} MiB counted per sample", n >> 20)),
            });
        }
        node.abort();
    }

    if filter.section("first") {
        progress("first call on a fresh connection");
        let mut firsts = Samples::default();
        for _ in 0..size.first_calls {
            let node = client(ProtocolChoice::Auto).await?;
            let t = Instant::now();
            if small_call_ok(&node.handle(), &addr).await {
                firsts.ok(t.elapsed().as_secs_f64() * 1e3);
            } else {
                firsts.fail("the call failed or its body differed");
            }
            node.abort();
        }
        rows.push(Row {
            name: "first call (dial+noise+yamux+call)".into(),
            direct: None,
            hop: firsts.median(),
            unit: "ms".into(),
            note: firsts.note("every body compared"),
        });
    }
    if filter.section("cli") {
        progress("one-shot `peerapi call` processes");
        let mut cli = Samples::default();
        for _ in 0..size.cli_calls {
            let t = Instant::now();
            let out = std::process::Command::new(exe)
                .args(["call", &server.addr.to_string(), "small"])
                .output()
                .map_err(|e| e.to_string())?;
            let elapsed = t.elapsed().as_secs_f64() * 1e3;
            if !out.status.success() {
                cli.fail(format!("exit {:?}", out.status.code()));
            } else if out.stdout != SMALL_BODY.as_bytes() {
                cli.fail("the printed body differed");
            } else {
                cli.ok(elapsed);
            }
        }
        rows.push(Row {
            name: "`peerapi call` one-shot process".into(),
            direct: None,
            hop: cli.median(),
            unit: "ms".into(),
            note: cli.note("exit 0 and the body compared"),
        });
    }
    if filter.section("memory") {
        progress(&format!(
            "memory with {} concurrent streams",
            size.concurrent_streams
        ));
        let node = client(ProtocolChoice::Auto).await?;
        let h: NodeHandle = node.handle();
        let mut streams = Vec::new();
        for _ in 0..size.concurrent_streams {
            let (h, a) = (h.clone(), server.addr.clone());
            streams.push(tokio::spawn(async move {
                match h.stream(&a, CallRequest::new("paced")).await {
                    Ok(s) => drain_events(s, PACED_EVENTS, false, Duration::from_secs(60))
                        .await
                        .map(|_| ()),
                    Err(e) => Err(e.to_string()),
                }
            }));
        }
        let mut peak = 0.0f64;
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(3) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            peak = peak.max(server.rss_mb().unwrap_or(0.0));
        }
        let mut ok = 0;
        let mut first_error = None;
        for s in streams {
            match s.await {
                Ok(Ok(())) => ok += 1,
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    first_error.get_or_insert(e.to_string());
                }
            }
        }
        node.abort();
        if let Some(idle) = idle_rss {
            rows.push(Row {
                name: "serving node resident memory, idle".into(),
                direct: None,
                hop: idle,
                unit: "MB".into(),
                note: String::new(),
            });
        }
        rows.push(Row {
            name: format!("serving node memory, {} streams", size.concurrent_streams),
            direct: None,
            hop: peak,
            unit: "MB".into(),
            note: format!(
                "{ok} of {} streams ended with all {PACED_EVENTS} events{}",
                size.concurrent_streams,
                first_error
                    .map(|e| format!(" (first failure: {e})"))
                    .unwrap_or_default()
            ),
        });
    }
    drop(server);
    in_process.node.abort();
    Ok(Report {
        cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        size: if size.repeats == 1 {
            "quick".into()
        } else {
            "full".into()
        },
        rows,
    })
}

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
//!
//! Layout: `report` (rows, medians, verified samples), `measure` (one
//! bounded measurement), `hop` (per protocol version, beside the direct
//! call), `process` (first call, one-shot CLI, memory), `limits` (the
//! ChaCha20-Poly1305 and loopback TCP reference rows).

mod attach;
#[cfg(feature = "console")]
mod attach_console;
mod cpu;
#[cfg(feature = "console")]
mod fleet;
mod health;
#[cfg(feature = "console")]
mod health_frames;
mod hop;
mod limits;
mod link;
mod measure;
mod paced;
mod proc_cpu;
mod process;
mod report;
mod subnet;
mod subnet_health;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use peerapi::node::ProtocolChoice;
use peerapi::testkit::{start_backend, ServingNode};

use measure::{client, InProcessNode};
use report::Report;

#[derive(Args)]
pub(crate) struct BenchCmd {
    /// A short run (one repeat, smaller counts) for a first look.
    #[arg(long)]
    quick: bool,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Run only these sections (repeatable): limits, unary, stream, blob, first, cli, memory.
    #[arg(long = "only", value_name = "SECTION", value_parser = clap::builder::PossibleValuesParser::new(BenchFilter::SECTIONS))]
    only: Vec<String>,
    /// Measure only this protocol version (repeatable): 2 or 1.
    #[arg(long = "protocol", value_name = "VERSION", value_parser = ["1", "2"])]
    protocols: Vec<String>,
    /// Unary concurrencies to measure (repeatable); default 1, 16 and 64.
    #[arg(long = "concurrency", value_name = "N")]
    concurrency: Vec<usize>,
    /// Instead of the hop: start a subnet of N peerapi nodes on this machine
    /// and measure joining, memory, idle CPU and a fan-out (repeatable:
    /// `--subnet 10 --subnet 50 --subnet 100` gives one row per size).
    #[arg(long = "subnet", value_name = "N", value_parser = clap::value_parser!(u16).range(2..=1000))]
    subnet: Vec<u16>,
    /// One more argument for every node process (repeatable): the subnet's
    /// nodes, or the serving node of the hop rows "node as own process",
    /// memory and one-shot call; e.g. `--node-arg=--threads --node-arg=1`
    /// to see what a flag costs or saves.
    #[arg(long = "node-arg", value_name = "ARG", allow_hyphen_values = true)]
    node_args: Vec<String>,
    /// With --subnet: seconds to wait after the first idle measurement
    /// before the second, the settled one (default: the nodes' idle
    /// connection timeout and 30 s; none with --quick).
    #[arg(long, value_name = "SECS")]
    settle: Option<f64>,
    /// Instead of the hop: what attaching a console costs (latency per
    /// event, events per second before a gap, a node's memory with 4
    /// attached clients), against the in-process link in the same run.
    #[arg(long)]
    attach: bool,
    /// Instead of the hop: what watching N nodes costs (N node processes
    /// with control sockets and the fleet view's probes and frames): time
    /// until every row is filled, frame time at 160x48, each node's idle
    /// CPU without and with the fleet watching.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1000))]
    fleet: Option<u16>,
    /// Instead of the hop: the hop across an impaired link, RTT[,RATE]
    /// (e.g. `100ms,100mbit`): first calls in round trips, time to the
    /// first token, a 256 MiB body against plain TCP over the same link, a
    /// fan-out to 20 peers cold and warm (a proxy on loopback).
    #[arg(long, value_name = "RTT[,RATE]", value_parser = peerapi::testkit::link::Impairment::parse)]
    link: Option<peerapi::testkit::link::Impairment>,
    /// Instead of the hop: its CPU cost, every process together (caller,
    /// serving node, backend), per 1,000 unary calls and per GB streamed,
    /// against the same work sent straight to the backend.
    #[arg(long)]
    cpu: bool,
    /// Instead of the hop: what `--health` costs a node watching N nodes
    /// (CPU, bytes on the links, history per week), with and without it.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1000))]
    health: Option<u16>,
    /// With --subnet: each node also gets a control socket, and the fleet
    /// view watches them all (the --fleet figures, over a joined subnet).
    #[arg(long)]
    with_fleet: bool,
    /// With --subnet: one more node probes the whole subnet with --health,
    /// beside a twin without it: CPU and bytes per round, the history's
    /// growth, the Health view's frames with every node as a row.
    #[arg(long)]
    with_health: bool,
}

/// A section that prints one table: on a worker thread, like the rest.
async fn section(
    name: &str,
    run: impl std::future::Future<Output = Result<String, String>> + Send + 'static,
) -> ExitCode {
    match tokio::spawn(run)
        .await
        .unwrap_or_else(|e| Err(format!("the bench task failed: {e}")))
    {
        Ok(table) => {
            print!("{table}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("peerapi: bench {name} failed: {e}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) async fn run(cmd: BenchCmd) -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("peerapi: cannot find my own executable to start the serving node: {e}");
            return ExitCode::FAILURE;
        }
    };
    let size = if cmd.quick {
        BenchSize::QUICK
    } else {
        BenchSize::FULL
    };
    if !cmd.subnet.is_empty() {
        return subnets(exe, cmd, size).await;
    }
    let quick = cmd.quick;
    if let Some(n) = cmd.fleet {
        #[cfg(feature = "console")]
        {
            let exe = exe.clone();
            let run = async move { fleet::run(&exe, usize::from(n), quick).await };
            return section("--fleet", run).await;
        }
        #[cfg(not(feature = "console"))]
        {
            let _ = n;
            let why =
                "this peerapi is built without the console, whose fleet view --fleet measures";
            return section("--fleet", async move { Err(why.to_string()) }).await;
        }
    }
    if cmd.cpu {
        let exe = exe.clone();
        return section("--cpu", async move { cpu::run(&exe, quick).await }).await;
    }
    if let Some(n) = cmd.health {
        let run = async move { health::run(&exe, usize::from(n), quick).await };
        return section("--health", run).await;
    }
    if let Some(link) = cmd.link {
        return section("--link", async move { link::run(link, quick).await }).await;
    }
    if cmd.attach {
        return section("--attach", async move { attach::run(&exe, quick).await }).await;
    }
    let filter = BenchFilter {
        sections: cmd.only,
        protocols: cmd.protocols,
        concurrency: cmd.concurrency,
    };
    // On a worker thread, like the node's own tasks: the future block_on
    // polls runs on the main thread, and every hand-over between it and
    // the workers would be one more thread wake-up in what is measured.
    let report = tokio::spawn(async move {
        let progress = |step: &str| eprintln!("bench: {step}…");
        run_all(exe, size, filter, cmd.node_args, progress).await
    })
    .await
    .unwrap_or_else(|e| Err(format!("the bench task failed: {e}")));
    match report {
        Ok(r) if cmd.json => {
            println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Ok(r) => {
            print!("{}", r.table());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("peerapi: bench failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The idle connection timeout the nodes run with (the last
/// `--idle-connection-timeout` among `node_args`, else the default), and
/// half a minute for the walk that may have touched a connection last.
fn settle_time(node_args: &[String]) -> Duration {
    let given = node_args
        .windows(2)
        .filter(|w| w[0] == "--idle-connection-timeout")
        .filter_map(|w| w[1].parse::<f64>().ok())
        .filter_map(|s| Duration::try_from_secs_f64(s).ok())
        .next_back();
    given.unwrap_or(peerapi::node::DEFAULT_IDLE_CONNECTION_TIMEOUT) + Duration::from_secs(30)
}

/// `--subnet N…`: one subnet per size, one after the other.
async fn subnets(exe: PathBuf, cmd: BenchCmd, size: BenchSize) -> ExitCode {
    let idle = Duration::from_secs(if size.repeats == 1 { 5 } else { 30 });
    // Long enough for the connections of joining to pass the nodes' idle
    // connection timeout (or the one given with --node-arg).
    let settle = match (cmd.settle, size.repeats) {
        (Some(secs), _) => Duration::try_from_secs_f64(secs).unwrap_or(Duration::ZERO),
        (None, 1) => Duration::ZERO,
        (None, _) => settle_time(&cmd.node_args),
    };
    let sizes = cmd.subnet.clone();
    let node_args = cmd.node_args.clone();
    let extras = (cmd.with_fleet, cmd.with_health);
    let rows = tokio::spawn(async move {
        let mut rows = Vec::new();
        for n in sizes {
            let progress = |s: &str| eprintln!("bench: {s}…");
            let row = subnet::measure(&exe, n as usize, idle, settle, &node_args, extras, progress);
            rows.push(row.await?);
        }
        Ok::<_, String>(rows)
    })
    .await
    .unwrap_or_else(|e| Err(format!("the bench task failed: {e}")));
    match rows {
        Ok(rows) if cmd.json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&rows).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Ok(rows) => {
            let cores = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1);
            print!("{}", subnet::table(&rows, cores, &cmd.node_args));
            for health in rows.iter().filter_map(|r| r.health.as_ref()) {
                print!("\n{health}");
            }
            for fleet in rows.iter().filter_map(|r| r.fleet.as_ref()) {
                print!("\n{fleet}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("peerapi: bench --subnet failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// How much to measure.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BenchSize {
    pub(crate) repeats: usize,
    pub(crate) unary_calls: [usize; 3],
    pub(crate) stream_events: usize,
    /// Streams opened to time their first byte.
    pub(crate) first_byte_samples: usize,
    pub(crate) blob_bytes: usize,
    pub(crate) first_calls: usize,
    pub(crate) concurrent_streams: usize,
    pub(crate) cli_calls: usize,
    /// No single measurement runs longer than this.
    pub(crate) max_secs: f64,
    /// Untimed calls before the unary measurements of each protocol.
    pub(crate) warmup_secs: f64,
}

/// Which parts to run: all by default, or a subset for profiling one thing.
#[derive(Clone, Debug, Default)]
pub(crate) struct BenchFilter {
    /// Section names (`unary`, `stream`, `blob`, `first`, `cli`, `memory`); empty = all.
    pub(crate) sections: Vec<String>,
    /// Protocol versions (`2.0.0`, `1.0.0`); empty = both.
    pub(crate) protocols: Vec<String>,
    /// Unary concurrencies; empty = 1, 16 and 64.
    pub(crate) concurrency: Vec<usize>,
}

impl BenchFilter {
    pub(crate) const SECTIONS: [&'static str; 7] = [
        "limits", "unary", "stream", "blob", "first", "cli", "memory",
    ];

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
    pub(crate) const FULL: BenchSize = BenchSize {
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
    pub(crate) const QUICK: BenchSize = BenchSize {
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

/// Everything the sections share: what to measure, the backend, the
/// serving node in this process and the one in its own process.
struct Bench {
    exe: PathBuf,
    size: BenchSize,
    filter: BenchFilter,
    http: reqwest::Client,
    backend: SocketAddr,
    max: Duration,
    /// The in-process serving node's address.
    addr: libp2p::Multiaddr,
    server: ServingNode,
    progress: fn(&str),
}

/// Runs every selected section and returns the report.
async fn run_all(
    exe: PathBuf,
    size: BenchSize,
    filter: BenchFilter,
    node_args: Vec<String>,
    progress: fn(&str),
) -> Result<Report, String> {
    let backend = start_backend().await.map_err(|e| e.to_string())?;
    let in_process = InProcessNode::start(backend, size.concurrent_streams).await?;
    // The separate process serves the memory rows, the one-shot CLI and the
    // cross-process latency row.
    let server = ServingNode::start(&exe, backend, size.concurrent_streams, &node_args)?;
    let http = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(256)
        .build()
        .map_err(|e| e.to_string())?;
    let b = Bench {
        exe,
        size,
        filter,
        http,
        backend,
        max: Duration::from_secs_f64(size.max_secs),
        addr: in_process.addr.clone(),
        server,
        progress,
    };
    let mut rows = Vec::new();
    if b.filter.section("limits") {
        (b.progress)("reference rows: ChaCha20-Poly1305, loopback TCP, a wake-up round trip");
        let time = Duration::from_secs_f64((size.max_secs / 10.0).clamp(0.2, 1.0));
        rows.push(limits::chacha20_poly1305(size.repeats, time));
        rows.push(limits::loopback_tcp(size.repeats, time).await?);
        // Blocking reads: off the runtime's workers.
        let repeats = size.repeats;
        rows.push(
            tokio::task::spawn_blocking(move || limits::loopback_round_trip(repeats))
                .await
                .map_err(|e| e.to_string())??,
        );
    }

    // Idle memory before any call.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle_rss = b.server.rss_mb();

    for (label, choice) in [("2.0.0", ProtocolChoice::V2), ("1.0.0", ProtocolChoice::V1)] {
        if !b.filter.protocol(label) {
            continue;
        }
        let node = client(choice).await?;
        let h = node.handle();
        h.dial(&b.addr).await.map_err(|e| e.to_string())?;
        if b.filter.section("unary") {
            hop::warm_up(&b, label, &h).await;
            rows.extend(hop::unary(&b, label, &h).await);
            if b.filter.concurrency(1) {
                rows.push(hop::unary_own_process(&b, label, &h).await?);
            }
        }
        if b.filter.section("stream") {
            rows.extend(hop::stream(&b, label, &h).await);
        }
        if b.filter.section("blob") {
            rows.push(hop::blob(&b, label, &h).await);
        }
        node.abort();
    }
    if b.filter.section("first") {
        rows.push(process::first_call(&b).await?);
    }
    if b.filter.section("cli") {
        rows.push(process::one_shot_cli(&b)?);
    }
    if b.filter.section("memory") {
        rows.extend(process::memory(&b, idle_rss).await?);
    }
    rows.extend(limits::shares(&rows));
    drop(b);
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
        node_args,
        rows,
    })
}

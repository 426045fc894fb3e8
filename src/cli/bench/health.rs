//! `peerapi bench --health N`: what probing a subnet of N nodes costs.
//!
//! N `peerapi node` processes, each behind its own link proxy on loopback
//! (which counts the bytes that cross it). A watching `peerapi node`
//! bootstraps to all of them and runs twice in turn for the same time,
//! without `--health` and with it at a short interval, so the difference is
//! the probes' own cost: CPU of the watching process, bytes on the links,
//! and the history's size per probe, scaled to a 60 s interval.

use std::path::Path;
use std::time::{Duration, Instant};

use peerapi::testkit::link::{Impairment, LinkProxy};
use peerapi::testkit::spawn_node_reporting;

use super::proc_cpu::{cpu_ticks, ticks_per_sec};

/// The interval probed at in the bench (the figures scale it to 60 s).
const BENCH_INTERVAL: Duration = Duration::from_secs(2);

struct Phase {
    cpu_secs: f64,
    bytes: u64,
    secs: f64,
    /// The Health view's frame times (the phase with a control socket).
    frames: Option<Result<String, String>>,
}

/// Runs the watcher with `flags` for `run`; its CPU and the links' bytes.
fn phase(
    exe: &Path,
    routes: &Path,
    flags: &[String],
    proxies: &[LinkProxy],
    run: Duration,
    control: Option<&Path>,
) -> Result<Phase, String> {
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut node = spawn_node_reporting(exe, routes, &flags, &[], Duration::from_secs(30))?;
    let pid = node.child.id();
    // Joining (dials, identify, Kademlia) is not the probes' cost: start
    // counting once the connections are up.
    std::thread::sleep(Duration::from_secs(3));
    let bytes_before: u64 = proxies.iter().map(LinkProxy::bytes).sum();
    let cpu_before = cpu_ticks(pid).unwrap_or(0);
    let start = Instant::now();
    std::thread::sleep(run);
    let cpu_after = cpu_ticks(pid).unwrap_or(0);
    let bytes_after: u64 = proxies.iter().map(LinkProxy::bytes).sum();
    let secs = start.elapsed().as_secs_f64();
    // After the counting: drawing here costs this process, not the watcher.
    let frames = control.map(|socket| tokio::runtime::Handle::current().block_on(frames(socket)));
    let _ = node.child.kill();
    let _ = node.child.wait();
    Ok(Phase {
        cpu_secs: cpu_after.saturating_sub(cpu_before) as f64 / ticks_per_sec(),
        bytes: bytes_after.saturating_sub(bytes_before),
        secs,
        frames,
    })
}

/// A history file's bytes: the file and its write-ahead log.
pub(super) fn history_bytes(path: &Path) -> u64 {
    ["", "-wal"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", path.display())).ok())
        .map(|m| m.len())
        .sum()
}

/// A day of probes at a 60 s interval of `nodes` nodes, written through
/// the history's own code (1 % of probes unreachable, RTTs spread): the
/// file's size at the end, in bytes.
pub(super) fn simulated_day(path: &Path, nodes: usize) -> Result<u64, String> {
    use peerapi::health::store::{History, ProbeRecord};
    use peerapi::health::Verdict;
    let mut h = History::open(path, "bench").map_err(|e| e.to_string())?;
    let start = std::time::SystemTime::now() - Duration::from_secs(86_400);
    let peers: Vec<String> = (0..nodes)
        .map(|_| libp2p::PeerId::random().to_string())
        .collect();
    // Our own reachability is one row a round.
    let reachability = peerapi::health::reach::judge(&[], &[]);
    for round in 0..1440u64 {
        let at = start + Duration::from_secs(60 * round);
        let records: Vec<ProbeRecord> = peers
            .iter()
            .map(|peer| {
                let down = rand::random::<f64>() < 0.01;
                ProbeRecord {
                    peer: peer.clone(),
                    at,
                    verdict: if down {
                        Verdict::Unreachable
                    } else {
                        Verdict::Online
                    },
                    reason: if down {
                        "connection refused".into()
                    } else {
                        String::new()
                    },
                    rtt: (!down)
                        .then(|| Duration::from_micros(5_000 + rand::random::<u64>() % 75_000)),
                    probe_time: None,
                    // Every node serving DAG sync: the most a row holds.
                    dag: Some(peerapi::health::dag::DagSync::InStep),
                }
            })
            .collect();
        h.record_all(&records).map_err(|e| e.to_string())?;
        h.record_reachability(at, &reachability)
            .map_err(|e| e.to_string())?;
    }
    drop(h);
    Ok(history_bytes(path))
}

pub(super) async fn run(exe: &Path, nodes: usize, quick: bool) -> Result<String, String> {
    let progress = |s: &str| eprintln!("bench: health: {s}…");
    let dir = peerapi::testkit::TempDir::new(&format!("health-{}", std::process::id()))?;
    let routes = dir.path().join("routes.json");
    std::fs::write(&routes, "{}").map_err(|e| e.to_string())?;
    progress(&format!("starting {nodes} nodes behind link proxies"));
    let mut children = Vec::new();
    let mut proxies = Vec::new();
    let mut targets = Vec::new();
    for _ in 0..nodes {
        let n = spawn_node_reporting(
            exe,
            &routes,
            &["--no-control", "--threads", "1"],
            &[],
            Duration::from_secs(30),
        )?;
        let (proxy, through) = LinkProxy::in_front_of(&n.addr, Impairment::default())
            .await
            .map_err(|e| e.to_string())?;
        targets.push(through.to_string());
        proxies.push(proxy);
        children.push(n.child);
    }
    let run = Duration::from_secs(if quick { 10 } else { 30 });
    let db = dir.path().join("health.db");
    let mut base: Vec<String> = vec!["--no-control".into(), "--threads".into(), "1".into()];
    for t in &targets {
        base.extend(["--bootstrap".to_string(), t.clone()]);
    }
    let mut probing = base.clone();
    // The watcher with health gets a control socket: the Health view's rows.
    let socket = dir.path().join("ctl").join("watcher.sock");
    probing[0] = "--control".into();
    probing.insert(1, socket.display().to_string());
    probing.extend([
        "--health".to_string(),
        "--health-interval".into(),
        format!("{}s", BENCH_INTERVAL.as_secs()),
        "--health-db".into(),
        db.display().to_string(),
    ]);
    let (exe2, routes2) = (exe.to_path_buf(), routes.clone());
    // The proxies' tasks run on this runtime: the phases block elsewhere.
    let (without, with, without2, proxies) = tokio::task::spawn_blocking(move || {
        let a = phase(&exe2, &routes2, &base, &proxies, run, None);
        let b = phase(&exe2, &routes2, &probing, &proxies, run, Some(&socket));
        let c = phase(&exe2, &routes2, &base, &proxies, run, None);
        (a, b, c, proxies)
    })
    .await
    .map_err(|e| e.to_string())?;
    drop(proxies);
    for mut c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
    let (without, with, without2) = (without?, with?, without2?);
    let history = peerapi::health::store::History::open_read(&db).map_err(|e| e.to_string())?;
    let probes = history
        .probes_since(std::time::SystemTime::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .len();
    drop(history);
    let db_bytes = history_bytes(&db);
    let rounds = probes as f64 / nodes as f64;
    let base_cpu = (without.cpu_secs / without.secs + without2.cpu_secs / without2.secs) / 2.0;
    let base_bytes =
        (without.bytes as f64 / without.secs + without2.bytes as f64 / without2.secs) / 2.0;
    let cpu_per_round =
        ((with.cpu_secs / with.secs - base_cpu) * with.secs / rounds.max(1.0)).max(0.0);
    let bytes_per_round =
        ((with.bytes as f64 / with.secs - base_bytes) * with.secs / rounds.max(1.0)).max(0.0);
    progress("a simulated day of history");
    let day_bytes = simulated_day(&dir.path().join("day.db"), nodes)?;
    let week_mb = day_bytes as f64 * 7.0 / 1e6;
    let per_probe_db = day_bytes as f64 / (nodes as f64 * 1440.0);
    Ok(format!(
        "probing a subnet of {nodes} nodes (the watcher connected to all; {:.0} s each: without, with --health every {} s, without)\n\
         \x20 watcher CPU             {:.2} % of a core without, {:.2} % with, {:.2} % again without\n\
         \x20 per round of {nodes} probes  {:.1} ms CPU, {:.0} bytes on the links beyond the connections' own traffic ({:.0} B/s without probes, {:.0} B/s with)\n\
         \x20 at a 60 s interval      {:.3} % of a core (target < 1 %), {:.1} B/s for the whole subnet (target < 10 KB/s)\n\
         \x20 history                 {probes} probes written in the run ({db_bytes} bytes); a simulated day at 60 s: {day_bytes} bytes, {:.1} bytes per probe, {:.1} MB per week at {nodes} nodes (target < 50 MB)\n",
        run.as_secs_f64(),
        BENCH_INTERVAL.as_secs(),
        without.cpu_secs / without.secs * 100.0,
        with.cpu_secs / with.secs * 100.0,
        without2.cpu_secs / without2.secs * 100.0,
        cpu_per_round * 1e3,
        bytes_per_round,
        base_bytes,
        with.bytes as f64 / with.secs,
        cpu_per_round / 60.0 * 100.0,
        bytes_per_round / 60.0,
        per_probe_db,
        week_mb
    ) + &match with.frames {
        Some(Ok(lines)) => lines,
        Some(Err(e)) => format!("  Health view            not measured: {e}\n"),
        None => String::new(),
    })
}

#[cfg(feature = "console")]
pub(super) async fn frames(socket: &Path) -> Result<String, String> {
    super::health_frames::measure(socket).await
}

#[cfg(not(feature = "console"))]
pub(super) async fn frames(_: &Path) -> Result<String, String> {
    Err("this peerapi is built without the console".into())
}

//! `bench --subnet N --with-health`: a node probing the whole subnet, beside
//! its twin that does not. Both join like the other nodes, from the
//! bootnode alone, and connect to every node they find (a peer target
//! over N: a template subnet's roster does the same for a real watcher).
//! Over the same window: the watcher's CPU and socket bytes against its
//! twin's, its rounds and probes as it reports them over its control
//! socket, the history's size per probe, and the Health view's frames.

use std::path::Path;
use std::time::{Duration, Instant};

use peerapi::control::{client, Reply, Request, Role};
use peerapi::health::Latest;
use peerapi::testkit::{spawn_node_reporting, SpawnedNode};

use super::proc_cpu::{cpu_ticks, ticks_per_sec};

/// Share of the other nodes both must be connected to before measuring.
const CONNECTED_SHARE: f64 = 0.9;

struct Kill(SpawnedNode);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.child.kill();
        let _ = self.0.child.wait();
    }
}

/// Bytes a process read and wrote through syscalls (sockets included).
fn io_bytes(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let field = |name: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
    };
    Some(field("rchar:")? + field("wchar:")?)
}

async fn report(socket: &Path) -> Result<Latest, String> {
    let (link, _updates) = client::connect_socket(socket, Role::Observe).await?;
    match link.request(Request::Health).reply().await {
        Reply::Health(latest) => (*latest).ok_or_else(|| "the watcher does not probe".into()),
        other => Err(format!("the watcher answered {other:?}")),
    }
}

async fn connected(http: &reqwest::Client, url: &str) -> f64 {
    let text = match http.get(url).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    super::report::gauge(&text, "peerapi_connected_peers").unwrap_or(0.0)
}

/// The section's text.
pub(super) async fn measure(
    exe: &Path,
    routes: &Path,
    boot: &str,
    n: usize,
    window: Duration,
    interval: Duration,
) -> Result<String, String> {
    let dir = peerapi::testkit::TempDir::new(&format!("subnet-health-{}", std::process::id()))?;
    let socket = dir.path().join("ctl").join("watcher.sock");
    let db = dir.path().join("health.db");
    let target = (n * 2).to_string();
    let (socket_arg, db_arg) = (socket.display().to_string(), db.display().to_string());
    let interval_arg = format!("{}ms", interval.as_millis());
    let common = [
        "--metrics-listen",
        "127.0.0.1:0",
        "--bootstrap",
        boot,
        "--peer-target",
        &target,
    ];
    let mut watcher_flags: Vec<&str> = common.to_vec();
    watcher_flags.extend([
        "--control",
        &socket_arg,
        "--health",
        "--health-interval",
        &interval_arg,
        "--health-db",
        &db_arg,
    ]);
    let mut twin_flags: Vec<&str> = common.to_vec();
    twin_flags.push("--no-control");
    let env = [("RUST_LOG", "error")];
    let spawn = |flags: &[&str]| {
        spawn_node_reporting(exe, routes, flags, &env, Duration::from_secs(30)).map(Kill)
    };
    let watcher = spawn(&watcher_flags)?;
    let twin = spawn(&twin_flags)?;
    let http = reqwest::Client::new();
    let urls: Vec<String> = [&watcher, &twin]
        .iter()
        .map(|k| k.0.metrics_url.clone().ok_or("no metrics address"))
        .collect::<Result<_, _>>()?;
    let others = (n - 1) as f64;
    let start = Instant::now();
    loop {
        let least = connected(&http, &urls[0])
            .await
            .min(connected(&http, &urls[1]).await);
        if least >= others * CONNECTED_SHARE {
            break;
        }
        if start.elapsed() > Duration::from_secs(120) {
            return Err(format!(
                "the watcher and its twin reached {least} of {others} nodes in 120 s"
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // One round first: the first dials and replications are not the cost.
    let first = loop {
        let r = report(&socket).await?;
        if r.rounds >= 1 {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let pids = [watcher.0.child.id(), twin.0.child.id()];
    let cpu0: Vec<u64> = pids.iter().map(|p| cpu_ticks(*p).unwrap_or(0)).collect();
    let io0: Vec<u64> = pids.iter().map(|p| io_bytes(*p).unwrap_or(0)).collect();
    let t0 = Instant::now();
    tokio::time::sleep(window).await;
    let secs = t0.elapsed().as_secs_f64();
    let cpu1: Vec<u64> = pids.iter().map(|p| cpu_ticks(*p).unwrap_or(0)).collect();
    let io1: Vec<u64> = pids.iter().map(|p| io_bytes(*p).unwrap_or(0)).collect();
    let last = report(&socket).await?;
    let cpu = |i: usize| cpu1[i].saturating_sub(cpu0[i]) as f64 / ticks_per_sec();
    let io = |i: usize| io1[i].saturating_sub(io0[i]) as f64;
    let rounds = last.rounds.saturating_sub(first.rounds).max(1) as f64;
    let probes = last.probes_made.saturating_sub(first.probes_made) as f64;
    let per_round_cpu = (cpu(0) - cpu(1)).max(0.0) / rounds;
    let per_round_io = (io(0) - io(1)).max(0.0) / rounds;
    let counted = last.probe_bytes.saturating_sub(first.probe_bytes) as f64 / probes.max(1.0);
    let per_probe = probes / rounds;
    drop(twin);
    let frames = super::health::frames(&socket).await;
    drop(watcher);
    let db_bytes = super::health::history_bytes(&db);
    let day = dir.path().join("day.db");
    let day_bytes = super::health::simulated_day(&day, n)?;
    let at_60 = 60.0;
    Ok(format!(
        "health over the subnet of {n}: a watcher probing every {interval:?} beside its twin without --health, both connected to the subnet; {secs:.0} s, {rounds:.0} rounds of {per_probe:.0} probes\n\
         \x20 CPU                    watcher {:.2} % of a core, twin {:.2} %: {:.1} ms per round, {:.3} % of a core at a 60 s interval (target < 1 %)\n\
         \x20 bytes on the links     the prober counted {counted:.0} bytes per probe (DAG inventory request and answer): {:.0} B/s for the subnet at 60 s (target < 10 KB/s)\n\
         \x20 bytes read and written watcher {:.0} B/s, twin {:.0} B/s (syscalls: sockets and the history file): {:.0} bytes per round\n\
         \x20 history                {db_bytes} bytes after {} probes (its pages and WAL); a simulated day of {n} nodes at 60 s: {day_bytes} bytes, {:.1} MB a week (target < 50 MB)\n{}",
        cpu(0) / secs * 100.0,
        cpu(1) / secs * 100.0,
        per_round_cpu * 1e3,
        per_round_cpu / at_60 * 100.0,
        counted * per_probe / at_60,
        io(0) / secs,
        io(1) / secs,
        per_round_io,
        last.probes_made,
        day_bytes as f64 * 7.0 / 1e6,
        frames.unwrap_or_else(|e| format!("  Health view            not measured: {e}\n")),
    ))
}

//! `peerapi bench --subnet N`: N peerapi nodes on this machine as a subnet.
//!
//! N-1 `peerapi node` processes on loopback (the first is the bootnode; the
//! others are given only its address) and one node in this process, which
//! joins the same way and makes the fan-out call. Each process serves a
//! small route and its metrics, which is how the bench reads what each node
//! knows: `peerapi_discovered_peers` (peers found through the DHT) and
//! `peerapi_connected_peers`; a node knows at least the larger of the two
//! (a peer that dialed us is known without being in a full k-bucket).
//! Memory and CPU come from `/proc`.

use std::path::Path;
use std::time::{Duration, Instant};

use libp2p::Multiaddr;
use serde::Serialize;

use peerapi::node::{CallRequest, NodeConfig};
use peerapi::testkit::{proc_kb, spawn_node_reporting, SpawnedNode};

#[cfg(test)]
use super::proc_cpu::cpu_ticks;
use super::proc_cpu::idle_cpu;
use super::report::gauge;

/// Share of the other nodes each node must know for the subnet to count
/// as joined.
const KNOWN_SHARE: f64 = 0.9;
/// The longest the bench waits for that.
const JOIN_LIMIT: Duration = Duration::from_secs(180);
/// Fan-out calls made (the figures are over all of them).
const FAN_OUTS: usize = 5;

/// One subnet size's figures.
#[derive(Debug, Serialize)]
pub(super) struct SubnetRow {
    pub nodes: usize,
    /// Seconds from the last node's start until every node knows 90% of
    /// the others (None: not within the limit).
    pub joined_secs: Option<f64>,
    /// The least share of the others any node knew at the end of the wait.
    pub least_known_share: f64,
    pub connections_median: f64,
    pub connections_max: f64,
    pub rss_mb_median: f64,
    pub rss_mb_max: f64,
    /// Memory of the node's own (private: RSS without the pages it shares
    /// with the other nodes, mostly the binary's code, resident once).
    pub private_mb_median: f64,
    /// Proportional set size: RSS with each shared page divided among the
    /// processes that map it. The nodes' PSS add up to what the subnet
    /// takes of the machine's memory; RSS counts the shared code N times.
    pub pss_mb_median: f64,
    pub pss_mb_max: f64,
    /// All node processes together, in % of one core, while idle, right
    /// after joining.
    pub idle_cpu_percent: f64,
    pub idle_secs: f64,
    /// The same once the connections of joining had time to close (the
    /// idle connection timeout), over as long; None when not measured.
    pub settled_cpu_percent: Option<f64>,
    /// Peers the fan-out called (every other node).
    pub fanout_peers: usize,
    /// Wall time of the first fan-out (it dials the peers not connected).
    pub fanout_ms_first: f64,
    /// Wall time of one fan-out to all of them: median and max of the runs.
    pub fanout_ms_p50: f64,
    pub fanout_ms_max: f64,
    pub fanout_failed: usize,
    /// With `--with-fleet`: what the fleet view watching every node costs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet: Option<String>,
    /// With `--with-health`: what a node probing the subnet costs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
}

struct Member {
    node: SpawnedNode,
    metrics: String,
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.node.child.kill();
        let _ = self.node.child.wait();
    }
}

/// Starts a subnet of `n` nodes, measures it and stops it.
pub(super) async fn measure(
    exe: &Path,
    n: usize,
    idle: Duration,
    settle: Duration,
    node_args: &[String],
    (with_fleet, with_health): (bool, bool),
    progress: fn(&str),
) -> Result<SubnetRow, String> {
    if n < 2 {
        return Err("--subnet needs at least 2 nodes".into());
    }
    let backend = peerapi::testkit::start_backend()
        .await
        .map_err(|e| format!("cannot start the backend: {e}"))?;
    let (_dir, routes) = peerapi::testkit::bench_routes(backend, &format!("subnet{n}"))?;
    let http = reqwest::Client::new();
    progress(&format!("subnet of {n}: starting {} node processes", n - 1));
    let mut members: Vec<Member> = Vec::with_capacity(n - 1);
    let mut boot: Option<Multiaddr> = None;
    let sockets = peerapi::testkit::TempDir::new(&format!("subnet-ctl-{}", std::process::id()))?;
    let mut contexts = Vec::new();
    for i in 0..n - 1 {
        let boot_text = boot.as_ref().map(|b| b.to_string());
        let mut flags = vec!["--json", "--metrics-listen", "127.0.0.1:0"];
        if let Some(b) = &boot_text {
            flags.extend(["--bootstrap", b.as_str()]);
        }
        // With the fleet: a control socket per node, as an operator runs them.
        let socket = sockets.path().join("ctl").join(format!("n{i}.sock"));
        let (socket_arg, name) = (socket.to_string_lossy().into_owned(), format!("n{i}"));
        if with_fleet {
            flags.extend(["--control", socket_arg.as_str(), "--name", name.as_str()]);
            contexts.push(peerapi::fleet::Context {
                name: name.clone(),
                target: format!("unix:{socket_arg}"),
                labels: Default::default(),
                read_only: true,
                color: None,
            });
        }
        flags.extend(node_args.iter().map(String::as_str));
        let node = spawn_node_reporting(
            exe,
            &routes,
            &flags,
            &[("RUST_LOG", "error")],
            Duration::from_secs(30),
        )
        .map_err(|e| format!("node {i}: {e}"))?;
        let metrics = node
            .metrics_url
            .clone()
            .ok_or_else(|| format!("node {i} printed no metrics address"))?;
        if boot.is_none() {
            boot = Some(node.addr.clone());
        }
        members.push(Member { node, metrics });
    }
    let boot = boot.ok_or("no bootnode")?;
    let boot_text = boot.to_string();
    // The in-process node joins like the others: from the bootnode alone.
    let mut config = NodeConfig::new(libp2p::identity::Keypair::generate_ed25519());
    config.bootstrap = vec![boot];
    let our_metrics = std::sync::Arc::new(peerapi::node::metrics::NodeMetrics::new());
    config.metrics = Some(our_metrics.clone());
    let ours = peerapi::Node::start(config)
        .await
        .map_err(|e| format!("cannot start the bench's node: {e}"))?;
    let started = Instant::now();

    progress(&format!(
        "subnet of {n}: waiting until every node knows 90% of the others"
    ));
    let others = (n - 1) as f64;
    let mut joined_secs = None;
    let mut least_known_share = 0.0;
    while started.elapsed() < JOIN_LIMIT {
        let found = gauges(&http, &members, "peerapi_discovered_peers").await;
        let connected = gauges(&http, &members, "peerapi_connected_peers").await;
        let known: Vec<f64> = found
            .iter()
            .zip(&connected)
            .map(|(f, c)| f.max(*c))
            .collect();
        let ours_text = our_metrics.encode();
        let our_known = gauge(&ours_text, "peerapi_discovered_peers")
            .unwrap_or(0.0)
            .max(gauge(&ours_text, "peerapi_connected_peers").unwrap_or(0.0));
        least_known_share = known
            .iter()
            .copied()
            .chain([our_known])
            .fold(f64::INFINITY, f64::min)
            / others;
        if least_known_share >= KNOWN_SHARE {
            joined_secs = Some(started.elapsed().as_secs_f64());
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    progress(&format!("subnet of {n}: idle for {idle:?} (CPU, memory)"));
    let pids: Vec<u32> = members.iter().map(|m| m.node.child.id()).collect();
    let (idle_cpu_percent, idle_secs) = idle_cpu(&pids, idle).await;
    let mut settled_cpu_percent = None;
    if !settle.is_zero() {
        progress(&format!(
            "subnet of {n}: settling for {settle:?}, then idle for {idle:?} again"
        ));
        tokio::time::sleep(settle).await;
        settled_cpu_percent = Some(idle_cpu(&pids, idle).await.0);
    }
    let fleet = if with_fleet {
        progress(&format!("subnet of {n}: the fleet view watching its nodes"));
        let title = format!("fleet over the subnet of {n} ({} node processes)", n - 1);
        Some(watch_fleet(&title, &pids, contexts, idle).await?)
    } else {
        None
    };
    let health = if with_health {
        progress(&format!(
            "subnet of {n}: a node probing the subnet, beside its twin"
        ));
        let interval = Duration::from_secs(if settle.is_zero() { 2 } else { 10 });
        let window = idle.max(interval * 3);
        Some(super::subnet_health::measure(exe, &routes, &boot_text, n, window, interval).await?)
    } else {
        None
    };
    let rss: Vec<f64> = pids.iter().filter_map(|p| rss_mb(*p)).collect();
    let private: Vec<f64> = pids.iter().filter_map(|p| private_mb(*p)).collect();
    let pss: Vec<f64> = pids.iter().filter_map(|p| pss_mb(*p)).collect();
    let connections = gauges(&http, &members, "peerapi_connected_peers").await;

    progress(&format!(
        "subnet of {n}: fan-out from our node to every other node"
    ));
    let h = ours.handle();
    // Every other node, as an operator names them: most are not connected
    // (a node keeps about its peer target), so the first fan-out dials.
    let targets: Vec<Multiaddr> = members.iter().map(|m| m.node.addr.clone()).collect();
    let mut walls = Vec::new();
    let mut failed = 0;
    for _ in 0..FAN_OUTS {
        let t = Instant::now();
        let results = peerapi::load::fan_out(
            &h,
            &targets,
            &CallRequest::new("small"),
            false,
            targets.len().max(1),
        )
        .await;
        walls.push(t.elapsed().as_secs_f64() * 1e3);
        failed += results.iter().filter(|r| r.sample.error.is_some()).count();
    }
    ours.abort();
    drop(members);
    let (rss_mb_median, rss_mb_max) = spread(rss);
    let (pss_mb_median, pss_mb_max) = spread(pss);
    let (connections_median, connections_max) = spread(connections);
    let fanout_ms_first = walls.first().copied().unwrap_or(0.0);
    let (fanout_ms_p50, fanout_ms_max) = spread(walls);
    Ok(SubnetRow {
        nodes: n,
        joined_secs,
        least_known_share,
        connections_median,
        connections_max,
        rss_mb_median,
        rss_mb_max,
        private_mb_median: super::report::median(private),
        pss_mb_median,
        pss_mb_max,
        idle_cpu_percent,
        idle_secs,
        settled_cpu_percent,
        fanout_peers: targets.len(),
        fanout_ms_first,
        fanout_ms_p50,
        fanout_ms_max,
        fanout_failed: failed,
        fleet,
        health,
    })
}

#[cfg(feature = "console")]
async fn watch_fleet(
    title: &str,
    pids: &[u32],
    contexts: Vec<peerapi::fleet::Context>,
    idle: Duration,
) -> Result<String, String> {
    super::fleet::watching(title, pids, contexts, idle).await
}

#[cfg(not(feature = "console"))]
async fn watch_fleet(
    _: &str,
    _: &[u32],
    _: Vec<peerapi::fleet::Context>,
    _: Duration,
) -> Result<String, String> {
    Err("this peerapi is built without the console, whose fleet view --with-fleet measures".into())
}

/// One gauge from every member's metrics (a member that does not answer
/// counts as 0: it knows nobody we can see).
async fn gauges(http: &reqwest::Client, members: &[Member], name: &str) -> Vec<f64> {
    let scrapes = members.iter().map(|m| async move {
        let text = match http.get(&m.metrics).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        gauge(&text, name).unwrap_or(0.0)
    });
    futures::future::join_all(scrapes).await
}

/// (median, max).
fn spread(v: Vec<f64>) -> (f64, f64) {
    let max = v.iter().copied().fold(0.0, f64::max);
    (super::report::median(v), max)
}

fn rss_mb(pid: u32) -> Option<f64> {
    proc_kb(&format!("/proc/{pid}/status"), "VmRSS:").map(|kb| kb / 1024.0)
}

fn pss_mb(pid: u32) -> Option<f64> {
    proc_kb(&format!("/proc/{pid}/smaps_rollup"), "Pss:").map(|kb| kb / 1024.0)
}

fn private_mb(pid: u32) -> Option<f64> {
    let path = format!("/proc/{pid}/smaps_rollup");
    let clean = proc_kb(&path, "Private_Clean:")?;
    let dirty = proc_kb(&path, "Private_Dirty:")?;
    Some((clean + dirty) / 1024.0)
}

/// The table of every size measured.
pub(super) fn table(rows: &[SubnetRow], cores: usize, node_args: &[String]) -> String {
    let with = if node_args.is_empty() {
        String::new()
    } else {
        format!("; nodes run with {}", node_args.join(" "))
    };
    let mut out = format!(
        "peerapi bench --subnet ({cores} cores, loopback; N-1 node processes + 1 in-process caller{with})\n\
         {:>5} {:>10} {:>6} {:>12} {:>19} {:>11} {:>17} {:>22} {:>8}\n",
        "nodes", "90% known", "least", "connections", "RSS MB (own)", "PSS MB", "idle CPU", "fan-out ms", "failed"
    );
    for r in rows {
        let joined = r
            .joined_secs
            .map(|s| format!("{s:.1} s"))
            .unwrap_or_else(|| format!(">{} s", JOIN_LIMIT.as_secs()));
        out.push_str(&format!(
            "{:>5} {:>10} {:>5.0}% {:>5.0} / {:<5.0} {:>4.1} / {:<4.1} ({:>4.1}) {:>4.1} / {:<4.1} {:>7.1}% {:>8} {:>6.1} {:>6.1} / {:<7.1} {:>3}/{}\n",
            r.nodes,
            joined,
            r.least_known_share * 100.0,
            r.connections_median,
            r.connections_max,
            r.rss_mb_median,
            r.rss_mb_max,
            r.private_mb_median,
            r.pss_mb_median,
            r.pss_mb_max,
            r.idle_cpu_percent,
            r.settled_cpu_percent
                .map(|c| format!("{c:.1}%"))
                .unwrap_or_else(|| "-".into()),
            r.fanout_ms_first,
            r.fanout_ms_p50,
            r.fanout_ms_max,
            r.fanout_failed,
            r.fanout_peers * FAN_OUTS,
        ));
    }
    out.push_str(
        "(90% known: seconds until every node found (DHT) or is connected to 90% of the others;\n\
         least: the smallest share any node knew; connections, RSS and PSS: median / max per node\n\
         process at the end; own: median of each node's RSS without the pages it shares with the\n\
         other nodes (mostly the binary's code); PSS: RSS with each shared page divided among the\n\
         processes that map it, so the nodes' PSS add up to the subnet's memory; idle CPU: all node\n\
         processes together, % of one core, right after joining, then settled (once the connections\n\
         of joining passed the idle timeout); fan-out: wall time of one call to every other node at\n\
         once: the first (it dials the nodes not connected), then p50 / max over 5 runs;\n\
         failed: calls failed / made)\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gauge_is_read_by_its_exact_name() {
        let text = "# TYPE peerapi_connected_peers gauge\npeerapi_connected_peers 7\npeerapi_connected_peers_x 9\n";
        assert_eq!(gauge(text, "peerapi_connected_peers"), Some(7.0));
        assert_eq!(gauge(text, "peerapi_discovered_peers"), None);
    }

    #[test]
    fn cpu_ticks_of_this_process_are_read() {
        assert!(cpu_ticks(std::process::id()).is_some());
        assert!(rss_mb(std::process::id()).unwrap() > 0.0);
        let own = private_mb(std::process::id()).unwrap();
        let pss = pss_mb(std::process::id()).unwrap();
        assert!(pss >= own && pss <= rss_mb(std::process::id()).unwrap() * 1.5);
        assert!(own > 0.0 && own <= rss_mb(std::process::id()).unwrap() * 1.5);
    }
}

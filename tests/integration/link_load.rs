//! A load run through a link that resets its connections over and over:
//! every request ends with a class (success or a named failure), none
//! hangs, and the serving node's descriptors and memory come back to
//! their baseline afterwards.

use std::time::{Duration, Instant};

use peerapi::testkit::link::{Impairment, LinkProxy};

use crate::common::*;

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// What each descriptor is (socket:[…], a file), for a failure message.
fn fd_targets(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .map(|p| p.display().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The node's descriptors and memory once a warm-up like the run (no
/// faults, as many requests at once) settled: its pool of idle backend
/// connections is part of the baseline, not a leak.
async fn baseline(pid: u32, addr: &libp2p::Multiaddr, concurrency: usize) -> (usize, u64) {
    let warm = tokio::process::Command::new(BIN)
        .args(["load", &addr.to_string(), "echo", "-d", "{\"x\":1}"])
        .args(["-n", "800", "-c", &concurrency.to_string()])
        .output()
        .await
        .unwrap();
    assert!(
        warm.status.success(),
        "{}",
        String::from_utf8_lossy(&warm.stderr)
    );
    let settle = Instant::now();
    let mut fds_before = fds(pid);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = fds(pid);
        if now == fds_before || settle.elapsed() > Duration::from_secs(10) {
            break;
        }
        fds_before = now;
    }
    (fds_before, rss_kb(pid))
}

/// A `peerapi load --json` run through `target` for `secs` (more flags in
/// `extra`), killed if it outlives its own end by a minute.
fn load_run(target: &libp2p::Multiaddr, secs: u64, extra: &[&str]) -> tokio::process::Child {
    tokio::process::Command::new(BIN)
        .args(["load", &target.to_string(), "echo", "-d", "{\"x\":1}"])
        .args(["-z", &format!("{secs}s"), "--timeout", "5", "--json"])
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// Waits for a load run; its (requests, ok, failures), each request with
/// exactly one class.
async fn classes(run: tokio::process::Child, secs: u64) -> (u64, u64, u64) {
    let out = tokio::time::timeout(Duration::from_secs(secs + 60), run.wait_with_output())
        .await
        .expect("the load run ends, it does not hang")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout}{}", String::from_utf8_lossy(&out.stderr)));
    let summary = &report["summary"];
    let requests = summary["requests"].as_u64().unwrap();
    let failures: u64 = summary["failures"]
        .as_object()
        .map(|f| f.values().filter_map(|v| v.as_u64()).sum())
        .unwrap_or(0);
    let ok = summary["ok"]
        .as_u64()
        .or_else(|| summary["successes"].as_u64())
        .unwrap_or(requests - failures);
    eprintln!(
        "{requests} requests, {ok} ok, failures {} (exit {})",
        summary["failures"], out.status
    );
    assert_eq!(
        ok + failures,
        requests,
        "every request has a class: {summary}"
    );
    (requests, ok, failures)
}

/// The node let go of what the run cost it.
async fn back_to_baseline(pid: u32, (fds_before, rss_before): (usize, u64)) {
    let settle = Instant::now();
    while fds(pid) > fds_before && settle.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        fds(pid) <= fds_before,
        "descriptors: {} before, {} after: {:?}",
        fds_before,
        fds(pid),
        fd_targets(pid)
    );
    let rss_after = rss_kb(pid);
    assert!(
        rss_after < rss_before + 32 * 1024,
        "memory: {rss_before} kB before, {rss_after} kB after"
    );
    eprintln!(
        "node after the run: {} fds (before {fds_before}), {rss_after} kB (before {rss_before} kB)",
        fds(pid)
    );
}

/// A `peerapi node` process serving the demo backend behind a 2 ms link
/// that resets connections with `reset_chance` each second.
struct Served {
    _backend: peerapi::demo::DemoBackend,
    _dir: tempfile::TempDir,
    _node: Proc,
    pid: u32,
    addr: libp2p::Multiaddr,
    proxy: std::sync::Arc<LinkProxy>,
    target: libp2p::Multiaddr,
}

impl Served {
    async fn behind(reset_chance: f64) -> Self {
        let backend = demo_backend().await;
        let dir = tempfile::tempdir().unwrap();
        let routes = dir.path().join("routes.json");
        write_routes_file(&routes, &backend.routes());
        let (node, addr) = node_process_with(&routes, &["--no-control"]);
        let link = Impairment {
            rtt: Duration::from_millis(2),
            reset_chance,
            ..Default::default()
        };
        let (proxy, target) = LinkProxy::in_front_of(&addr, link).await.unwrap();
        Self {
            _backend: backend,
            _dir: dir,
            pid: node.0.id(),
            _node: node,
            addr,
            proxy: std::sync::Arc::new(proxy),
            target,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_run_through_a_resetting_link_classes_every_request_and_leaks_nothing() {
    let served = Served::behind(0.0).await;
    let (pid, proxy, target) = (served.pid, &served.proxy, &served.target);
    let before = baseline(pid, &served.addr, 8).await;

    let load = load_run(target, 12, &["-c", "8"]);
    // The fault schedule: every connection through the link is reset
    // every 700 ms while the run lasts.
    let resets = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let resetter = tokio::spawn({
        let (proxy, resets) = (proxy.clone(), resets.clone());
        async move {
            let mut every = tokio::time::interval(Duration::from_millis(700));
            every.tick().await;
            loop {
                every.tick().await;
                proxy.reset();
                resets.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
    let (requests, ok, failures) = classes(load, 12).await;
    resetter.abort();
    eprintln!(
        "{} resets",
        resets.load(std::sync::atomic::Ordering::Relaxed)
    );
    assert!(requests > 100);
    assert!(
        ok > 0 && failures > 0,
        "the resets were felt ({failures} failed) and calls got through ({ok})"
    );
    assert!(
        proxy.connections() > 3,
        "the caller dialled again after resets"
    );
    back_to_baseline(pid, before).await;
}

/// How long the random-reset run lasts: five minutes unless
/// `PEERAPI_LINK_LOAD_SECS` says otherwise (for a quicker local run).
fn random_run_secs() -> u64 {
    std::env::var("PEERAPI_LINK_LOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_minutes_of_load_with_connections_reset_at_random_classes_every_request() {
    // Each second, each connection has a 1 % chance of being reset: four
    // callers (one connection each) over five minutes see about twelve.
    let served = Served::behind(0.01).await;
    let (pid, proxy, target) = (served.pid, &served.proxy, &served.target);
    // Four callers of four requests at once.
    let before = baseline(pid, &served.addr, 16).await;
    let secs = random_run_secs();
    // Paced, not flat out: the run shares two cores with the other tests.
    let runs: Vec<_> = (0..4)
        .map(|_| load_run(target, secs, &["-c", "4", "--rate", "40"]))
        .collect();
    let mut total = (0, 0, 0);
    for run in runs {
        let (requests, ok, failures) = classes(run, secs).await;
        total = (total.0 + requests, total.1 + ok, total.2 + failures);
    }
    let (random, connections) = (proxy.random_resets(), proxy.connections());
    eprintln!(
        "{secs} s, 4 callers: {} requests, {} ok, {} failed; {random} random resets over {connections} connections",
        total.0, total.1, total.2
    );
    assert!(
        total.0 > secs * 4 * 20,
        "the runs kept their pace: {total:?}"
    );
    assert!(total.1 > 0, "calls got through");
    // About 4 x secs / 100 expected: at 300 s, none at all has a chance of
    // 6 in a million.
    assert!(random > 0, "no connection was reset in {secs} s");
    assert!(
        connections > 4,
        "a caller whose connection was reset dialled again"
    );
    back_to_baseline(pid, before).await;
}

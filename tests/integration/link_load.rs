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

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_run_through_a_resetting_link_classes_every_request_and_leaks_nothing() {
    let backend = demo_backend().await;
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.json");
    write_routes_file(&routes, &backend.routes());
    let (node, addr) = node_process_with(&routes, &["--no-control"]);
    let pid = node.0.id();
    let link = Impairment {
        rtt: Duration::from_millis(2),
        ..Default::default()
    };
    let (proxy, target) = LinkProxy::in_front_of(&addr, link).await.unwrap();
    // The baseline after a warm-up like the run (no faults): the node's
    // pool of idle backend connections is part of it, not a leak.
    let warm = tokio::process::Command::new(BIN)
        .args(["load", &addr.to_string(), "echo", "-d", "{\"x\":1}"])
        .args(["-n", "400", "-c", "8"])
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
    let rss_before = rss_kb(pid);

    let load = tokio::process::Command::new(BIN)
        .args(["load", &target.to_string(), "echo", "-d", "{\"x\":1}"])
        .args(["-z", "12s", "-c", "8", "--timeout", "5", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // The fault schedule: every connection through the link is reset
    // every 700 ms while the run lasts.
    let proxy = std::sync::Arc::new(proxy);
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
    let out = tokio::time::timeout(Duration::from_secs(60), load.wait_with_output())
        .await
        .expect("the load run ends, it does not hang")
        .unwrap();
    resetter.abort();
    let (status, resets) = (
        out.status,
        resets.load(std::sync::atomic::Ordering::Relaxed),
    );
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
        "{resets} resets: {requests} requests, {ok} ok, failures {} (exit {status})",
        summary["failures"]
    );
    assert!(requests > 100, "{summary}");
    assert_eq!(
        ok + failures,
        requests,
        "every request has a class: {summary}"
    );
    assert!(
        ok > 0 && failures > 0,
        "the resets were felt and calls got through: {summary}"
    );
    assert!(
        proxy.connections() > 3,
        "the caller dialled again after resets"
    );

    // The node lets go of what the run cost it.
    let settle = Instant::now();
    while fds(pid) > fds_before && settle.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        fds(pid) <= fds_before,
        "descriptors: {} before, {} after",
        fds_before,
        fds(pid)
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

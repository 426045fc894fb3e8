//! A long-lived peerapi node inside a py-libp2p network: joined by
//! `peerapi node --bootstrap` and left connected, it must not harm the
//! Python hosts (no protocol proposed lazily that identify has not
//! confirmed), and calls must work both ways afterwards.

use std::time::{Duration, Instant};

use peerapi::node::CallRequest;
use peerapi::NodeConfig;

use crate::common::*;
use crate::python::*;

/// How long the peerapi node stays joined before the calls.
const JOINED_FOR: Duration = Duration::from_secs(10);

/// Joins a Python host with a `peerapi node --bootstrap` process and an
/// in-process node, keeps both joined for [`JOINED_FOR`] while checking the
/// host every second, then calls both ways.
async fn joined_host_survives(version: PyLibp2p, host_flags: &[&str]) {
    let py = python_for(version);
    let demo = demo_backend().await;
    let mut host = PyHost::serve(&py, &demo.routes(), host_flags).await;
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.json");
    write_routes_file(&routes, &demo.routes());
    let bootstrap = host.addr.to_string();
    let (_process, process_addr) = node_process_with(&routes, &["--bootstrap", &bootstrap]);
    let mut cfg: NodeConfig = config();
    cfg.bootstrap = vec![host.addr.clone()];
    let (node, _) = start(cfg).await;

    let start = Instant::now();
    let mut checks = 0;
    while start.elapsed() < JOINED_FOR {
        host.assert_healthy(&format!("{:?} after peerapi joined", start.elapsed()));
        // A call from the in-process node paces the loop (and must work).
        let body = within(node.handle().call(&host.addr, CallRequest::new("health")))
            .await
            .unwrap_or_else(|e| panic!("peerapi -> python call failed: {e}"));
        assert!(body.starts_with(b"{"), "{}", String::from_utf8_lossy(&body));
        checks += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(checks >= 5, "only {checks} checks in {JOINED_FOR:?}");

    // Python -> the long-lived `peerapi node` process, over the connection
    // that node opened.
    let body = host
        .call(&process_addr, "health")
        .await
        .unwrap_or_else(|e| {
            panic!(
                "python -> peerapi call failed: {e}; stderr:\n{}",
                host.stderr()
            )
        });
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["status"], "ok");
    host.assert_healthy("after the calls");
    node.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_host_without_kademlia_survives_a_joined_node() {
    joined_host_survives(PyLibp2p::V081, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_host_without_ping_survives_a_joined_node() {
    joined_host_survives(PyLibp2p::V081, &["--no-ping"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_py_libp2p_060_host_survives_a_joined_node() {
    joined_host_survives(PyLibp2p::V060, &["--no-ping"]).await;
}

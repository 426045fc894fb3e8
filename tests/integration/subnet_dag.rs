//! The DAG against real py-libp2p peers: replicated from a template-style
//! `dag-serve` peer and served again, and kept in a file across restarts.

use peerapi::subnet::verify;
use serde_json::Value;

use crate::common::{config, start, within};
use crate::python::{python_for, PyLibp2p, PyProcess};
use crate::subnet::{dag_sync_client, line, vectors, SUBNET_PY};

/// A `subnet_peer.py dag-serve` peer: its address and its chain's head.
pub(crate) struct DagServer {
    /// Kept open: the peer prints a line per request.
    pub process: PyProcess,
    pub addr: libp2p::Multiaddr,
    pub head: String,
}

async fn dag_server(version: PyLibp2p, count: u32, forged: u32) -> DagServer {
    dag_server_with(version, count, forged, &[]).await
}

/// [`dag_server`] with more `dag-serve` flags (e.g. `--answer-delay 2`).
pub(crate) async fn dag_server_with(
    version: PyLibp2p,
    count: u32,
    forged: u32,
    flags: &[&str],
) -> DagServer {
    let (count, forged) = (count.to_string(), forged.to_string());
    let mut args = vec!["dag-serve", "--count", &count, "--forged", &forged];
    args.extend(flags);
    let args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut process = PyProcess::spawn(&python_for(version), SUBNET_PY, &args, dir);
    let mut addr = None;
    let head = process
        .read_until("the DAG server's READY and HEAD", |line| {
            if let Some(a) = line.strip_prefix("READY ") {
                addr = Some(a.parse::<libp2p::Multiaddr>().unwrap());
            }
            line.strip_prefix("HEAD ").map(str::to_string)
        })
        .await;
    DagServer {
        process,
        addr: addr.expect("READY before HEAD"),
        head,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dag_is_replicated_from_a_template_style_peer_and_served_again() {
    for version in [PyLibp2p::V081, PyLibp2p::V060] {
        let mut server = dag_server(version, 20, 1).await;
        let (node, addr) = start(config()).await;
        let h = node.handle();
        let mut events = h.subscribe();
        h.dial(&server.addr).await.expect("dial the DAG server");
        let (kept, invalid, error) = within(async {
            loop {
                if let peerapi::NodeEvent::DagReplicated {
                    kept,
                    invalid,
                    error,
                    ..
                } = events.recv().await.expect("node events")
                {
                    return (kept, invalid, error);
                }
            }
        })
        .await;
        assert_eq!(
            error,
            None,
            "{version:?}; the server's stderr:\n{}",
            server.process.stderr()
        );
        assert_eq!(
            (kept, invalid),
            (20, 1),
            "{version:?}: the chain kept, the forgery not"
        );
        let summary = h.dag().lock().unwrap().summary("general-dag");
        assert_eq!(summary.head_ids, vec![server.head.clone()], "{version:?}");
        assert_eq!((summary.node_count, summary.orphan_count), (20, 0));
        assert_eq!(
            h.replication_counters()
                .invalid
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );

        // A template-style node starting now gets it all from us.
        let lines = dag_sync_client(version, &addr, 5).await;
        assert!(
            line(&lines, "CONVERGED ").starts_with("rounds=1 "),
            "{lines:#?}"
        );
        let inventory: Value = serde_json::from_str(line(&lines, "INVENTORY ")).unwrap();
        assert_eq!(
            inventory["summary"]["head_ids"],
            serde_json::json!([server.head])
        );
        assert!(
            line(&lines, "FETCHED ").starts_with("17 verified=17 "),
            "the head and its 16 ancestors the client asked for: {lines:#?}"
        );

        server
            .process
            .assert_healthy(&format!("({version:?}) after replication"));
        node.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dag_file_keeps_what_the_node_held_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dag.json");
    let with_file = || {
        let mut c = config();
        c.subnet.dag_file = Some(path.clone());
        c
    };
    let (node, _) = start(with_file()).await;
    let h = node.handle();
    let before = {
        let mut store = h.dag().lock().unwrap();
        for n in vectors()["nodes"].as_array().unwrap() {
            store.ingest(verify(n).unwrap());
        }
        store.summary("general-dag")
    };
    node.shutdown().await;
    let (again, _) = start(with_file()).await;
    let after = again.handle().dag().lock().unwrap().summary("general-dag");
    assert_eq!(after, before);
    assert_eq!(after.node_count, 12);
    again.abort();

    // A file that is not a DAG stops the start, and stays as it was.
    std::fs::write(&path, b"not json").unwrap();
    let err = peerapi::Node::start(with_file())
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("move it away"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"not json");
}

/// A node joining a subnet identifies many DAG peers at once: past the
/// bound on replications running together, the others wait their turn
/// rather than being skipped until identify answers again (minutes later).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replications_past_the_bound_wait_their_turn_and_every_peer_is_replicated() {
    let mut servers = Vec::new();
    for (version, base) in [
        (PyLibp2p::V081, "100"),
        (PyLibp2p::V060, "200"),
        (PyLibp2p::V081, "300"),
    ] {
        // Slow answers keep the first replication running while the
        // others are identified.
        let flags = ["--node-id-base", base, "--answer-delay", "0.5"];
        servers.push(dag_server_with(version, 3, 0, &flags).await);
    }
    let mut cfg = config();
    cfg.subnet.replicate.max_concurrent = 1;
    let (node, _) = start(cfg).await;
    let h = node.handle();
    let mut events = h.subscribe();
    for s in &servers {
        h.dial(&s.addr).await.expect("dial a DAG server");
    }
    let mut replicated = std::collections::BTreeMap::new();
    within(async {
        while replicated.len() < servers.len() {
            if let peerapi::NodeEvent::DagReplicated {
                peer, kept, error, ..
            } = events.recv().await.expect("node events")
            {
                replicated.insert(peer, (kept, error));
            }
        }
    })
    .await;
    for s in &mut servers {
        let peer = crate::common::peer_id_of(&s.addr);
        assert_eq!(
            replicated.get(&peer),
            Some(&(3, None)),
            "{replicated:?}; the server's stderr:\n{}",
            s.process.stderr()
        );
        s.process.assert_healthy("after replication");
    }
    let waited = h
        .replication_counters()
        .queued_busy
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(waited >= 1, "the bound was reached: {waited} waited");
    let mut heads = h.dag().lock().unwrap().summary("general-dag").head_ids;
    let mut expected: Vec<String> = servers.iter().map(|s| s.head.clone()).collect();
    heads.sort();
    expected.sort();
    assert_eq!(heads, expected, "each peer's chain head is ours");
    node.abort();
}

//! The subnet protocols around the API against real py-libp2p peers
//! (tests/interop/subnet_peer.py): a template-style start-up DAG sync with
//! peerapi connected, fetching what peerapi holds, and hostile requests.

use peerapi::subnet::verify;
use serde_json::Value;

use crate::common::{config, start, within};
use crate::python::{python_for, PyLibp2p, PyProcess};

pub(crate) const SUBNET_PY: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/subnet_peer.py");

pub(crate) fn vectors() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/peer_state_dag.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Runs `subnet_peer.py dag-sync` against `addr`; its stdout lines.
pub(crate) async fn dag_sync_client(
    version: PyLibp2p,
    addr: &libp2p::Multiaddr,
    rounds: u32,
) -> Vec<String> {
    let out = within(
        tokio::process::Command::new(python_for(version))
            .arg(SUBNET_PY)
            .args([
                "dag-sync",
                &addr.to_string(),
                "--rounds",
                &rounds.to_string(),
            ])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("Traceback"),
        "{version:?} client failed ({:?}):\n{stderr}",
        out.status
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

pub(crate) fn line<'a>(lines: &'a [String], prefix: &str) -> &'a str {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line {prefix:?} in {lines:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_style_start_up_sync_converges_and_fetches_what_we_hold() {
    let dag = vectors();
    for version in [PyLibp2p::V081, PyLibp2p::V060] {
        let (node, addr) = start(config()).await;
        let h = node.handle();
        {
            let mut store = h.dag().lock().unwrap();
            for n in dag["nodes"].as_array().unwrap() {
                store.ingest(verify(n).unwrap());
            }
        }
        let lines = dag_sync_client(version, &addr, 5).await;
        assert!(
            line(&lines, "CONVERGED ").starts_with("rounds=1 "),
            "{version:?}: answered on the first ask: {lines:#?}"
        );
        let inventory: Value = serde_json::from_str(line(&lines, "INVENTORY ")).unwrap();
        assert_eq!(inventory["kind"], "inventory_response");
        assert_eq!(inventory["peer_id"], h.local_peer_id().to_string());
        assert_eq!(inventory["summary"]["node_count"], 12);
        assert_eq!(inventory["summary"]["head_ids"], dag["heads"]);
        let fetched = line(&lines, "FETCHED ");
        let n: usize = fetched.split(' ').next().unwrap().parse().unwrap();
        assert!(n >= 1, "{fetched}");
        assert!(
            fetched.contains(&format!("verified={n} ")),
            "{version:?}: every node peerapi served verifies in Python: {fetched}"
        );
        assert!(fetched.ends_with(&format!("[\"sha256:{}\"]", "0".repeat(64))));
        assert_eq!(line(&lines, "UNKNOWN "), "closed");
        assert_eq!(line(&lines, "OVERSIZE "), "closed");
        let counters = h.dag_sync_counters().unwrap();
        let count = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(count(&counters.inventory), 1, "{version:?}");
        assert_eq!(count(&counters.fetch), 1, "{version:?}");
        assert_eq!(
            count(&counters.refused),
            2,
            "{version:?}: unknown kind and oversize"
        );
        node.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_dag_sync_a_template_style_start_up_never_converges() {
    let mut cfg = config();
    cfg.subnet.dag_sync = false;
    let (node, addr) = start(cfg).await;
    let lines = dag_sync_client(PyLibp2p::V081, &addr, 2).await;
    assert_eq!(line(&lines, "NOT-CONVERGED "), "rounds=2", "{lines:#?}");
    assert!(node.handle().dag_sync_counters().is_none());
    node.abort();
}

/// A `subnet_peer.py gossip` publisher; its stdout lines until `FORGED`.
struct Publisher {
    process: PyProcess,
    published: Vec<String>,
    forged: Vec<String>,
}

async fn publisher(
    version: PyLibp2p,
    addr: &libp2p::Multiaddr,
    count: u32,
    forged: u32,
) -> Publisher {
    publisher_with(version, addr, count, forged, 0).await
}

async fn publisher_with(
    version: PyLibp2p,
    addr: &libp2p::Multiaddr,
    count: u32,
    forged: u32,
    orphans: u32,
) -> Publisher {
    let (addr, count, forged, orphans) = (
        addr.to_string(),
        count.to_string(),
        forged.to_string(),
        orphans.to_string(),
    );
    let args = [
        "gossip",
        &addr,
        "--count",
        &count,
        "--forged",
        &forged,
        "--orphans",
        &orphans,
    ];
    let args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut process = PyProcess::spawn(&python_for(version), SUBNET_PY, &args, dir);
    let ids = |rest: &str| {
        rest.split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let mut published = None;
    let forged = process
        .read_until(
            &format!("{version:?} publisher's PUBLISHED and FORGED"),
            |line| {
                if let Some(rest) = line.strip_prefix("PUBLISHED") {
                    published = Some(ids(rest));
                }
                line.strip_prefix("FORGED").map(ids)
            },
        )
        .await;
    Publisher {
        process,
        published: published.expect("PUBLISHED line"),
        forged,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_peer_state_gossip_is_verified_stored_and_forgeries_rejected() {
    use std::collections::HashSet;
    for version in [PyLibp2p::V081, PyLibp2p::V060] {
        let (node, addr) = start(config()).await;
        let h = node.handle();
        let mut events = h.subscribe();
        let mut p = publisher(version, &addr, 3, 1).await;
        assert_eq!((p.published.len(), p.forged.len()), (3, 1));
        let mut stored: HashSet<String> = HashSet::new();
        let mut rejected = 0;
        within(async {
            while stored.len() < 3 || rejected < 1 {
                match events.recv().await.expect("node events") {
                    peerapi::NodeEvent::DagNode {
                        id,
                        stored: true,
                        schema_id,
                        ..
                    } => {
                        assert_eq!(schema_id, "peer-state");
                        stored.insert(id);
                    }
                    peerapi::NodeEvent::Gossip {
                        rejected: Some(why),
                        topic,
                        ..
                    } => {
                        assert_eq!(topic, "peer_state");
                        assert!(why.contains("body hash"), "{why}");
                        rejected += 1;
                    }
                    _ => {}
                }
            }
        })
        .await;
        let want: HashSet<String> = p.published.iter().cloned().collect();
        assert_eq!(stored, want, "{version:?}: the signed nodes, and only them");
        assert!(!stored.contains(&p.forged[0]));
        let summary = h.dag().lock().unwrap().summary("general-dag");
        assert_eq!(summary.node_count, 3, "{version:?}");
        let c = h.gossip_counters();
        assert_eq!(peerapi::subnet::GossipCounters::get(&c.rejected), 1);
        // The publisher is still alive and wrote no traceback.
        assert!(p.process.alive(), "{version:?} publisher died");
        let (status, stderr) = p.process.finish().await;
        assert!(
            status.success() && !stderr.contains("Traceback"),
            "{version:?}:\n{stderr}"
        );
        node.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strict_subnet_eviction_is_named_with_the_fix() {
    use crate::python::PyHost;
    for version in [PyLibp2p::V081, PyLibp2p::V060] {
        let mut strict = PyHost::serve(
            &python_for(version),
            &peerapi::RouteTable::new(),
            &["--evict-every", "1"],
        )
        .await;
        // Bootstrapped there, the node comes back after each eviction by
        // itself (its DHT walk), as it does on a real subnet.
        let mut cfg = config();
        cfg.bootstrap = vec![strict.addr.clone()];
        cfg.discovery_interval = std::time::Duration::from_secs(2);
        let (node, _) = start(cfg).await;
        let h = node.handle();
        let mut events = h.subscribe();
        let strict_peer = crate::common::peer_id_of(&strict.addr);
        let report = within(async {
            loop {
                if let peerapi::NodeEvent::PeerEvicted {
                    peer, times, hint, ..
                } = events.recv().await.expect("node events")
                {
                    assert_eq!(peer, strict_peer);
                    return (times, hint);
                }
            }
        })
        .await;
        assert_eq!(report.0, 2, "{version:?}: named on the second eviction");
        assert!(
            report.1.contains(&h.local_peer_id().to_string()),
            "{}",
            report.1
        );
        assert!(report.1.contains("client peer"), "{}", report.1);
        strict.assert_healthy(&format!("after evicting peerapi ({version:?})"));
        node.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subnet_watch_prints_the_roster_and_rejected_gossip_as_json_lines() {
    use tokio::io::AsyncBufReadExt;
    let mut watch = tokio::process::Command::new(env!("CARGO_BIN_EXE_peerapi"))
        .args([
            "subnet",
            "watch",
            "--json",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(watch.stdout.take().unwrap()).lines();
    async fn next_json(
        lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    ) -> Value {
        let line = within(lines.next_line())
            .await
            .unwrap()
            .expect("watch runs");
        serde_json::from_str::<Value>(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    }
    let first = next_json(&mut lines).await;
    assert_eq!(first["event"], "listening");
    let addr: libp2p::Multiaddr = first["addr"].as_str().unwrap().parse().unwrap();
    let p = publisher(PyLibp2p::V081, &addr, 2, 1).await;
    let (mut roster, mut rejected) = (Vec::new(), 0);
    while roster.len() < 2 || rejected < 1 {
        let line = next_json(&mut lines).await;
        match line["event"].as_str() {
            Some("roster") => roster.push(line),
            Some("gossip_rejected") => rejected += 1,
            _ => {}
        }
    }
    let mut ids: Vec<u64> = roster
        .iter()
        .map(|l| l["subnet_node_id"].as_u64().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, [100, 101], "the publisher's two signed states");
    assert!(roster
        .iter()
        .all(|l| l["state"] == "ONLINE" && l["subnet_id"] == 1));
    p.process.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_surplus_dag_sync_streams_are_refused_and_others_still_answered() {
    use futures::{AsyncReadExt, AsyncWriteExt};
    use peerapi::subnet::{replicate::inventory_request, PROTOCOL_DAG_SYNC};
    use std::sync::atomic::Ordering::Relaxed;
    let mut cfg = config();
    cfg.subnet.sync.read_timeout = std::time::Duration::from_millis(500);
    cfg.subnet.sync.max_streams_per_peer = 2;
    // Only this test's streams: no replication between the nodes.
    cfg.subnet.replicate.enabled = false;
    let quiet = || {
        let mut c = config();
        c.subnet.replicate.enabled = false;
        c
    };
    let (server, addr) = start(cfg).await;
    let h = server.handle();
    let (hostile, _) = start(quiet()).await;
    let (honest, _) = start(quiet()).await;

    // Two streams that send a frame's length and never its bytes hold the
    // hostile peer's slots; a third is refused at once.
    let mut slow = Vec::new();
    for _ in 0..3 {
        let mut stream = hostile
            .handle()
            .open_raw(&addr, PROTOCOL_DAG_SYNC)
            .await
            .unwrap();
        // The surplus stream may already be reset when this is written.
        let _ = stream.write_all(&[100]).await;
        let _ = stream.flush().await;
        slow.push(stream);
    }
    // Another peer is answered meanwhile.
    let me = honest.handle().local_peer_id().to_string();
    let mut s = honest
        .handle()
        .open_raw(&addr, PROTOCOL_DAG_SYNC)
        .await
        .unwrap();
    s.write_all(&peerapi::wire::encode_bytes_prefixed(&inventory_request(
        &me,
        "general-dag",
        &[],
        0,
    )))
    .await
    .unwrap();
    let answer = within(peerapi::wire::read_length_prefixed(&mut s, 1 << 20))
        .await
        .expect("answered while a peer holds its slots");
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(answer["kind"], "inventory_response");

    // Every slow stream ends: the surplus one at once, the others at the
    // read timeout; each is counted.
    for mut stream in slow {
        let mut buf = [0u8; 1];
        let n = within(stream.read(&mut buf)).await;
        assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    }
    let c = h.dag_sync_counters().unwrap();
    assert_eq!(c.busy.load(Relaxed), 1, "the surplus stream");
    assert_eq!(c.refused.load(Relaxed), 2, "the two that sent too little");
    assert_eq!(c.inventory.load(Relaxed), 1);
    for n in [server, hostile, honest] {
        n.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_forged_and_orphan_gossip_is_refused_counted_and_bounded() {
    use peerapi::subnet::GossipCounters;
    for version in [PyLibp2p::V081, PyLibp2p::V060] {
        let mut cfg = config();
        cfg.subnet.dag.max_orphans = 5;
        let (node, addr) = start(cfg).await;
        let h = node.handle();
        let mut events = h.subscribe();
        let p = publisher_with(version, &addr, 3, 200, 20).await;
        // Every message is judged: 3 stored, 200 rejected, 5 orphans held and
        // 15 refused for the orphan limit.
        let (mut kept, mut refused, mut rejected) = (0, 0, 0);
        within(async {
            while kept < 8 || refused < 15 || rejected < 200 {
                match events.recv().await.expect("node events") {
                    peerapi::NodeEvent::DagNode { stored: true, .. } => kept += 1,
                    peerapi::NodeEvent::DagNode { stored: false, .. } => refused += 1,
                    peerapi::NodeEvent::Gossip {
                        rejected: Some(_), ..
                    } => rejected += 1,
                    _ => {}
                }
            }
        })
        .await;
        assert_eq!((kept, refused, rejected), (8, 15, 200));
        let summary = h.dag().lock().unwrap().summary("general-dag");
        assert_eq!((summary.node_count, summary.orphan_count), (3, 5));
        let c = h.gossip_counters();
        assert_eq!(GossipCounters::get(&c.rejected), 200);
        assert_eq!(GossipCounters::get(&c.dag_refused), 15);
        // Still a good peer: a template-style start-up sync is answered at once.
        let lines = dag_sync_client(version, &addr, 5).await;
        assert!(
            line(&lines, "CONVERGED ").starts_with("rounds=1 "),
            "{lines:#?}"
        );
        let (status, stderr) = p.process.finish().await;
        assert!(
            status.success() && !stderr.contains("Traceback"),
            "{stderr}"
        );
        node.abort();
    }
}

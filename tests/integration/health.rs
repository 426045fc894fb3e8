//! Health probes against real processes: three `peerapi node`s and
//! template-style py-libp2p 0.8.1 and 0.6.0 peers that serve signed peer
//! states (whose advertised address, port 1, is wrong on purpose). A node
//! with `--health` probes them every second, keeps the history in SQLite
//! and posts alerts to a webhook, a real HTTP receiver here.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use libp2p::Multiaddr;
use serde_json::Value;

use crate::common::*;
use crate::python::PyLibp2p;
use crate::subnet_dag::dag_server_with;

/// A webhook receiver: every POST body, as JSON, on a channel.
async fn webhook() -> (String, tokio::sync::mpsc::UnboundedReceiver<Value>) {
    use axum::routing::post;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/alerts",
        post(move |body: String| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(serde_json::from_str(&body).unwrap_or(Value::Null));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/alerts", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, rx)
}

/// `peerapi node` on exactly `listen` (so a restart keeps its address).
fn node_on(listen: &str, routes: &std::path::Path, flags: &[&str]) -> (Proc, Multiaddr) {
    let mut child = Command::new(BIN)
        .args(["node", "--listen", listen, "--routes"])
        .arg(routes)
        .args(["--no-control"])
        .args(flags)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("listening on ").map(|a| a.parse().unwrap()))
        .expect("the node prints its address");
    // Keep reading so the node never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (Proc(child), addr)
}

/// `peerapi subnet health --json` of `db`: (exit code, the nodes by peer id).
fn table(db: &std::path::Path) -> (i32, serde_json::Map<String, Value>) {
    let out = Command::new(BIN)
        .args(["subnet", "health", "--json", "--since", "1h", "--db"])
        .arg(db)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let rows = v["nodes"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    (
                        r["peer"].as_str().unwrap_or_default().to_string(),
                        r.clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    (out.status.code().unwrap_or(-1), rows)
}

/// `subnet health --json`'s `this_node`: our own reachability.
fn this_node(db: &std::path::Path) -> Value {
    let out = Command::new(BIN)
        .args(["subnet", "health", "--json", "--since", "1h", "--db"])
        .arg(db)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    v["this_node"].clone()
}

/// Polls the table until `pred` holds for `peer`'s row (at most `limit`);
/// how long it took, and the row.
async fn until_row(
    db: &std::path::Path,
    peer: &str,
    limit: Duration,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> (Duration, Value) {
    let start = Instant::now();
    loop {
        let (_, rows) = table(db);
        if let Some(row) = rows.get(peer).filter(|r| pred(r)) {
            return (start.elapsed(), row.clone());
        }
        assert!(
            start.elapsed() < limit,
            "{what} within {limit:?}: {rows:#?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn verdict(row: &Value) -> &str {
    row["verdict"].as_str().unwrap_or_default()
}

/// Alerts into `got` until `done` holds for them (within `limit`).
async fn collect_until(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Value>,
    got: &mut Vec<Value>,
    limit: Duration,
    done: impl Fn(&[Value]) -> bool,
) {
    let until = Instant::now() + limit;
    while !done(got) {
        got.push(next_alert(rx, until.saturating_duration_since(Instant::now())).await);
    }
}

/// The next alert about `peer`; the others' go to `others`.
async fn next_alert_for(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Value>,
    peer: &str,
    others: &mut Vec<Value>,
    limit: Duration,
) -> Value {
    let until = Instant::now() + limit;
    loop {
        let a = next_alert(rx, until.saturating_duration_since(Instant::now())).await;
        if a["peer"].as_str() == Some(peer) {
            return a;
        }
        others.push(a);
    }
}

async fn next_alert(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Value>,
    limit: Duration,
) -> Value {
    tokio::time::timeout(limit, rx.recv())
        .await
        .expect("an alert arrives")
        .expect("the receiver runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probed_nodes_go_down_alert_once_come_back_clear_once_and_python_peers_stay_healthy() {
    let started = Instant::now();
    let (dir, routes) = crate::common::empty_routes();
    let (_b, b_addr) = node_process_with(&routes, &["--no-control"]);
    let c_key = dir.path().join("c.key");
    let c_key = c_key.to_str().unwrap();
    let (c, c_addr) = node_on("/ip4/127.0.0.1/tcp/0", &routes, &["--key", c_key]);
    let c_peer = peer_id_of(&c_addr).to_string();
    // Each stands for subnet nodes of its own (ids 100.., 200.., 300..).
    let mut py081 = dag_server_with(PyLibp2p::V081, 2, 0, &["--node-id-base", "100"]).await;
    let mut py060 = dag_server_with(PyLibp2p::V060, 2, 0, &["--node-id-base", "200"]).await;
    let mut doomed = dag_server_with(PyLibp2p::V081, 2, 0, &["--node-id-base", "300"]).await;
    let (url, mut alerts) = webhook().await;
    let db = dir.path().join("data").join("health.db");
    let mut flags = vec![
        "--health".to_string(),
        "--health-interval".into(),
        "1s".into(),
        "--health-db".into(),
        db.to_str().unwrap().into(),
        "--alert-webhook".into(),
        url,
        "--ping-interval".into(),
        "0.5".into(),
        "--reconnect-max".into(),
        "1".into(),
    ];
    for a in [&b_addr, &c_addr, &py081.addr, &py060.addr, &doomed.addr] {
        flags.extend(["--bootstrap".to_string(), a.to_string()]);
    }
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (_a, _) = node_process_with(&routes, &flags);

    let limit = Duration::from_secs(30);
    for peer in [peer_id_of(&b_addr).to_string(), c_peer.clone()] {
        until_row(&db, &peer, limit, "a peerapi node online", |r| {
            verdict(r) == "online"
        })
        .await;
    }
    // The template-style peers are in the roster (their signed peer
    // states, replicated) and advertise port 1, where they do not listen:
    // we are connected to them, but the others cannot dial them there.
    for py in [&py081.addr, &py060.addr] {
        let (_, row) = until_row(
            &db,
            &peer_id_of(py).to_string(),
            limit,
            "a python peer",
            |r| {
                r["reason"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("dial 127.0.0.1:1: connection refused (where it advertises")
                    // They serve DAG sync: their heads were compared with ours.
                    && r["dag"].is_object()
            },
        )
        .await;
        assert_eq!(verdict(&row), "unreachable", "{row}");
        eprintln!("python peer: {}", row["reason"]);
        eprintln!("python peer's DAG against ours: {}", row["dag"]);
    }
    let rows = table(&db).1;
    for peer in [peer_id_of(&b_addr).to_string(), c_peer.clone()] {
        assert_eq!(verdict(&rows[&peer]), "online", "{rows:#?}");
    }

    // Kill C: unreachable within two intervals (plus the test's polling),
    // one alert, and `subnet health` exits 1.
    let killed = Instant::now();
    drop(c);
    let (took, row) = until_row(&db, &c_peer, limit, "the killed node unreachable", |r| {
        verdict(r) == "unreachable"
    })
    .await;
    eprintln!("killed node unreachable after {took:?}: {}", row["reason"]);
    assert!(row["reason"].as_str().unwrap().contains("refused"), "{row}");
    // The python peers' own alerts (unreachable where they advertise) are
    // theirs: C's is the one looked for.
    let mut others = Vec::new();
    let fired = next_alert_for(&mut alerts, &c_peer, &mut others, limit).await;
    eprintln!("alert {:?} after the kill", killed.elapsed());
    assert_eq!(
        (fired["alert"].as_str(), fired["state"].as_str()),
        (Some("node_down"), Some("firing"))
    );
    assert_eq!(fired["peer"].as_str(), Some(c_peer.as_str()));
    assert_eq!(table(&db).0, 1, "a node online earlier is down");

    // Back on the same address and key: online again, and one "cleared".
    let port = c_addr
        .iter()
        .find_map(|p| match p {
            libp2p::multiaddr::Protocol::Tcp(p) => Some(p),
            _ => None,
        })
        .unwrap();
    let (_c, _) = node_on(
        &format!("/ip4/127.0.0.1/tcp/{port}"),
        &routes,
        &["--key", c_key],
    );
    until_row(&db, &c_peer, limit, "the restarted node online", |r| {
        verdict(r) == "online"
    })
    .await;
    let cleared = next_alert_for(&mut alerts, &c_peer, &mut others, limit).await;
    assert_eq!(
        (cleared["peer"].as_str(), cleared["state"].as_str()),
        (Some(c_peer.as_str()), Some("cleared"))
    );

    // A roster node that is gone is dialled where it advertises: the error.
    let doomed_peer = peer_id_of(&doomed.addr).to_string();
    doomed.process.child.kill().await.unwrap();
    let (_, row) = until_row(
        &db,
        &doomed_peer,
        limit,
        "the python peer dialled, no longer connected",
        // Connected, it read unreachable where it advertises; gone, the
        // probe's own dial there fails.
        |r| {
            verdict(r) == "unreachable"
                && !r["reason"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("where it advertises")
        },
    )
    .await;
    assert!(
        row["reason"].as_str().unwrap().contains("127.0.0.1:1"),
        "{row}"
    );

    // The python peers are probed for a minute and stay healthy.
    while started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        py081.process.assert_healthy("while probed");
        py060.process.assert_healthy("while probed");
    }
    // Exactly one firing and one cleared for C; the python peers' alerts
    // are theirs.
    let mut rest = others;
    while let Ok(a) = alerts.try_recv() {
        rest.push(a);
    }
    assert!(
        rest.iter()
            .all(|a| a["peer"].as_str() != Some(c_peer.as_str())),
        "one alert per change for the restarted node: {rest:#?}"
    );
}

#[test]
fn a_history_that_is_not_ours_stops_the_start_and_an_unwritable_place_does_not() {
    let (dir, routes) = crate::common::empty_routes();
    let foreign = dir.path().join("notes.db");
    std::fs::write(&foreign, "not a database").unwrap();
    let out = Command::new(BIN)
        .args([
            "node",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--no-control",
            "--routes",
        ])
        .arg(&routes)
        .args(["--health", "--health-db"])
        .arg(&foreign)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("not a peerapi health history") && err.contains("notes.db"),
        "{err}"
    );
    assert_eq!(std::fs::read(&foreign).unwrap(), b"not a database");

    // A "directory" that is a file: reported, and the node serves anyway.
    let plain = dir.path().join("plain");
    std::fs::write(&plain, "x").unwrap();
    let db = plain.join("health.db");
    let (_node, addr) = node_process_with(
        &routes,
        &[
            "--no-control",
            "--health",
            "--health-db",
            db.to_str().unwrap(),
        ],
    );
    assert!(
        addr.to_string().contains("/p2p/"),
        "the node started: {addr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_survives_a_restart_retention_prunes_it_and_autonat_finds_us_reachable() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, routes) = crate::common::empty_routes();
    let (_b, b_addr) = node_process_with(&routes, &["--no-control"]);
    let b_peer = peer_id_of(&b_addr).to_string();
    let key = dir.path().join("a.key");
    let db = dir.path().join("health.db");
    let b = b_addr.to_string();
    let watcher = |retention: &str| {
        node_on(
            "/ip4/127.0.0.1/tcp/0",
            &routes,
            &[
                "--key",
                key.to_str().unwrap(),
                "--health",
                "--health-interval",
                "1s",
                "--health-db",
                db.to_str().unwrap(),
                "--health-retention",
                retention,
                "--bootstrap",
                &b,
            ],
        )
    };
    let limit = Duration::from_secs(30);
    let probes = |r: &Value| r["probes"].as_u64().unwrap_or(0);

    let (a, _) = watcher("7d");
    let (_, first) = until_row(&db, &b_peer, limit, "three probes of B", |r| {
        verdict(r) == "online" && probes(r) >= 3
    })
    .await;
    // B is a peerapi node: it serves DAG sync (both empty: in step), and
    // answers AutoNAT, which dials us back.
    assert_eq!(first["dag"]["is"], "in_step", "{first}");
    let start = Instant::now();
    let me = loop {
        let me = this_node(&db);
        if me["reachability"] == "reachable" {
            break me;
        }
        assert!(start.elapsed() < limit, "AutoNAT within {limit:?}: {me}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(me["reason"].as_str().unwrap().contains("AutoNAT"), "{me}");
    eprintln!("this node: {me}");
    let mode = std::fs::metadata(&db).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    drop(a);

    // The same node again: the history goes on from where it was.
    let before = table(&db).1[&b_peer].clone();
    let (a, _) = watcher("7d");
    let (_, after) = until_row(&db, &b_peer, limit, "more probes after the restart", |r| {
        probes(r) > probes(&before)
    })
    .await;
    assert_eq!(after["first_seen_s"], before["first_seen_s"], "{after}");
    eprintln!(
        "history across a restart: {} probes, then {}",
        probes(&before),
        probes(&after)
    );
    drop(a);

    // A retention shorter than the history: the first round prunes it.
    let kept = probes(&table(&db).1[&b_peer]);
    let (_a, _) = watcher("2s");
    let (_, pruned) = until_row(&db, &b_peer, limit, "old probes pruned", |r| {
        probes(r) < kept.min(4)
    })
    .await;
    eprintln!("retention 2s: {kept} probes, then {}", probes(&pruned));
    assert_eq!(
        pruned["first_seen_s"], before["first_seen_s"],
        "the node is still known"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dag_heads_apart_and_low_availability_alert_once_each_through_the_webhook() {
    let (dir, routes) = crate::common::empty_routes();
    // Two template-style peers with DAGs of their own: the watcher holds
    // both, so each lacks the other's heads ("behind").
    let mut py081 = dag_server_with(PyLibp2p::V081, 2, 0, &["--node-id-base", "100"]).await;
    let mut py060 = dag_server_with(PyLibp2p::V060, 2, 0, &["--node-id-base", "200"]).await;
    // A node seen up, then gone: its availability falls. (The python peers
    // read unreachable where they advertise, so they are never seen up.)
    let (b, b_addr) = node_process_with(
        &routes,
        &["--no-control", "--no-dag-sync", "--no-dag-replicate"],
    );
    let b_peer = peer_id_of(&b_addr).to_string();
    let (url, mut alerts) = webhook().await;
    let db = dir.path().join("health.db");
    let (py081_addr, py060_addr) = (py081.addr.to_string(), py060.addr.to_string());
    let b_text = b_addr.to_string();
    let (_a, _) = node_on(
        "/ip4/127.0.0.1/tcp/0",
        &routes,
        &[
            "--health",
            "--health-interval",
            "1s",
            "--health-db",
            db.to_str().unwrap(),
            "--alert-webhook",
            &url,
            "--alert-dag-diverged-for",
            "3s",
            "--alert-availability-under",
            "90%",
            "--alert-down-after",
            "1000",
            "--bootstrap",
            &py081_addr,
            "--bootstrap",
            &py060_addr,
            "--bootstrap",
            &b_text,
        ],
    );
    let limit = Duration::from_secs(30);
    let pythons = [
        peer_id_of(&py081.addr).to_string(),
        peer_id_of(&py060.addr).to_string(),
    ];
    // Every alert, in order; a python peer seen up before its peer state
    // arrived may also fire availability_low: each is checked by kind.
    let mut got: Vec<Value> = Vec::new();
    let fired = |got: &[Value], alert: &str, peer: &str| {
        got.iter()
            .filter(|a| a["alert"] == alert && a["peer"] == peer && a["state"] == "firing")
            .count()
    };
    collect_until(&mut alerts, &mut got, limit, |got| {
        pythons.iter().all(|p| fired(got, "dag_diverged", p) > 0)
    })
    .await;
    for a in got.iter().filter(|a| a["alert"] == "dag_diverged") {
        assert!(
            pythons.iter().any(|p| a["peer"] == *p.as_str()),
            "only the python peers' heads are apart: {a}"
        );
        assert!(a["reason"].as_str().unwrap().contains("behind"), "{a}");
    }
    eprintln!("dag_diverged fired for both python peers");
    // Once B has answered a few probes, it goes: its availability falls
    // under 90 %.
    until_row(&db, &b_peer, limit, "three probes of B online", |r| {
        verdict(r) == "online" && r["probes"].as_u64().unwrap_or(0) >= 3
    })
    .await;
    drop(b);
    collect_until(&mut alerts, &mut got, limit, |got| {
        fired(got, "availability_low", &b_peer) > 0
    })
    .await;
    let low = got
        .iter()
        .find(|a| a["alert"] == "availability_low" && a["peer"] == *b_peer.as_str())
        .unwrap();
    eprintln!("availability_low: {}", low["reason"]);
    // A few more rounds: each alert once per change, none repeated.
    let _ = tokio::time::timeout(
        Duration::from_secs(4),
        collect_until(&mut alerts, &mut got, Duration::from_secs(5), |_| false),
    )
    .await;
    for a in &got {
        let same = got
            .iter()
            .filter(|b| {
                b["alert"] == a["alert"] && b["peer"] == a["peer"] && b["state"] == a["state"]
            })
            .count();
        assert_eq!(same, 1, "once per change: {got:#?}");
    }
    py081.process.assert_healthy("while probed");
    py060.process.assert_healthy("while probed");
}

//! `peerapi fleet` over real nodes: four `peerapi node` processes, three
//! reached through their local sockets and one through a real sshd, one of
//! them behind a slow backend. The fleet view in tmux at 80x24 and 160x48,
//! `fleet status --json`, a node killed and restarted, contexts that are
//! wrong or whose ssh fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{demo_backend, node_process_with, write_routes_file, Proc, BIN};
use crate::console::Session;
use crate::sshd::sshd;

/// A node with a control socket at `dir/ctl/<name>.sock`.
fn node(dir: &Path, name: &str, routes: &Path) -> (Proc, libp2p::Multiaddr, PathBuf) {
    let socket = dir.join("ctl").join(format!("{name}.sock"));
    let (p, addr) = node_process_with(
        routes,
        &["--control", socket.to_str().unwrap(), "--name", name],
    );
    (p, addr, socket)
}

/// `peerapi` with the test's contexts file and ssh wrapper.
fn peerapi(contexts: &Path, ssh: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.env("PEERAPI_CONTEXTS", contexts)
        .env("PEERAPI_SSH", ssh)
        .env("PEERAPI_REMOTE_COMMAND", BIN);
    c
}

fn status_json(contexts: &Path, ssh: &Path, args: &[&str]) -> (i32, serde_json::Value) {
    let out = peerapi(contexts, ssh)
        .args(["fleet", "status", "--json"])
        .args(args)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "fleet status --json printed no JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), json)
}

/// The REACH cell of `name`'s row on a fleet screen.
fn reach<'a>(screen: &'a str, name: &str) -> Option<&'a str> {
    screen.lines().find_map(|l| {
        let mut cells = l.trim_start_matches('│').split_whitespace();
        (cells.next() == Some(name)).then(|| cells.next()).flatten()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_nodes_one_over_ssh_show_in_the_fleet_and_a_killed_one_goes_down_and_comes_back() {
    let fast = demo_backend().await;
    let slow = peerapi::demo::DemoBackend::start(
        "127.0.0.1:0".parse().unwrap(),
        peerapi::demo::DemoPace {
            first_token: Duration::from_millis(400),
            per_token: Duration::ZERO,
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (fast_routes, slow_routes) = (dir.path().join("fast.json"), dir.path().join("slow.json"));
    write_routes_file(&fast_routes, &fast.routes());
    write_routes_file(&slow_routes, &slow.routes());
    let (_boot, boot_addr, boot_sock) = node(dir.path(), "boot", &fast_routes);
    let (_infer, infer_addr, infer_sock) = node(dir.path(), "infer", &slow_routes);
    let (val, val_addr, val_sock) = node(dir.path(), "val", &fast_routes);
    let (_far, far_addr, far_sock) = node(dir.path(), "far", &fast_routes);
    let ssh = sshd(&dir.path().join("sshd"));

    // Served calls, so that each node has figures: the slow one's p99 is
    // its backend's 400 ms.
    for addr in [&boot_addr, &infer_addr, &val_addr, &far_addr] {
        for _ in 0..3 {
            let out = Command::new(BIN)
                .args([
                    "call",
                    &addr.to_string(),
                    "inference",
                    "-d",
                    "{\"prompt\":\"hi\"}",
                ])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    let contexts = dir.path().join("contexts.toml");
    let add = |args: &[&str]| {
        let out = peerapi(&contexts, &ssh.ssh)
            .arg("context")
            .arg("add")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let unix = |p: &Path| format!("unix:{}", p.display());
    add(&[
        "boot",
        &unix(&boot_sock),
        "--label",
        "subnet=3",
        "--label",
        "role=bootnode",
    ]);
    add(&[
        "infer",
        &unix(&infer_sock),
        "--label",
        "subnet=3",
        "--label",
        "role=inference",
    ]);
    add(&["val", &unix(&val_sock), "--label", "subnet=7"]);
    let far_target = format!("ssh://127.0.0.1:{}/{}", ssh.port, far_sock.display());
    add(&[
        "far",
        &far_target,
        "--label",
        "subnet=3",
        "--label",
        "region=remote",
    ]);

    // Once, as cron would: four nodes up, the slow one the slowest.
    let (code, json) = status_json(&contexts, &ssh.ssh, &[]);
    assert_eq!(code, 0, "{json:#}");
    let nodes = json["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 4);
    for n in nodes {
        assert_eq!(n["reachable"], true, "{n:#}");
        assert_eq!(
            n["calls_per_s"].as_f64().map(|r| r > 0.0),
            Some(true),
            "{n:#}"
        );
    }
    assert_eq!(nodes[3]["name"], "far");
    assert!(nodes[3]["peer_id"]
        .as_str()
        .is_some_and(|p| far_addr.to_string().ends_with(p)));
    let p99 = |n: &serde_json::Value| n["p99_ms"].as_f64().unwrap_or(0.0);
    let slowest = nodes
        .iter()
        .max_by(|a, b| p99(a).total_cmp(&p99(b)))
        .unwrap();
    assert_eq!(slowest["name"], "infer", "{json:#}");
    assert!(p99(slowest) >= 350.0, "{json:#}");
    let (_, only_slow) = status_json(&contexts, &ssh.ssh, &["--filter", "p99>300ms"]);
    assert_eq!(only_slow["nodes"].as_array().unwrap().len(), 1);
    assert_eq!(only_slow["nodes"][0]["name"], "infer");
    let (_, subnet3) = status_json(&contexts, &ssh.ssh, &["subnet=3"]);
    assert_eq!(subnet3["nodes"].as_array().unwrap().len(), 3);

    // The view, at both sizes.
    let env = format!(
        "PEERAPI_CONTEXTS={} PEERAPI_SSH={} PEERAPI_REMOTE_COMMAND={BIN}",
        contexts.display(),
        ssh.ssh.display()
    );
    let small = Session::run(
        format!("fleet-small-{}", std::process::id()),
        &format!("{env} {BIN} fleet"),
        (80, 24),
    );
    let large = Session::run(
        format!("fleet-large-{}", std::process::id()),
        &format!("{env} {BIN} fleet"),
        (160, 48),
    );
    for s in [&small, &large] {
        s.wait_for("four rows up", Duration::from_secs(20), |t| {
            ["boot", "infer", "val", "far"]
                .iter()
                .all(|n| reach(t, n) == Some("up"))
        });
    }
    // Sorted by p99 (file, name, down first, p99), the slow node leads.
    large.keys(&["s", "s", "s"]);
    let sorted = large.wait_for("sorted by p99", Duration::from_secs(5), |t| {
        t.contains("sort: p99")
    });
    let first = sorted
        .lines()
        .find(|l| l.starts_with("│") && !l.contains("NODE"))
        .unwrap_or_default();
    assert!(first.starts_with("│infer"), "{sorted}");

    // Fleet-wide panes: a call served by one node shows with its name, and
    // the nodes' log lines interleave.
    large.keys(&["c"]);
    large.wait_for("the calls pane", Duration::from_secs(5), |t| {
        t.contains("calls served, all nodes")
    });
    // The followers connect as the pane opens: a call made now is seen.
    let seen = |t: &str| {
        t.lines()
            .any(|l| l.contains(" infer ") && l.contains("inference") && l.contains("ok 200"))
    };
    let mut screen = String::new();
    for _ in 0..20 {
        let out = Command::new(BIN)
            .args(["call", &infer_addr.to_string(), "inference", "-d", "{}"])
            .output()
            .unwrap();
        assert!(out.status.success());
        screen = large.capture();
        if seen(&screen) {
            break;
        }
    }
    assert!(
        seen(&screen),
        "the served call in the fleet-wide pane:\n{screen}"
    );
    large.keys(&["l"]);
    large.wait_for("the nodes' log lines", Duration::from_secs(10), |t| {
        t.contains("logs, all nodes")
            && t.lines()
                .any(|l| l.contains(" infer ") && l.contains("INFO"))
    });
    large.keys(&["l"]);
    // A fleet-wide action: the route file re-read on every node shown,
    // one result row per node.
    large.keys(&["R"]);
    large.wait_for("the question", Duration::from_secs(5), |t| {
        t.contains("reload the route file on 4 nodes")
    });
    large.keys(&["y"]);
    large.wait_for("four results", Duration::from_secs(15), |t| {
        t.matches("reload routes: reloaded: ").count() == 4
    });
    large.keys(&["a"]);

    // Killed: down within 5 s, with the reason; back within 5 s of a restart.
    drop(val);
    let killed = Instant::now();
    let down = small.wait_for("val down", Duration::from_secs(5), |t| {
        reach(t, "val") == Some("down")
    });
    let took_down = killed.elapsed();
    let (code, json) = status_json(&contexts, &ssh.ssh, &["val"]);
    assert_eq!(code, 1, "a node down is exit 1: {json:#}");
    assert!(
        json["nodes"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("val.sock")),
        "{json:#}"
    );
    let (_val, _, _) = node(dir.path(), "val", &fast_routes);
    let restarted = Instant::now();
    small.wait_for("val back", Duration::from_secs(5), |t| {
        reach(t, "val") == Some("up")
    });
    eprintln!(
        "fleet: down {took_down:?} after the kill, up {:?} after the restart",
        restarted.elapsed()
    );
    assert!(down.contains("4 nodes, 1 down"), "{down}");
    small.keys(&["q"]);
    large.keys(&["q"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_contexts_and_failing_ssh_are_rows_with_reasons_that_hold_up_nobody() {
    let fast = demo_backend().await;
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.json");
    write_routes_file(&routes, &fast.routes());
    let (_ok, _, ok_sock) = node(dir.path(), "ok", &routes);
    // A port that accepts and then says nothing: ssh waits for a banner.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let refused_port = crate::common::dead_port();
    let contexts = dir.path().join("contexts.toml");
    std::fs::write(
        &contexts,
        format!(
            "# the fleet\n[ok]\ntarget = \"unix:{}\"\n\n[refused]\ntarget = \"ssh://127.0.0.1:{refused_port}/x\"\n\n\
             [silent]\ntarget = \"ssh://127.0.0.1:{silent_port}/x\"\n\n[typo]\ntagret = \"unix:/x\"\n\n\
             [broken]\ntarget = \"unix:/y\n",
            ok_sock.display()
        ),
    )
    .unwrap();
    let ssh = Path::new("ssh");
    let listed = peerapi(&contexts, ssh)
        .args(["context", "list"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&listed.stderr);
    assert_eq!(listed.status.code(), Some(2), "{err}");
    assert!(
        err.contains("contexts.toml:12:1: unknown field `tagret`"),
        "{err}"
    );
    assert!(err.contains("contexts.toml:15:"), "{err}");
    let good = String::from_utf8_lossy(&listed.stdout);
    assert_eq!(good.lines().count(), 3, "{good}");

    // The silent host holds up only its own row: the others are drawn first.
    let s = Session::run(
        format!("fleet-bad-{}", std::process::id()),
        &format!(
            "PEERAPI_CONTEXTS={} {BIN} fleet --answer-within 4",
            contexts.display()
        ),
        (100, 30),
    );
    let first = s.wait_for("ok up, refused down", Duration::from_secs(10), |t| {
        reach(t, "ok") == Some("up") && reach(t, "refused") == Some("down")
    });
    assert_eq!(reach(&first, "silent"), Some("…"), "still trying:\n{first}");
    s.keys(&["j"]);
    s.wait_for("ssh's own words", Duration::from_secs(5), |t| {
        t.contains("Connection refused")
    });
    s.keys(&["j"]);
    s.wait_for("the silent one timed out", Duration::from_secs(10), |t| {
        reach(t, "silent") == Some("down") && t.contains("no answer within 4s")
    });
    s.keys(&["q"]);
    drop(silent);
}

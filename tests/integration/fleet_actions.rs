//! Fleet-wide actions over real nodes: two `peerapi node` processes, each
//! connected to a served peer, reached through their control sockets; one
//! more context names the second node read-only. `fleet fan-out` and
//! `fleet reload` give one result per node; the read-only context refuses
//! before its node is asked; `F` in the fleet view does the same in tmux.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::common::{node_process_with, served_peer, BIN};
use crate::console::Session;

fn peerapi(contexts: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.env("PEERAPI_CONTEXTS", contexts);
    c
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The result line of `node` in `fleet reload|fan-out` output.
fn line_of<'a>(out: &'a str, node: &str) -> &'a str {
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(node))
        .unwrap_or_else(|| panic!("no line for {node}:\n{out}"))
}

/// Lines saying that a node's fan-out reached a peer that answered.
fn answered(out: &str) -> usize {
    out.lines()
        .filter(|l| l.contains("peers answered") && !l.contains(": 0/"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_and_reload_run_on_each_node_and_a_read_only_context_refuses() {
    let peer = served_peer().await;
    let (dir, routes) = crate::common::empty_routes();
    let socket = |name: &str| dir.path().join("ctl").join(format!("{name}.sock"));
    let bootstrap = peer.addr.to_string();
    let start = |name: &str| {
        let s = socket(name);
        let flags = [
            "--control",
            s.to_str().unwrap(),
            "--name",
            name,
            "--bootstrap",
            &bootstrap,
        ];
        node_process_with(&routes, &flags)
    };
    let (_one, _) = start("one");
    let (_two, _) = start("two");
    let contexts = dir.path().join("contexts.toml");
    for args in [
        vec![
            "one".to_string(),
            format!("unix:{}", socket("one").display()),
        ],
        vec![
            "two".to_string(),
            format!("unix:{}", socket("two").display()),
        ],
        vec![
            "two-watch".to_string(),
            format!("unix:{}", socket("two").display()),
            "--read-only".to_string(),
        ],
    ] {
        let out = peerapi(&contexts)
            .args(["context", "add"])
            .args(&args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
    }

    // Both nodes dial the served peer at start; until identify has told
    // them it serves the API, a node has no API peer to fan out to. (They
    // may find each other through it too: a peer without the route counts
    // as one that did not answer.)
    let fan_out = |extra: &[&str]| {
        peerapi(&contexts)
            .args([
                "fleet",
                "fan-out",
                "echo",
                "-d",
                "{\"x\":1}",
                "--answer-within",
                "5",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let started = Instant::now();
    let out = loop {
        let out = fan_out(&[]);
        let all = text(&out);
        if answered(&all) == 2 {
            break all;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "both nodes never fanned out to the served peer:\n{all}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(line_of(&out, "one").contains(" ok "), "{out}");
    assert!(line_of(&out, "two").contains(" ok "), "{out}");
    let refused = line_of(&out, "two-watch");
    assert!(
        refused.contains("FAILED") && refused.contains("refused: the context is read-only"),
        "{out}"
    );
    // The read-only row fails the run; chosen without it, all is well.
    assert_eq!(fan_out(&[]).status.code(), Some(1));
    let json = fan_out(&["--json", "one", "two"]);
    assert_eq!(json.status.code(), Some(0), "{}", text(&json));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["failed"], 0, "{v}");
    assert_eq!(v["nodes"].as_array().map(Vec::len), Some(2), "{v}");

    let reload = peerapi(&contexts)
        .args(["fleet", "reload"])
        .output()
        .unwrap();
    let all = text(&reload);
    assert_eq!(reload.status.code(), Some(1), "{all}");
    assert!(line_of(&all, "one").contains("reload routes: "), "{all}");
    assert!(line_of(&all, "two").contains(" ok "), "{all}");
    assert!(line_of(&all, "two-watch").contains("read-only"), "{all}");

    // The same from the fleet view: F, the request, Enter, y.
    let s = Session::run(
        format!("peerapi-fleet-fanout-{}", std::process::id()),
        &format!("PEERAPI_CONTEXTS={} {BIN} fleet", contexts.display()),
        (100, 30),
    );
    s.wait_for("three rows up", Duration::from_secs(20), |t| {
        t.matches(" up ").count() >= 3
    });
    s.keys(&["F"]);
    s.keys(&["-l", "echo {\"x\":2}"]);
    s.keys(&["Enter"]);
    s.wait_for("the question", Duration::from_secs(5), |t| {
        t.contains("call echo from 3 nodes (the rows shown) to each one's API peers? y/n")
    });
    s.keys(&["y"]);
    let screen = s.wait_for("a result row per node", Duration::from_secs(20), |t| {
        answered(t) == 2 && t.contains("read-only")
    });
    assert!(screen.contains("fan-out echo"), "{screen}");
    s.keys(&["q"]);
    s.wait_for("the fleet to quit", Duration::from_secs(10), |t| {
        t.contains("PEERAPI-EXITED")
    });
}

//! What an operator sees from outside: one process per port (libp2p-tcp's
//! SO_REUSEPORT let a second one share it silently), plain text in log
//! files, and a failed command said once, in one line.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use peerapi::node::CallRequest;

use crate::common::*;

/// `peerapi ARGS` with its stdout read line by line in a thread; the
/// receiver gets each line.
fn spawn(args: &[&str], stderr: Stdio) -> (Proc, std::sync::mpsc::Receiver<String>) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    (Proc(child), rx)
}

/// The address a node printed ("listening on ..."), within 30 s.
fn listening(rx: &std::sync::mpsc::Receiver<String>) -> libp2p::Multiaddr {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("the node prints its address within 30 s");
        if let Some(addr) = line.strip_prefix("listening on ") {
            return addr.parse().unwrap();
        }
    }
}

/// The process's exit status within `limit`, or None.
fn exits_within(p: &mut Proc, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = p.0.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn routes_file(dir: &std::path::Path, backend: &StreamBackend) -> std::path::PathBuf {
    let path = dir.join("routes.json");
    let routes = serde_json::json!({ "health": backend.url("/count") });
    std::fs::write(&path, routes.to_string()).unwrap();
    path
}

/// Calls `health` at `addr` `n` times; how many reached the node.
async fn calls_reaching(addr: &libp2p::Multiaddr, n: usize) -> usize {
    let mut ok = 0;
    for _ in 0..n {
        // A new caller each time: a new connection, accepted anew.
        let caller = client().await;
        if within(caller.handle().call(addr, CallRequest::new("health")))
            .await
            .is_ok()
        {
            ok += 1;
        }
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_node_on_a_taken_port_is_refused_and_the_first_keeps_its_calls() {
    let backend = StreamBackend::start().await;
    let dir = tempfile::tempdir().unwrap();
    let routes = routes_file(dir.path(), &backend);
    let port = dead_port();
    let listen = format!("/ip4/0.0.0.0/tcp/{port}");
    let routes_arg = routes.to_str().unwrap();
    let (_first, lines) = spawn(
        &["node", "--listen", &listen, "--routes", routes_arg],
        Stdio::null(),
    );
    let first = listening(&lines);
    let err = dir.path().join("second.err");
    let (mut second, _) = spawn(
        &["node", "--listen", &listen, "--routes", routes_arg],
        std::fs::File::create(&err).unwrap().into(),
    );
    let status = exits_within(&mut second, Duration::from_secs(30))
        .expect("a second node on the same port must not start");
    let said = std::fs::read_to_string(&err).unwrap();
    assert!(!status.success(), "{said}");
    assert!(
        said.contains(&format!("tcp/{port}")) && said.contains("another process listens"),
        "the error names the address and why: {said}"
    );
    let first = first
        .to_string()
        .replace("/ip4/0.0.0.0/", "/ip4/127.0.0.1/");
    assert_eq!(calls_reaching(&first.parse().unwrap(), 8).await, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_beside_a_node_with_defaults_leaves_the_node_every_call() {
    assert!(
        Command::new("tmux").arg("-V").output().is_ok(),
        "tmux is not installed: run the tests with `bash tests/run.sh`, which installs it"
    );
    let backend = StreamBackend::start().await;
    let dir = tempfile::tempdir().unwrap();
    let routes = routes_file(dir.path(), &backend);
    // The node with its default listen address (port 4001).
    let (_node, lines) = spawn(
        &["node", "--routes", routes.to_str().unwrap()],
        Stdio::null(),
    );
    let node_addr = listening(&lines);
    assert!(node_addr.to_string().contains("/tcp/4001/"), "{node_addr}");
    // The console with its defaults, in a terminal.
    let name = format!("peerapi-beside-{}", std::process::id());
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let cmd = format!("{BIN}; echo PEERAPI-EXITED; sleep 5");
    let status = Command::new("tmux")
        .args(["new-session", "-d", "-s", &name, "-x", "120", "-y", "30"])
        .arg(cmd)
        .env("HOME", &home)
        .env("XDG_STATE_HOME", home.join("state"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .status()
        .unwrap();
    assert!(status.success());
    let session = TmuxKill(name.clone());
    let screen = wait_screen(&name, |s| {
        s.lines().next().is_some_and(|l| l.contains("/tcp/"))
    });
    let status_line = screen.lines().next().unwrap_or_default();
    assert!(
        !status_line.contains("/tcp/4001"),
        "the console takes a port of its own and says it in its status line:\n{screen}"
    );
    let addr = node_addr
        .to_string()
        .replace("/ip4/0.0.0.0/", "/ip4/127.0.0.1/");
    assert_eq!(calls_reaching(&addr.parse().unwrap(), 8).await, 8);
    drop(session);
}

struct TmuxKill(String);

impl Drop for TmuxKill {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .status();
    }
}

/// The tmux pane's text once `pred` holds (within 30 s).
fn wait_screen(session: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", session])
            .output()
            .unwrap();
        let screen = String::from_utf8_lossy(&out.stdout).into_owned();
        if pred(&screen) {
            return screen;
        }
        assert!(Instant::now() < deadline, "waited 30 s; screen:\n{screen}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_node_logging_to_a_file_writes_no_colour_codes() {
    let (dir, routes) = crate::common::empty_routes();
    let err = dir.path().join("node.log");
    let (mut node, lines) = spawn(
        &[
            "node",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--routes",
            routes.to_str().unwrap(),
        ],
        std::fs::File::create(&err).unwrap().into(),
    );
    listening(&lines);
    let ok = Command::new("kill")
        .args(["-TERM", &node.0.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    exits_within(&mut node, Duration::from_secs(30)).expect("the node stops on SIGTERM");
    let log = std::fs::read(&err).unwrap();
    let text = String::from_utf8_lossy(&log);
    assert!(text.contains("listening"), "the node logged: {text}");
    assert!(!log.contains(&0x1b), "no escape codes in a file: {text:?}");
}

/// A port nobody listens on, and a peer address there.
fn nobody_listening() -> (u16, String) {
    let port = dead_port();
    let id = libp2p::identity::Keypair::generate_ed25519()
        .public()
        .to_peer_id();
    (port, format!("/ip4/127.0.0.1/tcp/{port}/p2p/{id}"))
}

#[test]
fn a_refused_dial_is_said_once_in_one_line() {
    let (port, addr) = nobody_listening();
    let out = Command::new(BIN)
        .args(["call", &addr, "health", "--timeout", "10"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line of its own:\n{stderr}");
    let line = lines[0];
    assert!(line.starts_with("peerapi: cannot connect to"), "{line}");
    assert!(
        line.contains(&format!("127.0.0.1:{port}: connection refused")),
        "{line}"
    );
    assert!(
        !line.contains("os error") && !line.contains('\x1b'),
        "{line}"
    );
}

#[test]
fn failed_dials_are_not_throughput() {
    let (_, addr) = nobody_listening();
    let out = Command::new(BIN)
        .args(["load", &addr, "health", "-n", "3", "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("a JSON summary ({e}): {stdout}"));
    let summary = summary.get("summary").unwrap_or(&summary);
    assert_eq!(summary["failed"], 3, "{summary}");
    assert_eq!(summary["calls_per_sec"], 0.0, "{summary}");
}

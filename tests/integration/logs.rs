//! What a peer sends cannot flood the node's log: peer text is escaped and
//! capped, repeated refusals throttled, and old log files pruned.

use std::time::Duration;

use futures::StreamExt;
use peerapi::node::CallRequest;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_cannot_flood_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    // Old daily files beyond the cap are pruned when the node starts.
    for day in 1..=5 {
        std::fs::write(logs.join(format!("peerapi.2020-01-0{day}.log")), "old\n").unwrap();
    }
    let routes = dir.path().join("routes.json");
    std::fs::write(&routes, "{}").unwrap();
    let log_dir = logs.to_str().unwrap();
    let (mut node, addr) =
        node_process_with(&routes, &["--log-dir", log_dir, "--max-log-files", "2"]);
    let caller = client().await;
    // A 10 KB route name with terminal escapes, 300 times: every call is
    // refused (no such route).
    let hostile = format!("\x1b[2J\x1b]0;pwned\x07{}\n", "A".repeat(10_000));
    let calls = futures::stream::iter(0..300)
        .map(|_| {
            let h = caller.handle();
            let (addr, route) = (addr.clone(), hostile.clone());
            async move { h.call(&addr, CallRequest::new(route)).await }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>();
    let results = within(calls).await;
    assert!(results.iter().all(|r| r.is_err()), "every call is refused");
    // A clean stop flushes the log writer.
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &node.0.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let (tx, rx) = std::sync::mpsc::channel();
    let mut child = std::mem::replace(
        &mut node.0,
        std::process::Command::new("true").spawn().unwrap(),
    );
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("the node did not stop on SIGTERM")
        .unwrap();

    let files: Vec<_> = std::fs::read_dir(&logs)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(files.len() <= 2, "log files not pruned to 2: {files:?}");
    let text: String = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    assert!(!text.contains('\x1b'), "a raw escape reached the log");
    assert!(
        !text.contains(&"A".repeat(200)),
        "an uncapped route name reached the log"
    );
    let longest = text.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 2_000, "a log line of {longest} bytes");
    let refused = text
        .lines()
        .filter(|l| l.contains("ROUTE_NOT_FOUND"))
        .count();
    assert!(
        refused <= peerapi::logs::THROTTLE_BURST as usize,
        "{refused} refusal lines for 300 refused calls"
    );
    let served = text.lines().filter(|l| l.contains("served")).count();
    assert_eq!(served, 300, "one line per call");
}

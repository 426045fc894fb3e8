//! Backend faults, huge bodies, unreadable route files, shutdown, and
//! crashes in the middle of writes: each gives the documented answer and the
//! node serves on.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use peerapi::node::CallRequest;
use peerapi::wire::frame::Code;
use peerapi::{CallError, Route, RouteTable, Routes};

use crate::common::*;

/// Resident memory of process `pid` (a node process: its memory is its own,
/// whatever other tests do meanwhile).
fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

#[tokio::test]
async fn backend_500_stall_and_huge_bodies() {
    let backend = StreamBackend::start().await;
    let routes: RouteTable = [
        (
            "fail".to_string(),
            Route::new(backend.url("/fail500"), false),
        ),
        ("stall".to_string(), Route::new(backend.url("/stall"), true)),
    ]
    .into();
    let mut cfg = config();
    cfg.routes = Routes::new(routes);
    cfg.upstream.stream_idle_timeout = Duration::from_millis(500);
    cfg.upstream.max_unary_response_bytes = 64 * 1024 * 1024;
    let (server, addr) = start(cfg).await;
    let v2 = client().await;
    let v1 = client_v1().await;

    // 500 with a body: 2.0.0 relays the status, 1.0.0 the body alone.
    let r = within(v2.handle().call_full(&addr, CallRequest::new("fail")))
        .await
        .unwrap();
    assert_eq!(r.head.status, Some(500));
    assert_eq!(&r.body[..], b"model crashed: CUDA out of memory");
    let body = within(v1.handle().call(&addr, CallRequest::new("fail")))
        .await
        .unwrap();
    assert_eq!(&body[..], b"model crashed: CUDA out of memory");

    // Hangs mid-stream: the chunk that came, then a timeout error.
    let mut s = within(v2.handle().stream(&addr, CallRequest::new("stall")))
        .await
        .unwrap();
    assert_eq!(
        &within(s.next()).await.unwrap().unwrap()[..],
        b"data: first\n\n"
    );
    match within(s.next()).await {
        Some(Err(CallError::Remote {
            code: Code::UpstreamTimeout,
            ..
        })) => {}
        other => panic!("expected UPSTREAM_TIMEOUT, got {other:?}"),
    }

    // 1 GiB unary: the node's unary cap refuses it; 1 GiB streamed passes
    // chunk by chunk, never held whole. Measured on a node process of its
    // own, so the memory is the node's alone.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("routes.json");
    let blob = backend.url("/blob?mib=1024");
    std::fs::write(
        &file,
        format!(r#"{{"gig": "{blob}", "gig-stream": {{"url": "{blob}", "stream": true}}}}"#),
    )
    .unwrap();
    let (proc, big_addr) = node_process_with(&file, &["--max-backend-response-bytes", "67108864"]);
    let pid = proc.0.id();
    within(v2.handle().dial(&big_addr)).await.unwrap();
    let before = rss_mb(pid);
    let err = within(v2.handle().call(&big_addr, CallRequest::new("gig")))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CallError::Remote {
                code: Code::TooLarge,
                ..
            }
        ),
        "{err}"
    );
    let mut s = within(
        v2.handle()
            .stream(&big_addr, CallRequest::new("gig-stream")),
    )
    .await
    .unwrap();
    let mut total = 0usize;
    while let Some(c) = within(s.next()).await {
        total += c.unwrap().len();
    }
    assert_eq!(total, 1024 * 1024 * 1024);
    let grew = rss_mb(pid) - before;
    assert!(
        grew < 300.0,
        "the node's resident memory grew {grew:.0} MB moving 2 GiB"
    );
    drop(proc);
    // A caller's own response cap holds too.
    let mut capped = config();
    capped.listen = vec![];
    capped.call.max_response_bytes = 1024 * 1024;
    capped.call.protocol = peerapi::node::ProtocolChoice::V1;
    let capped = within(peerapi::Node::start(capped)).await.unwrap();
    let mut routes = server.handle().routes().current().as_ref().clone();
    routes.insert("big".into(), Route::new(backend.url("/blob?mib=8"), false));
    server.handle().routes().set_memory(routes);
    let err = within(capped.handle().call(&addr, CallRequest::new("big")))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CallError::TooLarge { limit: 1048576 }),
        "{err}"
    );
    server.abort();
}

#[tokio::test]
async fn unreadable_route_file_keeps_the_last_good_table() {
    let demo = demo_backend().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("routes.json");
    std::fs::write(&file, demo.routes_json()).unwrap();
    let mut cfg = config();
    cfg.route_file = Some(file.clone());
    let (server, addr) = start(cfg).await;
    let mut events = server.handle().subscribe();
    // Replaced by something that cannot be read as a file (root can read
    // any file, so a directory stands in for "unreadable").
    std::fs::remove_file(&file).unwrap();
    std::fs::create_dir(&file).unwrap();
    let error = within(async {
        loop {
            if let Ok(peerapi::NodeEvent::RoutesRejected { error }) = events.recv().await {
                if error.contains("cannot read") {
                    return error;
                }
            }
        }
    })
    .await;
    assert!(error.contains("routes.json"), "{error}");
    let client = client().await;
    assert!(
        within(client.handle().call(&addr, CallRequest::new("health")))
            .await
            .is_ok()
    );
    server.abort();
}

fn signal(p: &Proc, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &p.0.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn wait_exit(p: &mut Proc, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(Some(status)) = p.0.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[tokio::test]
async fn sigterm_drains_in_flight_calls_and_a_second_signal_stops_at_once() {
    let backend = StreamBackend::start().await;
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.json");
    std::fs::write(
        &routes,
        format!(
            r#"{{"slow": {{"url": "{}", "stream": true}}, "health": "{}"}}"#,
            backend.url("/slow"),
            backend.url("/count")
        ),
    )
    .unwrap();

    // One signal: the stream in flight is given time and ends cleanly.
    let (mut node, addr) = node_process(&routes);
    let client = client().await;
    let mut s = within(client.handle().stream(&addr, CallRequest::new("slow")))
        .await
        .unwrap();
    within(s.next()).await.unwrap().unwrap();
    signal(&node, "-TERM");
    let started = Instant::now();
    let mut chunks = 1;
    let mut error = None;
    while let Some(c) = within(s.next()).await {
        match c {
            Ok(_) => chunks += 1,
            Err(e) => {
                error = Some(e);
                break;
            }
        }
        if chunks >= 15 {
            break;
        }
    }
    assert!(error.is_none(), "the in-flight stream was cut: {error:?}");
    assert!(chunks >= 15, "only {chunks} chunks during the drain");
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "it kept serving during the drain"
    );
    // New calls are no longer taken while draining.
    let other = client_v1().await;
    let refused = within(other.handle().call(&addr, CallRequest::new("health"))).await;
    assert!(
        !matches!(&refused, Ok(b) if b.starts_with(b"backend")),
        "{refused:?}"
    );
    drop(s);
    let status = tokio::task::spawn_blocking(move || {
        let s = wait_exit(&mut node, Duration::from_secs(15));
        (s, node)
    })
    .await
    .unwrap();
    assert!(
        status.0.is_some_and(|s| s.success()),
        "exit after drain: {:?}",
        status.0
    );

    // Two signals: stops at once even with a stream in flight.
    let (mut node, addr) = node_process(&routes);
    let mut s = within(client.handle().stream(&addr, CallRequest::new("slow")))
        .await
        .unwrap();
    within(s.next()).await.unwrap().unwrap();
    signal(&node, "-TERM");
    tokio::time::sleep(Duration::from_millis(200)).await;
    signal(&node, "-TERM");
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || wait_exit(&mut node, Duration::from_secs(5)))
        .await
        .unwrap();
    assert!(status.is_some(), "a second signal must stop the node");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "stopped after {:?}",
        started.elapsed()
    );
}

#[test]
fn kill_9_during_route_writes_leaves_the_old_or_the_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("routes.json");
    // A large file, so a write takes long enough to be interrupted.
    let table: serde_json::Map<String, serde_json::Value> = (0..20_000)
        .map(|i| (format!("route{i:05}"), serde_json::json!({"url": format!("http://127.0.0.1:9/r{i}"), "stream": i % 2 == 0, "note": "x".repeat(40)})))
        .collect();
    std::fs::write(&file, serde_json::to_string_pretty(&table).unwrap()).unwrap();
    let mut killed_mid_run = 0;
    for i in 0..40u64 {
        let mut child = Command::new(BIN)
            .args(["routes", "set"])
            .arg(&file)
            .args([&format!("new{i}"), "http://127.0.0.1:9/new"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(500 + (i * 1_373) % 20_000));
        if child.try_wait().unwrap().is_none() {
            killed_mid_run += 1;
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let text = std::fs::read_to_string(&file).unwrap();
        let parsed = peerapi::routes::parse_routes(&text)
            .unwrap_or_else(|e| panic!("torn file after kill {i}: {e}"));
        assert!(parsed.table.len() >= 20_000, "routes lost after kill {i}");
    }
    assert!(
        killed_mid_run > 0,
        "no write was interrupted; the test proved nothing"
    );
}

#[tokio::test]
async fn short_soak_no_failed_calls_and_no_leaked_descriptors() {
    let demo = demo_backend().await;
    let backend = StreamBackend::start().await;
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.json");
    let mut table: serde_json::Value = serde_json::from_str(&demo.routes_json()).unwrap();
    table["chunks"] = serde_json::json!({"url": backend.url("/chunks?n=200"), "stream": true});
    std::fs::write(&routes, table.to_string()).unwrap();
    // The serving node runs as its own process, so its descriptors are its
    // own. A small idle pool fills in the first round (200 streams at once),
    // so a second round that needs more descriptors is a leak, not the pool
    // growing towards its cap.
    let (node, addr) = node_process_with(&routes, &["--max-idle-backend-connections", "16"]);
    let fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", node.0.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let peers: Vec<_> = futures::future::join_all((0..10).map(|_| client())).await;
    let mut counts = Vec::new();
    let mut failed = 0;
    // The same load twice: pools fill in the first round; a leak keeps growing.
    for _round in 0..2 {
        let mut tasks = tokio::task::JoinSet::new();
        for p in &peers {
            for _ in 0..20 {
                let (h, addr) = (p.handle(), addr.clone());
                tasks.spawn(async move {
                    let mut s = h.stream(&addr, CallRequest::new("chunks")).await?;
                    let mut n = 0;
                    while let Some(c) = s.next().await {
                        n += c?.len();
                    }
                    Ok::<_, CallError>(n)
                });
            }
        }
        while let Some(r) = within(tasks.join_next()).await {
            if !matches!(r, Ok(Ok(n)) if n > 0) {
                failed += 1;
            }
        }
        let h = peers[0].handle();
        for i in 0..1_000 {
            let body = format!("{i}");
            match h
                .call(
                    &addr,
                    CallRequest::new("echo").method("POST").body(body.clone()),
                )
                .await
            {
                Ok(b) if b[..] == *body.as_bytes() => {}
                _ => failed += 1,
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        counts.push(fds());
    }
    assert_eq!(failed, 0, "well-formed calls failed");
    assert!(
        counts[1] <= counts[0] + 4,
        "serving node descriptors grew {counts:?}"
    );
}

//! Where a call's time goes: the serving node's timings (2.0.0 head and
//! end) joined with the caller's timeline, against a backend whose head
//! and body take known times.

use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::routing::get;
use futures::StreamExt;
use peerapi::node::{Breakdown, CallRequest};
use peerapi::{Route, RouteTable};

use crate::common::*;

const HEAD_DELAY: Duration = Duration::from_millis(150);
const CHUNK_GAP: Duration = Duration::from_millis(40);

/// `/late`: the head after `HEAD_DELAY`, then "ok". `/late-stream`: the
/// head after `HEAD_DELAY`, then three chunks `CHUNK_GAP` apart.
async fn late_backend() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let app = axum::Router::new()
        .route(
            "/late",
            get(|| async {
                tokio::time::sleep(HEAD_DELAY).await;
                "ok"
            }),
        )
        .route(
            "/late-stream",
            get(|| async {
                tokio::time::sleep(HEAD_DELAY).await;
                let chunks = futures::stream::iter(0..3).then(|i| async move {
                    if i > 0 {
                        tokio::time::sleep(CHUNK_GAP).await;
                    }
                    Ok::<_, std::io::Error>(Bytes::from(format!("chunk {i}\n")))
                });
                Body::from_stream(chunks)
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_calls_time_splits_into_network_node_and_backend_and_adds_up() {
    let (backend, _task) = late_backend().await;
    let mut routes = RouteTable::new();
    routes.insert(
        "late".into(),
        Route::new(format!("http://{backend}/late"), false),
    );
    routes.insert(
        "late-stream".into(),
        Route::new(format!("http://{backend}/late-stream"), true),
    );
    let (_server, addr) = serving_node(routes).await;
    let caller = client().await;
    let h = caller.handle();

    // Unary: the node's head leaves after the whole body.
    let started = Instant::now();
    let r = within(h.call_full(&addr, CallRequest::new("late")))
        .await
        .unwrap();
    let total = started.elapsed();
    let b = Breakdown::of(&r.head, None, total, false).expect("2.0.0 sends timings");
    let dialed = b.connect;
    assert!(b.backend_head >= HEAD_DELAY, "{b:?}");
    assert!(b.connect > Duration::ZERO, "the first call dials: {b:?}");
    assert_eq!(
        b.overlap,
        Duration::ZERO,
        "the node's time fits in the caller's wait: {b:?}"
    );
    assert_eq!(b.sum(false), total, "{b:?}");
    assert!(b.network < total - HEAD_DELAY, "{b:?}");

    // Stream: the backend's body comes after the head, with the end frame.
    let started = Instant::now();
    let (head, mut chunks) = within(h.stream_full(&addr, CallRequest::new("late-stream")))
        .await
        .unwrap();
    let mut got = 0;
    while let Some(c) = within(chunks.next()).await {
        got += c.unwrap().len();
    }
    let total = started.elapsed();
    assert_eq!(got, 24);
    let end = chunks
        .server_timing()
        .expect("the end frame carries timings");
    let b = Breakdown::of(&head, Some(end), total, true).unwrap();
    assert!(b.connect < dialed, "the connection is reused: {b:?}");
    assert!(b.backend_head >= HEAD_DELAY, "{b:?}");
    assert!(b.backend_body >= CHUNK_GAP * 2, "{b:?}");
    assert_eq!(b.overlap, Duration::ZERO, "{b:?}");
    assert_eq!(b.sum(true), total, "{b:?}");

    // A 1.0.0 caller has no node timings, only its own timeline.
    let v1 = client_v1().await;
    let r = within(v1.handle().call_full(&addr, CallRequest::new("late")))
        .await
        .unwrap();
    assert!(r.head.server_timing.is_none());
    assert!(r.head.timeline.head >= HEAD_DELAY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_verbose_prints_where_the_time_went() {
    let (backend, _task) = late_backend().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("routes.json");
    let mut routes = RouteTable::new();
    routes.insert(
        "late".into(),
        Route::new(format!("http://{backend}/late"), false),
    );
    write_routes_file(&file, &routes);
    let (_node, addr) = node_process(&file);
    let out = within(
        tokio::process::Command::new(env!("CARGO_BIN_EXE_peerapi"))
            .args(["call", "-v", &addr.to_string(), "late"])
            .output(),
    )
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(out.stdout, b"ok");
    for part in ["* timeline (total", "network", "backend head", "net "] {
        assert!(stderr.contains(part), "{part:?} in:\n{stderr}");
    }
}

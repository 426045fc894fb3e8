//! Interop with the real Python stack: py-libp2p peers (tests/interop/peer.py)
//! run as separate processes on 127.0.0.1, in both directions.

use std::time::Duration;

use futures::StreamExt;
use peerapi::node::CallRequest;
use peerapi::{Route, RouteTable};
use tokio::process::Command;

use crate::common::*;
use crate::python::*;

fn backend_routes(demo: &peerapi::demo::DemoBackend, chunks: &StreamBackend) -> RouteTable {
    let mut routes = demo.routes();
    routes.insert(
        "chunks".into(),
        Route::new(chunks.url("/chunks?n=1500"), true),
    );
    routes.insert(
        "down".into(),
        Route::new(format!("http://127.0.0.1:{}/x", dead_port()), false),
    );
    routes
}

fn count_events(body: &[u8]) -> usize {
    let text = String::from_utf8_lossy(body);
    let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(
            *e,
            format!("data: {i}"),
            "event {i} out of order or damaged"
        );
    }
    events.len()
}

#[tokio::test]
async fn peerapi_calls_a_python_node() {
    let py = python();
    let demo = demo_backend().await;
    let chunks = StreamBackend::start().await;
    let server = PyHost::serve(
        &py,
        &backend_routes(&demo, &chunks),
        &["--security", "noise"],
    )
    .await;
    let client = client().await;
    let h = client.handle();
    let addr = &server.addr;

    // Python nodes speak only 1.0.0: the call falls back transparently.
    let r = within(h.call_full(addr, CallRequest::new("health")))
        .await
        .unwrap();
    assert_eq!(r.head.version, peerapi::node::ApiVersion::V1);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["status"], "ok");
    // Forcing 2.0.0 against it is a clean "unsupported".
    let forced = client_speaking(peerapi::node::ProtocolChoice::V2).await;
    let err = within(forced.handle().call(addr, CallRequest::new("health")))
        .await
        .unwrap_err();
    assert!(
        matches!(err, peerapi::CallError::Unsupported { .. }),
        "{err}"
    );

    // The Python server reads the request with one read: a 200 KiB request
    // must reach it in one yamux frame.
    let big: Vec<u8> = (0..200 * 1024u32).map(|i| (i % 251) as u8).collect();
    let got = within(h.call(
        addr,
        CallRequest::new("echo").method("POST").body(big.clone()),
    ))
    .await
    .unwrap();
    assert!(
        got[..] == big[..],
        "echo through python differs ({} bytes back)",
        got.len()
    );

    let mut s = within(h.stream(addr, CallRequest::new("chunks")))
        .await
        .unwrap();
    let mut all = Vec::new();
    while let Some(c) = within(s.next()).await {
        all.extend_from_slice(&c.unwrap());
    }
    assert_eq!(count_events(&all), 1500);

    let mut s = within(
        h.stream(
            addr,
            CallRequest::new("inference")
                .method("POST")
                .body(r#"{"max_tokens": 10}"#),
        ),
    )
    .await
    .unwrap();
    let mut all = Vec::new();
    while let Some(c) = within(s.next()).await {
        all.extend_from_slice(&c.unwrap());
    }
    assert!(String::from_utf8_lossy(&all).ends_with("data: [DONE]\n\n"));

    assert_eq!(
        &within(h.call(addr, CallRequest::new("nope")))
            .await
            .unwrap()[..],
        b"Route not found"
    );
    let mut s = within(h.stream(addr, CallRequest::new("health")))
        .await
        .unwrap();
    let mut all = Vec::new();
    while let Some(c) = within(s.next()).await {
        all.extend_from_slice(&c.unwrap());
    }
    assert_eq!(&all[..], b"Route does not support streaming: health");
    let down = within(h.call(addr, CallRequest::new("down")))
        .await
        .unwrap();
    assert!(
        down.starts_with(b"Error processing request: "),
        "{}",
        String::from_utf8_lossy(&down)
    );

    // Python nodes do not serve the route listing: a clean "unsupported".
    let err = within(h.list_routes(addr)).await.unwrap_err();
    assert!(
        matches!(err, peerapi::CallError::Unsupported { .. }),
        "{err}"
    );

    // Identify told us what the peer is before any call needed it.
    let peers = within(h.peers()).await.unwrap();
    let py_peer = peers
        .iter()
        .find(|p| {
            Some(p.peer)
                == addr.iter().last().and_then(|p| match p {
                    libp2p::multiaddr::Protocol::P2p(id) => Some(id),
                    _ => None,
                })
        })
        .expect("python peer connected");
    assert!(
        py_peer
            .agent
            .as_deref()
            .unwrap_or("")
            .starts_with("py-libp2p"),
        "{:?}",
        py_peer.agent
    );
    assert!(py_peer.serves_api_v1());
}

#[tokio::test]
async fn a_python_node_calls_peerapi() {
    let py = python();
    let demo = demo_backend().await;
    let chunks = StreamBackend::start().await;
    let (server, addr) = serving_node(backend_routes(&demo, &chunks)).await;

    let body = py_call(&py, &addr, "health", &[]).await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["status"], "ok");

    // A Python caller reads a unary response with one read: 60,000 bytes
    // must arrive whole (libp2p-yamux's 16 KiB frames would cut it).
    let body = py_call(
        &py,
        &addr,
        "echo",
        &["--method", "POST", "--body-size", "60000"],
    )
    .await;
    assert_eq!(body.len(), 60_000);
    assert!(body.iter().all(|b| *b == b'x'));

    let body = py_call(&py, &addr, "chunks", &["--stream"]).await;
    assert_eq!(count_events(&body), 1500);
    let body = py_call(
        &py,
        &addr,
        "inference",
        &[
            "--stream",
            "--method",
            "POST",
            "--body",
            r#"{"max_tokens": 10}"#,
        ],
    )
    .await;
    assert!(String::from_utf8_lossy(&body).ends_with("data: [DONE]\n\n"));

    assert_eq!(py_call(&py, &addr, "nope", &[]).await, b"Route not found");
    assert_eq!(
        py_call(&py, &addr, "health", &["--stream"]).await,
        b"Route does not support streaming: health"
    );
    let down = py_call(&py, &addr, "down", &[]).await;
    assert!(
        down.starts_with(b"Error processing request: "),
        "{}",
        String::from_utf8_lossy(&down)
    );
    server.abort();
}

#[tokio::test]
async fn proof_of_stake_security_name_both_directions() {
    let py = python();
    let demo = demo_backend().await;
    // A Python node that offers Noise only as /pos-transport/1.0.0.
    let server = PyHost::serve(&py, &demo.routes(), &["--security", "pos"]).await;
    let client = client().await;
    let body = within(
        client
            .handle()
            .call(&server.addr, CallRequest::new("health")),
    )
    .await
    .unwrap();
    assert!(body.starts_with(b"{"), "{}", String::from_utf8_lossy(&body));

    // A Python caller that offers only /pos-transport/1.0.0 reaches us.
    let (node, addr) = serving_node(demo.routes()).await;
    let body = py_call(&py, &addr, "health", &["--security", "pos"]).await;
    assert!(body.starts_with(b"{"), "{}", String::from_utf8_lossy(&body));
    node.abort();
}

#[tokio::test]
async fn python_key_files_give_the_python_peer_id() {
    let py = python();
    let dir = tempfile::tempdir().unwrap();
    for kind in ["ed25519", "secp256k1"] {
        let path = dir.path().join(format!("{kind}.key"));
        let out = within(
            Command::new(&py)
                .arg(PEER_PY)
                .args(["keygen"])
                .arg(&path)
                .args(["--type", kind])
                .kill_on_drop(true)
                .output(),
        )
        .await
        .unwrap();
        assert!(out.status.success());
        let python_id = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let ours = peerapi::keys::load_key(&path)
            .unwrap()
            .public()
            .to_peer_id()
            .to_string();
        assert_eq!(ours, python_id, "{kind} key file");
        if kind == "ed25519" {
            assert_eq!(
                std::fs::read(&path).unwrap().len(),
                4 + 32,
                "py-libp2p writes the 32-byte seed"
            );
        }
    }
    let _ = Duration::ZERO;
}

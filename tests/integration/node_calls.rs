use std::time::Duration;

use futures::StreamExt;
use peerapi::node::CallRequest;
use peerapi::{Route, RouteTable};

use crate::common::*;

#[tokio::test]
async fn unary_get_and_post_reach_the_backend_and_come_back_byte_exact() {
    let backend = demo_backend().await;
    let (server, addr) = serving_node(backend.routes()).await;
    let client = client().await;
    let h = client.handle();

    let body = within(h.call(&addr, CallRequest::new("health")))
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["status"], "ok");

    let req = CallRequest::new("inspect")
        .method("POST")
        .header("x-subnet", "42")
        .header("content-type", "application/json")
        .body(&b"{\"a\":1}"[..]);
    let body = within(h.call(&addr, req)).await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["method"], "POST");
    assert_eq!(v["headers"]["x-subnet"], "42");
    assert_eq!(v["body"], "{\"a\":1}");

    // 5 MiB of non-repeating bytes, through echo, byte-exact.
    let big: Vec<u8> = (0..5 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    let got = within(h.call(
        &addr,
        CallRequest::new("echo").method("PUT").body(big.clone()),
    ))
    .await
    .unwrap();
    assert_eq!(got.len(), big.len());
    assert!(got[..] == big[..], "echoed body differs");
    server.abort();
}

#[tokio::test]
async fn ten_thousand_stream_chunks_arrive_in_order() {
    let backend = StreamBackend::start().await;
    let routes: RouteTable = [(
        "sse".to_string(),
        Route::new(backend.url("/chunks?n=10000"), true),
    )]
    .into();
    let (server, addr) = serving_node(routes).await;
    let client = client().await;
    let mut stream = within(client.handle().stream(&addr, CallRequest::new("sse")))
        .await
        .unwrap();
    let mut all = Vec::new();
    while let Some(chunk) = within(stream.next()).await {
        all.extend_from_slice(&chunk.unwrap());
    }
    let text = String::from_utf8(all).unwrap();
    let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(events.len(), 10_000);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(*e, format!("data: {i}"));
    }
    server.abort();
}

#[tokio::test]
async fn first_chunk_arrives_before_the_backend_finishes() {
    let backend = StreamBackend::start().await;
    let routes: RouteTable =
        [("gated".to_string(), Route::new(backend.url("/gated"), true))].into();
    let (server, addr) = serving_node(routes).await;
    let client = client().await;
    let mut stream = within(client.handle().stream(&addr, CallRequest::new("gated")))
        .await
        .unwrap();
    // The backend holds its second event until the gate opens, so this chunk
    // can only arrive if the node relays without buffering the whole body.
    let first = within(stream.next()).await.unwrap().unwrap();
    assert_eq!(&first[..], b"data: first\n\n");
    backend.gate.notify_one();
    let mut rest = Vec::new();
    while let Some(chunk) = within(stream.next()).await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(&rest[..], b"data: second\n\n");
    server.abort();
}

#[tokio::test]
async fn the_three_v1_error_texts() {
    let backend = demo_backend().await;
    let mut routes = backend.routes();
    routes.insert(
        "down".into(),
        Route::new(format!("http://127.0.0.1:{}/x", dead_port()), false),
    );
    let (server, addr) = serving_node(routes).await;
    let client = client_v1().await;
    let h = client.handle();

    let body = within(h.call(&addr, CallRequest::new("nope")))
        .await
        .unwrap();
    assert_eq!(&body[..], b"Route not found");

    let mut s = within(h.stream(&addr, CallRequest::new("health")))
        .await
        .unwrap();
    let mut got = Vec::new();
    while let Some(c) = within(s.next()).await {
        got.extend_from_slice(&c.unwrap());
    }
    assert_eq!(&got[..], b"Route does not support streaming: health");

    let body = within(h.call(&addr, CallRequest::new("down")))
        .await
        .unwrap();
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(text.starts_with("Error processing request: "), "{text}");
    assert!(text.contains("unavailable"), "{text}");
    assert!(matches!(
        peerapi::node::classify_v1_body(text.as_bytes()),
        Some(peerapi::node::V1ErrorText::Processing(_))
    ));
    server.abort();
}

#[tokio::test]
async fn oversized_request_is_refused_while_a_normal_call_succeeds() {
    let backend = demo_backend().await;
    let mut cfg = config();
    cfg.routes = peerapi::Routes::new(backend.routes());
    cfg.serve.max_request_bytes = 1024 * 1024;
    let (server, addr) = start(cfg).await;
    let client = client_v1().await;
    let h = client.handle();
    let big = CallRequest::new("echo")
        .method("POST")
        .body(vec![7u8; 2 * 1024 * 1024]);
    let (refused, normal) = within(async {
        futures::join!(
            h.call(&addr, big),
            h.call(&addr, CallRequest::new("echo").method("POST").body("ok"))
        )
    })
    .await;
    let refused = String::from_utf8(refused.unwrap().to_vec()).unwrap();
    assert!(
        refused.starts_with("Error processing request: "),
        "{refused}"
    );
    assert!(
        refused.contains("exceeds the limit of 1048576 bytes"),
        "{refused}"
    );
    assert_eq!(&normal.unwrap()[..], b"ok");
    server.abort();
}

#[tokio::test]
async fn sixty_four_concurrent_callers_ten_thousand_calls_none_dropped() {
    let backend = demo_backend().await;
    let (server, addr) = serving_node(backend.routes()).await;
    let client = client().await;
    let h = client.handle();
    // Connect first so every caller shares one connection.
    within(h.dial(&addr)).await.unwrap();
    const CALLERS: usize = 64;
    const CALLS: usize = 10_000;
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..CALLERS {
        let h = h.clone();
        let addr = addr.clone();
        tasks.spawn(async move {
            let mut failures = Vec::new();
            let mut ok = 0usize;
            for i in (c..CALLS).step_by(CALLERS) {
                let body = format!("call-{i}");
                match h
                    .call(
                        &addr,
                        CallRequest::new("echo").method("POST").body(body.clone()),
                    )
                    .await
                {
                    Ok(got) if got[..] == *body.as_bytes() => ok += 1,
                    Ok(got) => failures.push(format!(
                        "call {i}: wrong body {:?}",
                        String::from_utf8_lossy(&got)
                    )),
                    Err(e) => failures.push(format!("call {i}: {e}")),
                }
            }
            (ok, failures)
        });
    }
    let mut ok = 0;
    let mut failures = Vec::new();
    within(async {
        while let Some(r) = tasks.join_next().await {
            let (n, f) = r.unwrap();
            ok += n;
            failures.extend(f);
        }
    })
    .await;
    assert!(
        failures.is_empty(),
        "{} failed, first: {:?}",
        failures.len(),
        failures.first()
    );
    assert_eq!(ok, CALLS);
    server.abort();
}

#[tokio::test]
async fn multiaddr_without_peer_id_and_unreachable_peer_are_distinct_errors() {
    let client = client().await;
    let h = client.handle();
    let addr: libp2p::Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
    let err = h.call(&addr, CallRequest::new("x")).await.unwrap_err();
    assert!(
        matches!(err, peerapi::CallError::BadAddress { .. }),
        "{err}"
    );
    let peer = libp2p::identity::Keypair::generate_ed25519()
        .public()
        .to_peer_id();
    let addr: libp2p::Multiaddr = format!("/ip4/127.0.0.1/tcp/{}/p2p/{peer}", dead_port())
        .parse()
        .unwrap();
    let err = within(h.call(&addr, CallRequest::new("x")))
        .await
        .unwrap_err();
    assert!(
        matches!(err, peerapi::CallError::DialFailed { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn connection_is_reused_between_calls_and_events_are_reported() {
    let backend = demo_backend().await;
    let (server, addr) = serving_node(backend.routes()).await;
    let client = client().await;
    let h = client.handle();
    let mut events = h.subscribe();
    within(h.call(&addr, CallRequest::new("health")))
        .await
        .unwrap();
    within(h.call(&addr, CallRequest::new("health")))
        .await
        .unwrap();
    let mut connected = 0;
    let mut finished = 0;
    // Both calls' events are in once the second CallFinished is.
    within(async {
        while finished < 2 {
            match events.recv().await.unwrap() {
                peerapi::NodeEvent::PeerConnected { .. } => connected += 1,
                peerapi::NodeEvent::CallFinished { .. } => finished += 1,
                _ => {}
            }
        }
    })
    .await;
    while let Ok(ev) = events.try_recv() {
        if let peerapi::NodeEvent::PeerConnected { .. } = ev {
            connected += 1;
        }
    }
    assert_eq!(connected, 1, "second call must reuse the connection");
    assert_eq!(finished, 2);
    let peers = within(h.peers()).await.unwrap();
    assert_eq!(peers.len(), 1);
    server.abort();
}

#[tokio::test]
async fn private_network_admits_only_peers_with_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("swarm.key");
    std::fs::write(
        &key_file,
        "/key/swarm/psk/1.0.0/\n/base16/\n0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n",
    )
    .unwrap();
    let psk = peerapi::node::transport::load_psk(&key_file).unwrap();
    let backend = demo_backend().await;
    let mut cfg = config();
    cfg.routes = peerapi::Routes::new(backend.routes());
    cfg.psk = Some(psk);
    let (server, addr) = start(cfg).await;

    let mut member = config();
    member.listen = vec![];
    member.psk = Some(psk);
    let member = within(peerapi::Node::start(member)).await.unwrap();
    let body = within(member.handle().call(&addr, CallRequest::new("health")))
        .await
        .unwrap();
    assert!(body.starts_with(b"{"));

    let mut outsider = config();
    outsider.listen = vec![];
    outsider.call.dial_timeout = Duration::from_secs(3);
    let outsider = within(peerapi::Node::start(outsider)).await.unwrap();
    let err = within(outsider.handle().call(&addr, CallRequest::new("health")))
        .await
        .unwrap_err();
    assert!(
        matches!(err, peerapi::CallError::DialFailed { .. }),
        "{err}"
    );

    std::fs::write(&key_file, "not a key").unwrap();
    let err = peerapi::node::transport::load_psk(&key_file).unwrap_err();
    assert!(
        err.contains("swarm.key") && err.contains("/key/swarm/psk/1.0.0/"),
        "{err}"
    );
    server.abort();
}

#[tokio::test]
async fn route_listing_gives_names_and_stream_flags_never_urls() {
    let backend = demo_backend().await;
    let (server, addr) = serving_node(backend.routes()).await;
    let client = client().await;
    let routes = within(client.handle().list_routes(&addr)).await.unwrap();
    let names: Vec<(&str, bool)> = routes.iter().map(|r| (r.name.as_str(), r.stream)).collect();
    assert_eq!(
        names,
        vec![
            ("echo", false),
            ("events", true),
            ("health", false),
            ("inference", true),
            ("inspect", false)
        ]
    );
    server.abort();
}

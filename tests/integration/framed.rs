//! `/peerapi/api/2.0.0` end to end: every error code and its 1.0.0 text,
//! status and headers, fallback, cancellation, round-robin and failover,
//! access rules and limits.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::Multiaddr;
use peerapi::node::{ApiVersion, CallRequest, PeerAccess};
use peerapi::wire::frame::Code;
use peerapi::{CallError, Node, Route, RouteTable, Routes};

use crate::common::*;

/// A serving node whose routes exercise every refusal.
async fn fault_node(
    backend: &StreamBackend,
    demo: &peerapi::demo::DemoBackend,
    deny: libp2p::PeerId,
) -> (Node, Multiaddr) {
    let mut routes: RouteTable = demo.routes();
    let mut post_only = Route::new(format!("http://{}/echo", demo.addr), false);
    post_only.policy.methods = Some(vec!["POST".into()]);
    routes.insert("post-only".into(), post_only);
    let mut small = Route::new(format!("http://{}/echo", demo.addr), false);
    small.policy.max_body_bytes = Some(10);
    routes.insert("small".into(), small);
    let mut private = Route::new(format!("http://{}/health", demo.addr), false);
    private.policy.peers.deny = vec![deny];
    routes.insert("private".into(), private);
    routes.insert(
        "down".into(),
        Route::new(format!("http://127.0.0.1:{}/x", dead_port()), false),
    );
    let mut slow = Route::new(backend.url("/hang"), false);
    slow.policy.timeout = Some(Duration::from_millis(300));
    routes.insert("hang".into(), slow);
    routes.insert("broken".into(), Route::new(backend.url("/broken"), true));
    routes.insert("bad-url".into(), Route::new("http://", false));
    routes.insert("teapot".into(), Route::new(backend.url("/teapot"), false));
    serving_node(routes).await
}

fn remote_code(r: Result<bytes::Bytes, CallError>) -> (Code, String) {
    match r {
        Err(CallError::Remote { code, message }) => (code, message),
        other => panic!("expected a typed error, got {other:?}"),
    }
}

#[tokio::test]
async fn every_error_code_on_2_0_0_and_its_1_0_0_text() {
    let backend = StreamBackend::start().await;
    let demo = demo_backend().await;
    let v2 = client().await;
    let v1 = client_v1().await;
    let (server, addr) = fault_node(&backend, &demo, v2.handle().local_peer_id()).await;
    let (h2, h1) = (v2.handle(), v1.handle());

    // (request, expected code, expected 1.0.0 text or prefix)
    let cases: Vec<(CallRequest, bool, Code, &str)> = vec![
        (
            CallRequest::new("nope"),
            false,
            Code::RouteNotFound,
            "Route not found",
        ),
        (
            CallRequest::new("health"),
            true,
            Code::StreamNotSupported,
            "Route does not support streaming: health",
        ),
        (
            CallRequest::new("post-only").method("GET"),
            false,
            Code::MethodNotAllowed,
            "Error processing request: method GET is not allowed",
        ),
        (
            CallRequest::new("echo")
                .method("POST")
                .header("bad header", "x"),
            false,
            Code::BadRequest,
            "Error processing request: invalid request header",
        ),
        (
            CallRequest::new("small")
                .method("POST")
                .body(vec![1u8; 100]),
            false,
            Code::TooLarge,
            "Error processing request: request body of 100 bytes exceeds",
        ),
        (
            CallRequest::new("down"),
            false,
            Code::UpstreamUnavailable,
            "Error processing request: backend",
        ),
        (
            CallRequest::new("hang"),
            false,
            Code::UpstreamTimeout,
            "Error processing request: backend",
        ),
        (
            CallRequest::new("bad-url"),
            false,
            Code::Internal,
            "Error processing request: backend misconfigured",
        ),
    ];
    for (req, stream, code, v1_text) in cases {
        let route = req.route.clone();
        let got = if stream {
            match within(h2.stream(&addr, req.clone())).await {
                Ok(_) => panic!("{route}: expected {code}"),
                Err(e) => Err(e),
            }
        } else {
            within(h2.call(&addr, req.clone())).await
        };
        let (got_code, message) = remote_code(got);
        assert_eq!(got_code, code, "{route}: {message}");
        let body = if stream {
            let mut s = within(h1.stream(&addr, req)).await.unwrap();
            let mut all = Vec::new();
            while let Some(c) = within(s.next()).await {
                all.extend_from_slice(&c.unwrap());
            }
            all
        } else {
            within(h1.call(&addr, req)).await.unwrap().to_vec()
        };
        let text = String::from_utf8_lossy(&body);
        assert!(text.starts_with(v1_text), "{route} over 1.0.0: {text:?}");
    }

    // FORBIDDEN: the route denies the 2.0.0 client's peer id (and only it).
    let (code, _) = remote_code(within(h2.call(&addr, CallRequest::new("private"))).await);
    assert_eq!(code, Code::Forbidden);
    assert!(within(h1.call(&addr, CallRequest::new("private")))
        .await
        .unwrap()
        .starts_with(b"{"));
    let mut routes = demo.routes();
    let mut private = Route::new(format!("http://{}/health", demo.addr), false);
    private.policy.peers.allow = Some(vec![h2.local_peer_id()]);
    routes.insert("private".into(), private);
    routes.insert("broken".into(), Route::new(backend.url("/broken"), true));
    server.handle().routes().set_memory(routes);
    assert_eq!(
        &within(h1.call(&addr, CallRequest::new("private")))
            .await
            .unwrap()[..],
        b"Forbidden"
    );

    // UPSTREAM_FAILED mid-stream: the chunk that arrived, then the typed error.
    let mut s = within(h2.stream(&addr, CallRequest::new("broken")))
        .await
        .unwrap();
    let first = within(s.next()).await.unwrap().unwrap();
    assert_eq!(&first[..], b"data: partial\n\n");
    match within(s.next()).await {
        Some(Err(CallError::Remote {
            code: Code::UpstreamFailed,
            ..
        })) => {}
        other => panic!("expected UPSTREAM_FAILED, got {other:?}"),
    }
    let mut s = within(h1.stream(&addr, CallRequest::new("broken")))
        .await
        .unwrap();
    let mut all = Vec::new();
    while let Some(c) = within(s.next()).await {
        all.extend_from_slice(&c.unwrap());
    }
    let text = String::from_utf8_lossy(&all);
    assert!(
        text.starts_with("data: partial\n\nError processing request: "),
        "{text:?}"
    );
    server.abort();
}

#[tokio::test]
async fn overloaded_past_the_node_and_per_peer_limits_while_others_succeed() {
    let backend = StreamBackend::start().await;
    let demo = demo_backend().await;
    let mut routes = demo.routes();
    routes.insert("hang".into(), Route::new(backend.url("/hang"), false));
    let mut cfg = config();
    cfg.routes = Routes::new(routes);
    cfg.serve.max_calls_per_peer = 2;
    cfg.serve.max_concurrent_calls = 3;
    let (server, addr) = start(cfg).await;
    let mut served = server.handle().subscribe();
    let a = client().await;
    let b = client().await;
    let c = client_v1().await;
    // Peer a fills its two slots with calls that hang.
    let mut hung = Vec::new();
    for _ in 0..2 {
        let h = a.handle();
        let addr = addr.clone();
        hung.push(tokio::spawn(async move {
            h.call(&addr, CallRequest::new("hang")).await
        }));
    }
    wait_serving(&mut served, 2).await;
    let (code, message) =
        remote_code(within(a.handle().call(&addr, CallRequest::new("health"))).await);
    assert_eq!(code, Code::Overloaded, "{message}");
    // Another peer still gets through, and takes the node's last slot...
    let h = b.handle();
    let addr2 = addr.clone();
    hung.push(tokio::spawn(async move {
        h.call(&addr2, CallRequest::new("hang")).await
    }));
    wait_serving(&mut served, 1).await;
    // ...after which the node refuses everyone, 1.0.0 callers in text.
    let text = within(c.handle().call(&addr, CallRequest::new("health")))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&text);
    assert!(
        text.starts_with("Error processing request: node overloaded"),
        "{text}"
    );
    for h in hung {
        h.abort();
    }
    server.abort();
}

#[tokio::test]
async fn status_and_headers_pass_through_hop_by_hop_headers_do_not() {
    let backend = StreamBackend::start().await;
    let demo = demo_backend().await;
    let (server, addr) = fault_node(&backend, &demo, libp2p::PeerId::random()).await;
    let client = client().await;
    let r = within(client.handle().call_full(&addr, CallRequest::new("teapot")))
        .await
        .unwrap();
    assert_eq!(r.head.version, ApiVersion::V2);
    assert_eq!(r.head.status, Some(418));
    assert_eq!(
        r.head.headers.get("x-teapot").map(String::as_str),
        Some("short and stout")
    );
    assert!(!r.head.headers.contains_key("keep-alive"));
    assert!(!r.head.headers.contains_key("proxy-agent"));
    assert_eq!(&r.body[..], b"I'm a teapot");

    let req = CallRequest::new("inspect")
        .method("POST")
        .header("x-keep", "yes")
        .header("proxy-authorization", "secret")
        .header("te", "trailers")
        .body("b");
    let r = within(client.handle().call_full(&addr, req)).await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["headers"]["x-keep"], "yes");
    assert!(v["headers"].get("proxy-authorization").is_none());
    assert!(v["headers"].get("te").is_none());
    server.abort();
}

#[tokio::test]
async fn route_headers_are_added_and_kept_from_callers() {
    let demo = demo_backend().await;
    let mut route = Route::new(format!("http://{}/inspect", demo.addr), false);
    route.policy.headers = vec![("authorization".into(), "Bearer node-secret".into())];
    let (server, addr) = serving_node([("llm".to_string(), route)].into()).await;
    let client = client().await;
    let req = CallRequest::new("llm")
        .method("POST")
        .header("authorization", "Bearer caller-guess");
    let body = within(client.handle().call(&addr, req)).await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["headers"]["authorization"], "Bearer node-secret");
    server.abort();
}

/// Waits until `n` more calls are being served (their slots are taken).
async fn wait_serving(events: &mut tokio::sync::broadcast::Receiver<peerapi::NodeEvent>, n: usize) {
    within(async {
        let mut started = 0;
        while started < n {
            if let Ok(peerapi::NodeEvent::ServeStarted { .. }) = events.recv().await {
                started += 1;
            }
        }
    })
    .await;
}

async fn wait_dropped(backend: &StreamBackend, before: usize) -> Duration {
    let start = Instant::now();
    within(backend.wait_dropped_beyond(before)).await;
    start.elapsed()
}

#[tokio::test]
async fn dropping_the_caller_stream_aborts_the_backend_request() {
    let backend = StreamBackend::start().await;
    let routes: RouteTable = [("slow".to_string(), Route::new(backend.url("/slow"), true))].into();
    let (server, addr) = serving_node(routes).await;
    for client in [client().await, client_v1().await] {
        let mut events = server.handle().subscribe();
        let mut s = within(client.handle().stream(&addr, CallRequest::new("slow")))
            .await
            .unwrap();
        within(s.next()).await.unwrap().unwrap();
        let before = backend.dropped_streams();
        drop(s);
        let took = wait_dropped(&backend, before).await;
        assert!(
            took < Duration::from_secs(1),
            "backend request lived {took:?} after the cancel"
        );
        // The serving side reports the call as cancelled by its caller.
        let outcome = next_serve_outcome(&mut events).await;
        assert!(
            matches!(outcome, peerapi::node::ServeOutcome::CallerGone { .. }),
            "{outcome:?}"
        );
    }
    server.abort();
}

#[tokio::test]
async fn round_robin_spreads_and_fails_over_when_a_backend_dies() {
    let a = StreamBackend::named("a").await;
    let b = StreamBackend::named("b").await;
    let route = Route::with_urls(vec![a.url("/count"), b.url("/count")], false);
    let (server, addr) = serving_node([("model".to_string(), route)].into()).await;
    let client = client().await;
    let h = client.handle();
    for _ in 0..100 {
        within(h.call(&addr, CallRequest::new("model")))
            .await
            .unwrap();
    }
    let (ha, hb) = (
        a.state.hits.load(Ordering::SeqCst),
        b.state.hits.load(Ordering::SeqCst),
    );
    assert_eq!(ha + hb, 100);
    assert!((45..=55).contains(&ha), "round-robin spread a={ha} b={hb}");
    b.kill();
    let mut failed = 0;
    for _ in 0..100 {
        match within(h.call(&addr, CallRequest::new("model"))).await {
            Ok(body) if body.starts_with(b"a ") => {}
            other => {
                failed += 1;
                eprintln!("unexpected {other:?}");
            }
        }
    }
    assert_eq!(failed, 0, "every call after the kill must fail over to a");
    assert_eq!(a.state.hits.load(Ordering::SeqCst), ha + 100);
    server.abort();
}

#[tokio::test]
async fn node_wide_deny_list_closes_the_connection() {
    let demo = demo_backend().await;
    let outsider = client().await;
    let member = client().await;
    let mut cfg = config();
    cfg.routes = Routes::new(demo.routes());
    cfg.access = PeerAccess {
        allow: None,
        deny: vec![outsider.handle().local_peer_id()],
    };
    let (server, addr) = start(cfg).await;
    assert!(
        within(member.handle().call(&addr, CallRequest::new("health")))
            .await
            .is_ok()
    );
    let err = within(outsider.handle().call(&addr, CallRequest::new("health")))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CallError::DialFailed { .. } | CallError::Stream { .. }),
        "{err}"
    );
    // An allow-list admits only the peers it names.
    let mut cfg = config();
    cfg.routes = Routes::new(demo.routes());
    cfg.access = PeerAccess {
        allow: Some(vec![member.handle().local_peer_id()]),
        deny: vec![],
    };
    let (server2, addr2) = start(cfg).await;
    let stranger = client().await;
    assert!(
        within(member.handle().call(&addr2, CallRequest::new("health")))
            .await
            .is_ok()
    );
    assert!(
        within(stranger.handle().call(&addr2, CallRequest::new("health")))
            .await
            .is_err()
    );
    server.abort();
    server2.abort();
}

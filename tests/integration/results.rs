//! Results that used to be wrong: a 1.0.0 stream that failed mid-way, a
//! repeated header, route listings, 1.0.0 request bytes, huge limits.

use std::process::Command;

use peerapi::node::CallRequest;
use peerapi::wire::{self, ApiRequest};
use peerapi::{Route, Routes};

use crate::common::*;
use crate::python::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peerapi_stream_exits_12_when_a_python_stream_fails_mid_way() {
    let py = python();
    let backend = StreamBackend::start().await;
    let routes = [(
        "broken".to_string(),
        Route::new(backend.url("/broken"), true),
    )]
    .into();
    let host = PyHost::serve(&py, &routes, &[]).await;
    let addr = host.addr.to_string();
    let out = within(tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(["stream", &addr, "broken"])
            .output()
            .unwrap()
    }))
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(12),
        "stdout {stdout:?} stderr {stderr:?}"
    );
    assert_eq!(stdout, "data: partial\n\n", "the error text is not body");
    assert!(stderr.contains("Error processing request"), "{stderr}");
}

#[tokio::test]
async fn repeated_response_headers_keep_every_value() {
    let backend = StreamBackend::start().await;
    let routes = [("c".to_string(), Route::new(backend.url("/cookies"), false))].into();
    let (server, addr) = serving_node(routes).await;
    let c = client().await;
    let r = within(c.handle().call_full(&addr, CallRequest::new("c")))
        .await
        .unwrap();
    assert_eq!(
        r.head.header_values("Set-Cookie"),
        vec!["a=1; Expires=Wed, 21 Oct 2026 07:28:00 GMT", "b=2; Path=/"]
    );
    server.abort();
}

#[tokio::test]
async fn route_listing_hides_routes_a_peer_may_not_call() {
    let demo = demo_backend().await;
    let allowed = client().await;
    let denied = client().await;
    let mut routes = demo.routes();
    let mut private = Route::new(format!("http://{}/health", demo.addr), false);
    private.policy.peers.deny = vec![denied.handle().local_peer_id()];
    routes.insert("private".into(), private);
    let mut cfg = config();
    cfg.routes = Routes::new(routes);
    let (server, addr) = start(cfg).await;
    let names = |list: Vec<wire::RouteInfo>| list.into_iter().map(|r| r.name).collect::<Vec<_>>();
    let seen = names(within(allowed.handle().list_routes(&addr)).await.unwrap());
    assert!(seen.contains(&"private".to_string()), "{seen:?}");
    let seen = names(within(denied.handle().list_routes(&addr)).await.unwrap());
    assert!(!seen.contains(&"private".to_string()), "{seen:?}");
    assert!(seen.contains(&"health".to_string()), "{seen:?}");
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1_0_0_request_carries_fields_1_to_5_only() {
    let py = python();
    let host = PyHost::serve(&py, &Default::default(), &[]).await;
    let c = client().await;
    let req = CallRequest::new("__request_bytes__")
        .method("POST")
        .body("hi");
    let got = within(c.handle().call(&host.addr, req)).await.unwrap();
    let expected = wire::encode_length_prefixed(&ApiRequest {
        route: "__request_bytes__".into(),
        method: "POST".into(),
        body: bytes::Bytes::from_static(b"hi"),
        ..Default::default()
    });
    assert_eq!(
        &got[..],
        &expected[..],
        "the request as the Python server read it"
    );
}

#[test]
fn a_response_limit_near_usize_max_does_not_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.json");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let demo = rt.block_on(demo_backend());
    std::fs::write(&routes, demo.routes_json()).unwrap();
    let (_node, addr) = node_process(&routes);
    for protocol in ["1", "2"] {
        let out = Command::new(BIN)
            .args(["call", &addr.to_string(), "health", "--protocol", protocol])
            .args(["--max-response-bytes", &usize::MAX.to_string()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "protocol {protocol}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

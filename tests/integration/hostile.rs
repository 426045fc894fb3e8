//! Hostile input against a running node: each row sends bad bytes on a raw
//! stream, checks what the sender gets back, and checks that a well-formed
//! call from another peer succeeds at the same time.

use std::time::{Duration, Instant};

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::Multiaddr;
use peerapi::node::CallRequest;
use peerapi::wire::{self, ApiRequest, PROTOCOL_V1};
use peerapi::{Node, Route, Routes};

use crate::common::*;

const READ_TIMEOUT: Duration = Duration::from_secs(1);

async fn hardened_node() -> (Node, Multiaddr, StreamBackend, peerapi::demo::DemoBackend) {
    let backend = StreamBackend::start().await;
    let demo = demo_backend().await;
    let mut routes = demo.routes();
    let mut small = Route::new(format!("http://{}/echo", demo.addr), false);
    small.policy.max_body_bytes = Some(10);
    routes.insert("small".into(), small);
    routes.insert("slow".into(), Route::new(backend.url("/slow"), true));
    let mut cfg = config();
    cfg.routes = Routes::new(routes);
    cfg.serve.request_read_timeout = READ_TIMEOUT;
    cfg.serve.max_request_bytes = 256 * 1024;
    let (node, addr) = start(cfg).await;
    (node, addr, backend, demo)
}

fn framed(req: &ApiRequest) -> Vec<u8> {
    wire::encode_length_prefixed(req).to_vec()
}

fn varint(v: u64) -> Vec<u8> {
    let mut b = Vec::new();
    wire::encode_varint(v, &mut b);
    b
}

/// Sends `bytes` on a fresh 1.0.0 stream, half-closes, returns what comes back.
async fn send_raw(h: &peerapi::NodeHandle, addr: &Multiaddr, bytes: Vec<u8>) -> Vec<u8> {
    let mut s = within(h.open_raw(addr, PROTOCOL_V1)).await.unwrap();
    s.write_all(&bytes).await.unwrap();
    s.close().await.unwrap();
    let mut out = Vec::new();
    within(s.read_to_end(&mut out)).await.unwrap();
    out
}

#[tokio::test]
async fn bad_input_table() {
    let (node, addr, _backend, _demo) = hardened_node().await;
    let attacker = client().await;
    let honest = client().await;
    let req = |route: &str| ApiRequest {
        route: route.into(),
        method: "GET".into(),
        ..Default::default()
    };
    let mut bad_utf8 = vec![0x0a, 0x02, 0xff, 0xfe];
    let mut bad_utf8_framed = varint(bad_utf8.len() as u64);
    bad_utf8_framed.append(&mut bad_utf8);
    let mut unknown_type = req("health");
    unknown_type.response_type = 7;
    let mut bad_method = req("health");
    bad_method.method = "GE T".into();
    let mut crlf = req("echo");
    crlf.headers
        .insert("x-evil".into(), "a\r\nInjected: 1".into());
    let mut many = req("echo");
    for i in 0..10_000 {
        many.headers.insert(format!("x-h{i}"), "v".into());
    }
    let mut big_body = req("small");
    big_body.method = "POST".into();
    big_body.body = vec![0u8; 100].into();
    let mut short = varint(100);
    short.extend_from_slice(&[1u8; 10]);

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty stream", vec![], ""),
        (
            "truncated varint",
            vec![0x80],
            "Error processing request: stream closed inside a message",
        ),
        (
            "varint over 10 bytes",
            vec![0xff; 11],
            "Error processing request: length prefix is not a valid unsigned varint",
        ),
        (
            "length prefix over the cap",
            varint(1 << 20),
            "Error processing request: message of 1048576 bytes exceeds the limit of 262144 bytes",
        ),
        (
            "prefix larger than what follows",
            short,
            "Error processing request: stream closed inside a message (read 10 of 100 bytes)",
        ),
        (
            "invalid protobuf",
            [varint(3), vec![0xff, 0xff, 0xff]].concat(),
            "Error processing request: invalid protobuf message",
        ),
        (
            "route with invalid UTF-8",
            bad_utf8_framed,
            "Error processing request: invalid protobuf message",
        ),
        (
            "unknown response type (read as unary)",
            framed(&unknown_type),
            "{\"status\":\"ok\"",
        ),
        (
            "invalid HTTP method",
            framed(&bad_method),
            "Error processing request: invalid HTTP method",
        ),
        (
            "header value with CR/LF",
            framed(&crlf),
            "Error processing request: invalid request header",
        ),
        (
            "10,000 headers",
            framed(&many),
            "Error processing request: a request of 10000 headers exceeds the limit of 128",
        ),
        (
            "body over the route's cap",
            framed(&big_body),
            "Error processing request: request body of 100 bytes exceeds",
        ),
    ];
    let (ha, hh) = (attacker.handle(), honest.handle());
    for (name, bytes, expect) in cases {
        let (got, good) = futures::join!(
            send_raw(&ha, &addr, bytes),
            within(hh.call(&addr, CallRequest::new("health")))
        );
        let got = String::from_utf8_lossy(&got);
        if expect.is_empty() {
            assert!(got.is_empty(), "{name}: {got:?}");
        } else {
            assert!(got.starts_with(expect), "{name}: got {got:?}");
        }
        assert!(
            good.is_ok_and(|b| b.starts_with(b"{")),
            "{name}: the concurrent good call failed"
        );
    }
    node.abort();
}

#[tokio::test]
async fn slow_loris_is_cut_off_by_the_read_deadline() {
    let (node, addr, _backend, _demo) = hardened_node().await;
    let attacker = client().await;
    let honest = client().await;
    let mut s = within(attacker.handle().open_raw(&addr, PROTOCOL_V1))
        .await
        .unwrap();
    let started = Instant::now();
    let drip = async {
        // One byte every 300 ms of a 20-byte message: never done in time.
        s.write_all(&varint(20)).await.unwrap();
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if s.write_all(b"x").await.is_err() {
                break;
            }
        }
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        out
    };
    let hh = honest.handle();
    let (got, good) = futures::join!(
        within(drip),
        within(hh.call(&addr, CallRequest::new("health")))
    );
    let got = String::from_utf8_lossy(&got);
    assert!(
        got.starts_with("Error processing request: request not received within 1s"),
        "{got:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "cut off after {:?}",
        started.elapsed()
    );
    assert!(good.is_ok());
    node.abort();
}

#[tokio::test]
async fn a_thousand_silent_streams_are_all_answered_and_others_still_served() {
    let (node, addr, _backend, _demo) = hardened_node().await;
    let attacker = client().await;
    let honest = client().await;
    // Every stream is open before the honest call.
    let mut tasks = crate::silent::silent_streams(&attacker, &addr, 1000).await;
    let good = within(honest.handle().call(&addr, CallRequest::new("health"))).await;
    assert!(
        good.is_ok_and(|b| b.starts_with(b"{")),
        "another peer's call must succeed"
    );
    let (mut overloaded, mut timed_out, mut other) = (0, 0, Vec::new());
    within(async {
        while let Some(r) = tasks.join_next().await {
            match r.unwrap().map(|b| String::from_utf8_lossy(&b).into_owned()) {
                Ok(t) if t.contains("overloaded") => overloaded += 1,
                Ok(t) if t.contains("request not received") => timed_out += 1,
                other_result => other.push(format!("{other_result:?}")),
            }
        }
    })
    .await;
    assert!(
        other.is_empty(),
        "{} streams got no clear answer, e.g. {:?}",
        other.len(),
        other.first()
    );
    // The peer's reading budget holds its newest streams; each new one
    // beyond it evicts the oldest (overloaded), the rest time out (a stream
    // may time out before it is evicted, so only the sum is exact).
    let budget = peerapi::node::DEFAULT_MAX_READING_PER_PEER;
    assert_eq!(timed_out + overloaded, 1000);
    assert!(
        timed_out >= budget && overloaded >= 900,
        "timed out {timed_out}, overloaded {overloaded}"
    );
    node.abort();
}

#[tokio::test]
async fn a_peer_that_resets_mid_response_does_not_hurt_others() {
    let (node, addr, _backend, _demo) = hardened_node().await;
    let attacker = client_v1().await;
    let honest = client().await;
    let mut events = node.handle().subscribe();
    let mut s = within(attacker.handle().stream(&addr, CallRequest::new("slow")))
        .await
        .unwrap();
    within(s.next()).await.unwrap().unwrap();
    drop(s);
    let outcome = next_serve_outcome(&mut events).await;
    assert!(
        matches!(outcome, peerapi::node::ServeOutcome::CallerGone { .. }),
        "{outcome:?}"
    );
    assert!(
        within(honest.handle().call(&addr, CallRequest::new("health")))
            .await
            .is_ok()
    );
    node.abort();
}

//! Backend URLs never reach a caller: every error class of the forwarder, on
//! both protocol versions, unary and stream, names the class and a safe
//! reason and nothing of the URL (which carries credentials).

use std::time::Duration;

use futures::StreamExt;
use peerapi::node::CallRequest;
use peerapi::{Node, Route, RouteTable, Routes};

use crate::common::*;

const SECRET: &str = "SECRET123";

/// What a caller receives, as text: the body (1.0.0 errors are in-band) or
/// the error it got, the streamed chunks included.
async fn unary_text(client: &Node, addr: &libp2p::Multiaddr, route: &str) -> String {
    match within(client.handle().call(addr, CallRequest::new(route))).await {
        Ok(body) => String::from_utf8_lossy(&body).into_owned(),
        Err(e) => format!("{e} {e:?}"),
    }
}

async fn stream_text(client: &Node, addr: &libp2p::Multiaddr, route: &str) -> String {
    let mut out = String::new();
    match within(client.handle().stream(addr, CallRequest::new(route))).await {
        Ok(mut s) => {
            while let Some(item) = within(s.next()).await {
                match item {
                    Ok(chunk) => out.push_str(&String::from_utf8_lossy(&chunk)),
                    Err(e) => out.push_str(&format!("{e} {e:?}")),
                }
            }
        }
        Err(e) => out.push_str(&format!("{e} {e:?}")),
    }
    out
}

fn assert_no_url(seen: &str, forbidden: &[String], what: &str) {
    for part in forbidden {
        assert!(
            !seen.contains(part.as_str()),
            "{what}: the caller saw {part:?} of the backend URL in {seen:?}"
        );
    }
}

#[tokio::test]
async fn no_part_of_a_backend_url_reaches_a_caller() {
    let backend = StreamBackend::start().await;
    let backend_port = backend
        .url("/")
        .split(':')
        .nth(2)
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    let dead = dead_port();
    let secret = |path: &str| {
        let join = if path.contains('?') { '&' } else { '?' };
        format!("{}{join}token={SECRET}", backend.url(path))
    };
    let quick = |url: String, stream: bool| {
        let mut r = Route::new(url, stream);
        r.policy.timeout = Some(Duration::from_millis(300));
        r
    };
    // (route, stream, what the caller must be told)
    let cases: Vec<(&str, Route, &str)> = vec![
        (
            "refused",
            quick(
                format!("http://127.0.0.1:{dead}/secret-path?token={SECRET}"),
                true,
            ),
            "backend unavailable: connection refused",
        ),
        ("hangs", quick(secret("/hang"), true), "backend timed out"),
        ("breaks", quick(secret("/broken"), true), "backend failed"),
        (
            "bad-url",
            quick(
                format!("http://secret-host:99999/secret-path?token={SECRET}"),
                true,
            ),
            "backend misconfigured",
        ),
        (
            "huge",
            quick(secret("/blob?mib=2"), true),
            "exceeds the limit",
        ),
    ];
    let routes: RouteTable = cases
        .iter()
        .map(|(name, r, _)| (name.to_string(), r.clone()))
        .collect();
    let mut cfg = config();
    cfg.routes = Routes::new(routes);
    cfg.upstream.max_unary_response_bytes = 1024 * 1024;
    let (server, addr) = start(cfg).await;
    let v2 = client().await;
    let v1 = client_v1().await;
    let forbidden: Vec<String> = [
        SECRET,
        "secret-path",
        "secret-host",
        "token",
        "http:",
        "127.0.0.1",
        "/hang",
        "/broken",
        "/blob",
        "error sending request",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!(":{dead}"), format!(":{backend_port}")])
    .collect();

    for (name, _, expected) in &cases {
        for (version, client) in [("2.0.0", &v2), ("1.0.0", &v1)] {
            let unary = unary_text(client, &addr, name).await;
            let what = format!("{name} unary over {version}");
            assert!(
                unary.contains(expected),
                "{what}: expected {expected:?} in {unary:?}"
            );
            assert_no_url(&unary, &forbidden, &what);
            // A huge body streams fine (no unary cap): only the error routes.
            if *name != "huge" {
                let streamed = stream_text(client, &addr, name).await;
                let what = format!("{name} stream over {version}");
                assert!(
                    streamed.contains(expected),
                    "{what}: expected {expected:?} in {streamed:?}"
                );
                assert_no_url(&streamed, &forbidden, &what);
            }
        }
    }
    server.abort();
}

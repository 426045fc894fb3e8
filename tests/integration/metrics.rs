//! `--metrics-listen`: a real `peerapi node` process serves Prometheus text,
//! scraped with a real HTTP client after real calls, and the counts are
//! those of the calls made.

use std::io::BufRead;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use peerapi::node::metrics::NodeMetrics;
use peerapi::node::CallRequest;
use peerapi::{Route, RouteTable};

use crate::common::*;

/// Starts `peerapi node` with metrics on a free loopback port; its API
/// address and its metrics URL, as it prints them.
fn node_with_metrics(routes: &std::path::Path) -> (Proc, libp2p::Multiaddr, String) {
    let mut child = std::process::Command::new(BIN)
        .args([
            "node",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--routes",
        ])
        .arg(routes)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("peerapi node starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let proc = Proc(child);
    let (mut addr, mut url) = (None, None);
    // The node prints its addresses, then the metrics URL, then nothing
    // more; a node that dies ends the lines.
    for line in std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
    {
        if let Some(a) = line.strip_prefix("listening on ") {
            addr.get_or_insert(a.parse().expect("a multiaddr"));
        }
        if let Some(u) = line.strip_prefix("metrics on ") {
            url = Some(u.to_string());
            break;
        }
    }
    (
        proc,
        addr.expect("the node printed its address"),
        url.expect("the node printed its metrics URL"),
    )
}

async fn scrape(url: &str) -> (String, String) {
    let resp = within(reqwest::get(url))
        .await
        .expect("the endpoint answers");
    assert!(resp.status().is_success());
    let kind = resp.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_string();
    (kind, within(resp.text()).await.unwrap())
}

/// The value of the sample line that starts with `series` (name and labels).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_endpoint_counts_real_calls_by_route_outcome_and_status() {
    let backend = StreamBackend::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("routes.json");
    let mut routes = RouteTable::new();
    routes.insert(
        "events".into(),
        Route::new(backend.url("/chunks?n=4"), true),
    );
    routes.insert("fail".into(), Route::new(backend.url("/fail500"), false));
    write_routes_file(&file, &routes);
    let (_proc, addr, url) = node_with_metrics(&file);

    // The caller keeps metrics too: what it made.
    let made = Arc::new(NodeMetrics::new());
    let mut cfg = config();
    cfg.listen = vec![];
    cfg.metrics = Some(made.clone());
    let caller = within(peerapi::Node::start(cfg)).await.unwrap();
    let h = caller.handle();
    for _ in 0..3 {
        let (_, mut chunks) = within(h.stream_full(&addr, CallRequest::new("events")))
            .await
            .unwrap();
        while let Some(c) = within(chunks.next()).await {
            c.unwrap();
        }
    }
    for _ in 0..2 {
        let r = within(h.call_full(&addr, CallRequest::new("fail")))
            .await
            .unwrap();
        assert_eq!(r.head.status, Some(500));
    }
    let peer_route = "../../etc/passwd";
    assert!(within(h.call(&addr, CallRequest::new(peer_route)))
        .await
        .is_err());

    let (kind, text) = scrape(&url).await;
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    let served = |labels: &str| value(&text, &format!("peerapi_calls_served_total{{{labels}}}"));
    assert_eq!(
        served(r#"route="events",protocol="2.0.0",outcome="ok",status="200""#),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        served(r#"route="fail",protocol="2.0.0",outcome="ok",status="500""#),
        Some(2.0)
    );
    assert_eq!(
        served(r#"route="unknown",protocol="2.0.0",outcome="route_not_found",status="""#),
        Some(1.0)
    );
    assert!(
        !text.contains("passwd"),
        "a route name a peer sent is no label"
    );
    assert_eq!(
        value(
            &text,
            r#"peerapi_calls_refused_total{reason="route_not_found"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            r#"peerapi_call_served_duration_seconds_count{route="events",protocol="2.0.0"}"#
        ),
        Some(3.0)
    );
    assert_eq!(
        value(
            &text,
            r#"peerapi_backend_time_to_first_byte_seconds_count{route="fail"}"#
        ),
        Some(2.0)
    );
    assert_eq!(value(&text, "peerapi_calls_serving"), Some(0.0));
    assert_eq!(value(&text, "peerapi_connected_peers"), Some(1.0));
    // What `bench --subnet` reads to tell how much of a subnet a node knows
    // (their values depend on when Kademlia hears of the caller).
    for gauge in ["peerapi_routing_table_peers", "peerapi_discovered_peers"] {
        assert!(
            value(&text, gauge).is_some_and(|v| v <= 1.0),
            "{gauge}: {text}"
        );
    }
    let body = "data: 0\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\n".len() as f64;
    assert_eq!(
        value(
            &text,
            r#"peerapi_served_response_bytes_total{route="events"}"#
        ),
        Some(3.0 * body)
    );
    assert!(
        text.lines().any(|l| l.starts_with("libp2p_swarm_")),
        "libp2p's own swarm metrics: {text}"
    );

    // The caller's side: what it made, by outcome class.
    let mine = made.encode();
    assert_eq!(
        made_count_in(
            &mine,
            r#"route="events",protocol="2.0.0",outcome="ok",status="200""#
        ),
        Some(3.0),
        "{mine}"
    );
    assert_eq!(
        made_count_in(
            &mine,
            r#"route="fail",protocol="2.0.0",outcome="ok",status="500""#
        ),
        Some(2.0)
    );
    assert_eq!(
        made_count_in(
            &mine,
            r#"route="../../etc/passwd",protocol="",outcome="route_not_found",status="""#
        ),
        Some(1.0),
        "our own route names are ours to label"
    );
    assert_eq!(value(&mine, "peerapi_calls_in_flight"), Some(0.0));

    // A dropped stream is counted as cancelled, not left in flight.
    let (_, chunks) = within(h.stream_full(&addr, CallRequest::new("events")))
        .await
        .unwrap();
    drop(chunks);
    let mine = made.encode();
    assert_eq!(
        made_count_in(
            &mine,
            r#"route="events",protocol="2.0.0",outcome="cancelled",status="200""#
        ),
        Some(1.0),
        "{mine}"
    );
    assert_eq!(value(&mine, "peerapi_calls_in_flight"), Some(0.0));

    // Reloads, good and rejected, as the file changes.
    routes.insert("more".into(), Route::new(backend.url("/chunks?n=1"), true));
    write_routes_file(&file, &routes);
    let reloads = |result: &str| format!("peerapi_route_reloads_total{{result=\"{result}\"}}");
    scrape_until(&url, &reloads("ok"), 1.0).await;
    std::fs::write(&file, "{ not json").unwrap();
    scrape_until(&url, &reloads("rejected"), 1.0).await;
}

fn made_count_in(text: &str, labels: &str) -> Option<f64> {
    value(text, &format!("peerapi_calls_made_total{{{labels}}}"))
}

/// Scrapes until `series` reaches `want` (the node reloads on its own
/// time); bounded by `within`.
async fn scrape_until(url: &str, series: &str, want: f64) {
    within(async {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        loop {
            tick.tick().await;
            if value(&scrape(url).await.1, series) == Some(want) {
                return;
            }
        }
    })
    .await
}

//! Fan-out and load runs against real serving nodes on loopback: the slow
//! peer and the one answering differently are shown as such; a load run
//! reports every request once, and its percentiles are those of its samples.

use std::time::Duration;

use libp2p::Multiaddr;
use peerapi::demo::{DemoBackend, DemoPace};
use peerapi::load::stats::nearest_rank;
use peerapi::{Route, RouteTable};
use serde_json::Value;

use crate::common::*;

const SLOW: Duration = Duration::from_millis(300);

/// `/fast` and `/slow` (after `SLOW`) answer "answer"; `/other` answers "other".
async fn answers_backend() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    use axum::routing::get;
    let app = axum::Router::new()
        .route("/fast", get(|| async { "answer" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(SLOW).await;
                "answer"
            }),
        )
        .route("/other", get(|| async { "other" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, task)
}

async fn node_for(backend: std::net::SocketAddr, path: &str) -> (peerapi::Node, Multiaddr) {
    let mut routes = RouteTable::new();
    routes.insert(
        "ask".into(),
        Route::new(format!("http://{backend}{path}"), false),
    );
    serving_node(routes).await
}

/// The demo backend (tokens 2 ms apart after `first_token`) plus a route
/// `fail` whose backend answers 500; the backends live as long as they are held.
async fn demo_with_a_failing_route(
    first_token: Duration,
) -> (DemoBackend, StreamBackend, RouteTable) {
    let pace = DemoPace {
        first_token,
        per_token: Duration::from_millis(2),
    };
    let demo = DemoBackend::start("127.0.0.1:0".parse().unwrap(), pace)
        .await
        .unwrap();
    let failing = StreamBackend::start().await;
    let mut routes = demo.routes();
    routes.insert("fail".into(), Route::new(failing.url("/fail500"), false));
    (demo, failing, routes)
}

async fn cli(args: &[&str]) -> (std::process::ExitStatus, String, String) {
    let out = within(
        tokio::process::Command::new(env!("CARGO_BIN_EXE_peerapi"))
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_names_the_slow_peer_and_the_one_that_answers_differently() {
    let (backend, _task) = answers_backend().await;
    let (_a, fast) = node_for(backend, "/fast").await;
    let (_b, slow) = node_for(backend, "/slow").await;
    let (_c, other) = node_for(backend, "/other").await;
    let peers = format!("{fast},{slow},{other}");
    let (status, stdout, stderr) = cli(&["call", "--peers", &peers, "ask", "--json"]).await;
    assert!(status.success(), "{stderr}");
    let rows: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3, "{stdout}");
    let by = |addr: &Multiaddr| {
        rows.iter()
            .find(|r| r["peer"] == addr.to_string())
            .unwrap_or_else(|| panic!("{addr} in {stdout}"))
            .clone()
    };
    let (f, s, o) = (by(&fast), by(&slow), by(&other));
    assert_eq!(rows[0]["peer"], slow.to_string(), "slowest first: {stdout}");
    assert!(s["e2e"].as_f64().unwrap() >= SLOW.as_secs_f64());
    assert!(s["e2e"].as_f64().unwrap() > f["e2e"].as_f64().unwrap());
    assert_eq!(
        (f["same_as_majority"].clone(), s["same_as_majority"].clone()),
        (Value::Bool(true), Value::Bool(true))
    );
    assert_eq!(o["same_as_majority"], false);
    assert!(rows
        .iter()
        .all(|r| r["error"].is_null() && r["status"] == 200));

    // The table says the same to a person.
    let (status, table, _) = cli(&["call", "--peers", &peers, "ask"]).await;
    assert!(status.success());
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("PEER"), "{table}");
    assert_eq!(
        lines.iter().filter(|l| l.ends_with("DIFFERS")).count(),
        1,
        "{table}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.ends_with("same")).count(),
        2,
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_run_reports_every_request_once_with_the_percentiles_of_its_samples() {
    let (_demo, _failing, routes) = demo_with_a_failing_route(Duration::from_millis(5)).await;
    let (_node, addr) = serving_node(routes).await;
    let addr = addr.to_string();
    let (status, stdout, stderr) = cli(&[
        "load",
        &addr,
        "inference",
        "--stream",
        "-n",
        "40",
        "-c",
        "4",
        "--json",
        "-d",
        r#"{"max_tokens": 8}"#,
        "--goodput",
        "ttft:10s",
    ])
    .await;
    assert!(status.success(), "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let (summary, samples) = (&report["summary"], report["samples"].as_array().unwrap());
    assert_eq!(summary["requests"], 40);
    assert_eq!(summary["ok"], 40, "{summary}");
    assert_eq!(samples.len(), 40);
    assert_eq!(
        summary["output_tokens"],
        40 * 8,
        "the backend's own usage counts"
    );
    assert_eq!(summary["tokens_estimated"], false);
    assert_eq!(
        summary["itl"]["count"],
        40 * 7,
        "seven gaps between eight tokens"
    );
    assert_eq!(summary["goodput"]["met"], 40);
    for metric in ["e2e", "ttft", "ttfb"] {
        let mut values: Vec<Duration> = samples
            .iter()
            .map(|s| Duration::from_secs_f64(s[metric].as_f64().unwrap()))
            .collect();
        values.sort();
        for (p, key) in [(50.0, "p50"), (90.0, "p90"), (99.0, "p99"), (100.0, "max")] {
            let want = nearest_rank(&values, p).as_secs_f64();
            let got = summary[metric][key].as_f64().unwrap();
            assert!((got - want).abs() < 1e-6, "{metric} {key}: {got} vs {want}");
        }
    }

    // Failures are counted by class, one outcome per request.
    let (status, stdout, _) = cli(&["load", &addr, "fail", "-n", "12", "-c", "3", "--json"]).await;
    assert!(!status.success());
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["summary"]["requests"], 12);
    assert_eq!(report["summary"]["failures"]["http_5xx"], 12, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_vs_direct_measures_both_sides_of_the_same_backend_alike() {
    use peerapi::load::{hop_vs_direct, HopVsDirectSpec};
    use peerapi::node::CallRequest;
    use peerapi::upstream::Upstream;

    let first_token = Duration::from_millis(20);
    let (_demo, _failing, routes) = demo_with_a_failing_route(first_token).await;
    let (_server, addr) = serving_node(routes.clone()).await;
    let caller = client().await;
    let upstream = Upstream::new(Default::default()).unwrap();
    let body = r#"{"max_tokens": 6}"#;
    let spec = HopVsDirectSpec {
        addr: addr.clone(),
        route: routes["inference"].clone(),
        request: CallRequest::new("inference").method("POST").body(body),
        stream: true,
        rounds: 3,
    };
    let mut heard = Vec::new();
    let r = within(hop_vs_direct(&caller.handle(), &upstream, &spec, |n| {
        heard.push(n)
    }))
    .await;
    assert_eq!(heard, [1, 2, 3], "a report after each round");
    assert_eq!((r.hop.len(), r.direct.len()), (3, 3));
    for s in r.hop.iter().chain(&r.direct) {
        assert!(s.ok(), "{:?}: {:?}", s.error, s.detail);
        assert_eq!(s.tokens, 6, "the backend's own usage, both sides");
        let ttft = s.ttft.expect("a first token");
        assert!(ttft >= first_token, "{ttft:?} before the backend's pace");
    }
    assert!(r.direct.iter().all(|s| s.peer == "direct"));
    assert!(r.hop.iter().all(|s| s.peer == addr.to_string()));
    assert_eq!(r.hop[0].bytes, r.direct[0].bytes);
    assert_eq!(r.same_body(), Some(true), "the same backend answers alike");

    // A failing backend fails both sides, by the same class.
    let spec = HopVsDirectSpec {
        route: routes["fail"].clone(),
        request: CallRequest::new("fail"),
        stream: false,
        rounds: 1,
        ..spec
    };
    let r = within(hop_vs_direct(&caller.handle(), &upstream, &spec, |_| {})).await;
    assert_eq!(r.direct[0].error.as_deref(), Some("http_5xx"));
    assert_eq!(r.hop[0].error.as_deref(), Some("http_5xx"));
    assert_eq!(r.same_body(), None, "no successful body to compare");
}

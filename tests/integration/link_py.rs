//! Bodies between our node and py-libp2p peers across an impaired link,
//! beside a plain TCP stream through the same kind of link. The receiver's
//! yamux window caps one stream at window / RTT: ours grows; py-libp2p
//! 0.6.0 (what subnets pin) keeps a fixed 256 KiB, and 0.8.1 starts at
//! 256 KiB and grows to 16 MiB. The figures print; the tests assert the
//! body arrived whole and the Python side is healthy.
//! `PEERAPI_PY_LINK=100ms,100mbit PEERAPI_PY_LINK_MIB=64` gives the issue's
//! figures (CI runs the short default).

use std::time::{Duration, Instant};

use futures::StreamExt;
use peerapi::node::CallRequest;
use peerapi::routes::{Route, RouteTable};
use peerapi::testkit::link::{Impairment, LinkProxy};

use crate::common::*;

/// `bytes` over plain TCP through a link like the hop's: its time.
async fn plain_time(link: Impairment, bytes: u64) -> Duration {
    use peerapi::testkit::plain_tcp;
    let proxy = LinkProxy::start(plain_tcp::server().await.unwrap(), link)
        .await
        .unwrap();
    plain_tcp::body_time(proxy.addr(), bytes).await.unwrap()
}

/// The link and body size of these tests (see the module's comment).
fn link_and_mib() -> (Impairment, u64) {
    let link = std::env::var("PEERAPI_PY_LINK").unwrap_or_else(|_| "20ms,200mbit".into());
    let mib = std::env::var("PEERAPI_PY_LINK_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    (Impairment::parse(&link).unwrap(), mib)
}

fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 * 8.0 / d.as_secs_f64() / 1e6
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_from_a_py_libp2p_host_across_a_link_against_plain_tcp() {
    use crate::python::{python_for, PyHost, PyLibp2p};
    let (link, mib) = link_and_mib();
    let bytes = mib << 20;
    let py = python_for(PyLibp2p::V081);
    let backend = StreamBackend::start().await;
    let routes: RouteTable = [(
        "blob".to_string(),
        Route::new(backend.url(&format!("/blob?mib={mib}")), true),
    )]
    .into_iter()
    .collect();
    let mut host = PyHost::serve(&py, &routes, &[]).await;
    let (_proxy, target) = LinkProxy::in_front_of(&host.addr, link).await.unwrap();
    let plain = plain_time(link, bytes).await;

    let caller = client().await;
    let h = caller.handle();
    within(h.call(&target, CallRequest::new("health")))
        .await
        .ok(); // dials (the route need not exist)
    let t = Instant::now();
    let mut s = within(h.stream(&target, CallRequest::new("blob")))
        .await
        .unwrap();
    let mut got = 0u64;
    let mut last = None;
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(120), s.next())
        .await
        .expect("the body keeps coming")
    {
        match chunk {
            Ok(c) => got += c.len() as u64,
            Err(e) => {
                last = Some(e.to_string());
                break;
            }
        }
    }
    let hop = t.elapsed();
    assert_eq!(got, bytes, "the whole body ({last:?})");
    eprintln!(
        "from a py-libp2p 0.8.1 host, {mib} MiB across {:?} RTT: {:.1} Mbit/s through the hop, {:.1} Mbit/s plain TCP ({:.2} of it; our window is the receiver's)",
        link.rtt,
        mbps(bytes, hop),
        mbps(bytes, plain),
        plain.as_secs_f64() / hop.as_secs_f64(),
    );
    host.assert_healthy("after the body");
}

/// The other way: a py-libp2p caller (0.8.1, then 0.6.0) receives the
/// body from our node, so its own receive window is the cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_to_py_libp2p_callers_across_a_link_is_held_to_their_window() {
    use crate::python::{python_for, PyHost, PyLibp2p};
    let (link, mib) = link_and_mib();
    let bytes = mib << 20;
    let backend = StreamBackend::start().await;
    let routes: RouteTable = [(
        "blob".to_string(),
        Route::new(backend.url(&format!("/blob?mib={mib}")), false),
    )]
    .into_iter()
    .collect();
    let (_server, server_addr) = serving_node(routes).await;
    let (_proxy, target) = LinkProxy::in_front_of(&server_addr, link).await.unwrap();
    let plain = plain_time(link, bytes).await;
    let window_cap = mbps(256 * 1024, link.rtt);
    for version in [PyLibp2p::V081, PyLibp2p::V060] {
        let py = python_for(version);
        let mut host = PyHost::serve(&py, &RouteTable::new(), &[]).await;
        // The first call dials; the second is timed.
        host.call(&target, "nothing").await.unwrap();
        let (got, secs) = host.timed_call(&target, "blob").await.unwrap();
        assert_eq!(got, bytes, "the whole body reached py-libp2p {version:?}");
        let hop = Duration::from_secs_f64(secs);
        eprintln!(
            "to a py-libp2p {version:?} caller, {mib} MiB across {:?} RTT: {:.1} Mbit/s through the hop, {:.1} Mbit/s plain TCP ({:.2} of it); a fixed 256 KiB window allows {window_cap:.1} Mbit/s",
            link.rtt,
            mbps(bytes, hop),
            mbps(bytes, plain),
            plain.as_secs_f64() / hop.as_secs_f64(),
        );
        host.assert_healthy("after the body");
    }
}

//! Calls across an impaired link (`testkit::link`, a proxy on loopback):
//! a partition in the middle of a streamed call ends it within the ping
//! bound instead of leaving it hanging, the caller dials the lost peer
//! again by itself once the link heals, a model that thinks for 90 s
//! before its first token is not cut off, and a reset mid-body is never a
//! success.

use std::time::{Duration, Instant};

use futures::StreamExt;
use peerapi::demo::{DemoBackend, DemoPace};
use peerapi::node::{CallRequest, NodeEvent};
use peerapi::testkit::link::{Impairment, LinkProxy};
use peerapi::RouteTable;

use crate::common::*;

async fn paced_backend(first_token: Duration, per_token: Duration) -> DemoBackend {
    let pace = DemoPace {
        first_token,
        per_token,
    };
    DemoBackend::start("127.0.0.1:0".parse().unwrap(), pace)
        .await
        .unwrap()
}

fn prompt() -> CallRequest {
    CallRequest::new("inference")
        .method("POST")
        .body(&b"{\"prompt\":\"tell me about subnets\"}"[..])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_mid_stream_ends_the_call_within_the_ping_bound_and_the_link_comes_back() {
    // Tokens every 100 ms: the stream is still going when the link breaks.
    let backend = paced_backend(Duration::ZERO, Duration::from_millis(100)).await;
    let (_server, server_addr) = serving_node(backend.routes()).await;
    let link = Impairment {
        rtt: Duration::from_millis(20),
        ..Default::default()
    };
    let (proxy, target) = LinkProxy::in_front_of(&server_addr, link).await.unwrap();
    let server = peer_id_of(&server_addr);

    let mut cfg = config();
    cfg.ping_interval = Duration::from_millis(500);
    cfg.ping_timeout = Duration::from_secs(1);
    cfg.reconnect_max = Duration::from_secs(1);
    cfg.bootstrap = vec![target.clone()];
    let (caller, _) = start(cfg).await;
    let h = caller.handle();
    let mut events = h.subscribe();

    let mut stream = within(h.stream(&target, prompt())).await.unwrap();
    let first = within(stream.next()).await.expect("a first chunk");
    assert!(first.is_ok(), "{first:?}");

    proxy.partition();
    let cut = Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match stream.next().await {
                Some(Ok(_)) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("the call ends, it does not hang");
    let took = cut.elapsed();
    // Bytes already in flight may arrive; then ping (0.5 s + 1 s) ends it.
    let error = match ended {
        Some(Err(e)) => e,
        other => panic!("a call cut by a partition is not a success: {other:?}"),
    };
    assert!(
        error.to_string().contains("went silent") && error.exit_code() == 6,
        "{error} (exit {}, {error:?}, after {took:?})",
        error.exit_code()
    );
    assert!(took < Duration::from_secs(6), "ended after {took:?}");
    let silent = tokio::time::timeout(
        Duration::from_secs(10),
        wait_for(
            &mut events,
            server,
            |ev, p| matches!(ev, NodeEvent::LinkSilent { peer, .. } if peer == p),
        ),
    )
    .await
    .expect("the node says the link went silent");
    let NodeEvent::LinkSilent { after: silent, .. } = silent else {
        unreachable!("wait_for returns what it waited for")
    };
    assert_eq!(silent, Duration::from_secs(1));
    eprintln!("partition: the call ended {took:?} after the partition began");

    // Healed: the caller dials the server again by itself (it was its
    // bootnode and a peer lost to silence), and calls work again.
    proxy.heal();
    let healed = Instant::now();
    let back = tokio::time::timeout(
        Duration::from_secs(30),
        wait_for(
            &mut events,
            server,
            |ev, p| matches!(ev, NodeEvent::PeerConnected { peer, .. } if peer == p),
        ),
    )
    .await;
    assert!(back.is_ok(), "not connected again within 30 s of the heal");
    eprintln!("healed: connected again after {:?}", healed.elapsed());
    let body = within(h.call(&target, CallRequest::new("health")))
        .await
        .expect("calls work again");
    assert!(!body.is_empty());
    assert!(proxy.connections() >= 2, "a new connection was made");
}

/// 2.0.0 ends with an end frame, so a reset mid-body is an error. 1.0.0
/// has no end marker, and yamux tells a stream whose connection was reset
/// that it ended: the most a 1.0.0 caller can see is a short body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_mid_body_is_an_error_on_2_0_0_and_a_short_body_on_1_0_0() {
    let backend = paced_backend(Duration::ZERO, Duration::from_millis(50)).await;
    let (_server, server_addr) = serving_node(backend.routes()).await;
    let whole = {
        let caller = client().await;
        let full = within(caller.handle().call(&server_addr, prompt())).await;
        full.expect("the whole answer without a proxy").len()
    };
    for v1 in [false, true] {
        let (proxy, target) = LinkProxy::in_front_of(&server_addr, Impairment::default())
            .await
            .unwrap();
        let caller = if v1 {
            client_v1().await
        } else {
            client().await
        };
        let h = caller.handle();
        let mut stream = within(h.stream(&target, prompt())).await.unwrap();
        let mut got = match within(stream.next()).await {
            Some(Ok(chunk)) => chunk.len(),
            other => panic!("a first chunk: {other:?}"),
        };
        proxy.reset();
        let mut error = None;
        while let Some(item) = within(stream.next()).await {
            match item {
                Ok(chunk) => got += chunk.len(),
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        assert!(
            got < whole,
            "v1={v1}: the reset cut the body ({got} of {whole} bytes)"
        );
        if !v1 {
            let e = error
                .as_ref()
                .expect("2.0.0: a reset mid-body is never a clean end");
            assert!(e.to_string().contains("truncated"), "{e}");
        }
        eprintln!("reset mid-body (v1={v1}): {got} of {whole} bytes, {error:?}");
    }
}

/// A model that thinks for 90 s before its first token, with every
/// default: neither the connection's idle timeout, nor the stream's idle
/// limits, nor ping (the link is alive) cut it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_silent_for_90_s_before_its_first_token_survives() {
    let backend = paced_backend(Duration::from_secs(90), Duration::ZERO).await;
    let (_server, server_addr) = serving_node(backend.routes()).await;
    let link = Impairment {
        rtt: Duration::from_millis(20),
        ..Default::default()
    };
    let (proxy, target) = LinkProxy::in_front_of(&server_addr, link).await.unwrap();
    let caller = client().await;
    let h = caller.handle();
    let started = Instant::now();
    let mut stream = within(h.stream(&target, prompt())).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(150), stream.next())
        .await
        .expect("the first token comes");
    let waited = started.elapsed();
    assert!(matches!(first, Some(Ok(_))), "{first:?}");
    assert!(waited >= Duration::from_secs(89), "{waited:?}");
    let mut rest = 0;
    while let Some(item) = tokio::time::timeout(Duration::from_secs(30), stream.next())
        .await
        .expect("the rest follows")
    {
        item.expect("no error after the silence");
        rest += 1;
    }
    assert!(rest > 0);
    assert_eq!(proxy.connections(), 1, "the same connection all along");
}

/// `peerapi stream` over a partition: it exits 6 (a timeout: here its
/// stream idle limit, a flag) instead of hanging, with what it printed
/// before the partition kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peerapi_stream_across_a_partition_exits_6_within_its_idle_limit() {
    use std::io::Read;
    let backend = paced_backend(Duration::ZERO, Duration::from_millis(100)).await;
    let (_server, server_addr) = serving_node(backend.routes()).await;
    let (proxy, target) = LinkProxy::in_front_of(&server_addr, Impairment::default())
        .await
        .unwrap();
    let target = target.to_string();
    let mut child = std::process::Command::new(BIN)
        .args(["stream", &target, "inference", "-d", "{\"prompt\":\"hi\"}"])
        .args(["--idle-timeout", "2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 1];
    let read = tokio::task::spawn_blocking(move || stdout.read_exact(&mut first).map(|_| stdout));
    let mut stdout = within(read)
        .await
        .unwrap()
        .expect("tokens before the partition");
    proxy.partition();
    let cut = Instant::now();
    let status = within(tokio::task::spawn_blocking(move || {
        child.wait_with_output()
    }))
    .await
    .unwrap()
    .unwrap();
    let took = cut.elapsed();
    let mut rest = String::new();
    let _ = stdout.read_to_string(&mut rest);
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert_eq!(status.status.code(), Some(6), "{stderr}");
    assert!(
        took < Duration::from_secs(10),
        "exited {took:?} after the partition"
    );
    assert!(
        stderr.contains("2s"),
        "the error names the limit it hit: {stderr}"
    );
    eprintln!("peerapi stream: exit 6 after {took:?}: {}", stderr.trim());
}

/// The first event `want` accepts about `peer`.
async fn wait_for(
    events: &mut tokio::sync::broadcast::Receiver<NodeEvent>,
    peer: libp2p::PeerId,
    want: fn(&NodeEvent, &libp2p::PeerId) -> bool,
) -> NodeEvent {
    loop {
        match events.recv().await {
            Ok(ev) if want(&ev, &peer) => return ev,
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
}

/// A py-libp2p 0.8.1 host behind the link: partitioned, our node finds
/// the link silent and closes it; healed, it dials the host again by
/// itself and calls work; the host stays alive with no traceback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_to_a_py_libp2p_host_heals_and_the_host_stays_healthy() {
    use crate::python::{python_for, PyHost, PyLibp2p};
    let py = python_for(PyLibp2p::V081);
    let demo = demo_backend().await;
    let mut host = PyHost::serve(&py, &demo.routes(), &[]).await;
    let (proxy, target) = LinkProxy::in_front_of(&host.addr, Impairment::default())
        .await
        .unwrap();
    let peer = peer_id_of(&host.addr);
    let mut cfg = config();
    cfg.ping_interval = Duration::from_millis(500);
    cfg.ping_timeout = Duration::from_secs(1);
    cfg.reconnect_max = Duration::from_secs(1);
    cfg.bootstrap = vec![target.clone()];
    let (node, _) = start(cfg).await;
    let h = node.handle();
    let mut events = h.subscribe();
    within(h.call(&target, CallRequest::new("health")))
        .await
        .expect("a call before the partition");

    proxy.partition();
    let cut = Instant::now();
    tokio::time::timeout(
        Duration::from_secs(15),
        wait_for(
            &mut events,
            peer,
            |ev, p| matches!(ev, NodeEvent::LinkSilent { peer, .. } if peer == p),
        ),
    )
    .await
    .expect("the link to the python host is found silent");
    eprintln!(
        "python host: link silent {:?} after the partition",
        cut.elapsed()
    );
    host.assert_healthy("during the partition");

    proxy.heal();
    let healed = Instant::now();
    tokio::time::timeout(
        Duration::from_secs(30),
        wait_for(
            &mut events,
            peer,
            |ev, p| matches!(ev, NodeEvent::PeerConnected { peer, .. } if peer == p),
        ),
    )
    .await
    .expect("connected to the python host again within 30 s");
    eprintln!(
        "python host: connected again {:?} after the heal",
        healed.elapsed()
    );
    let body = within(h.call(&target, CallRequest::new("health")))
        .await
        .expect("calls work again");
    assert!(body.starts_with(b"{"), "{}", String::from_utf8_lossy(&body));
    host.assert_healthy("after the partition healed");
    node.abort();
}

/// `peerapi bench --link` runs end to end (short: 10 ms, quick) and prints
/// every row; the figures themselves are the bench's, not a test's.
#[test]
fn bench_link_prints_every_row() {
    let out = std::process::Command::new(BIN)
        .args(["bench", "--link", "10ms,400mbit", "--quick"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}{err}");
    for row in [
        "2.0.0 noise first",
        "2.0.0 pos-first",
        "1.0.0 noise first",
        "1.0.0 pos-first",
        "time to first token",
        "32 MiB body",
        "fan-out to 20 peers",
    ] {
        assert!(text.contains(row), "no {row:?} row:\n{text}");
    }
    assert!(text.contains("; 0 failed"), "{text}");
    assert!(
        text.contains("(connections through the fan-out's links: 20, one per peer)"),
        "{text}"
    );
}

/// The next `--json` line of `subnet watch` whose event is `name`.
async fn next_event(
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    name: &str,
) -> serde_json::Value {
    within(async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if v["event"] == name {
                return v;
            }
        }
        panic!("subnet watch ended before {name}");
    })
    .await
}

/// `peerapi subnet watch` says when a peer was lost to a silent link and
/// when it came back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subnet_watch_says_when_a_peer_was_lost_and_when_it_came_back() {
    use tokio::io::AsyncBufReadExt;
    let (_server, server_addr) = serving_node(RouteTable::new()).await;
    let (proxy, target) = LinkProxy::in_front_of(&server_addr, Impairment::default())
        .await
        .unwrap();
    let target = target.to_string();
    let mut watch = tokio::process::Command::new(BIN)
        .args(["subnet", "watch", "--json", "--bootstrap", &target])
        .args(["--listen", "/ip4/127.0.0.1/tcp/0"])
        .args([
            "--ping-interval",
            "0.5",
            "--ping-timeout",
            "1",
            "--reconnect-max",
            "1",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(watch.stdout.take().unwrap()).lines();
    next_event(&mut lines, "peer_connected").await;
    // Ping starts once identify confirmed the peer has it.
    next_event(&mut lines, "peer_identified").await;
    proxy.partition();
    let lost = next_event(&mut lines, "link_silent").await;
    assert_eq!(lost["after_secs"], 1.0, "{lost}");
    proxy.heal();
    let back = next_event(&mut lines, "peer_connected").await;
    let after = back["back_after_secs"]
        .as_f64()
        .expect("says when it came back");
    assert!(after > 0.0 && after < 30.0, "{back}");
    eprintln!("subnet watch: back after {after:.2}s");
}

/// Where a call's time went, across a 100 ms link: the network's share of
/// a call on a warm connection is the link's round trip (within one RTT),
/// not hidden in the node's or the backend's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_time_breakdown_puts_the_links_round_trip_in_the_network_share() {
    let backend = demo_backend().await;
    let (_server, server_addr) = serving_node(backend.routes()).await;
    let rtt = Duration::from_millis(100);
    let link = Impairment {
        rtt,
        ..Default::default()
    };
    let (_proxy, target) = LinkProxy::in_front_of(&server_addr, link).await.unwrap();
    let caller = client().await;
    let h = caller.handle();
    within(h.call(&target, CallRequest::new("health")))
        .await
        .expect("the first call (it dials)");
    let started = Instant::now();
    let r = within(h.call_full(&target, CallRequest::new("health")))
        .await
        .unwrap();
    let total = started.elapsed();
    let b = peerapi::node::Breakdown::of(&r.head, None, total, false).expect("2.0.0 timings");
    assert!(
        b.network >= rtt && b.network < rtt * 2,
        "network {:?} for a {rtt:?} link: {b:?}",
        b.network
    );
    assert!(b.backend_head < rtt / 2, "{b:?}");
    eprintln!(
        "breakdown across {rtt:?}: network {:?}, total {total:?}",
        b.network
    );
}

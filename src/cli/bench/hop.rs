//! The measurements through the hop, per protocol version, each beside
//! the direct call to the same backend: unary, small stream chunks, time to
//! the first byte, a large body.

use std::time::{Duration, Instant};

use futures::StreamExt;
use peerapi::node::{CallRequest, NodeHandle};
use peerapi::testkit::SMALL_BODY;

use super::measure::{drain_events, get_stream, small_call_ok, unary_run};
use super::report::{median, Row, Samples};
use super::Bench;

/// Untimed calls first, both ways, as benchmark harnesses do: the first
/// seconds after start measured up to 1.6x slower here.
pub(super) async fn warm_up(b: &Bench, label: &str, h: &NodeHandle) {
    let (size, http, backend, addr) = (b.size, &b.http, b.backend, &b.addr);
    (b.progress)(&format!("warming up {label}"));
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs_f64(size.warmup_secs) {
        let _ = h.call(addr, CallRequest::new("small")).await;
        let _ = http.get(format!("http://{backend}/small")).send().await;
    }
}

/// Unary calls at concurrency 1, 16 and 64.
pub(super) async fn unary(b: &Bench, label: &str, h: &NodeHandle) -> Vec<Row> {
    let (size, http, backend, max, addr) = (b.size, &b.http, b.backend, b.max, &b.addr);
    let mut rows = Vec::new();
    for (i, conc) in [1usize, 16, 64].into_iter().enumerate() {
        if !b.filter.concurrency(conc) {
            continue;
        }
        (b.progress)(&format!("unary {label} at concurrency {conc}"));
        let calls = size.unary_calls[i];
        let (mut d50, mut d99, mut drate, mut h50, mut h99, mut hrate, mut failed) =
            (vec![], vec![], vec![], vec![], vec![], vec![], 0);
        let mut direct_failed = 0;
        let (mut lrate, mut brate, mut lfailed) = (vec![], vec![], 0);
        for _ in 0..size.repeats {
            let url = format!("http://{backend}/small");
            let client = http.clone();
            let direct = unary_run(calls, conc, max, move || {
                let client = client.clone();
                let url = url.clone();
                async move {
                    match client.get(&url).send().await {
                        Ok(r) if r.status().is_success() => {
                            r.bytes().await.is_ok_and(|b| b == SMALL_BODY.as_bytes())
                        }
                        _ => false,
                    }
                }
            })
            .await;
            let hop = hop_loop(h, addr, calls, conc, max).await;
            let beside = load_beside_loop(h, addr, calls, conc, max).await;
            d50.push(direct.p50.as_secs_f64() * 1e6);
            d99.push(direct.p99.as_secs_f64() * 1e6);
            drate.push(direct.per_sec);
            h50.push(hop.p50.as_secs_f64() * 1e6);
            h99.push(hop.p99.as_secs_f64() * 1e6);
            hrate.push(hop.per_sec);
            failed += hop.failed;
            direct_failed += direct.failed;
            lfailed += beside.load_failed;
            lrate.push(beside.load_rate);
            brate.push(beside.loop_rate);
        }
        let note =
            format!("every body compared; {failed} failed through the hop, {direct_failed} direct");
        rows.push(Row {
            name: format!("unary {label} c={conc} p50"),
            direct: Some(median(d50)),
            hop: median(h50),
            unit: "us".into(),
            note: String::new(),
        });
        rows.push(Row {
            name: format!("unary {label} c={conc} p99"),
            direct: Some(median(d99)),
            hop: median(h99),
            unit: "us".into(),
            note: String::new(),
        });
        let bench_rate = median(hrate);
        rows.push(Row {
            name: format!("unary {label} c={conc} calls/s"),
            direct: Some(median(drate)),
            hop: bench_rate,
            unit: "/s".into(),
            note,
        });
        rows.push(Row {
            name: format!("peerapi load {label} c={conc} calls/s"),
            direct: Some(median(brate)),
            hop: median(lrate),
            unit: "/s".into(),
            note: format!(
                "left: this bench's own loop on the same hop, turns A B B A; {lfailed} failed"
            ),
        });
    }
    rows
}

/// This bench's own loop of small unary calls through the hop.
async fn hop_loop(
    h: &NodeHandle,
    addr: &libp2p::Multiaddr,
    calls: usize,
    conc: usize,
    max: Duration,
) -> super::measure::Unary {
    let (hh, a) = (h.clone(), addr.clone());
    unary_run(calls, conc, max, move || {
        let (hh, a) = (hh.clone(), a.clone());
        async move { small_call_ok(&hh, &a).await }
    })
    .await
}

/// Calls/s of this bench's loop and of `peerapi load` on the same hop.
struct Beside {
    loop_rate: f64,
    load_rate: f64,
    load_failed: usize,
}

/// This bench's loop and `peerapi load` in turns A B B A, half the calls
/// each turn, so a machine that speeds up or slows down over the run
/// favours neither (one turn each, in one order, moved the ratio from
/// 0.83 to 1.09 between two runs here).
async fn load_beside_loop(
    h: &NodeHandle,
    addr: &libp2p::Multiaddr,
    calls: usize,
    conc: usize,
    max: Duration,
) -> Beside {
    let half = (calls / 2).max(1);
    let (mut loop_secs, mut load_secs, mut load_calls, mut load_failed) = (0.0, 0.0, 0, 0);
    for loop_first in [true, false] {
        let (a, b) = if loop_first {
            let a = hop_loop(h, addr, half, conc, max).await;
            (a, load_run(h, addr, half, conc).await)
        } else {
            let b = load_run(h, addr, half, conc).await;
            (hop_loop(h, addr, half, conc, max).await, b)
        };
        loop_secs += half as f64 / a.per_sec.max(1e-9);
        load_secs += b.wall.as_secs_f64();
        load_calls += b.samples.len();
        load_failed += b.samples.iter().filter(|s| !s.ok()).count();
    }
    Beside {
        loop_rate: (2 * half) as f64 / loop_secs.max(1e-9),
        load_rate: load_calls as f64 / load_secs.max(1e-9),
        load_failed,
    }
}

/// `peerapi load` making the same calls on the same hop.
async fn load_run(
    h: &NodeHandle,
    addr: &libp2p::Multiaddr,
    calls: usize,
    conc: usize,
) -> peerapi::load::Finished {
    let spec = peerapi::load::LoadSpec {
        targets: vec![addr.clone()],
        request: CallRequest::new("small"),
        stream: false,
        concurrency: conc,
        stop: peerapi::load::Stop::Requests(calls as u64),
        rate: None,
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    peerapi::load::run(h.clone(), spec, cancel, |_| {}).await
}

/// The same call with the serving node as its own process, as deployed:
/// every hop between processes costs a thread wake-up.
pub(super) async fn unary_own_process(
    b: &Bench,
    label: &str,
    h: &NodeHandle,
) -> Result<Row, String> {
    let (size, max, server) = (b.size, b.max, &b.server);
    (b.progress)(&format!(
        "unary {label} at concurrency 1, serving node in its own process"
    ));
    h.dial(&server.addr).await.map_err(|e| e.to_string())?;
    let (mut p50, mut failed) = (vec![], 0);
    for _ in 0..size.repeats {
        let (hh, a) = (h.clone(), server.addr.clone());
        let hop = unary_run(size.unary_calls[0], 1, max, move || {
            let (hh, a) = (hh.clone(), a.clone());
            async move { small_call_ok(&hh, &a).await }
        })
        .await;
        p50.push(hop.p50.as_secs_f64() * 1e6);
        failed += hop.failed;
    }
    Ok(Row {
        name: format!("unary {label} c=1 p50, node as own process"),
        direct: None,
        hop: median(p50),
        unit: "us".into(),
        note: format!("every body compared; {failed} failed"),
    })
}

/// Small SSE chunks per second, and the time to a stream's first byte.
pub(super) async fn stream(b: &Bench, label: &str, h: &NodeHandle) -> Vec<Row> {
    let (size, http, backend, max, addr) = (b.size, &b.http, b.backend, b.max, &b.addr);
    let mut rows = Vec::new();
    (b.progress)(&format!("small stream chunks {label}"));
    let n = size.stream_events;
    let (mut direct, mut hop) = (Samples::default(), Samples::default());
    let (mut direct_events, mut hop_events) = (0usize, 0usize);
    for _ in 0..size.repeats {
        let url = format!("http://{backend}/tokens?n={n}");
        let t = Instant::now();
        match get_stream(http, url).await {
            Ok(body) => match drain_events(Box::pin(body), n, false, max).await {
                Ok(events) => {
                    direct_events = events;
                    direct.ok(events as f64 / t.elapsed().as_secs_f64());
                }
                Err(e) => direct.fail(e),
            },
            Err(e) => direct.fail(e),
        }
        // Through the hop: the route asks for 1,000,000; stop at n.
        let t = Instant::now();
        match h.stream(addr, CallRequest::new("tokens")).await {
            Ok(s) => match drain_events(s, n, true, max).await {
                Ok(events) => {
                    hop_events = events;
                    hop.ok(events as f64 / t.elapsed().as_secs_f64());
                }
                Err(e) => hop.fail(e),
            },
            Err(e) => hop.fail(e.to_string()),
        }
    }
    (b.progress)(&format!("stream time to first byte {label}"));
    let (mut dttfb, mut httfb) = (Samples::default(), Samples::default());
    for _ in 0..size.first_byte_samples {
        let t = Instant::now();
        match get_stream(http, format!("http://{backend}/first")).await {
            Ok(mut body) => match body.next().await {
                Some(Ok(_)) => {
                    dttfb.ok(t.elapsed().as_secs_f64() * 1e6);
                    while let Some(Ok(_)) = body.next().await {}
                }
                other => dttfb.fail(format!("no first chunk: {other:?}")),
            },
            Err(e) => dttfb.fail(e),
        }
        let t = Instant::now();
        match h.stream(addr, CallRequest::new("first")).await {
            Ok(mut s) => match s.next().await {
                Some(Ok(_)) => {
                    httfb.ok(t.elapsed().as_secs_f64() * 1e6);
                    while let Some(Ok(_)) = s.next().await {}
                }
                Some(Err(e)) => httfb.fail(e.to_string()),
                None => httfb.fail("the stream ended without a chunk"),
            },
            Err(e) => httfb.fail(e.to_string()),
        }
    }
    rows.push(Row {
        name: format!("stream {label} small chunks/s"),
        direct: Some(direct.median()),
        hop: hop.median(),
        unit: "/s".into(),
        note: hop.note(&format!(
            "events counted: {hop_events} per sample through the hop, {direct_events} direct{}",
            if direct.failed > 0 {
                format!(" ({} direct samples failed)", direct.failed)
            } else {
                String::new()
            }
        )),
    });
    rows.push(Row {
        name: format!("stream {label} time to first byte"),
        direct: Some(dttfb.median()),
        hop: httfb.median(),
        unit: "us".into(),
        note: httfb.note("first event ready at once"),
    });
    rows
}

/// A large streamed body, in MB/s.
pub(super) async fn blob(b: &Bench, label: &str, h: &NodeHandle) -> Row {
    let (size, http, backend, max, addr) = (b.size, &b.http, b.backend, b.max, &b.addr);
    (b.progress)(&format!("large body {label}"));
    let n = size.blob_bytes;
    let (mut direct, mut hop) = (Samples::default(), Samples::default());
    for _ in 0..size.repeats {
        let t = Instant::now();
        match get_stream(http, format!("http://{backend}/blob?n={n}")).await {
            Ok(mut body) => {
                let mut got = 0usize;
                let mut error = None;
                while let Some(item) = body.next().await {
                    match item {
                        Ok(c) => got += c.len(),
                        Err(e) => {
                            error = Some(e.to_string());
                            break;
                        }
                    }
                }
                match error {
                    None if got >= n => direct.ok(got as f64 / 1e6 / t.elapsed().as_secs_f64()),
                    None => direct.fail(format!("body ended after {got} of {n} bytes")),
                    Some(e) => direct.fail(e),
                }
            }
            Err(e) => direct.fail(e),
        }
        let t = Instant::now();
        match h.stream(addr, CallRequest::new("blob")).await {
            Ok(mut s) => {
                let mut got = 0usize;
                let mut error = None;
                while let Some(item) = s.next().await {
                    match item {
                        Ok(c) => got += c.len(),
                        Err(e) => {
                            error = Some(e.to_string());
                            break;
                        }
                    }
                    if got >= n || t.elapsed() > max {
                        break;
                    }
                }
                match error {
                    None if got >= n || t.elapsed() > max => {
                        hop.ok(got as f64 / 1e6 / t.elapsed().as_secs_f64())
                    }
                    None => hop.fail(format!("body ended after {got} of {n} bytes")),
                    Some(e) => hop.fail(e),
                }
            }
            Err(e) => hop.fail(e.to_string()),
        }
    }
    Row {
        name: format!("stream {label} large body"),
        direct: Some(direct.median()),
        hop: hop.median(),
        unit: "MB/s".into(),
        note: hop.note(&format!("{} MiB counted per sample", n >> 20)),
    }
}

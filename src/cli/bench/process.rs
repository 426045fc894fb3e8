//! The measurements that start something each time or watch the serving
//! node's process: the first call on a fresh connection, the one-shot
//! `peerapi call`, and memory under many concurrent streams.

use std::time::{Duration, Instant};

use peerapi::node::{CallRequest, NodeHandle, ProtocolChoice};
use peerapi::testkit::{PACED_EVENTS, SMALL_BODY};

use super::measure::{client, drain_events, small_call_ok};
use super::report::{Row, Samples};
use super::Bench;

/// The first call of a fresh node: dial, Noise, yamux and the call.
pub(super) async fn first_call(b: &Bench) -> Result<Row, String> {
    let (size, addr) = (b.size, &b.addr);
    (b.progress)("first call on a fresh connection");
    let mut firsts = Samples::default();
    for _ in 0..size.first_calls {
        let node = client(ProtocolChoice::Auto).await?;
        let t = Instant::now();
        if small_call_ok(&node.handle(), addr).await {
            firsts.ok(t.elapsed().as_secs_f64() * 1e3);
        } else {
            firsts.fail("the call failed or its body differed");
        }
        node.abort();
    }
    Ok(Row {
        name: "first call (dial+noise+yamux+call)".into(),
        direct: None,
        hop: firsts.median(),
        unit: "ms".into(),
        note: firsts.note("every body compared"),
    })
}

/// `peerapi call` as a one-shot process against the serving node process.
pub(super) fn one_shot_cli(b: &Bench) -> Result<Row, String> {
    let (size, exe, server) = (b.size, &b.exe, &b.server);
    (b.progress)("one-shot `peerapi call` processes");
    let mut cli = Samples::default();
    for _ in 0..size.cli_calls {
        let t = Instant::now();
        let out = std::process::Command::new(exe)
            .args(["call", &server.addr.to_string(), "small"])
            .output()
            .map_err(|e| e.to_string())?;
        let elapsed = t.elapsed().as_secs_f64() * 1e3;
        if !out.status.success() {
            cli.fail(format!("exit {:?}", out.status.code()));
        } else if out.stdout != SMALL_BODY.as_bytes() {
            cli.fail("the printed body differed");
        } else {
            cli.ok(elapsed);
        }
    }
    Ok(Row {
        name: "`peerapi call` one-shot process".into(),
        direct: None,
        hop: cli.median(),
        unit: "ms".into(),
        note: cli.note("exit 0 and the body compared"),
    })
}

/// The serving node's resident memory idle and under concurrent streams.
pub(super) async fn memory(b: &Bench, idle_rss: Option<f64>) -> Result<Vec<Row>, String> {
    let (size, server) = (b.size, &b.server);
    let mut rows = Vec::new();
    (b.progress)(&format!(
        "memory with {} concurrent streams",
        size.concurrent_streams
    ));
    let node = client(ProtocolChoice::Auto).await?;
    let h: NodeHandle = node.handle();
    let mut streams = Vec::new();
    for _ in 0..size.concurrent_streams {
        let (h, a) = (h.clone(), server.addr.clone());
        streams.push(tokio::spawn(async move {
            match h.stream(&a, CallRequest::new("paced")).await {
                Ok(s) => drain_events(s, PACED_EVENTS, false, Duration::from_secs(60))
                    .await
                    .map(|_| ()),
                Err(e) => Err(e.to_string()),
            }
        }));
    }
    // The most over every sample until the last stream ends (one sample
    // missed the moments a slow reader made the node hold more).
    let mut peak = 0.0f64;
    let mut samples = 0;
    let all = futures::future::join_all(streams);
    tokio::pin!(all);
    let results = loop {
        tokio::select! {
            r = &mut all => break r,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                peak = peak.max(server.rss_mb().unwrap_or(0.0));
                samples += 1;
            }
        }
    };
    peak = peak.max(server.rss_mb().unwrap_or(0.0));
    let mut ok = 0;
    let mut first_error = None;
    for s in results {
        match s {
            Ok(Ok(())) => ok += 1,
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    node.abort();
    if let Some(idle) = idle_rss {
        rows.push(Row {
            name: "serving node resident memory, idle".into(),
            direct: None,
            hop: idle,
            unit: "MB".into(),
            note: String::new(),
        });
    }
    rows.push(Row {
        name: format!("serving node memory, {} streams", size.concurrent_streams),
        direct: None,
        hop: peak,
        unit: "MB".into(),
        note: format!(
            "the most of {samples} samples; {ok} of {} streams ended with all {PACED_EVENTS} events{}",
            size.concurrent_streams,
            first_error
                .map(|e| format!(" (first failure: {e})"))
                .unwrap_or_default()
        ),
    });
    Ok(rows)
}

//! `peerapi call --peers A,B,C ROUTE` (or `--all-peers`): the same request
//! to every peer at once, compared in a table (or one JSON object per peer):
//! who is slow, who failed, whose answer differs from the majority.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use peerapi::load::{fan_out, PeerResult};
use peerapi::node::CallRequest;
use peerapi::NodeHandle;

use super::request::Targets;
use super::say::fail;

fn ms(d: Option<Duration>) -> String {
    d.map(|d| format!("{:.1}ms", d.as_secs_f64() * 1e3))
        .unwrap_or_else(|| "-".into())
}

/// The peer id's tail, enough to tell peers apart in a table.
fn short(addr: &str) -> String {
    let id = addr.rsplit('/').next().unwrap_or(addr);
    let tail: String = id
        .chars()
        .rev()
        .take(8)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("…{tail}")
}

pub(crate) async fn run(
    handle: &NodeHandle,
    targets: &Targets,
    req: &CallRequest,
    stream: bool,
    json: bool,
) -> ExitCode {
    let peers = match targets.resolve(handle, &req.route).await {
        Ok(p) => p,
        Err(e) => return fail(3, e),
    };
    let mut results = fan_out(handle, &peers, req, stream, targets.fanout_concurrency).await;
    // Slowest first: the question is which peer is slow.
    results.sort_by_key(|r| std::cmp::Reverse(r.sample.e2e));
    let mut out = std::io::stdout().lock();
    if json {
        for r in &results {
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string(&r.json()).unwrap_or_default()
            );
        }
    } else {
        let _ = writeln!(
            out,
            "{:<10} {:<6} {:>6} {:>9} {:>9} {:>7} {:>9} {:>9}  BODY",
            "PEER", "STATE", "STATUS", "TTFB", "TTFT", "TOK/S", "TOTAL", "BYTES"
        );
        for r in &results {
            let _ = writeln!(out, "{}", row(r));
        }
    }
    let _ = out.flush();
    let failed = results.iter().filter(|r| !r.sample.ok()).count();
    if failed > 0 {
        eprintln!("peerapi: {failed} of {} peers failed", results.len());
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

fn row(r: &PeerResult) -> String {
    let s = &r.sample;
    let state = match &s.error {
        None => "ok".to_string(),
        Some(class) => class.clone(),
    };
    let body = match (r.same_as_majority, &s.detail) {
        (Some(true), _) => "same".to_string(),
        (Some(false), _) => "DIFFERS".to_string(),
        (None, Some(detail)) => detail.clone(),
        (None, None) => "-".to_string(),
    };
    format!(
        "{:<10} {:<6} {:>6} {:>9} {:>9} {:>7} {:>9} {:>9}  {}",
        short(&s.peer),
        state,
        s.status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-".into()),
        ms(s.ttfb),
        ms(s.ttft),
        r.tokens_per_sec
            .map(|t| format!("{t:.1}"))
            .unwrap_or_else(|| "-".into()),
        ms(Some(s.e2e)),
        s.bytes,
        body
    )
}

//! Hop or backend? The same request through the hop to a peer and straight
//! to this node's own backend for the route, in turns, measured alike, so
//! an operator sees what the network adds and what the model takes.

use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::Multiaddr;

use super::sample::{measure, Recorder, Sample};
use crate::node::{CallRequest, NodeHandle};
use crate::routes::Route;
use crate::upstream::{Upstream, UpstreamError};
use crate::wire::{ApiRequest, ResponseType};

/// The label of a direct call's sample.
pub const DIRECT_LABEL: &str = "direct";
/// Default rounds of a comparison (each: one direct call, one through the hop).
pub const DEFAULT_HOP_VS_DIRECT_ROUNDS: usize = 3;

/// The class of a failed direct call, labelled as the hop's would be.
fn class_of(e: &UpstreamError) -> &'static str {
    use crate::wire::Failure;
    match e {
        UpstreamError::Timeout { .. } => Failure::BackendTimeout,
        UpstreamError::Unavailable { .. } => Failure::BackendUnavailable,
        UpstreamError::TooLarge { .. } => Failure::ResponseTooLarge,
        _ => Failure::BackendFailed,
    }
    .label()
}

/// One request straight to the route's backend, as this node would forward
/// it (the route's own headers included), measured like [`measure`].
pub async fn measure_direct(
    upstream: &Upstream,
    route: &Route,
    req: &CallRequest,
    stream: bool,
) -> Sample {
    let start = Instant::now();
    let mut r = Recorder::new(DIRECT_LABEL, start);
    let api = ApiRequest {
        route: req.route.clone(),
        method: req.method.clone(),
        headers: req.headers.clone(),
        body: req.body.clone(),
        response_type: if stream {
            ResponseType::Stream
        } else {
            ResponseType::Unary
        } as i32,
        timeout_ms: 0,
    };
    let config = upstream.config();
    let wait = if stream {
        config.stream_idle_timeout
    } else {
        config.unary_timeout
    };
    let resp = match upstream.send(route, &api, wait).await {
        Ok(resp) => resp,
        Err(e) => return r.fail(class_of(&e), e.to_string()),
    };
    let head_at = start.elapsed();
    r.status(Some(resp.status));
    if stream {
        let mut chunks = std::pin::pin!(resp.chunks());
        while let Some(chunk) = chunks.next().await {
            match chunk {
                Ok(bytes) => r.chunk(&bytes, Instant::now()),
                Err(e) => return r.fail(class_of(&e), e.to_string()),
            }
        }
        r.stream_ended();
    } else {
        let deadline = tokio::time::Instant::now() + config.unary_timeout;
        match resp.collect(deadline).await {
            Ok(body) => r.whole(&body, head_at),
            Err(e) => return r.fail(class_of(&e), e.to_string()),
        }
    }
    r.end()
}

/// Both sides of a comparison, in the order they ran.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct HopVsDirect {
    pub hop: Vec<Sample>,
    pub direct: Vec<Sample>,
}

/// The median of one measure over one side's successful samples.
pub fn median_of(samples: &[Sample], f: impl Fn(&Sample) -> Option<Duration>) -> Option<Duration> {
    let mut v: Vec<Duration> = samples.iter().filter(|s| s.ok()).filter_map(f).collect();
    v.sort_unstable();
    v.get(v.len().saturating_sub(1) / 2).copied()
}

impl HopVsDirect {
    /// Whether every successful body on both sides was the same.
    pub fn same_body(&self) -> Option<bool> {
        let mut hashes = self
            .hop
            .iter()
            .chain(&self.direct)
            .filter_map(|s| s.body_sha256.as_deref());
        let first = hashes.next()?;
        Some(hashes.all(|h| h == first))
    }
}

/// What to compare: the request, the peer it goes to through the hop and
/// this node's route for it.
#[derive(Clone, Debug)]
pub struct HopVsDirectSpec {
    pub addr: Multiaddr,
    pub route: Route,
    pub request: CallRequest,
    pub stream: bool,
    pub rounds: usize,
}

/// `rounds` turns of one direct call then one through the hop, one at a
/// time so neither waits on the other; `progress` hears each finished round.
pub async fn hop_vs_direct(
    handle: &NodeHandle,
    upstream: &Upstream,
    spec: &HopVsDirectSpec,
    mut progress: impl FnMut(usize),
) -> HopVsDirect {
    let mut out = HopVsDirect::default();
    for round in 0..spec.rounds.max(1) {
        let direct = measure_direct(upstream, &spec.route, &spec.request, spec.stream).await;
        out.direct.push(direct);
        let hop = measure(handle, &spec.addr, spec.request.clone(), spec.stream).await;
        out.hop.push(hop);
        progress(round + 1);
    }
    out
}

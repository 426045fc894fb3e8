//! One request to many peers at once, compared: which peer is slow,
//! failing, or answering differently from the majority.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use libp2p::Multiaddr;
use serde::Serialize;

use super::sample::{measure, measure_observed, CallSoFar, Sample};
use crate::node::{CallRequest, NodeHandle};

/// Default most peers called at once.
pub const DEFAULT_FANOUT_CONCURRENCY: usize = 16;

/// One peer's answer, and how it compares.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct PeerResult {
    pub sample: Sample,
    /// Tokens per second after the first token.
    pub tokens_per_sec: Option<f64>,
    /// The body equals the one most peers returned (None: failed, or no
    /// majority among successes).
    pub same_as_majority: Option<bool>,
}

/// A peer's result as scripts read it (`--json`): the sample's fields, flat.
#[derive(Serialize)]
pub struct PeerResultJson<'a> {
    #[serde(flatten)]
    sample: crate::load::sample::SampleJson<'a>,
    tokens_per_sec: Option<f64>,
    same_as_majority: Option<bool>,
}

impl PeerResult {
    pub fn json(&self) -> PeerResultJson<'_> {
        PeerResultJson {
            sample: self.sample.json(),
            tokens_per_sec: self.tokens_per_sec,
            same_as_majority: self.same_as_majority,
        }
    }
}

/// Calls every peer in `peers` with `req`, at most `bound` at once; the
/// results in the order of `peers`.
pub async fn fan_out(
    handle: &NodeHandle,
    peers: &[Multiaddr],
    req: &CallRequest,
    stream: bool,
    bound: usize,
) -> Vec<PeerResult> {
    let req = Arc::new(req.clone());
    let samples: Vec<Sample> = futures::stream::iter(peers.iter().cloned())
        .map(|addr| {
            let (h, req) = (handle.clone(), req.clone());
            async move { measure(&h, &addr, (*req).clone(), stream).await }
        })
        .buffered(bound.max(1))
        .collect()
        .await;
    compare(samples)
}

/// Where one peer's call of a fan-out stands, while it runs.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub enum RowUpdate {
    /// The call went out (dial, request).
    Calling,
    /// Chunks are arriving.
    Receiving(CallSoFar),
    /// Finished, with its sample (compared once all are in).
    Done(Box<Sample>),
}

/// [`fan_out`], telling `on_row(index into peers, update)` of each peer's
/// progress as it goes, so a view can fill its rows as they progress.
pub async fn fan_out_live(
    handle: &NodeHandle,
    peers: &[Multiaddr],
    req: &CallRequest,
    stream: bool,
    bound: usize,
    on_row: Arc<dyn Fn(usize, RowUpdate) + Send + Sync>,
) -> Vec<PeerResult> {
    let req = Arc::new(req.clone());
    let samples: Vec<Sample> = futures::stream::iter(peers.iter().cloned().enumerate())
        .map(|(i, addr)| {
            let (h, req, on_row) = (handle.clone(), req.clone(), on_row.clone());
            async move {
                on_row(i, RowUpdate::Calling);
                let tell = on_row.clone();
                let observer = Box::new(move |live| tell(i, RowUpdate::Receiving(live)));
                let sample = measure_observed(&h, &addr, (*req).clone(), stream, observer).await;
                on_row(i, RowUpdate::Done(Box::new(sample.clone())));
                sample
            }
        })
        .buffered(bound.max(1))
        .collect()
        .await;
    compare(samples)
}

/// Marks each successful sample as agreeing with the majority body or not.
pub fn compare(samples: Vec<Sample>) -> Vec<PeerResult> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for s in &samples {
        if let Some(h) = &s.body_sha256 {
            *counts.entry(h.as_str()).or_default() += 1;
        }
    }
    // A strict majority of the successes; a tie has none.
    let total: usize = counts.values().sum();
    let majority = counts
        .iter()
        .find(|(_, n)| **n * 2 > total)
        .map(|(h, _)| h.to_string());
    samples
        .into_iter()
        .map(|s| {
            let same = match (&s.body_sha256, &majority) {
                (Some(h), Some(m)) => Some(h == m),
                _ => None,
            };
            let rate = s.tokens_per_sec();
            PeerResult {
                sample: s,
                tokens_per_sec: rate,
                same_as_majority: same,
            }
        })
        .collect()
}

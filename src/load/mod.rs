//! Load runs and fan-out over the API protocol, measured as inference
//! clients measure them. `sample` (one request: TTFB, TTFT, gaps between
//! tokens, end; success only on a proper end), `stats` (percentiles,
//! goodput), `fanout` (one request to many peers, compared); this file
//! runs a load: a bounded number in flight, a request count or a duration,
//! closed loop or Poisson arrivals at a rate.

pub mod fanout;
pub mod sample;
pub mod stats;

use std::sync::Arc;
use std::time::{Duration, Instant};

use libp2p::Multiaddr;
use rand::Rng;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub use fanout::{fan_out, PeerResult};
pub use sample::{measure, Sample};
pub use stats::{Goodput, Percentiles, Summary};

use crate::node::{CallRequest, NodeHandle};

/// When a run stops.
#[derive(Clone, Copy, Debug)]
pub enum Stop {
    Requests(u64),
    After(Duration),
}

/// A load run.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    /// Requests go to these peers in turn.
    pub targets: Vec<Multiaddr>,
    pub request: CallRequest,
    pub stream: bool,
    /// Most requests in flight.
    pub concurrency: usize,
    pub stop: Stop,
    /// Mean requests per second, Poisson arrivals; None: each finished
    /// request makes room for the next (closed loop).
    pub rate: Option<f64>,
}

/// How far a run is, as it goes.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    pub done: u64,
    pub failed: u64,
    pub in_flight: u64,
    pub elapsed: Duration,
}

/// What a run produced: every finished request, and how many were cut
/// short by cancellation.
pub struct Finished {
    pub samples: Vec<Sample>,
    pub wall: Duration,
    pub unfinished: usize,
}

/// Runs `spec` until it stops or `cancel` fires; `progress` hears of every
/// finished request.
pub async fn run(
    handle: NodeHandle,
    spec: LoadSpec,
    cancel: CancellationToken,
    mut progress: impl FnMut(&Progress, &Sample),
) -> Finished {
    let started = Instant::now();
    let permits = Arc::new(Semaphore::new(spec.concurrency.max(1)));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Sample>();
    let mut tasks = tokio::task::JoinSet::new();
    let deadline = match spec.stop {
        Stop::After(d) => Some(tokio::time::Instant::now() + d),
        Stop::Requests(_) => None,
    };
    let limit = match spec.stop {
        Stop::Requests(n) => n,
        Stop::After(_) => u64::MAX,
    };
    let mut issued = 0u64;
    let mut samples = Vec::new();
    let mut state = Progress::default();
    let mut next_arrival = tokio::time::Instant::now();
    let targets = spec.targets.clone();
    'issue: while issued < limit && !targets.is_empty() {
        if let Some(rate) = spec.rate.filter(|r| *r > 0.0) {
            // Exponential gaps: a Poisson process of `rate` per second.
            let u: f64 = rand::thread_rng().gen_range(f64::EPSILON..1.0);
            next_arrival += Duration::from_secs_f64(-u.ln() / rate);
        }
        // The arrival time, then room among those in flight.
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => break 'issue,
                () = sleep_until_opt(deadline) => break 'issue,
                Some(s) = rx.recv() => take(&mut samples, &mut state, s, started, &mut progress),
                () = tokio::time::sleep_until(next_arrival) => break,
            }
        }
        let permit = loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => break 'issue,
                () = sleep_until_opt(deadline) => break 'issue,
                Some(s) = rx.recv() => take(&mut samples, &mut state, s, started, &mut progress),
                p = permits.clone().acquire_owned() => match p {
                    Ok(p) => break p,
                    Err(_) => break 'issue,
                },
            }
        };
        let addr = targets[(issued % targets.len() as u64) as usize].clone();
        issued += 1;
        state.in_flight += 1;
        let (h, req, tx) = (handle.clone(), spec.request.clone(), tx.clone());
        let stream = spec.stream;
        tasks.spawn(async move {
            let s = measure(&h, &addr, req, stream).await;
            let _ = tx.send(s);
            drop(permit);
        });
    }
    drop(tx);
    // Let what is in flight finish, unless cancelled or out of time.
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            () = sleep_until_opt(deadline) => break,
            s = rx.recv() => match s {
                Some(s) => take(&mut samples, &mut state, s, started, &mut progress),
                None => break,
            },
        }
    }
    tasks.abort_all();
    while let Ok(s) = rx.try_recv() {
        take(&mut samples, &mut state, s, started, &mut progress);
    }
    Finished {
        unfinished: (issued as usize).saturating_sub(samples.len()),
        samples,
        wall: started.elapsed(),
    }
}

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn take(
    samples: &mut Vec<Sample>,
    state: &mut Progress,
    s: Sample,
    started: Instant,
    progress: &mut impl FnMut(&Progress, &Sample),
) {
    state.done += 1;
    state.failed += u64::from(!s.ok());
    state.in_flight = state.in_flight.saturating_sub(1);
    state.elapsed = started.elapsed();
    progress(state, &s);
    samples.push(s);
}

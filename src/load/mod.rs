//! Load runs and fan-out over the API protocol, measured as inference
//! clients measure them. `sample` (one request: TTFB, TTFT, gaps between
//! tokens, end; success only on a proper end), `stats` (percentiles,
//! goodput), `fanout` (one request to many peers, compared); this file
//! runs a load: a bounded number in flight, a request count or a duration,
//! closed loop or Poisson arrivals at a rate.

pub mod direct;
pub mod fanout;
pub mod plan;
pub mod sample;
pub mod stats;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use libp2p::Multiaddr;
use rand::Rng;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub use direct::{hop_vs_direct, measure_direct, HopVsDirect, HopVsDirectSpec};
pub use fanout::{fan_out, PeerResult};
pub use plan::{parse_duration, LoadPlan};
pub use sample::{measure, measure_as, measure_counting, Sample};
pub use stats::{Goodput, Percentiles, Summary};

use crate::node::{CallRequest, NodeHandle};

/// When a run stops.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
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
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Progress {
    pub done: u64,
    pub failed: u64,
    pub in_flight: u64,
    pub elapsed: Duration,
    /// Percentiles over the latest successful requests (at most
    /// [`LIVE_WINDOW`]), while the run goes.
    pub live: Live,
}

/// Requests the live percentiles are taken over, the newest.
pub const LIVE_WINDOW: usize = 2_000;

/// The live view of a run: TTFT, ITL and end to end over its latest requests.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Live {
    pub ttft: Option<Percentiles>,
    pub itl: Option<Percentiles>,
    pub e2e: Option<Percentiles>,
}

impl Live {
    fn of(samples: &[Sample]) -> Self {
        let ok: Vec<&Sample> = samples
            .iter()
            .rev()
            .filter(|s| s.ok())
            .take(LIVE_WINDOW)
            .collect();
        Self {
            ttft: Percentiles::of(ok.iter().filter_map(|s| s.ttft).collect()),
            itl: Percentiles::of(ok.iter().flat_map(|s| s.itl.iter().copied()).collect()),
            e2e: Percentiles::of(ok.iter().map(|s| s.e2e).collect()),
        }
    }
}

/// What a run produced: every finished request, and how many were cut
/// short by cancellation.
pub struct Finished {
    pub samples: Vec<Sample>,
    pub wall: Duration,
    pub unfinished: usize,
}

/// What the workers share: finished requests and counts. Workers push
/// without waking anyone; progress is read on a timer.
#[derive(Default)]
struct Shared {
    samples: std::sync::Mutex<Vec<Sample>>,
    issued: AtomicU64,
    done: AtomicU64,
    failed: AtomicU64,
}

impl Shared {
    fn finish(&self, s: Sample) {
        self.failed.fetch_add(u64::from(!s.ok()), Ordering::Relaxed);
        self.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(s);
        self.done.fetch_add(1, Ordering::Relaxed);
    }
}

/// How often `progress` hears how far the run is.
pub const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// Runs `spec` until it stops or `cancel` fires; `progress` hears how far
/// it is every [`PROGRESS_EVERY`] and at the end.
pub async fn run(
    handle: NodeHandle,
    spec: LoadSpec,
    cancel: CancellationToken,
    mut progress: impl FnMut(&Progress),
) -> Finished {
    let started = Instant::now();
    let deadline = match spec.stop {
        Stop::After(d) => Some(tokio::time::Instant::now() + d),
        Stop::Requests(_) => None,
    };
    let limit = match spec.stop {
        Stop::Requests(n) => n,
        Stop::After(_) => u64::MAX,
    };
    let shared = Arc::new(Shared::default());
    let mut tasks = tokio::task::JoinSet::new();
    let workers = if spec.targets.is_empty() {
        0
    } else {
        spec.concurrency.max(1)
    };
    let labels: Arc<Vec<String>> = Arc::new(spec.targets.iter().map(|a| a.to_string()).collect());
    match spec.rate.filter(|r| *r > 0.0) {
        // Closed loop: as many workers as requests in flight, each taking
        // the next request when its last one ends (no task per request).
        None => {
            for _ in 0..workers {
                let (h, spec, shared, cancel) =
                    (handle.clone(), spec.clone(), shared.clone(), cancel.clone());
                let labels = labels.clone();
                tasks.spawn(async move {
                    loop {
                        let past = deadline.is_some_and(|d| tokio::time::Instant::now() >= d);
                        if past || cancel.is_cancelled() {
                            return;
                        }
                        let i = shared.issued.fetch_add(1, Ordering::Relaxed);
                        if i >= limit {
                            return;
                        }
                        let n = (i % spec.targets.len() as u64) as usize;
                        let (addr, label) = (&spec.targets[n], &labels[n]);
                        let req = spec.request.clone();
                        let s = measure_counting(&h, addr, label, req, spec.stream).await;
                        shared.finish(s);
                    }
                });
            }
        }
        // Open loop: Poisson arrivals, each waiting for room in flight.
        Some(rate) if workers > 0 => {
            let (h, spec, shared, cancel) =
                (handle.clone(), spec.clone(), shared.clone(), cancel.clone());
            tasks.spawn(async move {
                let permits = Arc::new(Semaphore::new(workers));
                let mut requests = tokio::task::JoinSet::new();
                let mut next_arrival = tokio::time::Instant::now();
                loop {
                    let u: f64 = rand::thread_rng().gen_range(f64::EPSILON..1.0);
                    next_arrival += Duration::from_secs_f64(-u.ln() / rate);
                    tokio::time::sleep_until(next_arrival).await;
                    let Ok(permit) = permits.clone().acquire_owned().await else {
                        return;
                    };
                    let past = deadline.is_some_and(|d| tokio::time::Instant::now() >= d);
                    if past || cancel.is_cancelled() {
                        break;
                    }
                    let i = shared.issued.fetch_add(1, Ordering::Relaxed);
                    if i >= limit {
                        break;
                    }
                    let n = (i % spec.targets.len() as u64) as usize;
                    let (addr, label) = (spec.targets[n].clone(), labels[n].clone());
                    let (h, req, shared) = (h.clone(), spec.request.clone(), shared.clone());
                    let stream = spec.stream;
                    requests.spawn(async move {
                        shared.finish(measure_counting(&h, &addr, &label, req, stream).await);
                        drop(permit);
                    });
                }
                while requests.join_next().await.is_some() {}
            });
        }
        Some(_) => {}
    }
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    let report = |progress: &mut dyn FnMut(&Progress)| {
        let done = shared.done.load(Ordering::Relaxed);
        let issued = shared.issued.load(Ordering::Relaxed).min(limit);
        let live = Live::of(&shared.samples.lock().unwrap_or_else(|e| e.into_inner()));
        progress(&Progress {
            done,
            failed: shared.failed.load(Ordering::Relaxed),
            in_flight: issued.saturating_sub(done),
            elapsed: started.elapsed(),
            live,
        });
    };
    // Until every worker is done, or the run is cancelled or out of time.
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            () = sleep_until_opt(deadline) => break,
            joined = tasks.join_next() => if joined.is_none() { break },
            _ = tick.tick() => report(&mut progress),
        }
    }
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    report(&mut progress);
    let samples = std::mem::take(&mut *shared.samples.lock().unwrap_or_else(|e| e.into_inner()));
    let issued = shared.issued.load(Ordering::Relaxed).min(limit) as usize;
    Finished {
        unfinished: issued.saturating_sub(samples.len()),
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

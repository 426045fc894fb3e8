//! What a node did lately, kept by the node itself so that a fleet view can
//! ask for it in one small answer instead of following every event: served
//! calls over the last minute (rate, error share, duration and backend
//! first-byte percentiles), the last route reload, evictions, uptime.
//!
//! Fixed memory: one bucket per second for [`WINDOW_SECS`] seconds, each
//! with two log-scale histograms (about 60 KiB per node). Recording is a
//! short mutex hold on the serving path.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::protocol::events::ServeOutcome;

/// Seconds of served calls the window covers.
pub const WINDOW_SECS: usize = 60;
/// Histogram buckets: bucket `i` holds durations near 2^(i/4) µs, so 128
/// of them reach about 71 minutes at ±9 %.
const BUCKETS: usize = 128;

#[derive(Clone)]
struct Second {
    /// Which second since the start this bucket holds.
    at: u64,
    served: u32,
    errors: u32,
    duration: [u32; BUCKETS],
    first_byte: [u32; BUCKETS],
}

impl Second {
    fn empty(at: u64) -> Self {
        Self {
            at,
            served: 0,
            errors: 0,
            duration: [0; BUCKETS],
            first_byte: [0; BUCKETS],
        }
    }
}

/// The last route-file reload and how it went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadMark {
    pub ok: bool,
    /// When, in ms since the Unix epoch.
    pub at_ms: u64,
    /// Why the file was rejected (the old table stayed).
    pub error: Option<String>,
}

/// Served calls over the window, as a fleet row shows them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServedLately {
    pub window_secs: u64,
    pub calls: u64,
    pub errors: u64,
    pub p50: Option<Duration>,
    pub p99: Option<Duration>,
    pub backend_first_byte_p50: Option<Duration>,
}

impl ServedLately {
    pub fn per_sec(&self) -> f64 {
        self.calls as f64 / self.window_secs.max(1) as f64
    }

    /// Errors as a share of calls (0 with no calls).
    pub fn error_share(&self) -> f64 {
        if self.calls == 0 {
            0.0
        } else {
            self.errors as f64 / self.calls as f64
        }
    }
}

struct Inner {
    seconds: Vec<Second>,
    last_reload: Option<ReloadMark>,
    evictions: u64,
}

pub struct Recent {
    started: Instant,
    started_at_ms: u64,
    inner: Mutex<Inner>,
}

impl Default for Recent {
    fn default() -> Self {
        Self::new()
    }
}

fn bucket_of(d: Duration) -> usize {
    let us = d.as_micros().max(1) as f64;
    ((us.log2() * 4.0) as usize).min(BUCKETS - 1)
}

/// The middle of bucket `i`, as a duration.
fn duration_of(i: usize) -> Duration {
    Duration::from_micros(2f64.powf((i as f64 + 0.5) / 4.0) as u64)
}

fn percentile(hist: &[u32; BUCKETS], total: u64, p: f64) -> Option<Duration> {
    if total == 0 {
        return None;
    }
    let rank = ((total as f64) * p).ceil().max(1.0) as u64;
    let mut seen = 0u64;
    for (i, n) in hist.iter().enumerate() {
        seen += u64::from(*n);
        if seen >= rank {
            return Some(duration_of(i));
        }
    }
    None
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What counts against a node: refusals, failures, and backend answers of
/// 500 and above. A caller that went away chose to; that is no error.
fn is_error(outcome: &ServeOutcome) -> bool {
    match outcome {
        ServeOutcome::Ok { status } => *status >= 500,
        ServeOutcome::CallerGone { .. } => false,
        _ => true,
    }
}

impl Recent {
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            started_at_ms: now_ms(),
            inner: Mutex::new(Inner {
                seconds: Vec::new(),
                last_reload: None,
                evictions: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// When the node started, in ms since the Unix epoch.
    pub fn started_at_ms(&self) -> u64 {
        self.started_at_ms
    }

    /// One served call ended.
    pub fn served(&self, outcome: &ServeOutcome, elapsed: Duration, first_byte: Option<Duration>) {
        self.served_at(self.started.elapsed(), outcome, elapsed, first_byte);
    }

    fn served_at(
        &self,
        since_start: Duration,
        outcome: &ServeOutcome,
        elapsed: Duration,
        first_byte: Option<Duration>,
    ) {
        let sec = since_start.as_secs();
        let mut inner = self.lock();
        if inner.seconds.is_empty() {
            inner.seconds = (0..WINDOW_SECS).map(|_| Second::empty(u64::MAX)).collect();
        }
        let slot = &mut inner.seconds[(sec as usize) % WINDOW_SECS];
        if slot.at != sec {
            *slot = Second::empty(sec);
        }
        slot.served = slot.served.saturating_add(1);
        if is_error(outcome) {
            slot.errors = slot.errors.saturating_add(1);
        }
        let d = &mut slot.duration[bucket_of(elapsed)];
        *d = d.saturating_add(1);
        if let Some(fb) = first_byte {
            let f = &mut slot.first_byte[bucket_of(fb)];
            *f = f.saturating_add(1);
        }
    }

    pub fn reloaded(&self, ok: bool, error: Option<String>) {
        self.lock().last_reload = Some(ReloadMark {
            ok,
            at_ms: now_ms(),
            error,
        });
    }

    pub fn evicted(&self) {
        self.lock().evictions += 1;
    }

    pub fn last_reload(&self) -> Option<ReloadMark> {
        self.lock().last_reload.clone()
    }

    pub fn evictions(&self) -> u64 {
        self.lock().evictions
    }

    /// Served calls of the last [`WINDOW_SECS`] seconds (the current
    /// second included).
    pub fn served_lately(&self) -> ServedLately {
        self.served_lately_at(self.started.elapsed())
    }

    fn served_lately_at(&self, since_start: Duration) -> ServedLately {
        let now = since_start.as_secs();
        let inner = self.lock();
        let mut duration = [0u32; BUCKETS];
        let mut first_byte = [0u32; BUCKETS];
        let (mut calls, mut errors, mut timed) = (0u64, 0u64, 0u64);
        for s in &inner.seconds {
            if s.at > now || now - s.at >= WINDOW_SECS as u64 {
                continue;
            }
            calls += u64::from(s.served);
            errors += u64::from(s.errors);
            for i in 0..BUCKETS {
                duration[i] = duration[i].saturating_add(s.duration[i]);
                first_byte[i] = first_byte[i].saturating_add(s.first_byte[i]);
                timed += u64::from(s.first_byte[i]);
            }
        }
        // Young nodes: the rate is over the seconds they have lived.
        let window_secs = (now + 1).min(WINDOW_SECS as u64);
        ServedLately {
            window_secs,
            calls,
            errors,
            p50: percentile(&duration, calls, 0.50),
            p99: percentile(&duration, calls, 0.99),
            backend_first_byte_p50: percentile(&first_byte, timed, 0.50),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: ServeOutcome = ServeOutcome::Ok { status: 200 };

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn percentiles_land_within_a_bucket_of_the_truth() {
        let r = Recent::new();
        // 99 calls of 10 ms and one of 900 ms: p50 10 ms, p99 10 ms; with
        // two slow ones in 100, p99 is the slow one.
        for _ in 0..98 {
            r.served_at(ms(1500), &OK, ms(10), Some(ms(2)));
        }
        r.served_at(ms(1500), &OK, ms(900), None);
        r.served_at(ms(1500), &OK, ms(900), None);
        let s = r.served_lately_at(ms(2000));
        assert_eq!(s.calls, 100);
        let near = |d: Option<Duration>, want: Duration| {
            let d = d.unwrap().as_secs_f64();
            (d / want.as_secs_f64() - 1.0).abs() < 0.1
        };
        assert!(near(s.p50, ms(10)), "p50 {:?}", s.p50);
        assert!(near(s.p99, ms(900)), "p99 {:?}", s.p99);
        assert!(near(s.backend_first_byte_p50, ms(2)));
        assert_eq!(s.window_secs, 3);
    }

    #[test]
    fn errors_are_refusals_failures_and_5xx_not_callers_that_left() {
        let r = Recent::new();
        r.served_at(ms(0), &OK, ms(1), None);
        r.served_at(ms(0), &ServeOutcome::Ok { status: 503 }, ms(1), None);
        r.served_at(ms(0), &ServeOutcome::RouteNotFound, ms(1), None);
        let gone = ServeOutcome::CallerGone { error: "x".into() };
        r.served_at(ms(0), &gone, ms(1), None);
        let s = r.served_lately_at(ms(0));
        assert_eq!((s.calls, s.errors), (4, 2));
        assert_eq!(s.error_share(), 0.5);
    }

    #[test]
    fn calls_older_than_the_window_are_forgotten() {
        let r = Recent::new();
        r.served_at(Duration::from_secs(5), &OK, ms(1), None);
        r.served_at(Duration::from_secs(70), &OK, ms(1), None);
        let s = r.served_lately_at(Duration::from_secs(70));
        assert_eq!(s.calls, 1, "the call at 5 s is past the minute");
        assert_eq!(s.window_secs, WINDOW_SECS as u64);
        let later = r.served_lately_at(Duration::from_secs(200));
        assert_eq!(later.calls, 0);
        assert_eq!(later.p50, None);
    }
}

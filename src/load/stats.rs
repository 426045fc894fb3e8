//! A run's samples summarised as the inference benchmarks report them
//! (AIPerf, `vllm bench serve`): TTFT, ITL, TPOT and end-to-end latency as
//! percentiles, tokens/s, calls/s, failures by class, and goodput against
//! targets. Percentiles are nearest-rank over the recorded samples.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::sample::Sample;

/// p50/p90/p99/max/mean of some durations, in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Percentiles {
    pub count: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

/// The nearest-rank percentile `p` (0-100) of sorted `values`.
pub fn nearest_rank(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Percentiles {
    pub fn of(mut values: Vec<Duration>) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        values.sort();
        let s = |d: Duration| d.as_secs_f64();
        Some(Self {
            count: values.len(),
            p50: s(nearest_rank(&values, 50.0)),
            p90: s(nearest_rank(&values, 90.0)),
            p99: s(nearest_rank(&values, 99.0)),
            max: s(values[values.len() - 1]),
            mean: s(values.iter().sum::<Duration>() / values.len() as u32),
        })
    }
}

/// Targets a request must meet to count towards goodput.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Goodput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttft: Option<f64>,
    /// The request's mean gap between tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub itl: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tpot: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e2e: Option<f64>,
}

impl Goodput {
    /// Parses `ttft:500ms,itl:50ms,e2e:10s` (units ms or s).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut g = Goodput::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once(':')
                .ok_or_else(|| format!("goodput target {part:?} must look like ttft:500ms"))?;
            let secs = parse_secs(value.trim()).ok_or_else(|| {
                format!("goodput target {part:?}: {value:?} is not a time like 500ms or 2s")
            })?;
            match key.trim() {
                "ttft" => g.ttft = Some(secs),
                "itl" => g.itl = Some(secs),
                "tpot" => g.tpot = Some(secs),
                "e2e" => g.e2e = Some(secs),
                other => {
                    return Err(format!(
                        "unknown goodput metric {other:?} (ttft, itl, tpot, e2e)"
                    ))
                }
            }
        }
        Ok(g)
    }

    pub fn is_set(&self) -> bool {
        *self != Goodput::default()
    }

    /// Whether a successful sample meets every target (a missing metric
    /// fails a target set on it).
    pub fn met(&self, s: &Sample) -> bool {
        let within = |target: Option<f64>, value: Option<Duration>| match target {
            None => true,
            Some(t) => value.is_some_and(|v| v.as_secs_f64() <= t),
        };
        s.ok()
            && within(self.ttft, s.ttft)
            && within(self.itl, s.mean_itl())
            && within(self.tpot, s.tpot())
            && within(self.e2e, Some(s.e2e))
    }
}

fn parse_secs(v: &str) -> Option<f64> {
    let (num, scale) = if let Some(n) = v.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = v.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1.0)
    } else {
        (v, 1e-3)
    };
    let n: f64 = num.trim().parse().ok()?;
    (n.is_finite() && n >= 0.0).then_some(n * scale)
}

/// What a run did.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct Summary {
    pub requests: usize,
    pub ok: usize,
    pub failed: usize,
    /// Failed requests by class.
    pub failures: BTreeMap<String, usize>,
    /// Requests started but not finished when the run was interrupted.
    pub unfinished: usize,
    pub seconds: f64,
    /// Successful calls per second: failures never read as throughput.
    pub calls_per_sec: f64,
    /// Every call started, failed or not, per second.
    pub attempts_per_sec: f64,
    pub e2e: Option<Percentiles>,
    pub ttfb: Option<Percentiles>,
    pub ttft: Option<Percentiles>,
    /// Every gap between tokens, pooled over requests.
    pub itl: Option<Percentiles>,
    pub tpot: Option<Percentiles>,
    pub output_tokens: u64,
    /// Some counts were estimated from events (the backend reported none).
    pub tokens_estimated: bool,
    pub tokens_per_sec: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goodput: Option<GoodputResult>,
}

#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct GoodputResult {
    pub targets: Goodput,
    pub met: usize,
    pub per_sec: f64,
}

impl Summary {
    /// The end-of-run table, as `vllm bench serve` prints it.
    pub fn table(&self) -> String {
        let s = self;
        let mut t = String::new();
        let line = |t: &mut String, k: &str, v: String| t.push_str(&format!("{k:<28} {v}\n"));
        line(
            &mut t,
            "requests",
            format!("{} ({} ok, {} failed)", s.requests, s.ok, s.failed),
        );
        for (class, n) in &s.failures {
            line(&mut t, &format!("  failed: {class}"), n.to_string());
        }
        if s.unfinished > 0 {
            line(&mut t, "unfinished (interrupted)", s.unfinished.to_string());
        }
        line(&mut t, "duration", format!("{:.2}s", s.seconds));
        line(&mut t, "calls/s (ok)", format!("{:.1}", s.calls_per_sec));
        if s.failed > 0 {
            line(
                &mut t,
                "attempts/s (ok and failed)",
                format!("{:.1}", s.attempts_per_sec),
            );
        }
        let tokens = if s.tokens_estimated {
            format!("{} (estimated from events)", s.output_tokens)
        } else {
            s.output_tokens.to_string()
        };
        line(&mut t, "output tokens", tokens);
        line(
            &mut t,
            "output tokens/s",
            format!("{:.1}", s.tokens_per_sec),
        );
        if let Some(g) = &s.goodput {
            line(
                &mut t,
                "goodput (requests met/s)",
                format!("{:.2} ({} met)", g.per_sec, g.met),
            );
        }
        t.push_str(&format!(
            "{:<28} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
            "ms", "p50", "p90", "p99", "max", "mean"
        ));
        let rows: [(&str, &Option<Percentiles>); 5] = [
            ("time to first token", &s.ttft),
            ("inter-token latency", &s.itl),
            ("time per output token", &s.tpot),
            ("time to first byte", &s.ttfb),
            ("end to end", &s.e2e),
        ];
        for (name, p) in rows {
            if let Some(p) = p {
                let f = |x: f64| format!("{:.2}", x * 1e3);
                t.push_str(&format!(
                    "{name:<28} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
                    f(p.p50),
                    f(p.p90),
                    f(p.p99),
                    f(p.max),
                    f(p.mean)
                ));
            }
        }
        t
    }

    pub fn of(samples: &[Sample], wall: Duration, unfinished: usize, goodput: &Goodput) -> Self {
        let ok: Vec<&Sample> = samples.iter().filter(|s| s.ok()).collect();
        let mut failures = BTreeMap::new();
        for s in samples.iter().filter(|s| !s.ok()) {
            *failures
                .entry(s.error.clone().unwrap_or_default())
                .or_insert(0) += 1;
        }
        let secs = wall.as_secs_f64().max(1e-9);
        let output_tokens: u64 = ok.iter().map(|s| s.tokens).sum();
        let met = ok.iter().filter(|s| goodput.met(s)).count();
        Self {
            requests: samples.len(),
            ok: ok.len(),
            failed: samples.len() - ok.len(),
            failures,
            unfinished,
            seconds: wall.as_secs_f64(),
            calls_per_sec: ok.len() as f64 / secs,
            attempts_per_sec: samples.len() as f64 / secs,
            e2e: Percentiles::of(ok.iter().map(|s| s.e2e).collect()),
            ttfb: Percentiles::of(ok.iter().filter_map(|s| s.ttfb).collect()),
            ttft: Percentiles::of(ok.iter().filter_map(|s| s.ttft).collect()),
            itl: Percentiles::of(ok.iter().flat_map(|s| s.itl.iter().copied()).collect()),
            tpot: Percentiles::of(ok.iter().filter_map(|s| s.tpot()).collect()),
            output_tokens,
            tokens_estimated: ok.iter().any(|s| s.tokens > 0 && !s.tokens_reported),
            tokens_per_sec: output_tokens as f64 / secs,
            goodput: goodput.is_set().then(|| GoodputResult {
                targets: *goodput,
                met,
                per_sec: met as f64 / secs,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_calls_are_not_throughput() {
        let failed = Sample {
            error: Some("dial".into()),
            e2e: Duration::from_micros(200),
            ..Sample::default()
        };
        let s = Summary::of(
            &[failed.clone(), failed.clone(), failed],
            Duration::from_millis(1),
            0,
            &Goodput::default(),
        );
        assert_eq!((s.ok, s.failed), (0, 3));
        assert_eq!(s.calls_per_sec, 0.0, "three failed dials are no calls/s");
        assert!(s.attempts_per_sec > 0.0);
        assert!(s.table().contains("calls/s (ok)"));
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(nearest_rank(&v, 50.0), Duration::from_millis(50));
        assert_eq!(nearest_rank(&v, 99.0), Duration::from_millis(99));
        assert_eq!(nearest_rank(&v, 100.0), Duration::from_millis(100));
        assert_eq!(nearest_rank(&v[..1], 50.0), Duration::from_millis(1));
        let p = Percentiles::of(v).unwrap();
        assert_eq!((p.count, p.max), (100, 0.1));
        assert!(Percentiles::of(Vec::new()).is_none());
    }

    #[test]
    fn goodput_targets_parse_and_bad_ones_say_why() {
        let g = Goodput::parse("ttft:500ms, itl:50ms,e2e:10s").unwrap();
        assert_eq!(
            (g.ttft, g.itl, g.e2e, g.tpot),
            (Some(0.5), Some(0.05), Some(10.0), None)
        );
        assert!(Goodput::parse("ttft=5").unwrap_err().contains("ttft:500ms"));
        assert!(Goodput::parse("speed:5ms").unwrap_err().contains("unknown"));
        assert!(Goodput::parse("ttft:fast")
            .unwrap_err()
            .contains("not a time"));
    }
}

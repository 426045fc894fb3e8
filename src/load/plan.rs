//! A load run's shape as one line, for the console's prompt:
//! `n=200 c=8`, `z=30s c=4 rate=20`, `goodput=ttft:500ms,e2e:10s`. The
//! words are the CLI's flags without their dashes.

use std::fmt;
use std::time::Duration;

use super::{Goodput, Stop};

/// Default requests of a load run.
pub const DEFAULT_LOAD_REQUESTS: u64 = 200;
/// Default requests in flight at once.
pub const DEFAULT_LOAD_CONCURRENCY: usize = 8;
/// Most requests in flight a plan may ask for.
pub const MAX_LOAD_CONCURRENCY: usize = 4096;

/// How many requests, how many at once, at what rate, against what targets.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LoadPlan {
    pub stop: Stop,
    pub concurrency: usize,
    pub rate: Option<f64>,
    pub goodput: Goodput,
    /// The goodput targets as typed, to show them back.
    pub goodput_text: Option<String>,
}

impl Default for LoadPlan {
    fn default() -> Self {
        Self {
            stop: Stop::Requests(DEFAULT_LOAD_REQUESTS),
            concurrency: DEFAULT_LOAD_CONCURRENCY,
            rate: None,
            goodput: Goodput::default(),
            goodput_text: None,
        }
    }
}

/// Parses `30s`, `2m`, `500ms`, `1h` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else if let Some(n) = t.strip_suffix('d') {
        (n, 86_400.0)
    } else {
        (t.strip_suffix('s').unwrap_or(t), 1.0)
    };
    let n: f64 = num.trim().parse().ok()?;
    Duration::try_from_secs_f64(n * scale).ok()
}

fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

impl LoadPlan {
    /// Parses the words of a plan; what is not said keeps its default.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut plan = Self::default();
        for word in text.split_whitespace() {
            let (key, value) = word
                .split_once('=')
                .ok_or_else(|| format!("{word:?}: write KEY=VALUE, e.g. n=200 c=8 z=30s"))?;
            match key {
                "n" => {
                    let n: u64 = value
                        .parse()
                        .map_err(|_| format!("n={value}: requests must be a whole number"))?;
                    plan.stop = Stop::Requests(n);
                }
                "z" => {
                    let d = parse_duration(value)
                        .filter(|d| !d.is_zero())
                        .ok_or_else(|| format!("z={value}: not a duration like 30s or 2m"))?;
                    plan.stop = Stop::After(d);
                }
                "c" => {
                    plan.concurrency = value
                        .parse()
                        .ok()
                        .filter(|c| (1..=MAX_LOAD_CONCURRENCY).contains(c))
                        .ok_or_else(|| {
                            format!("c={value}: concurrency must be 1 to {MAX_LOAD_CONCURRENCY}")
                        })?;
                }
                "rate" => {
                    let r: f64 = value
                        .parse()
                        .ok()
                        .filter(|r: &f64| r.is_finite() && *r > 0.0)
                        .ok_or_else(|| format!("rate={value}: requests per second above 0"))?;
                    plan.rate = Some(r);
                }
                "goodput" => {
                    plan.goodput = Goodput::parse(value)?;
                    plan.goodput_text = Some(value.to_string());
                }
                other => {
                    return Err(format!(
                        "{other:?} is not a load setting: n (requests), z (duration), c (at once), rate, goodput"
                    ))
                }
            }
        }
        Ok(plan)
    }
}

impl fmt::Display for LoadPlan {
    /// The plan as [`LoadPlan::parse`] reads it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.stop {
            Stop::Requests(n) => write!(f, "n={n}")?,
            Stop::After(d) => write!(f, "z={}", fmt_duration(d))?,
        }
        write!(f, " c={}", self.concurrency)?;
        if let Some(r) = self.rate {
            write!(f, " rate={r}")?;
        }
        if let Some(g) = &self.goodput_text {
            write!(f, " goodput={g}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_reads_back_what_it_shows() {
        for text in [
            "n=200 c=8",
            "z=30s c=4 rate=20",
            "n=5 c=1 goodput=ttft:500ms,e2e:10s",
            "z=1500ms c=2",
        ] {
            let plan = LoadPlan::parse(text).unwrap();
            assert_eq!(plan.to_string(), text);
            assert_eq!(LoadPlan::parse(&plan.to_string()).unwrap(), plan);
        }
        assert_eq!(LoadPlan::parse("").unwrap(), LoadPlan::default());
        let p = LoadPlan::parse("z=2m").unwrap();
        assert_eq!(p.stop, Stop::After(Duration::from_secs(120)));
    }

    #[test]
    fn a_bad_word_says_what_to_write() {
        for (text, says) in [
            ("n=ten", "whole number"),
            ("c=0", "1 to 4096"),
            ("c=99999", "1 to 4096"),
            ("z=soon", "duration"),
            ("z=0s", "duration"),
            ("rate=-1", "above 0"),
            ("rate=NaN", "above 0"),
            ("goodput=ttft", "ttft:500ms"),
            ("x=1", "not a load setting"),
            ("200", "KEY=VALUE"),
        ] {
            let e = LoadPlan::parse(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}

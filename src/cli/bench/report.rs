//! The report: rows of direct against through-the-hop figures, medians of
//! repeats, and samples that count their failures instead of dropping them.

use std::time::Duration;

use serde::Serialize;

/// One row of the report.
#[derive(Clone, Debug, Serialize)]
pub(super) struct Row {
    pub name: String,
    pub direct: Option<f64>,
    pub hop: f64,
    pub unit: String,
    pub note: String,
}

#[derive(Debug, Serialize)]
pub(super) struct Report {
    pub cores: usize,
    pub size: String,
    /// Flags the serving node process ran with (`--node-arg`).
    pub node_args: Vec<String>,
    pub rows: Vec<Row>,
}

impl Report {
    pub(super) fn table(&self) -> String {
        let with = if self.node_args.is_empty() {
            String::new()
        } else {
            format!("; node process run with {}", self.node_args.join(" "))
        };
        let mut out = format!(
            "peerapi bench ({} run, {} cores, loopback, medians{with})\n{:<44} {:>14} {:>14} {:>8}\n",
            self.size, self.cores, "measurement", "direct", "through hop", "ratio"
        );
        for r in &self.rows {
            let direct = r
                .direct
                .map(|d| fmt_num(d, &r.unit))
                .unwrap_or_else(|| "-".into());
            let ratio = match r.direct {
                Some(d) if d > 0.0 => format!("{:.2}", r.hop / d),
                _ => "-".into(),
            };
            out.push_str(&format!(
                "{:<44} {:>14} {:>14} {:>8}  {}\n",
                r.name,
                direct,
                fmt_num(r.hop, &r.unit),
                ratio,
                r.note
            ));
        }
        out
    }
}

fn fmt_num(v: f64, unit: &str) -> String {
    match unit {
        "us" => format!("{v:.0} µs"),
        "ms" => format!("{v:.2} ms"),
        "MB" => format!("{v:.1} MB"),
        "MB/s" => format!("{v:.0} MB/s"),
        "/s" => format!("{v:.0} /s"),
        other => format!("{v:.1} {other}"),
    }
}

pub(super) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

pub(super) fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v.get(((v.len().saturating_sub(1)) as f64 * p).round() as usize)
        .copied()
        .unwrap_or_default()
}

/// Samples of one measurement: the values of the verified ones, and the
/// failed ones counted (never dropped silently) with the first reason.
#[derive(Default)]
pub(super) struct Samples {
    values: Vec<f64>,
    pub(super) failed: usize,
    first_error: Option<String>,
}

impl Samples {
    pub(super) fn ok(&mut self, v: f64) {
        self.values.push(v);
    }

    pub(super) fn fail(&mut self, why: impl Into<String>) {
        self.failed += 1;
        self.first_error.get_or_insert_with(|| why.into());
    }

    pub(super) fn median(&self) -> f64 {
        median(self.values.clone())
    }

    /// "verified: <what>; K failed (first: ...)".
    pub(super) fn note(&self, verified: &str) -> String {
        match &self.first_error {
            None => format!("{verified}; 0 failed"),
            Some(e) => format!(
                "{verified}; {} of {} FAILED (first: {e})",
                self.failed,
                self.failed + self.values.len()
            ),
        }
    }
}

/// The value of an unlabelled gauge in Prometheus text.
pub(super) fn gauge(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

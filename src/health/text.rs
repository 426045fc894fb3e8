//! The health table and one node's history as text (`subnet health`).

use std::fmt::Write;
use std::time::{Duration, SystemTime};

use super::store::Change;
use super::table::{Bucket, NodeHealth};
use super::verdict::fmt_age;

/// `abcd…wxyz12`: enough of a peer id to tell nodes apart.
pub fn short_peer(peer: &str) -> String {
    // By characters: a row read back from a file is text, not a peer id.
    let chars: Vec<char> = peer.chars().collect();
    if chars.len() <= 14 {
        return peer.to_string();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 8..].iter().collect();
    format!("{head}…{tail}")
}

fn opt_ms(v: Option<f64>) -> String {
    match v {
        Some(ms) if ms < 10.0 => format!("{ms:.1}ms"),
        Some(ms) => format!("{ms:.0}ms"),
        None => "-".into(),
    }
}

fn ago(at_s: i64, now: SystemTime) -> String {
    let now_s = super::store::secs(now);
    fmt_age(Duration::from_secs(now_s.saturating_sub(at_s).max(0) as u64)) + " ago"
}

/// The sparkline of `points` in block characters.
pub fn sparkline(points: &[f64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = points.iter().copied().fold(0.0_f64, f64::max);
    points
        .iter()
        .map(|p| {
            if max <= 0.0 {
                BARS[0]
            } else {
                BARS[((p / max) * 7.0).round().clamp(0.0, 7.0) as usize]
            }
        })
        .collect()
}

/// One line per node, worst first.
pub fn table(rows: &[NodeHealth], now: SystemTime) -> String {
    let mut out = format!(
        "{:<14} {:<11} {:>6} {:>7} {:>7} {:>7}  {:<24} {:<10} {:<9} REASON\n",
        "NODE", "VERDICT", "AVAIL", "RTT p50", "p99", "PROBE", "RTT (latest 24)", "CHANGED", "DAG"
    );
    for r in rows {
        let changed = r
            .last_change
            .as_ref()
            .map_or("-".to_string(), |c| ago(c.at_s, now));
        let _ = writeln!(
            out,
            "{:<14} {:<11} {:>5.1}% {:>7} {:>7} {:>7}  {:<24} {:<10} {:<9} {}",
            short_peer(&r.peer),
            r.verdict.name(),
            r.availability * 100.0,
            opt_ms(r.rtt_p50_ms),
            opt_ms(r.rtt_p99_ms),
            opt_ms(r.probe_p50_ms),
            sparkline(&r.rtt_recent_ms),
            changed,
            r.dag.map_or("-".into(), |d| d.short()),
            r.reason
        );
    }
    if rows.is_empty() {
        out.push_str("(no probes in the window)\n");
    }
    out
}

/// Our own reachability, in a line: its state and how we know, the
/// most agreed observed address, and the share of rounds reachable.
pub fn reachability_line(state: &str, reason: &str, observed: &str, share: Option<f64>) -> String {
    let mut out = format!("this node: {state} ({reason})");
    if !observed.is_empty() {
        let _ = write!(out, "; observed at {observed}");
    }
    if let Some(s) = share {
        let _ = write!(
            out,
            "; reachable at {:.0}% of the rounds that could tell",
            s * 100.0
        );
    }
    out.push('\n');
    out
}

/// One node's hourly buckets and its verdict changes.
pub fn history(peer: &str, hours: &[Bucket], changes: &[Change]) -> String {
    let mut out =
        format!("{peer}\n\nHOUR (UTC)         PROBES  AVAIL  RTT p50     p99  PROBE p50     p99\n");
    for b in hours {
        let _ = writeln!(
            out,
            "{:<18} {:>6} {:>5.1}% {:>8} {:>7} {:>10} {:>7}",
            utc(b.start_s),
            b.probes,
            b.availability * 100.0,
            opt_ms(b.rtt_p50_ms),
            opt_ms(b.rtt_p99_ms),
            opt_ms(b.probe_p50_ms),
            opt_ms(b.probe_p99_ms)
        );
    }
    out.push_str("\nCHANGES\n");
    for c in changes {
        let _ = writeln!(
            out,
            "{}  {} -> {}  {}",
            utc(c.at_s),
            c.old.map_or("-", |v| v.name()),
            c.new.name(),
            c.reason
        );
    }
    out
}

/// `2026-12-04 01:00` (UTC) from seconds since the epoch.
pub fn utc(at_s: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(at_s) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        ),
        Err(_) => at_s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_sparklines() {
        assert_eq!(utc(0), "1970-01-01 00:00");
        assert_eq!(utc(1_796_346_000), "2026-12-04 01:00");
        assert_eq!(sparkline(&[1.0, 4.0, 8.0]), "▂▅█");
        assert_eq!(short_peer("12D3KooWAbCdEfGhIjKlMnOp"), "12D3…IjKlMnOp");
        assert_eq!(short_peer("ééééééééééééééééé"), "éééé…éééééééé");
    }
}

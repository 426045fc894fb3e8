//! The health table from the history: one row per node with its latest
//! verdict, availability and percentiles over a window; and one node's
//! history in hourly or daily buckets. Shared by `subnet health`, the
//! console and Prometheus' view of the latest verdicts.

use std::time::{Duration, SystemTime};

use super::store::{Change, History, StoredProbe};
use super::Verdict;

/// One node's health over a window.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NodeHealth {
    pub peer: String,
    pub verdict: Verdict,
    pub reason: String,
    /// The latest probe (seconds since the epoch).
    pub last_probe_s: i64,
    pub probes: usize,
    /// Share of the window's probes that found the node reachable.
    pub availability: f64,
    pub rtt_p50_ms: Option<f64>,
    pub rtt_p99_ms: Option<f64>,
    pub probe_p50_ms: Option<f64>,
    pub probe_p99_ms: Option<f64>,
    /// The latest round trips, oldest first (a sparkline's points).
    pub rtt_recent_ms: Vec<f64>,
    pub first_seen_s: i64,
    /// The node's newest verdict change in the window.
    pub last_change: Option<Change>,
    /// It was online at some probe of the window.
    pub was_online: bool,
    /// Its DAG heads against ours at the newest probe that compared them.
    #[serde(default)]
    pub dag: Option<super::dag::DagSync>,
}

impl NodeHealth {
    /// Online earlier in the window, and now down (unreachable, offline
    /// or stale): what `subnet health` exits 1 for.
    pub fn went_down(&self) -> bool {
        self.was_online
            && matches!(
                self.verdict,
                Verdict::Unreachable | Verdict::Offline | Verdict::Stale
            )
    }
}

/// Points kept for the sparkline.
pub const RECENT_POINTS: usize = 24;

/// The `q`-quantile (0..=1) of `v` (sorted here), nearest rank.
pub fn quantile(v: &mut [f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

fn ms(us: Option<i64>) -> Option<f64> {
    us.map(|u| u as f64 / 1000.0)
}

/// Rows for every node probed since `since`, worst verdict first, then by peer.
pub fn table(history: &History, since: SystemTime) -> rusqlite::Result<Vec<NodeHealth>> {
    let probes = history.probes_since(since)?;
    let changes = history.changes_since(since, None)?;
    let first_seen = history.first_seen()?;
    let mut rows: Vec<NodeHealth> = probes
        .chunk_by(|a, b| a.peer == b.peer)
        .map(|of_node| {
            let mut row = summarise(of_node);
            row.first_seen_s = first_seen.get(&row.peer).copied().unwrap_or(0);
            row.last_change = changes.iter().rev().find(|c| c.peer == row.peer).cloned();
            row
        })
        .collect();
    rows.sort_by(|a, b| {
        b.verdict
            .level()
            .cmp(&a.verdict.level())
            .then(a.peer.cmp(&b.peer))
    });
    Ok(rows)
}

/// One node's probes (oldest first, at least one) as a row.
pub fn summarise(probes: &[StoredProbe]) -> NodeHealth {
    let last = probes.last().expect("summarise takes one probe or more");
    let up = probes.iter().filter(|p| p.verdict.reachable()).count();
    let mut rtts: Vec<f64> = probes.iter().filter_map(|p| ms(p.rtt_us)).collect();
    let recent = rtts[rtts.len().saturating_sub(RECENT_POINTS)..].to_vec();
    let mut times: Vec<f64> = probes.iter().filter_map(|p| ms(p.probe_us)).collect();
    NodeHealth {
        peer: last.peer.clone(),
        verdict: last.verdict,
        reason: last.reason.clone(),
        last_probe_s: last.at_s,
        probes: probes.len(),
        availability: up as f64 / probes.len() as f64,
        rtt_p50_ms: quantile(&mut rtts, 0.5),
        rtt_p99_ms: quantile(&mut rtts, 0.99),
        probe_p50_ms: quantile(&mut times, 0.5),
        probe_p99_ms: quantile(&mut times, 0.99),
        rtt_recent_ms: recent,
        first_seen_s: 0,
        last_change: None,
        was_online: probes.iter().any(|p| p.verdict == Verdict::Online),
        dag: probes.iter().rev().find_map(|p| p.dag),
    }
}

/// One bucket of a node's history.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Bucket {
    /// Its start (seconds since the epoch).
    pub start_s: i64,
    pub probes: usize,
    pub availability: f64,
    pub rtt_p50_ms: Option<f64>,
    pub rtt_p99_ms: Option<f64>,
    pub probe_p50_ms: Option<f64>,
    pub probe_p99_ms: Option<f64>,
}

/// A node's probes in buckets of `width` (an hour, a day), oldest first.
pub fn buckets(probes: &[StoredProbe], width: Duration) -> Vec<Bucket> {
    let w = width.as_secs().max(1) as i64;
    probes
        .chunk_by(|a, b| a.at_s.div_euclid(w) == b.at_s.div_euclid(w))
        .map(|group| {
            let row = summarise(group);
            Bucket {
                start_s: group[0].at_s.div_euclid(w) * w,
                probes: row.probes,
                availability: row.availability,
                rtt_p50_ms: row.rtt_p50_ms,
                rtt_p99_ms: row.rtt_p99_ms,
                probe_p50_ms: row.probe_p50_ms,
                probe_p99_ms: row.probe_p99_ms,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(at_s: i64, verdict: Verdict, rtt_ms: i64) -> StoredProbe {
        StoredProbe {
            peer: "p".into(),
            at_s,
            verdict,
            reason: String::new(),
            rtt_us: Some(rtt_ms * 1000),
            probe_us: None,
            dag: None,
        }
    }

    #[test]
    fn availability_percentiles_and_buckets() {
        let probes: Vec<_> = (0..8)
            .map(|i| {
                let v = if i % 4 == 3 {
                    Verdict::Unreachable
                } else {
                    Verdict::Online
                };
                probe(3600 * (i / 4) + i, v, 10 * (i + 1))
            })
            .collect();
        let row = summarise(&probes);
        assert_eq!(row.availability, 0.75);
        assert_eq!(row.rtt_p50_ms, Some(40.0));
        assert_eq!(row.rtt_p99_ms, Some(80.0));
        assert_eq!(row.verdict, Verdict::Unreachable);
        assert!(row.went_down());
        let hours = buckets(&probes, Duration::from_secs(3600));
        assert_eq!(hours.len(), 2);
        assert_eq!((hours[1].start_s, hours[1].probes), (3600, 4));
        assert_eq!(hours[0].rtt_p50_ms, Some(20.0));
    }
}

//! The Health view: one row per node the node probes (verdict, reason,
//! availability over 24 h, RTT and its sparkline, last change), sorted by
//! `s`; Enter shows the selected node's verdict changes.

use super::State;
use crate::health::table::NodeHealth;
use crate::health::{Latest, Verdict};
use crate::tui::action::HealthAction;
use crate::tui::effect::Effect;

/// What the Health view is sorted by (`s` cycles).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HealthSort {
    /// Worst verdict first.
    #[default]
    Verdict,
    /// Least available first.
    Availability,
    /// Slowest first.
    Rtt,
    Peer,
}

impl HealthSort {
    fn next(self) -> Self {
        match self {
            Self::Verdict => Self::Availability,
            Self::Availability => Self::Rtt,
            Self::Rtt => Self::Peer,
            Self::Peer => Self::Verdict,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Verdict => "verdict",
            Self::Availability => "availability",
            Self::Rtt => "rtt",
            Self::Peer => "peer",
        }
    }
}

#[derive(Default)]
pub struct HealthView {
    pub show: bool,
    /// The node's latest answer: None until it came; Some(None) when the
    /// node does not probe.
    pub report: Option<Option<Latest>>,
    /// The rows in the sort order.
    pub rows: Vec<NodeHealth>,
    pub sel: usize,
    pub sort: HealthSort,
    /// Showing the selected node's changes.
    pub detail: bool,
    /// Words rows must match (`/`): peer id, verdict, reason, DAG, rtt<50ms.
    pub filter: super::peers::PeerFilter,
    /// Rows before the filter.
    pub total: usize,
}

impl HealthView {
    /// Narrows the rows to those `filter` lets through (`/`).
    pub fn set_filter(&mut self, filter: super::peers::PeerFilter) {
        self.filter = filter;
        self.refresh();
    }

    pub fn selected(&self) -> Option<&NodeHealth> {
        self.rows.get(self.sel)
    }

    /// Rows from the report: the history's when there is one, else the
    /// latest probes alone.
    fn refresh(&mut self) {
        let keep = self.selected().map(|r| r.peer.clone());
        let Some(Some(latest)) = &self.report else {
            self.rows.clear();
            return;
        };
        let mut rows = if latest.rows.is_empty() {
            latest.probes.iter().map(row_of_probe).collect()
        } else {
            latest.rows.clone()
        };
        let rtt = |r: &NodeHealth| r.rtt_p50_ms.unwrap_or(-1.0);
        match self.sort {
            HealthSort::Verdict => rows.sort_by(|a, b| {
                b.verdict
                    .level()
                    .cmp(&a.verdict.level())
                    .then(a.peer.cmp(&b.peer))
            }),
            HealthSort::Availability => {
                rows.sort_by(|a, b| a.availability.total_cmp(&b.availability))
            }
            HealthSort::Rtt => rows.sort_by(|a, b| rtt(b).total_cmp(&rtt(a))),
            HealthSort::Peer => rows.sort_by(|a, b| a.peer.cmp(&b.peer)),
        }
        self.total = rows.len();
        let f = &self.filter;
        rows.retain(|r| {
            let dag = r.dag.map(|d| d.short()).unwrap_or_default();
            let rtt = r
                .rtt_p50_ms
                .map(|ms| std::time::Duration::from_secs_f64(ms.max(0.0) / 1e3));
            f.matches_fields(&[&r.peer, r.verdict.name(), &r.reason, &dag], rtt)
        });
        self.rows = rows;
        self.sel = keep
            .and_then(|p| self.rows.iter().position(|r| r.peer == p))
            .unwrap_or(0)
            .min(self.rows.len().saturating_sub(1));
    }
}

/// A row from one probe, when the node keeps no history.
fn row_of_probe(p: &crate::health::prober::LatestProbe) -> NodeHealth {
    NodeHealth {
        peer: p.peer.clone(),
        verdict: p.verdict,
        reason: p.reason.clone(),
        last_probe_s: p.at_s,
        probes: 1,
        availability: if p.verdict.reachable() { 1.0 } else { 0.0 },
        rtt_p50_ms: p.rtt_ms,
        rtt_p99_ms: p.rtt_ms,
        probe_p50_ms: p.probe_ms,
        probe_p99_ms: p.probe_ms,
        rtt_recent_ms: p.rtt_ms.into_iter().collect(),
        first_seen_s: p.at_s,
        last_change: None,
        was_online: p.verdict == Verdict::Online,
        dag: p.dag,
    }
}

impl State {
    pub(super) fn on_health(&mut self, action: HealthAction) -> Vec<Effect> {
        let h = &mut self.health;
        match action {
            HealthAction::Toggle => {
                h.show = !h.show;
                h.detail = false;
                if h.show {
                    self.subnet.show = false;
                    self.events.show = false;
                }
                return vec![Effect::WatchHealth(self.health.show)];
            }
            HealthAction::Poll if h.show => return vec![Effect::FetchHealth],
            HealthAction::Poll => {}
            HealthAction::Report(report) => {
                h.report = Some(*report);
                h.refresh();
            }
            HealthAction::Up => h.sel = h.sel.saturating_sub(1),
            HealthAction::Down => h.sel = (h.sel + 1).min(h.rows.len().saturating_sub(1)),
            HealthAction::NextSort => {
                h.sort = h.sort.next();
                h.refresh();
            }
            HealthAction::Detail => h.detail = !h.detail && h.selected().is_some(),
            HealthAction::OpenFilter => {
                self.prompt = Some(super::prompt::Prompt::new(
                    super::prompt::PromptKind::HealthFilter,
                    "Filter nodes: words in id/verdict/reason/DAG, rtt<50ms, rtt>1s (empty: all)",
                    &h.filter.text,
                ));
            }
        }
        vec![]
    }
}

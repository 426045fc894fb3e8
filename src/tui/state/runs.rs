//! Runs from the composer, each in a view over the screen: its request to
//! every peer that serves the API (F), compared; many times to its target
//! (L, after a prompt for how many), measured live; or through the hop and
//! straight to this node's own backend for the route (D), side by side.

use crate::load::fanout::RowUpdate;
use crate::load::{HopVsDirect, LoadPlan, PeerResult, Progress, Summary};
use crate::tui::action::RunsAction;
use crate::tui::effect::{CallSpec, Effect};

use super::prompt::{Prompt, PromptKind};
use super::State;

/// Rounds of a hop-versus-direct comparison from the console.
pub const CONSOLE_HOP_VS_DIRECT_ROUNDS: usize = crate::load::direct::DEFAULT_HOP_VS_DIRECT_ROUNDS;

/// Progress reports kept for the load view's sparkline.
pub const MAX_TICKS: usize = 256;

/// What the runs view shows.
#[derive(Debug, Default)]
pub enum RunsView {
    #[default]
    Hidden,
    FanOut(FanOut),
    Load(Box<Load>),
    Direct(Box<Direct>),
}

/// A hop-versus-direct comparison.
#[derive(Debug, Default)]
pub struct Direct {
    pub route: String,
    pub target: String,
    pub rounds: usize,
    pub rounds_done: usize,
    /// Set when every round has run.
    pub result: Option<HopVsDirect>,
}

#[derive(Debug, Default)]
pub struct FanOut {
    pub route: String,
    pub peers: usize,
    /// One row per peer while the calls are out, filled as they progress.
    pub live: Vec<LiveRow>,
    /// None while the calls are out.
    pub results: Option<Vec<PeerResult>>,
    pub sort: SortBy,
    pub sel: usize,
    /// Show the selected peer's body against the reference's.
    pub diff: bool,
    /// The peer whose body the diff compares against (else the majority's).
    pub reference: Option<String>,
}

/// One peer's call while a fan-out runs.
#[derive(Clone, Debug, Default)]
pub struct LiveRow {
    pub peer: String,
    /// None: waiting for a slot (at most the fan-out's bound run at once).
    pub update: Option<RowUpdate>,
}

/// The comparison's sort column (`s` moves to the next).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortBy {
    #[default]
    Total,
    Ttfb,
    Ttft,
    Rate,
    Bytes,
    Peer,
}

impl SortBy {
    pub fn next(self) -> Self {
        use SortBy::*;
        match self {
            Total => Ttfb,
            Ttfb => Ttft,
            Ttft => Rate,
            Rate => Bytes,
            Bytes => Peer,
            Peer => Total,
        }
    }

    pub fn name(self) -> &'static str {
        use SortBy::*;
        match self {
            Total => "total",
            Ttfb => "ttfb",
            Ttft => "ttft",
            Rate => "tok/s",
            Bytes => "bytes",
            Peer => "peer",
        }
    }
}

impl FanOut {
    fn sort(&mut self) {
        let Some(results) = self.results.as_mut() else {
            return;
        };
        let key = self.sort;
        results.sort_by(|a, b| {
            let (a, b) = (&a.sample, &b.sample);
            match key {
                // Slowest, biggest, fastest-streaming first.
                SortBy::Total => b.e2e.cmp(&a.e2e),
                SortBy::Ttfb => b.ttfb.cmp(&a.ttfb),
                SortBy::Ttft => b.ttft.cmp(&a.ttft),
                SortBy::Rate => b.tokens.cmp(&a.tokens),
                SortBy::Bytes => b.bytes.cmp(&a.bytes),
                SortBy::Peer => a.peer.cmp(&b.peer),
            }
        });
    }

    /// The selected result and the one it is compared with: the marked
    /// reference, else the first agreeing with the majority.
    pub fn diff_pair(&self) -> Option<(&PeerResult, &PeerResult)> {
        let results = self.results.as_ref()?;
        let sel = results.get(self.sel)?;
        let against = match &self.reference {
            Some(peer) => results.iter().find(|r| &r.sample.peer == peer)?,
            None => results.iter().find(|r| r.same_as_majority == Some(true))?,
        };
        Some((sel, against))
    }
}

#[derive(Debug, Default)]
pub struct Load {
    pub route: String,
    pub target: String,
    pub plan: LoadPlan,
    pub progress: Progress,
    /// Requests finished between progress reports, newest last (bounded).
    pub per_tick: std::collections::VecDeque<u64>,
    /// Set when the run has ended.
    pub summary: Option<Box<Summary>>,
}

impl State {
    pub(super) fn on_runs(&mut self, action: RunsAction) -> Vec<Effect> {
        match action {
            RunsAction::StartFanOut => return self.start_fan_out(),
            RunsAction::AskLoad => {
                self.prompt = Some(Prompt::new(
                    PromptKind::LoadPlan,
                    "Load run: n=REQUESTS or z=30s, c=AT_ONCE, rate=PER_SEC, goodput=…",
                    &self.load_plan.to_string(),
                ));
            }
            RunsAction::StartLoad(plan) => return self.start_load(plan),
            RunsAction::StartHopVsDirect => return self.start_hop_vs_direct(),
            RunsAction::HopVsDirectRound(n) => {
                if let RunsView::Direct(d) = &mut self.runs {
                    d.rounds_done = n;
                }
            }
            RunsAction::HopVsDirectDone(result) => {
                if let RunsView::Direct(d) = &mut self.runs {
                    d.result = Some(*result);
                }
            }
            RunsAction::FanOutRow(i, update) => {
                if let RunsView::FanOut(f) = &mut self.runs {
                    if let Some(row) = f.live.get_mut(i) {
                        row.update = Some(update);
                    }
                }
            }
            RunsAction::FanOutDone(results) => {
                if let RunsView::FanOut(f) = &mut self.runs {
                    f.results = Some(results);
                    f.sort();
                }
            }
            RunsAction::LoadProgress(p) => {
                if let RunsView::Load(l) = &mut self.runs {
                    if l.per_tick.len() >= MAX_TICKS {
                        l.per_tick.pop_front();
                    }
                    l.per_tick.push_back(p.done.saturating_sub(l.progress.done));
                    l.progress = p;
                }
            }
            RunsAction::LoadDone(summary) => {
                if let RunsView::Load(l) = &mut self.runs {
                    l.summary = Some(summary);
                }
            }
            RunsAction::NextSort => {
                if let RunsView::FanOut(f) = &mut self.runs {
                    f.sort = f.sort.next();
                    f.sort();
                }
            }
            RunsAction::ToggleDiff => {
                if let RunsView::FanOut(f) = &mut self.runs {
                    f.diff = !f.diff;
                }
            }
            RunsAction::MarkReference => {
                if let RunsView::FanOut(f) = &mut self.runs {
                    let sel = f
                        .results
                        .as_ref()
                        .and_then(|r| r.get(f.sel))
                        .map(|r| r.sample.peer.clone());
                    f.reference = if f.reference == sel { None } else { sel };
                    f.diff = true;
                }
            }
            RunsAction::Up | RunsAction::Down => {
                if let RunsView::FanOut(f) = &mut self.runs {
                    let n = f.results.as_ref().map_or(0, Vec::len);
                    f.sel = match action {
                        RunsAction::Up => f.sel.saturating_sub(1),
                        _ => (f.sel + 1).min(n.saturating_sub(1)),
                    };
                }
            }
            RunsAction::Close => {
                let running = match &self.runs {
                    RunsView::Load(l) => l.summary.is_none(),
                    RunsView::Direct(d) => d.result.is_none(),
                    _ => false,
                };
                self.runs = RunsView::Hidden;
                if running {
                    return vec![Effect::StopLoad];
                }
            }
        }
        vec![]
    }

    fn composer_spec(&mut self) -> Option<CallSpec> {
        match self.composer.build() {
            Ok((spec, _)) => Some(spec),
            Err(e) => {
                self.composer.warning = Some(e);
                None
            }
        }
    }

    fn start_fan_out(&mut self) -> Vec<Effect> {
        let Some(spec) = self.composer_spec() else {
            return vec![];
        };
        let peers: Vec<String> = self
            .peers
            .list
            .iter()
            .filter(|p| p.serves_api_v1())
            .map(super::peer_multiaddr)
            .collect();
        if peers.is_empty() {
            self.notice("fan-out: no connected peer serves the API protocol");
            return vec![];
        }
        self.runs = RunsView::FanOut(FanOut {
            route: spec.request.route.clone(),
            peers: peers.len(),
            live: peers
                .iter()
                .map(|p| LiveRow {
                    peer: p.clone(),
                    update: None,
                })
                .collect(),
            ..FanOut::default()
        });
        vec![Effect::FanOut { spec, peers }]
    }

    fn start_load(&mut self, plan: LoadPlan) -> Vec<Effect> {
        let Some(spec) = self.composer_spec() else {
            return vec![];
        };
        self.load_plan = plan.clone();
        self.runs = RunsView::Load(Box::new(Load {
            route: spec.request.route.clone(),
            target: spec.target.clone(),
            plan: plan.clone(),
            ..Load::default()
        }));
        vec![Effect::Load { spec, plan }]
    }

    fn start_hop_vs_direct(&mut self) -> Vec<Effect> {
        let Some(spec) = self.composer_spec() else {
            return vec![];
        };
        let Some(route) = self.routes.table.get(&spec.request.route) else {
            self.notice(format!(
                "D: this node serves no route {:?}; hop vs direct needs its backend here (Routes pane, a: add it)",
                spec.request.route
            ));
            return vec![];
        };
        self.runs = RunsView::Direct(Box::new(Direct {
            route: spec.request.route.clone(),
            target: spec.target.clone(),
            rounds: CONSOLE_HOP_VS_DIRECT_ROUNDS,
            ..Direct::default()
        }));
        vec![Effect::HopVsDirect {
            spec,
            route: Box::new(route.clone()),
            rounds: CONSOLE_HOP_VS_DIRECT_ROUNDS,
        }]
    }
}

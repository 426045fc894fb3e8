//! Fan-out and load runs from the composer: the composer's request to
//! every peer that serves the API (F), compared; or many times to its
//! target (L), measured live. Each opens a view over the screen.

use crate::load::{PeerResult, Progress, Summary};
use crate::tui::effect::{CallSpec, Effect};

use super::State;

/// Requests and concurrency of a load run started from the console.
pub const CONSOLE_LOAD_REQUESTS: u64 = 200;
pub const CONSOLE_LOAD_CONCURRENCY: usize = 8;

/// Progress reports kept for the load view's sparkline.
pub const MAX_TICKS: usize = 256;

/// What the runs view shows.
#[derive(Debug, Default)]
pub enum RunsView {
    #[default]
    Hidden,
    FanOut(FanOut),
    Load(Box<Load>),
}

#[derive(Debug, Default)]
pub struct FanOut {
    pub route: String,
    pub peers: usize,
    /// None while the calls are out.
    pub results: Option<Vec<PeerResult>>,
    pub sort: SortBy,
    pub sel: usize,
    /// Show the selected peer's body against the majority's.
    pub diff: bool,
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

    /// The selected result and the first one agreeing with the majority.
    pub fn diff_pair(&self) -> Option<(&PeerResult, &PeerResult)> {
        let results = self.results.as_ref()?;
        let sel = results.get(self.sel)?;
        let majority = results.iter().find(|r| r.same_as_majority == Some(true))?;
        Some((sel, majority))
    }
}

#[derive(Debug, Default)]
pub struct Load {
    pub route: String,
    pub target: String,
    pub requests: u64,
    pub concurrency: usize,
    pub progress: Progress,
    /// Requests finished between progress reports, newest last (bounded).
    pub per_tick: std::collections::VecDeque<u64>,
    /// Set when the run has ended.
    pub summary: Option<Box<Summary>>,
}

/// Everything the runs view reacts to.
#[derive(Debug, Clone)]
pub enum RunsAction {
    /// Send the composer's request to every peer that serves the API.
    StartFanOut,
    /// Load the composer's target with its request.
    StartLoad,
    FanOutDone(Vec<PeerResult>),
    LoadProgress(Progress),
    LoadDone(Box<Summary>),
    NextSort,
    ToggleDiff,
    Up,
    Down,
    /// Close the view (and stop a load that is still running).
    Close,
}

impl State {
    pub(super) fn on_runs(&mut self, action: RunsAction) -> Vec<Effect> {
        match action {
            RunsAction::StartFanOut => return self.start_fan_out(),
            RunsAction::StartLoad => return self.start_load(),
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
                let running = matches!(&self.runs, RunsView::Load(l) if l.summary.is_none());
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
            ..FanOut::default()
        });
        vec![Effect::FanOut { spec, peers }]
    }

    fn start_load(&mut self) -> Vec<Effect> {
        let Some(spec) = self.composer_spec() else {
            return vec![];
        };
        self.runs = RunsView::Load(Box::new(Load {
            route: spec.request.route.clone(),
            target: spec.target.clone(),
            requests: CONSOLE_LOAD_REQUESTS,
            concurrency: CONSOLE_LOAD_CONCURRENCY,
            ..Load::default()
        }));
        vec![Effect::Load {
            spec,
            requests: CONSOLE_LOAD_REQUESTS,
            concurrency: CONSOLE_LOAD_CONCURRENCY,
        }]
    }
}

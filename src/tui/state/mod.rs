//! The console's state and its one update function: action in, state
//! changed, effects out. Drawing only reads this; nothing here does I/O or
//! reads the clock (the app sets `now` before each update and frame).
//!
//! Sub-states, each with its own file: `composer` (the form and history),
//! `calls` (the list, outgoing and served), `peers`, `output_view` (how Output shows
//! the selected call), `routes` (our table, peers' listings), `prompt`.

mod calls;
mod calls_others;
mod clipboard;
mod command;
mod composer;
mod events;
mod health;
mod node;
mod output_view;
mod outside;
mod peers;
mod prompt;
mod read_only;
mod routes;
mod runs;
mod subnet;

use std::collections::VecDeque;
use std::time::{Instant, SystemTime};

use ratatui::layout::Rect;

pub use calls::{CallState, CallView, Calls, MAX_CALLS, MAX_KEPT_OUTPUT_BYTES};
pub use composer::{Composer, Field};
pub use events::{node_of, EventsView, MAX_EVENTS};
pub use health::{HealthSort, HealthView};
pub use output_view::{OutputMode, OutputView};
pub use peers::{peer_multiaddr, PeerFilter, PeerSort, PeersView};
pub use prompt::{Prompt, PromptKind, Question};
pub use routes::RoutesView;

pub use node::Attached;
pub use outside::LinkInfo;
pub use runs::{Direct, FanOut, Load, RunsView, SortBy};
pub use subnet::SubnetView;

use super::action::{Action, Pane};
use super::effect::{CallSpec, Effect};
use super::layout::pane_at;

/// Most log lines kept in the Log pane.
pub const MAX_LOG_LINES: usize = 2000;

/// The Log pane: the newest lines, the level shown, the scroll.
pub struct LogView {
    pub lines: VecDeque<(tracing::Level, String)>,
    pub level: tracing::Level,
    pub scroll: usize,
}

pub struct State {
    pub(in crate::tui) focus: Pane,
    pub(in crate::tui) help: bool,
    /// Help overlay scroll; the view (which knows the width) sets the max.
    pub(in crate::tui) help_scroll: usize,
    /// How far the help scrolls at the screen's size (set after each frame).
    pub(in crate::tui) help_scroll_max: usize,
    /// Our peer id and listen addresses.
    pub(in crate::tui) me: String,
    pub(in crate::tui) listen: Vec<String>,
    /// Where telemetry is accepted, when it is.
    pub(in crate::tui) telemetry_addr: Option<String>,
    pub(in crate::tui) peers: PeersView,
    pub(in crate::tui) routes: RoutesView,
    pub(in crate::tui) calls: Calls,
    pub(in crate::tui) composer: Composer,
    pub(in crate::tui) output: OutputView,
    pub(in crate::tui) log: LogView,
    pub(in crate::tui) subnet: SubnetView,
    pub(in crate::tui) health: HealthView,
    pub(in crate::tui) events: EventsView,
    pub(in crate::tui) runs: RunsView,
    /// The last load run's shape, offered again by the next.
    pub(in crate::tui) load_plan: crate::load::LoadPlan,
    pub(in crate::tui) prompt: Option<Prompt>,
    pub(in crate::tui) question: Option<Question>,
    pub(in crate::tui) notice: Option<(String, Instant)>,
    /// The whole screen, as last drawn (for mouse hit tests).
    pub(in crate::tui) screen: Rect,
    pub(in crate::tui) quit: bool,
    /// Watch only (`--read-only`): see `read_only.rs`.
    pub(in crate::tui) read_only: bool,
    /// The node this console is attached to (None: its own node).
    pub(in crate::tui) attached: Option<Attached>,
    /// The focused pane has the whole screen (`z`).
    pub(in crate::tui) zoom: bool,
    /// Keys of the operator's own (`keys.json`), over the defaults.
    pub(in crate::tui) user_keys: crate::tui::user_keys::UserKeys,
    /// The clock, set by the app before each update and frame (tests set it).
    pub(in crate::tui) now: Instant,
    pub(in crate::tui) wall: SystemTime,
}

impl State {
    pub fn new(me: String, output_cap: usize) -> Self {
        Self {
            focus: Pane::Composer,
            help: false,
            help_scroll: 0,
            help_scroll_max: usize::MAX,
            me,
            listen: Vec::new(),
            telemetry_addr: None,
            peers: PeersView::default(),
            routes: RoutesView::default(),
            calls: Calls::new(output_cap),
            composer: Composer::new(),
            output: OutputView::new(),
            log: LogView {
                lines: VecDeque::new(),
                level: tracing::Level::INFO,
                scroll: 0,
            },
            subnet: SubnetView::default(),
            health: HealthView::default(),
            events: EventsView::default(),
            runs: RunsView::default(),
            load_plan: Default::default(),
            prompt: None,
            question: None,
            notice: None,
            screen: Rect::new(0, 0, 80, 24),
            quit: false,
            read_only: false,
            attached: None,
            zoom: false,
            user_keys: Default::default(),
            now: Instant::now(),
            wall: SystemTime::now(),
        }
    }

    /// The pane that has the whole screen, if one has.
    pub fn zoomed(&self) -> Option<Pane> {
        self.zoom.then_some(self.focus)
    }

    pub fn in_flight(&self) -> usize {
        self.calls.in_flight()
    }

    pub fn selected_call(&self) -> Option<&CallView> {
        self.calls.selected()
    }

    fn notice(&mut self, text: impl Into<String>) {
        self.notice = Some((text.into(), self.now));
    }

    /// Asks the composer target's peer for its routes, once per target.
    pub fn fetch_routes_effect(&mut self) -> Option<Effect> {
        let target = self.composer.text(Field::Peer).trim().to_string();
        self.routes
            .should_fetch(&target)
            .then_some(Effect::FetchRoutes(target))
    }

    fn select_call(&mut self, index: usize) {
        self.calls.sel = index;
        self.output.reset();
    }

    fn new_call(&mut self, spec: CallSpec) -> Vec<Effect> {
        let id = self.calls.start_outgoing(spec.clone(), self.now);
        self.output.reset();
        vec![Effect::Send { id, spec }]
    }

    fn move_selection(&mut self, delta: isize) {
        let clamp = |v: usize, len: usize| -> usize {
            (v as isize + delta).clamp(0, len.saturating_sub(1) as isize) as usize
        };
        match self.focus {
            Pane::Peers => self.peers.sel = clamp(self.peers.sel, self.peers.shown.len()),
            Pane::Routes => self.routes.sel = clamp(self.routes.sel, self.routes.len()),
            Pane::Calls => {
                let i = clamp(self.calls.sel, self.calls.list.len());
                if i != self.calls.sel {
                    self.select_call(i);
                }
            }
            Pane::Output => self.output.scroll_by(delta),
            Pane::Log => {
                self.log.scroll = if delta < 0 {
                    self.log.scroll.saturating_add(delta.unsigned_abs())
                } else {
                    self.log.scroll.saturating_sub(delta as usize)
                }
            }
            Pane::Composer => self.composer.field = self.composer.field.step(delta),
        }
    }

    fn open_prompt(&mut self, kind: PromptKind, title: &str, initial: &str) {
        self.prompt = Some(Prompt::new(kind, title, initial));
    }

    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        if self.refuse_when_read_only(&action) {
            return vec![];
        }
        if let Some(q) = self.question.clone() {
            if let Some(effects) = self.answer_question(q, &action) {
                return effects;
            }
        }
        match action {
            Action::ForceQuit => {
                self.quit = true;
                return vec![Effect::Quit];
            }
            Action::Quit => {
                if self.in_flight() == 0 {
                    self.quit = true;
                    return vec![Effect::Quit];
                }
                self.question = Some(Question::Quit);
            }
            Action::Confirm(_) => {}
            Action::ToggleHelp => {
                self.help = !self.help;
                self.help_scroll = 0;
            }
            Action::HelpScroll(delta) => {
                let max = self.help_scroll_max;
                self.help_scroll =
                    (self.help_scroll as isize + delta).clamp(0, max as isize) as usize;
            }
            Action::ToggleSubnet => {
                self.subnet.show = !self.subnet.show;
                self.events.show = false;
            }
            Action::ToggleEvents => {
                self.events.show = !self.events.show;
                self.subnet.show = false;
            }
            Action::EventsNextNode => self.events.cycle_node(),
            Action::Runs(a) => return self.on_runs(a),
            Action::Health(a) => return self.on_health(a),
            Action::Command(c) => return self.on_command(c),
            Action::SubnetStats { mesh, dag } => self.subnet.on_stats(mesh, dag, self.now),
            Action::EventsNextKind => self.events.cycle_kind(),
            Action::Back => {
                if self.help {
                    self.help = false;
                } else if self.output.search.is_some() && self.focus == Pane::Output {
                    self.output.search = None;
                } else {
                    self.composer.warning = None;
                }
            }
            Action::FocusNext | Action::FocusPrev => {
                let i = Pane::ALL.iter().position(|p| *p == self.focus).unwrap_or(0);
                let n = Pane::ALL.len();
                let step = if matches!(action, Action::FocusNext) {
                    1
                } else {
                    n - 1
                };
                self.focus = Pane::ALL[(i + step) % n];
            }
            Action::Focus(p) => self.focus = p,
            Action::Up => self.move_selection(-1),
            Action::Down => self.move_selection(1),
            Action::PageUp => self.move_selection(-10),
            Action::PageDown => self.move_selection(10),
            Action::Top => self.move_selection(-1_000_000),
            Action::Bottom => {
                self.move_selection(1_000_000);
                if self.focus == Pane::Output {
                    self.output.to_bottom();
                }
            }
            Action::Activate => match self.focus {
                Pane::Composer => self.composer.editing = true,
                Pane::Calls => self.focus = Pane::Output,
                _ => {}
            },
            Action::NextField => self.composer.field = self.composer.field.next(),
            Action::PrevField => self.composer.field = self.composer.field.prev(),
            Action::EditKey(key) => self.composer.type_key(key),
            Action::StopEditing => {
                self.composer.editing = false;
                return self.fetch_routes_effect().into_iter().collect();
            }
            Action::Paste(text) => self.paste(text),
            Action::PromptKey(key) => {
                if let Some(p) = &mut self.prompt {
                    crate::tui::line_keys::apply(&mut p.input, key);
                    p.error = None;
                }
            }
            Action::PromptSubmit => return self.submit_prompt(),
            Action::PromptCancel => self.prompt = None,
            Action::ToggleStream => self.composer.stream = !self.composer.stream,
            Action::HistoryPrev | Action::HistoryNext => {
                match self
                    .composer
                    .history_step(matches!(action, Action::HistoryPrev))
                {
                    None => self.notice("no sent calls yet"),
                    Some(at) => {
                        self.notice(format!("history {at}"));
                        return self.fetch_routes_effect().into_iter().collect();
                    }
                }
            }
            Action::Send => return self.send(),
            Action::CancelCall => {
                if let Some(id) = self.calls.cancel_selected(self.now) {
                    return vec![Effect::Cancel(id)];
                }
            }
            Action::TapCall => {
                match self.calls.tap_selected() {
                    Ok((local, call)) => {
                        self.output.follow = true;
                        self.notice("tapping: the body this node sends shows in Output as it goes (bounded)");
                        return vec![Effect::TapServed { local, call }];
                    }
                    Err(why) => self.notice(why),
                }
            }
            Action::RerunCall => {
                if let Some(spec) = self.selected_call().and_then(|c| c.spec.clone()) {
                    return self.new_call(spec);
                }
            }
            Action::StartDial => self.open_prompt(PromptKind::Dial, "Dial multiaddr", ""),
            Action::DisconnectPeer => {
                if let Some(p) = self.peers.selected() {
                    return vec![Effect::Disconnect(p.peer)];
                }
            }
            Action::CopyPeerToComposer => {
                if let Some(p) = self.peers.selected() {
                    let addr = peer_multiaddr(p);
                    self.composer.set(Field::Peer, &addr);
                    self.focus = Pane::Composer;
                    self.notice("peer address copied into the composer");
                    return self.fetch_routes_effect().into_iter().collect();
                }
            }
            Action::AddRoute => self.open_prompt(
                PromptKind::AddRoute,
                "Add route: NAME URL [stream|unary]",
                "",
            ),
            Action::EditRoute => {
                let table = self.routes.table.current();
                if let Some((name, route)) = table.iter().nth(self.routes.sel) {
                    let kind = if route.stream { "stream" } else { "unary" };
                    let initial = format!("{name} {} {kind}", route.url);
                    self.open_prompt(
                        PromptKind::EditRoute(name.clone()),
                        "Edit route: NAME URL [stream|unary]",
                        &initial,
                    );
                }
            }
            Action::DeleteRoute => {
                if let Some(name) = self.routes.selected_name() {
                    self.question = Some(Question::DeleteRoute(name));
                }
            }
            Action::CycleView => self.output.cycle_mode(),
            Action::ToggleFollow => self.output.toggle_follow(),
            Action::TogglePause => self.output.toggle_pause(self.calls.selected()),
            Action::ToggleWrap => self.output.wrap = !self.output.wrap,
            Action::ToggleHeaders => self.output.show_headers = !self.output.show_headers,
            Action::StartSearch => self.open_prompt(PromptKind::Search, "Search output", ""),
            Action::SetTokenPath => {
                let current = self.calls.token_path.clone().unwrap_or_default();
                self.open_prompt(
                    PromptKind::TokenPath,
                    "Token JSON path, e.g. choices.0.delta.content (empty: automatic)",
                    &current,
                );
            }
            Action::SearchNext => self.output.search_hit = self.output.search_hit.saturating_add(1),
            Action::SearchPrev => self.output.search_hit = self.output.search_hit.saturating_sub(1),
            Action::SaveOutput => {
                if let Some(c) = self.selected_call() {
                    let name = format!("peerapi-call-{}-{}.out", c.id, c.route);
                    self.open_prompt(PromptKind::SavePath, "Save output to", &name);
                }
            }
            Action::CopyOutput => return self.copy_output(),
            Action::ToggleZoom => self.zoom = !self.zoom,
            Action::MarkDiffBase => self.mark_diff_base(),
            Action::ToggleBodyDiff => self.toggle_diff(),
            Action::SetJqFilter => {
                let current = self.output.jq.as_ref().map(|f| f.text.clone());
                self.open_prompt(
                    PromptKind::JqFilter,
                    "jq filter on each event or the body (empty: off)",
                    current.as_deref().unwrap_or(".choices[0].delta.content"),
                );
            }
            Action::CopyCommand => return self.copy_command(),
            Action::CycleLogLevel => {
                use tracing::Level;
                self.log.level = match self.log.level {
                    Level::ERROR => Level::WARN,
                    Level::WARN => Level::INFO,
                    Level::INFO => Level::DEBUG,
                    _ => Level::ERROR,
                };
            }
            Action::Node(ev) => self.on_node_event(ev),
            Action::CallNumbered { id, node_call } => self.calls.on_numbered(id, node_call),
            Action::NodeEventsMissed(missed) => {
                self.calls.lost_track_of_others(self.now);
                let line = format!(
                    "console fell behind: {missed} node updates skipped, views resynchronised"
                );
                self.update(Action::Log(line, tracing::Level::WARN));
            }
            Action::CallHead { id, head } => self.calls.on_head(id, head),
            Action::CallBytes { id, bytes, at } => self.calls.on_bytes(id, &bytes, at),
            Action::CallEnded {
                id,
                error,
                failure,
                at,
                server_timing,
            } => self.calls.on_ended(id, (error, failure), at, server_timing),
            Action::Log(line, level) => {
                if self.log.lines.len() >= MAX_LOG_LINES {
                    self.log.lines.pop_front();
                }
                self.log.lines.push_back((level, line));
            }
            Action::Notice(text) => self.notice(text),
            Action::Peers(peers) => self.peers.set(peers),
            Action::SortPeers => self.peers.cycle_sort(),
            Action::FilterPeers => self.open_peer_filter(),
            Action::Listening(addrs) => self.listen = addrs,
            Action::Routes(table) => self.routes.set_table(*table),
            // The console's link to its node: the console itself takes them.
            Action::NodeGone | Action::Relinked(_) | Action::Switched(_) => {}
            Action::RemoteRoutes { target, routes } => {
                self.routes.remote.insert(target, routes);
            }
            Action::MouseClick { column, row } => {
                if let Some(p) = pane_at(self.screen, self.zoomed(), column, row) {
                    self.focus = p;
                }
            }
            Action::Scroll { column, row, down } => {
                if let Some(p) = pane_at(self.screen, self.zoomed(), column, row) {
                    let prev = self.focus;
                    self.focus = p;
                    self.move_selection(if down { 3 } else { -3 });
                    self.focus = prev;
                }
            }
        }
        vec![]
    }

    /// Send: a form error or a first warning stops here; a repeated send
    /// after a warning goes anyway.
    fn send(&mut self) -> Vec<Effect> {
        let built = self.composer.build().map(|(spec, warning)| {
            let warning = warning.or_else(|| self.routes.listing_warning(&spec));
            (spec, warning)
        });
        match built {
            Ok((_, Some(warning))) if !self.composer.armed => {
                self.composer.warning = Some(warning);
                self.composer.armed = true;
                vec![]
            }
            Ok((spec, _)) => {
                let entry = self.composer.record_sent();
                let mut effects = self.new_call(spec);
                effects.push(Effect::RecordHistory(entry));
                effects
            }
            Err(e) => {
                self.composer.warning = Some(e);
                self.composer.armed = false;
                vec![]
            }
        }
    }
}

#[cfg(test)]
mod tests;

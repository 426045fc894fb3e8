//! The fleet view: one row per node of contexts.toml, live. Enter
//! attaches the whole console to the selected node; quitting that console
//! comes back here. Probes run on their own tasks, so a node that is down
//! or slow never holds up the screen or the other rows.

mod view;

use std::collections::VecDeque;
use std::time::{Instant, SystemTime};

use ratatui::crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::Terminal;
use tokio::sync::mpsc;

use super::terminal::{data_dir, init_logging, Input, TerminalGuard};
use crate::control::Role;
use crate::fleet::actions::FanOutAsk;
use crate::fleet::follow::{self, Followers, Heard, MAX_FEED_ENTRIES};
use crate::fleet::{probe, Context, Fleet, FleetFilter, FleetSort, ProbeOptions, Reach};

pub use view::draw;

/// What the fleet view shows and how.
pub struct FleetView {
    pub fleet: Fleet,
    pub filter: FleetFilter,
    pub sort: FleetSort,
    /// Position in the shown rows.
    pub selected: usize,
    /// What is being typed: the filter after `/`, a fan-out after `F`.
    pub typing: Option<(Typing, String)>,
    pub notice: Option<String>,
    pub help: bool,
    /// The fleet-wide pane, when one is open.
    pub feed: Option<Feed>,
    /// A fleet-wide action waiting for `y`: what it is, and the step.
    pub confirm: Option<(String, Step)>,
    /// The fan-out typed last, offered again by `F`.
    last_fan_out: Option<String>,
}

/// What the bottom line is typing into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Typing {
    Filter,
    FanOut,
}

/// Which fleet-wide pane shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedKind {
    /// Calls every node served, with the node's name.
    Calls,
    /// Every node's log lines, interleaved by time.
    Logs,
    /// Results of fleet-wide actions, one row per node.
    Actions,
}

/// What the followed nodes said, newest last, bounded.
pub struct Feed {
    pub kind: FeedKind,
    pub calls: VecDeque<(usize, Heard)>,
    pub logs: VecDeque<(usize, Heard)>,
    pub actions: VecDeque<(usize, Heard)>,
    /// Whether the nodes are followed (the calls and logs panes need it).
    following: bool,
}

impl Feed {
    fn new(kind: FeedKind) -> Self {
        Self {
            kind,
            calls: VecDeque::new(),
            logs: VecDeque::new(),
            actions: VecDeque::new(),
            following: false,
        }
    }

    /// Keeps what a node said in its pane (a lost node in both).
    pub fn hear(&mut self, index: usize, heard: Heard) {
        let keep = |q: &mut VecDeque<(usize, Heard)>, h: Heard| {
            if q.len() >= MAX_FEED_ENTRIES {
                q.pop_front();
            }
            q.push_back((index, h));
        };
        match heard {
            h @ Heard::Served { .. } => keep(&mut self.calls, h),
            h @ Heard::Log { .. } => keep(&mut self.logs, h),
            h @ Heard::Lost { .. } => {
                keep(&mut self.calls, h.clone());
                keep(&mut self.logs, h);
            }
            h @ Heard::Action { .. } => keep(&mut self.actions, h),
        }
    }

    pub fn shown(&self) -> &VecDeque<(usize, Heard)> {
        match self.kind {
            FeedKind::Calls => &self.calls,
            FeedKind::Logs => &self.logs,
            FeedKind::Actions => &self.actions,
        }
    }
}
/// What a key asks the loop to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Stay,
    Quit,
    /// Attach the console to this row (an index into `fleet.rows`).
    Attach(usize),
    /// Start following every node for the fleet-wide panes (true) or stop.
    Follow(bool),
    /// Re-read the route file on these rows' nodes (confirmed).
    Reload(Vec<usize>),
    /// Each of these rows' nodes fans the request out to its API peers.
    FanOut(Vec<usize>, FanOutAsk),
}

impl FleetView {
    pub fn new(fleet: Fleet) -> Self {
        Self {
            fleet,
            filter: FleetFilter::default(),
            sort: FleetSort::default(),
            selected: 0,
            typing: None,
            notice: None,
            help: false,
            feed: None,
            confirm: None,
            last_fan_out: None,
        }
    }

    /// Enter on what was typed: a filter applies; a fan-out asks first.
    fn typed(&mut self, typing: Typing, text: &str) {
        match typing {
            Typing::Filter => match FleetFilter::parse(text) {
                Ok(f) => {
                    self.filter = f;
                    self.selected = 0;
                    self.typing = None;
                    self.notice = None;
                }
                Err(e) => self.notice = Some(e),
            },
            Typing::FanOut => match FanOutAsk::parse(text) {
                Ok(ask) => {
                    let rows = self.shown();
                    let what = format!(
                        "{} {} from {} to each one's API peers? y/n",
                        if ask.stream { "stream" } else { "call" },
                        ask.route,
                        nodes(rows.len())
                    );
                    self.last_fan_out = Some(text.to_string());
                    self.typing = None;
                    self.notice = None;
                    self.confirm = Some((what, Step::FanOut(rows, ask)));
                }
                Err(e) => self.notice = Some(e),
            },
        }
    }

    /// `c` or `l`: open that pane (following starts), switch to it, or
    /// close it when it is the one open (following stops).
    fn toggle_feed(&mut self, kind: FeedKind) -> Step {
        let feed = match &mut self.feed {
            Some(feed) if feed.kind == kind => {
                self.feed = None;
                return Step::Follow(false);
            }
            Some(feed) => feed,
            None => self.feed.insert(Feed::new(kind)),
        };
        feed.kind = kind;
        if kind != FeedKind::Actions && !feed.following {
            feed.following = true;
            return Step::Follow(true);
        }
        Step::Stay
    }

    pub fn shown(&self) -> Vec<usize> {
        self.fleet.order(&self.filter, self.sort)
    }

    pub fn key(&mut self, key: KeyEvent) -> Step {
        if key.kind == KeyEventKind::Release {
            return Step::Stay;
        }
        if let Some((_, step)) = self.confirm.take() {
            if key.code == KeyCode::Char('y') {
                // Results show in the actions pane, row by row.
                let feed = self
                    .feed
                    .get_or_insert_with(|| Feed::new(FeedKind::Actions));
                feed.kind = FeedKind::Actions;
                return step;
            }
            self.notice = Some("not done".into());
            return Step::Stay;
        }
        if let Some((typing, text)) = &mut self.typing {
            match key.code {
                KeyCode::Esc => self.typing = None,
                KeyCode::Enter => {
                    let (typing, text) = (*typing, text.clone());
                    self.typed(typing, &text);
                }
                KeyCode::Backspace => {
                    text.pop();
                }
                KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => text.clear(),
                KeyCode::Char(c) => text.push(c),
                _ => {}
            }
            return Step::Stay;
        }
        let shown = self.shown().len();
        match key.code {
            KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                return Step::Quit
            }
            KeyCode::Char('q') => return Step::Quit,
            KeyCode::Esc if self.help => self.help = false,
            KeyCode::Esc if !self.filter.is_empty() => {
                self.filter = FleetFilter::default();
                self.selected = 0;
            }
            KeyCode::Char('?') => self.help = !self.help,
            KeyCode::Char('j') | KeyCode::Down => {
                self.selected = (self.selected + 1).min(shown.saturating_sub(1))
            }
            KeyCode::Char('k') | KeyCode::Up => self.selected = self.selected.saturating_sub(1),
            KeyCode::Char('g') | KeyCode::Home => self.selected = 0,
            KeyCode::Char('G') | KeyCode::End => self.selected = shown.saturating_sub(1),
            KeyCode::Char('s') => self.sort = self.sort.next(),
            KeyCode::Char('c') => return self.toggle_feed(FeedKind::Calls),
            KeyCode::Char('l') => return self.toggle_feed(FeedKind::Logs),
            KeyCode::Char('a') => return self.toggle_feed(FeedKind::Actions),
            KeyCode::Char('R') => {
                let rows = self.shown();
                let what = format!("reload the route file on {}? y/n", nodes(rows.len()));
                self.confirm = Some((what, Step::Reload(rows)));
            }
            KeyCode::Char('F') => {
                let last = self.last_fan_out.clone().unwrap_or_default();
                self.typing = Some((Typing::FanOut, last));
            }
            KeyCode::Char('/') => {
                self.typing = Some((Typing::Filter, self.filter.text().to_string()))
            }
            KeyCode::Enter => {
                if let Some(&i) = self.shown().get(self.selected) {
                    return Step::Attach(i);
                }
            }
            _ => {}
        }
        Step::Stay
    }
}

/// Opens the fleet view on `contexts` until the operator quits.
pub async fn run(contexts: Vec<Context>, options: ProbeOptions) -> anyhow::Result<()> {
    // Log lines go to the file only: nothing but the view writes to the
    // terminal it owns.
    let (log_tx, _log_rx) = mpsc::channel(1);
    let _log = init_logging(&data_dir(), crate::logs::DEFAULT_MAX_LOG_FILES, log_tx);
    let mut probes = probe::watch(&contexts, options);
    let mut view = FleetView::new(Fleet::new(contexts.clone(), Instant::now()));
    let mut followers: Option<(Followers, mpsc::Receiver<(usize, Heard)>)> = None;
    loop {
        let step = {
            let guard = TerminalGuard::enter()?;
            let backend = ratatui::backend::CrosstermBackend::new(std::io::stdout());
            let mut terminal = Terminal::new(backend)?;
            terminal.clear()?;
            let (input, mut keys) = Input::start();
            let step = watch(
                &mut terminal,
                &mut view,
                &mut probes,
                &mut keys,
                &mut followers,
                options,
            )
            .await;
            input.stop();
            drop(terminal);
            drop(guard);
            step?
        };
        match step {
            Step::Quit | Step::Stay | Step::Follow(_) | Step::Reload(_) | Step::FanOut(..) => {
                return Ok(())
            }
            Step::Attach(i) => {
                let context = view.fleet.rows[i].context.clone();
                view.notice = match attach(&context, &contexts).await {
                    Ok(()) => Some(format!("back from {}", context.name)),
                    Err(e) => Some(format!("{}: {e}", context.name)),
                };
            }
        }
    }
}

/// Draws on every change (a probe's word, a key) until a key leaves.
async fn watch<B: ratatui::backend::Backend>(
    terminal: &mut Terminal<B>,
    view: &mut FleetView,
    probes: &mut mpsc::Receiver<(usize, probe::Probe)>,
    keys: &mut mpsc::UnboundedReceiver<Event>,
    followers: &mut Option<(Followers, mpsc::Receiver<(usize, Heard)>)>,
    options: ProbeOptions,
) -> anyhow::Result<Step>
where
    B::Error: Send + Sync + 'static,
{
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    // Fleet-wide actions under way: their results as they come.
    let mut results: Vec<mpsc::Receiver<(usize, Heard)>> = Vec::new();
    let theme = super::view::Theme::from_env();
    loop {
        terminal.draw(|f| draw(f, view, SystemTime::now(), &theme))?;
        tokio::select! {
            Some((i, p)) = probes.recv() => {
                view.fleet.apply(i, p, Instant::now());
                // Everything already waiting, then one frame.
                while let Ok((i, p)) = probes.try_recv() {
                    view.fleet.apply(i, p, Instant::now());
                }
            }
            Some((i, heard)) = action_result(&mut results) => {
                if let Some(feed) = &mut view.feed {
                    feed.hear(i, heard);
                }
            }
            Some((i, heard)) = heard(followers) => {
                if let Some(feed) = &mut view.feed {
                    feed.hear(i, heard);
                }
            }
            ev = keys.recv() => match ev {
                Some(Event::Key(key)) => match view.key(key) {
                    Step::Stay => {}
                    Step::Follow(true) => {
                        let contexts: Vec<Context> =
                            view.fleet.rows.iter().map(|r| r.context.clone()).collect();
                        let all: Vec<usize> = (0..contexts.len()).collect();
                        *followers = Some(follow::follow(&contexts, &all, FOLLOW_QUEUE));
                    }
                    Step::Follow(false) => *followers = None,
                    Step::Reload(rows) => {
                        let contexts: Vec<Context> =
                            view.fleet.rows.iter().map(|r| r.context.clone()).collect();
                        let within = options.answer_within;
                        results.push(crate::fleet::actions::reload_routes(&contexts, &rows, within));
                    }
                    Step::FanOut(rows, ask) => {
                        let contexts: Vec<Context> =
                            view.fleet.rows.iter().map(|r| r.context.clone()).collect();
                        let (within, calls) = (options.answer_within, FAN_OUT_WITHIN);
                        results.push(crate::fleet::actions::fan_out(&contexts, &rows, ask, within, calls));
                    }
                    other => return Ok(other),
                },
                Some(_) => {}
                None => return Ok(Step::Quit),
            },
            _ = tick.tick() => {}
        }
    }
}

/// How long a node's fan-out may take, all its peers' calls together.
const FAN_OUT_WITHIN: std::time::Duration = std::time::Duration::from_secs(120);

/// "1 node", "3 nodes (the rows shown)".
fn nodes(n: usize) -> String {
    match n {
        1 => "1 node (the row shown)".into(),
        n => format!("{n} nodes (the rows shown)"),
    }
}

/// What the followed nodes said not yet taken by the view; what does not
/// fit is skipped by the followers.
const FOLLOW_QUEUE: usize = 4096;

/// The next result of any action under way (finished ones are dropped),
/// or never when none is.
async fn action_result(
    results: &mut Vec<mpsc::Receiver<(usize, Heard)>>,
) -> Option<(usize, Heard)> {
    loop {
        if results.is_empty() {
            return std::future::pending().await;
        }
        let next = futures::future::select_all(results.iter_mut().map(|rx| Box::pin(rx.recv())));
        let (got, at, _) = next.await;
        match got {
            Some(r) => return Some(r),
            None => {
                results.remove(at);
            }
        }
    }
}

/// The next thing a followed node said, or never when none is followed.
async fn heard(
    followers: &mut Option<(Followers, mpsc::Receiver<(usize, Heard)>)>,
) -> Option<(usize, Heard)> {
    match followers {
        Some((_, rx)) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The whole console on one node of the fleet, until the operator quits
/// it; `:ctx NAME` there switches among the fleet's `contexts`.
async fn attach(context: &Context, contexts: &[Context]) -> Result<(), String> {
    let reached = super::reach_context(context).await?;
    let options = super::ConsoleOptions {
        read_only: reached.link.role() == Role::Observe,
        contexts: contexts.to_vec(),
        ..Default::default()
    };
    super::run_attached(reached, options)
        .await
        .map_err(|e| format!("{e:#}"))
}

/// Whether a row is down, for the view's colours.
pub(crate) fn is_down(reach: &Reach) -> bool {
    matches!(reach, Reach::Down(_))
}

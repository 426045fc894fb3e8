//! The console's loop: terminal events, actions from the node and the call
//! tasks, and a frame tick, over any ratatui backend (the terminal here,
//! `TestBackend` in tests). Terminal and logging setup: `terminal`; the
//! demo's orchestration: `demo`; effects: `effect` (what) and `runner` (doing it).

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use ratatui::backend::Backend;
use ratatui::crossterm::event::Event;
use ratatui::Terminal;
use tokio::sync::mpsc;

use super::action::Action;
use super::call_response::DEFAULT_OUTPUT_CAP_BYTES;
use super::history::Entry;
use super::input;
use super::reached::Reached;
use super::runner::Runner;
use super::state::{LinkInfo, State};
use super::terminal::{data_dir, init_logging, restore_terminal, TerminalGuard};
use super::view::{self, Theme};
use crate::control::{NodeLink, Role, Updates};
use crate::node::{Node, NodeConfig};

/// Frames are drawn at most this often.
const FRAME_INTERVAL: Duration = Duration::from_millis(16);
/// Log lines waiting for the console; more are dropped (the file keeps all).
pub(super) const LOG_QUEUE: usize = 4096;
/// Actions taken in one go before a frame may be drawn.
const MAX_ACTION_BATCH: usize = 10_000;

/// How the console runs, beyond its node.
#[derive(Clone, Debug)]
pub struct ConsoleOptions {
    /// Logs (and call history) go here; default: the data directory.
    pub log_dir: Option<std::path::PathBuf>,
    pub max_log_files: usize,
    /// Watch only: no calls, route edits, dials or disconnects.
    pub read_only: bool,
    /// Keys of one's own (default: `keys.json` in the config directory).
    pub keys_file: Option<std::path::PathBuf>,
    /// The console's node offers control here, under this name, so that
    /// `peerapi ctl` and other consoles can attach to it (None: not).
    pub control: Option<(crate::control::socket::ControlOptions, String)>,
    /// The operator's contexts: an attached console switches among them
    /// (`:ctx NAME`, `C`).
    pub contexts: Vec<crate::fleet::Context>,
}

impl Default for ConsoleOptions {
    fn default() -> Self {
        Self {
            log_dir: None,
            max_log_files: crate::logs::DEFAULT_MAX_LOG_FILES,
            read_only: false,
            keys_file: None,
            control: None,
            contexts: Vec::new(),
        }
    }
}

/// Opens the console over a node started from `config`.
pub async fn run_console(config: NodeConfig, options: ConsoleOptions) -> anyhow::Result<()> {
    let (tx, rx) = mpsc::channel(LOG_QUEUE);
    let dir = options.log_dir.clone().unwrap_or_else(data_dir);
    let _log = init_logging(&dir, options.max_log_files, tx.clone());
    let node = Node::start(config).await.context("cannot start the node")?;
    let _offered = match options.control.clone() {
        Some((control, name)) => {
            let offered = crate::control::endpoint::offer(&node.handle(), control, name)
                .await
                .map_err(|e| anyhow::anyhow!(e))?;
            tracing::info!(socket = %offered.path().display(), "control on");
            Some(offered)
        }
        None => None,
    };
    run_app(&dir, node, rx, tx, None, &options).await
}

/// Opens the console over a node that already runs (`reached`): quitting
/// detaches and leaves the node running; when the node goes away the
/// console links again; `:ctx NAME` switches to another of `options.contexts`.
pub async fn run_attached(reached: Reached, options: ConsoleOptions) -> anyhow::Result<()> {
    let (tx, rx) = mpsc::channel(LOG_QUEUE);
    let dir = options.log_dir.clone().unwrap_or_else(data_dir);
    let _log = init_logging(&dir, options.max_log_files, tx.clone());
    let attached = super::state::Attached {
        name: reached.name,
        role: reached.link.role(),
        gone: false,
        contexts: options.contexts.iter().map(|c| c.name.clone()).collect(),
    };
    let linked = Linked {
        link: reached.link,
        updates: reached.updates,
        reconnect: Some(reached.reconnect),
        attached: Some(attached),
    };
    run_linked(&dir, linked, rx, tx, None, &options).await
}

/// A console's way to its node.
struct Linked {
    link: NodeLink,
    updates: Updates,
    reconnect: Option<super::reached::Reconnect>,
    attached: Option<super::state::Attached>,
}

/// The console over `node` in this terminal, until the operator quits.
pub(super) async fn run_app(
    data_dir: &Path,
    node: Node,
    actions: mpsc::Receiver<Action>,
    tx: mpsc::Sender<Action>,
    prefill: Option<Entry>,
    options: &ConsoleOptions,
) -> anyhow::Result<()> {
    let role = if options.read_only {
        Role::Observe
    } else {
        Role::Full
    };
    let (link, updates) = NodeLink::in_process(&node.handle(), role)
        .await
        .context("cannot reach the console's node")?;
    let linked = Linked {
        link,
        updates,
        reconnect: None,
        attached: None,
    };
    let result = run_linked(data_dir, linked, actions, tx, prefill, options).await;
    node.shutdown().await;
    result
}

/// The console over the node behind `link`, in this terminal, until the
/// operator quits.
async fn run_linked(
    data_dir: &Path,
    linked: Linked,
    mut actions: mpsc::Receiver<Action>,
    tx: mpsc::Sender<Action>,
    prefill: Option<Entry>,
    options: &ConsoleOptions,
) -> anyhow::Result<()> {
    let (input, mut keys) = super::terminal::Input::start();

    // A panic in a worker (a task of the node) ends that task only: it goes
    // to the log pane and file, never over the screen. One on this thread
    // ends the console: the terminal is given back first, then it is said.
    let default_hook = std::panic::take_hook();
    let ui_thread = std::thread::current().id();
    std::panic::set_hook(Box::new(move |info| {
        crate::logs::log_panic(info);
        if std::thread::current().id() == ui_thread {
            restore_terminal();
            default_hook(info);
        }
    }));
    let guard = TerminalGuard::enter()?;
    let backend = ratatui::backend::CrosstermBackend::new(std::io::stdout());
    let mut terminal = Terminal::new(backend)?;
    terminal.clear()?;
    let Linked {
        link,
        updates,
        reconnect,
        attached,
    } = linked;
    let mut console = Console::linked(terminal, link, updates, tx, data_dir, prefill, reconnect);
    console.state.set_attached(attached);
    console.runner.contexts = options.contexts.clone();
    console.set_read_only(options.read_only);
    let keys_file = options
        .keys_file
        .clone()
        .or_else(super::user_keys::default_path);
    if let Some(path) = keys_file {
        match super::user_keys::UserKeys::load(&path) {
            Ok(keys) => console.state.set_user_keys(keys),
            Err(e) => {
                // The defaults stay; the operator sees why their keys do not.
                tracing::warn!("keymap not used, defaults kept: {e}");
                console
                    .state
                    .update(Action::Notice(format!("keys: {e} (defaults kept)")));
            }
        }
    }

    #[cfg(unix)]
    let mut term_signal =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    #[cfg(unix)]
    let sigterm = async move {
        match term_signal.as_mut() {
            Some(s) => {
                s.recv().await;
            }
            None => futures::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let sigterm = futures::future::pending::<()>();
    let result = console.run(&mut keys, &mut actions, sigterm).await;
    drop(guard);
    input.stop();
    console.abort_calls();
    result.map_err(|e| anyhow::anyhow!("the terminal failed: {e}"))
}

/// The console over any ratatui backend: state, effects and drawing. The
/// loop (`run`) only feeds it; tests feed it directly.
pub struct Console<B: Backend> {
    pub terminal: Terminal<B>,
    pub state: State,
    runner: Runner,
    theme: Theme,
    /// Turns the node's updates into actions; stopped with the console.
    pump: tokio::task::JoinHandle<()>,
}

impl<B: Backend> Drop for Console<B> {
    fn drop(&mut self) {
        self.pump.abort();
    }
}

impl<B: Backend> Console<B> {
    /// A console over the node behind `link`, whose `updates` become
    /// actions on `tx` (where call tasks send theirs too); history lives
    /// in `data_dir`; `prefill` fills the composer.
    pub fn new(
        terminal: Terminal<B>,
        link: NodeLink,
        updates: Updates,
        tx: mpsc::Sender<Action>,
        data_dir: &Path,
        prefill: Option<Entry>,
    ) -> Self {
        Self::linked(terminal, link, updates, tx, data_dir, prefill, None)
    }

    /// A console over `link`'s node, linking again through `reconnect`
    /// when the node goes away (an attached console).
    pub(super) fn linked(
        terminal: Terminal<B>,
        link: NodeLink,
        updates: Updates,
        tx: mpsc::Sender<Action>,
        data_dir: &Path,
        prefill: Option<Entry>,
        reconnect: Option<super::reached::Reconnect>,
    ) -> Self {
        let history_file = super::history::path_in(data_dir);
        let mut state = fresh_state(&link, &history_file);
        if let Some(entry) = prefill {
            state.prefill(&entry);
        }
        let read_only = link.role() == Role::Observe;
        let pump = tokio::spawn(super::link_pump::pump(updates, tx.clone(), reconnect));
        let mut console = Self {
            terminal,
            state,
            runner: Runner {
                link,
                tx,
                tasks: HashMap::new(),
                tees: HashMap::new(),
                history_file,
                run: None,
                read_only: false,
                contexts: Vec::new(),
                health_poll: None,
            },
            theme: Theme::from_env(),
            pump,
        };
        console.set_read_only(read_only);
        if let Some(effect) = console.state.fetch_routes_effect() {
            console.runner.run(&mut console.state, effect);
        }
        console
    }

    /// Watch only: the state refuses what would change the subnet or
    /// the route file, and the runner never carries such an effect out.
    pub fn set_read_only(&mut self, on: bool) {
        self.state.set_read_only(on);
        self.runner.read_only = on;
    }

    /// A terminal event (key, mouse, paste).
    pub fn on_event(&mut self, ev: Event) {
        self.state.tick(Instant::now());
        if let Some(action) = input::action_for(&self.state, ev) {
            self.apply(action);
        }
    }

    /// An action from the node or a call task.
    pub fn on_action(&mut self, action: Action) {
        self.state.tick(Instant::now());
        match action {
            Action::NodeGone => {
                self.state.node_gone();
                let text = "the node is gone: what it showed stays; re-attaching when it is back";
                self.apply(Action::Notice(text.into()));
                return;
            }
            Action::Switched(to) => {
                if let Some(to) = to.take() {
                    self.switch(to);
                }
                return;
            }
            Action::Relinked(link) => {
                let (info, role) = (link_info(&link), link.role());
                let notice = format!("re-attached to {}", info.peer_id);
                self.state.relinked(info, role);
                self.runner.link = link;
                self.set_read_only(role == Role::Observe);
                self.apply(Action::Notice(notice));
                return;
            }
            _ => {}
        }
        match &action {
            Action::CallBytes { id, bytes, .. } => self.runner.tee(*id, bytes),
            Action::CallEnded { id, .. } => {
                self.runner.tasks.remove(id);
                self.runner.tees.remove(id);
            }
            _ => {}
        }
        self.apply(action);
    }

    /// Shows another node from now on: fresh views, its own link, pump and
    /// role; the calls this console followed on the old node are let go.
    fn switch(&mut self, to: Reached) {
        self.pump.abort();
        self.abort_calls();
        self.runner.tees.clear();
        self.runner.run = None;
        let contexts = self.state.attached.take().map(|a| a.contexts);
        let mut state = fresh_state(&to.link, &self.runner.history_file);
        let role = to.link.role();
        state.set_attached(Some(super::state::Attached {
            name: to.name.clone(),
            role,
            gone: false,
            contexts: contexts.unwrap_or_default(),
        }));
        self.state = state;
        self.runner.link = to.link;
        let tx = self.runner.tx.clone();
        self.pump = tokio::spawn(super::link_pump::pump(to.updates, tx, Some(to.reconnect)));
        self.set_read_only(role == Role::Observe);
        if let Some(effect) = self.state.fetch_routes_effect() {
            self.runner.run(&mut self.state, effect);
        }
        self.apply(Action::Notice(format!("now on {}", to.name)));
    }

    fn apply(&mut self, action: Action) {
        for effect in self.state.update(action) {
            self.runner.run(&mut self.state, effect);
        }
    }

    /// Draws one frame of the state as it is now.
    pub fn draw(&mut self) -> Result<(), B::Error> {
        let size = self.terminal.size()?;
        let screen = ratatui::layout::Rect::new(0, 0, size.width, size.height);
        self.state
            .before_frame(screen, Instant::now(), std::time::SystemTime::now());
        let (state, theme) = (&self.state, &self.theme);
        self.terminal.draw(|f| view::draw(f, state, theme))?;
        if self.state.help {
            let max = view::help::max_scroll(self.state.screen, &self.state, &self.theme);
            self.state.after_frame(max);
        }
        Ok(())
    }

    /// Stops every call task (leaving the console).
    pub fn abort_calls(&mut self) {
        for (_, task) in self.runner.tasks.drain() {
            task.abort();
        }
    }

    /// Runs until the operator quits or `stop` fires (SIGTERM): events and
    /// actions as they come, a frame on the tick when something changed.
    pub async fn run(
        &mut self,
        keys: &mut mpsc::UnboundedReceiver<Event>,
        actions: &mut mpsc::Receiver<Action>,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), B::Error> {
        let mut ticker = tokio::time::interval(FRAME_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut stop = std::pin::pin!(stop);
        let mut dirty = true;
        while !self.state.quit {
            tokio::select! {
                _ = ticker.tick() => {
                    if dirty {
                        self.draw()?;
                        dirty = false;
                    }
                }
                Some(ev) = keys.recv() => {
                    // A key is drawn at once, not on the next tick: keys
                    // come at a person's pace, and waiting for the tick
                    // would add up to a frame to every key-to-screen.
                    self.on_event(ev);
                    self.draw()?;
                    dirty = false;
                }
                Some(action) = actions.recv() => {
                    // Take everything that is ready, then draw once.
                    self.on_action(action);
                    for _ in 1..MAX_ACTION_BATCH {
                        match actions.try_recv() {
                            Ok(a) => self.on_action(a),
                            Err(_) => break,
                        }
                    }
                    dirty = true;
                }
                _ = &mut stop => self.on_action(Action::ForceQuit),
            }
        }
        Ok(())
    }
}

/// A state for the node behind `link`, with the call history.
fn fresh_state(link: &NodeLink, history_file: &Path) -> State {
    let info = link.info();
    let mut state = State::new(info.peer_id.to_string(), DEFAULT_OUTPUT_CAP_BYTES);
    state.linked(link_info(link));
    state.update(Action::Listening(
        info.listen.iter().map(|a| a.to_string()).collect(),
    ));
    state.set_history(super::history::load(history_file));
    state
}

/// Who the console is to the node at the other end of `link`.
fn link_info(link: &NodeLink) -> LinkInfo {
    let info = link.info();
    LinkInfo {
        peer_id: info.peer_id.to_string(),
        client: link.client().to_string(),
        telemetry: info.telemetry.map(|a| a.to_string()),
    }
}

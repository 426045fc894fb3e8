//! The console's main loop and its effects. (Terminal and logging setup:
//! `terminal`; the demo's orchestration: `demo`.)

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine as _;
use futures::StreamExt;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers, MouseEventKind};
use tokio::sync::mpsc;

use super::action::{Action, LocalId, Pane};
use super::keymap;
use super::output::DEFAULT_OUTPUT_CAP_BYTES;
use super::state::{CallSpec, Effect, State, F_BODY, F_HEADERS, F_METHOD, F_ROUTE, F_TARGET};
use super::terminal::{data_dir, init_logging, restore_terminal, TerminalGuard};
use super::view::{self, Theme};
use crate::node::{CallRequest, Node, NodeConfig, NodeHandle};

/// Frames are drawn at most this often.
const FRAME_INTERVAL: Duration = Duration::from_millis(16);
/// Connected peers are refreshed this often.
const PEER_REFRESH: Duration = Duration::from_secs(1);
/// Log lines waiting for the console; more are dropped (the file keeps all).
pub(super) const LOG_QUEUE: usize = 4096;

/// What the console opens with.
#[derive(Default)]
pub(super) struct Prefill {
    pub(super) target: String,
    pub(super) route: String,
    pub(super) method: String,
    pub(super) headers: String,
    pub(super) body: String,
    pub(super) stream: bool,
}

/// Opens the console over a node started from `config`.
pub async fn run_console(
    config: NodeConfig,
    log_dir: Option<PathBuf>,
    max_log_files: usize,
) -> anyhow::Result<()> {
    let (tx, rx) = mpsc::channel(LOG_QUEUE);
    let dir = log_dir.unwrap_or_else(data_dir);
    let _log = init_logging(&dir, max_log_files, tx.clone());
    let node = Node::start(config).await.context("cannot start the node")?;
    run_app(dir, node, rx, tx, Prefill::default()).await
}

pub(super) async fn run_app(
    data_dir: PathBuf,
    node: Node,
    mut actions: mpsc::Receiver<Action>,
    tx: mpsc::Sender<Action>,
    prefill: Prefill,
) -> anyhow::Result<()> {
    let handle = node.handle();
    let mut state = State::new(
        handle.local_peer_id().to_string(),
        handle.routes().clone(),
        DEFAULT_OUTPUT_CAP_BYTES,
    );
    if !prefill.route.is_empty() {
        state.composer.set(F_TARGET, &prefill.target);
        state.composer.set(F_ROUTE, &prefill.route);
        state.composer.set(F_METHOD, &prefill.method);
        state.composer.set(F_HEADERS, &prefill.headers);
        state.composer.set(F_BODY, &prefill.body);
        state.composer.stream = prefill.stream;
        state.composer.field = F_BODY;
    }
    let listen: Vec<String> = handle
        .listen_addrs()
        .await?
        .iter()
        .map(|a| a.to_string())
        .collect();
    state.update(Action::Listening(listen));

    // Node events and a periodic peer refresh.
    let mut events = handle.subscribe();
    let ev_tx = tx.clone();
    let ev_handle = handle.clone();
    let pump = tokio::spawn(async move {
        let mut refresh = tokio::time::interval(PEER_REFRESH);
        loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Ok(crate::NodeEvent::CallChunk { .. }) => {}
                    Ok(ev) => { let _ = ev_tx.send(Action::Node(ev)).await; }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        let _ = ev_tx.send(Action::Log(format!("console fell behind: {n} node events skipped"), tracing::Level::WARN)).await;
                    }
                    Err(_) => break,
                },
                _ = refresh.tick() => {
                    if let Ok(peers) = ev_handle.peers().await {
                        let _ = ev_tx.send(Action::Peers(peers)).await;
                    }
                }
            }
        }
    });

    // Keyboard and mouse in a thread of their own: crossterm's read blocks.
    let (key_tx, mut keys) = mpsc::unbounded_channel::<Event>();
    let stop_input = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = stop_input.clone();
    let input = std::thread::spawn(move || {
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            match event::poll(Duration::from_millis(50)) {
                Ok(true) => match event::read() {
                    Ok(ev) => {
                        if key_tx.send(ev).is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
                },
                Ok(false) => {}
                Err(_) => break,
            }
        }
    });

    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        default_hook(info);
    }));
    let guard = TerminalGuard::enter()?;
    let backend = ratatui::backend::CrosstermBackend::new(std::io::stdout());
    let mut terminal = ratatui::Terminal::new(backend)?;
    terminal.clear()?;
    let theme = Theme::from_env();
    let history_file = super::history::path_in(&data_dir);
    state.history = super::history::load(&history_file);
    let mut runner = Runner {
        handle: handle.clone(),
        tx: tx.clone(),
        tasks: HashMap::new(),
        tees: HashMap::new(),
        history_file,
    };

    #[cfg(unix)]
    let mut term_signal =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let mut ticker = tokio::time::interval(FRAME_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    if let Some(effect) = state.fetch_routes_effect() {
        runner.run(&mut state, effect);
    }
    let mut dirty = true;
    while !state.quit {
        #[cfg(unix)]
        let sigterm = async {
            match term_signal.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => futures::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let sigterm = futures::future::pending::<()>();
        tokio::select! {
            _ = ticker.tick() => {
                if dirty {
                    let size = terminal.size()?;
                    state.screen = ratatui::layout::Rect::new(0, 0, size.width, size.height);
                    state.now = Instant::now();
                    state.wall = std::time::SystemTime::now();
                    terminal.draw(|f| view::draw(f, &state, &theme))?;
                    dirty = false;
                }
            }
            Some(ev) = keys.recv() => {
                for effect in on_terminal_event(&mut state, ev) {
                    runner.run(&mut state, effect);
                }
                dirty = true;
            }
            Some(action) = actions.recv() => {
                // Take everything that is ready, then draw once.
                let mut batch = vec![action];
                while batch.len() < 10_000 {
                    match actions.try_recv() {
                        Ok(a) => batch.push(a),
                        Err(_) => break,
                    }
                }
                for action in batch {
                    if let Action::CallBytes { id, bytes, .. } = &action {
                        runner.tee(*id, bytes);
                    }
                    if let Action::CallEnded { id, .. } = &action {
                        runner.tasks.remove(id);
                        runner.tees.remove(id);
                    }
                    for effect in state.update(action) {
                        runner.run(&mut state, effect);
                    }
                }
                dirty = true;
            }
            _ = sigterm => {
                state.update(Action::ForceQuit);
            }
        }
    }
    drop(guard);
    stop_input.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = input.join();
    pump.abort();
    for (_, task) in runner.tasks.drain() {
        task.abort();
    }
    node.shutdown().await;
    Ok(())
}

fn on_terminal_event(state: &mut State, ev: Event) -> Vec<Effect> {
    match ev {
        Event::Key(key) if key.kind != KeyEventKind::Release => {
            if key.code == KeyCode::Char('c')
                && key.modifiers.contains(KeyModifiers::CONTROL)
                && state.prompt.is_none()
            {
                return state.update(Action::Quit);
            }
            if state.question.is_some() {
                let answer = match key.code {
                    KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => Some(true),
                    KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => Some(false),
                    _ => None,
                };
                return answer
                    .map(|a| state.update(Action::Confirm(a)))
                    .unwrap_or_default();
            }
            if state.help {
                if matches!(
                    key.code,
                    KeyCode::Esc | KeyCode::Char('?') | KeyCode::Char('q')
                ) {
                    state.help = false;
                }
                return vec![];
            }
            if let Some(effects) = state.text_key(key) {
                return effects;
            }
            match keymap::resolve(&key, state.focus) {
                Some(action) => state.update(action),
                None => vec![],
            }
        }
        Event::Mouse(m) => match m.kind {
            MouseEventKind::Down(_) => state.update(Action::MouseClick {
                column: m.column,
                row: m.row,
            }),
            MouseEventKind::ScrollDown => state.update(Action::Scroll {
                column: m.column,
                row: m.row,
                down: true,
            }),
            MouseEventKind::ScrollUp => state.update(Action::Scroll {
                column: m.column,
                row: m.row,
                down: false,
            }),
            _ => vec![],
        },
        Event::Paste(text) => {
            if state.focus == Pane::Composer && state.composer.editing {
                let f = state.composer.field;
                state.composer.fields[f].insert_str(text);
            } else if let Some(p) = &mut state.prompt {
                p.input.insert_str(text.replace('\n', " "));
            }
            vec![]
        }
        _ => vec![],
    }
}

/// Carries out effects: the only place the console does I/O.
struct Runner {
    handle: NodeHandle,
    tx: mpsc::Sender<Action>,
    tasks: HashMap<LocalId, tokio::task::JoinHandle<()>>,
    tees: HashMap<LocalId, std::fs::File>,
    history_file: PathBuf,
}

impl Runner {
    fn tee(&mut self, id: LocalId, bytes: &[u8]) {
        if let Some(f) = self.tees.get_mut(&id) {
            if f.write_all(bytes).is_err() {
                self.tees.remove(&id);
            }
        }
    }

    fn notice(&self, text: String) {
        let _ = self.tx.try_send(Action::Notice(text));
    }

    fn run(&mut self, state: &mut State, effect: Effect) {
        match effect {
            Effect::Send { id, spec } => {
                let task = tokio::spawn(send_call(self.handle.clone(), self.tx.clone(), id, spec));
                self.tasks.insert(id, task);
            }
            Effect::Cancel(id) => {
                if let Some(task) = self.tasks.remove(&id) {
                    // Dropping the call's stream resets it, so the serving peer stops too.
                    task.abort();
                }
                self.tees.remove(&id);
            }
            Effect::Dial(addr) => {
                let handle = self.handle.clone();
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let text = match crate::node::parse_peer_addr(&addr) {
                        Ok(a) => match handle.dial(&a).await {
                            Ok(peer) => format!("connected to {peer}"),
                            Err(e) => format!("dial failed: {e}"),
                        },
                        Err(e) => e.to_string(),
                    };
                    let _ = tx.send(Action::Notice(text)).await;
                });
            }
            Effect::Disconnect(peer) => {
                self.handle.disconnect(peer);
                self.notice(format!("disconnecting {peer}"));
            }
            Effect::UpsertRoute { name, url, stream } => match state.routes.file_state() {
                crate::routes::FileState {
                    path: Some(path),
                    version,
                    ..
                } => match crate::routes::upsert_route_in_file(&path, &name, &url, stream, version)
                {
                    Ok(()) => self.notice(format!(
                        "route '{name}' written to {}; reloading",
                        path.display()
                    )),
                    Err(e) => self.notice(format!("cannot save route: {e}")),
                },
                _ => self.notice("no route file: start with --routes FILE to edit routes".into()),
            },
            Effect::RemoveRoute(name) => match state.routes.file_state() {
                crate::routes::FileState {
                    path: Some(path),
                    version,
                    ..
                } => match crate::routes::remove_route_in_file(&path, &name, version) {
                    Ok(true) => {
                        self.notice(format!("route '{name}' removed from {}", path.display()))
                    }
                    Ok(false) => self.notice(format!(
                        "route '{name}' is not in the file (in-memory routes cannot be removed)"
                    )),
                    Err(e) => self.notice(format!("cannot remove route: {e}")),
                },
                _ => self.notice("no route file: start with --routes FILE to edit routes".into()),
            },
            Effect::Save { id, path } => {
                let Some(call) = state.calls.iter().find(|c| c.id == id) else {
                    return;
                };
                // Never replace an existing file: the operator picks another name.
                let result = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .and_then(|mut f| {
                        f.write_all(&call.output.raw)?;
                        Ok(f)
                    });
                match result {
                    Ok(f) => {
                        let more = if call.state.in_flight() {
                            "; the rest is appended as it arrives"
                        } else {
                            ""
                        };
                        let lost = if call.output.dropped > 0 {
                            format!(" ({} earlier bytes were past the cap)", call.output.dropped)
                        } else {
                            String::new()
                        };
                        if call.state.in_flight() {
                            self.tees.insert(id, f);
                        }
                        self.notice(format!("saved to {}{lost}{more}", path.display()));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        self.notice(format!(
                            "{} already exists; not replaced: save under another name",
                            path.display()
                        ))
                    }
                    Err(e) => self.notice(format!("cannot save to {}: {e}", path.display())),
                }
            }
            Effect::Copy(text) => {
                let seq = format!(
                    "\x1b]52;c;{}\x07",
                    base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
                );
                let mut out = std::io::stdout();
                let _ = out.write_all(seq.as_bytes()).and_then(|_| out.flush());
            }
            Effect::FetchRoutes(target) => {
                let handle = self.handle.clone();
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let routes = match crate::node::parse_peer_addr(&target) {
                        Ok(addr) => handle.list_routes(&addr).await.map_err(|e| match e {
                            crate::CallError::Unsupported { .. } => {
                                "the peer does not list its routes (a 1.0.0-only node)".to_string()
                            }
                            other => other.to_string(),
                        }),
                        Err(e) => Err(e.to_string()),
                    };
                    let _ = tx.send(Action::RemoteRoutes { target, routes }).await;
                });
            }
            Effect::RecordHistory(entry) => {
                if let Err(e) = super::history::append(&self.history_file, &entry) {
                    tracing::warn!(file = %self.history_file.display(), "cannot record history: {e}");
                }
            }
            Effect::Quit => {}
        }
    }
}

async fn send_call(handle: NodeHandle, tx: mpsc::Sender<Action>, id: LocalId, spec: CallSpec) {
    let addr = match crate::node::parse_peer_addr(&spec.target) {
        Ok(a) => a,
        Err(e) => {
            let _ = tx
                .send(Action::CallEnded {
                    id,
                    error: Some(e.to_string()),
                    at: Instant::now(),
                })
                .await;
            return;
        }
    };
    let req: CallRequest = spec.request;
    let send_bytes = |bytes: bytes::Bytes| {
        tx.send(Action::CallBytes {
            id,
            bytes,
            at: Instant::now(),
        })
    };
    let error = if spec.stream {
        match handle.stream_full(&addr, req).await {
            Ok((head, mut chunks)) => {
                let _ = tx.send(Action::CallHead { id, head }).await;
                let mut error = None;
                while let Some(chunk) = chunks.next().await {
                    match chunk {
                        Ok(bytes) => {
                            let _ = send_bytes(bytes).await;
                        }
                        Err(e) => {
                            error = Some(e.to_string());
                            break;
                        }
                    }
                }
                error
            }
            Err(e) => Some(e.to_string()),
        }
    } else {
        match handle.call_full(&addr, req).await {
            Ok(crate::node::Response { head, body: bytes }) => {
                let _ = tx.send(Action::CallHead { id, head }).await;
                let _ = send_bytes(bytes).await;
                None
            }
            Err(e) => Some(e.to_string()),
        }
    };
    let _ = tx
        .send(Action::CallEnded {
            id,
            error,
            at: Instant::now(),
        })
        .await;
}

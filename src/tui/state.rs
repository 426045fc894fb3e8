//! The console's state and its one update function: action in, state
//! changed, effects out. Drawing only reads this.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;
use ratatui_textarea::TextArea;

use super::action::{Action, LocalId, Pane};
use super::output::Output;
use crate::node::{CallId, CallRequest, NodeEvent, PeerInfo, ServeOutcome};
use crate::routes::Routes;

/// Most calls kept in the Calls list; the oldest finished ones go first.
pub const MAX_CALLS: usize = 500;
/// Most log lines kept in the Log pane.
pub const MAX_LOG_LINES: usize = 2000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallState {
    Connecting,
    Waiting,
    Streaming,
    Done,
    Failed,
    Cancelled,
}

impl CallState {
    pub fn in_flight(self) -> bool {
        matches!(self, Self::Connecting | Self::Waiting | Self::Streaming)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Waiting => "waiting",
            Self::Streaming => "streaming",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// What to send: the composer's content, kept with the call for re-runs.
#[derive(Clone, Debug)]
pub struct CallSpec {
    pub target: String,
    pub request: CallRequest,
    pub stream: bool,
}

pub struct CallView {
    pub id: LocalId,
    pub outgoing: bool,
    pub peer: String,
    pub route: String,
    pub method: String,
    pub stream: bool,
    pub state: CallState,
    pub error: Option<String>,
    pub status: Option<u16>,
    pub bytes: u64,
    pub chunks: u64,
    pub started: Instant,
    pub duration: Option<Duration>,
    pub spec: Option<CallSpec>,
    pub output: Output,
    /// What the response head said (None until it arrives).
    pub head: Option<crate::node::ResponseHead>,
}

impl CallView {
    /// A served call that has just started; outgoing calls adjust it.
    fn new(
        id: LocalId,
        peer: String,
        route: &str,
        method: &str,
        stream: bool,
        output: Output,
    ) -> Self {
        Self {
            id,
            outgoing: false,
            peer,
            route: route.to_string(),
            method: method.to_string(),
            stream,
            state: CallState::Streaming,
            error: None,
            status: None,
            bytes: 0,
            chunks: 0,
            started: output.metrics.start,
            duration: None,
            spec: None,
            head: None,
            output,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputMode {
    Raw,
    Events,
    Text,
}

pub struct OutputView {
    pub mode: OutputMode,
    pub follow: bool,
    /// Lines scrolled up from the tail when not following.
    pub scroll: usize,
    pub wrap: bool,
    /// While paused the view shows the first `len` bytes/events it had.
    pub paused: Option<(usize, usize, usize)>,
    pub search: Option<String>,
    /// Index of the current match, counted from the end.
    pub search_hit: usize,
    /// Show the response head (protocol, status, headers) above the body.
    pub show_headers: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PromptKind {
    Dial,
    AddRoute,
    EditRoute(String),
    Search,
    SavePath,
    TokenPath,
}

pub struct Prompt {
    pub kind: PromptKind,
    pub title: String,
    pub input: TextArea<'static>,
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Question {
    Quit,
    DeleteRoute(String),
}

pub const FIELD_NAMES: [&str; 5] = ["Peer", "Route", "Method", "Headers", "Body"];
pub const F_TARGET: usize = 0;
pub const F_ROUTE: usize = 1;
pub const F_METHOD: usize = 2;
pub const F_HEADERS: usize = 3;
pub const F_BODY: usize = 4;

pub struct Composer {
    pub fields: Vec<TextArea<'static>>,
    pub field: usize,
    pub editing: bool,
    pub stream: bool,
    pub warning: Option<String>,
    /// A warned-about send repeated is sent anyway.
    pub armed: bool,
}

impl Composer {
    pub fn new() -> Self {
        let mut fields: Vec<TextArea<'static>> = (0..5).map(|_| TextArea::default()).collect();
        fields[F_TARGET].set_placeholder_text("/ip4/127.0.0.1/tcp/4001/p2p/12D3KooW…");
        fields[F_ROUTE].set_placeholder_text("route name");
        fields[F_METHOD].insert_str("GET");
        fields[F_HEADERS].set_placeholder_text("Name: value (one per line)");
        fields[F_BODY].set_placeholder_text("request body");
        Self {
            fields,
            field: F_TARGET,
            editing: false,
            stream: false,
            warning: None,
            armed: false,
        }
    }

    pub fn text(&self, field: usize) -> String {
        self.fields[field].lines().join("\n")
    }

    pub fn set(&mut self, field: usize, text: &str) {
        let mut area = TextArea::from(text.lines().map(str::to_string).collect::<Vec<_>>());
        if text.is_empty() {
            area = TextArea::default();
        }
        area.set_placeholder_text(match field {
            F_TARGET => "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooW…",
            F_ROUTE => "route name",
            F_HEADERS => "Name: value (one per line)",
            F_BODY => "request body",
            _ => "",
        });
        area.move_cursor(ratatui_textarea::CursorMove::Bottom);
        area.move_cursor(ratatui_textarea::CursorMove::End);
        self.fields[field] = area;
    }

    /// Builds the call, or says what is wrong with the form.
    pub fn build(&self) -> Result<(CallSpec, Option<String>), String> {
        let target = self.text(F_TARGET).trim().to_string();
        crate::node::parse_peer_addr(&target).map_err(|e| e.to_string())?;
        let route = self.text(F_ROUTE).trim().to_string();
        if route.is_empty() {
            return Err("route is empty".into());
        }
        let method = self.text(F_METHOD).trim().to_uppercase();
        let method = if method.is_empty() {
            "GET".into()
        } else {
            method
        };
        if !method.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(format!("method {method:?} is not an HTTP method"));
        }
        let mut request = CallRequest::new(route).method(method);
        let mut claims_json = false;
        for (i, line) in self.text(F_HEADERS).lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let (name, value) = crate::node::parse_header_line(line)
                .map_err(|why| format!("header line {} {why}", i + 1))?;
            if name.eq_ignore_ascii_case("content-type") && value.contains("json") {
                claims_json = true;
            }
            request = request.header(name, value);
        }
        let body = self.text(F_BODY);
        let mut warning = None;
        if claims_json && !body.trim().is_empty() {
            if let Err(e) = serde_json::from_str::<serde_json::Value>(&body) {
                warning = Some(format!(
                    "body claims JSON but does not parse (line {}, column {}): send again to send anyway",
                    e.line(),
                    e.column()
                ));
            }
        }
        request = request.body(body.into_bytes());
        Ok((
            CallSpec {
                target,
                request,
                stream: self.stream,
            },
            warning,
        ))
    }
}

impl Default for Composer {
    fn default() -> Self {
        Self::new()
    }
}

/// What the app must do for an update; the state itself does no I/O.
#[derive(Debug, Clone)]
pub enum Effect {
    Send {
        id: LocalId,
        spec: CallSpec,
    },
    Cancel(LocalId),
    Dial(String),
    Disconnect(libp2p::PeerId),
    UpsertRoute {
        name: String,
        url: String,
        stream: bool,
    },
    RemoveRoute(String),
    Save {
        id: LocalId,
        path: PathBuf,
    },
    Copy(String),
    FetchRoutes(String),
    RecordHistory(super::history::Entry),
    Quit,
}

pub struct State {
    pub focus: Pane,
    pub help: bool,
    pub me: String,
    pub listen: Vec<String>,
    pub peers: Vec<PeerInfo>,
    pub peer_sel: usize,
    pub routes: Routes,
    pub route_sel: usize,
    pub route_change: Option<(SystemTime, String)>,
    pub calls: Vec<CallView>,
    pub call_sel: usize,
    served: HashMap<CallId, LocalId>,
    pub composer: Composer,
    pub output: OutputView,
    pub log: VecDeque<(tracing::Level, String)>,
    pub log_level: tracing::Level,
    pub log_scroll: usize,
    pub prompt: Option<Prompt>,
    pub question: Option<Question>,
    pub notice: Option<(String, Instant)>,
    next_id: LocalId,
    pub output_cap: usize,
    /// The whole screen, as last drawn (for mouse hit tests).
    pub screen: Rect,
    pub quit: bool,
    /// Route listings of remote peers, by the composer target they were asked for.
    pub remote_routes: HashMap<String, Result<Vec<crate::wire::RouteInfo>, String>>,
    /// Sent calls, oldest first, and where the composer is in them.
    pub history: Vec<super::history::Entry>,
    pub history_pos: Option<usize>,
    /// The clock views read, set before each frame (so drawing is a pure
    /// function of the state, and snapshots are stable).
    pub now: Instant,
    pub wall: SystemTime,
    /// JSON path for token text set by the user (None: the common shapes).
    pub token_path: Option<String>,
}

impl State {
    pub fn new(me: String, routes: Routes, output_cap: usize) -> Self {
        Self {
            focus: Pane::Composer,
            help: false,
            me,
            listen: Vec::new(),
            peers: Vec::new(),
            peer_sel: 0,
            routes,
            route_sel: 0,
            route_change: None,
            calls: Vec::new(),
            call_sel: 0,
            served: HashMap::new(),
            composer: Composer::new(),
            output: OutputView {
                mode: OutputMode::Text,
                follow: true,
                scroll: 0,
                wrap: true,
                paused: None,
                search: None,
                search_hit: 0,
                show_headers: false,
            },
            log: VecDeque::new(),
            log_level: tracing::Level::INFO,
            log_scroll: 0,
            prompt: None,
            question: None,
            notice: None,
            next_id: 1,
            output_cap,
            screen: Rect::new(0, 0, 80, 24),
            quit: false,
            remote_routes: HashMap::new(),
            history: Vec::new(),
            history_pos: None,
            now: Instant::now(),
            wall: SystemTime::now(),
            token_path: None,
        }
    }

    pub fn in_flight(&self) -> usize {
        self.calls.iter().filter(|c| c.state.in_flight()).count()
    }

    pub fn selected_call(&self) -> Option<&CallView> {
        self.calls.get(self.call_sel)
    }

    fn call_mut(&mut self, id: LocalId) -> Option<&mut CallView> {
        self.calls.iter_mut().find(|c| c.id == id)
    }

    fn notice(&mut self, text: impl Into<String>) {
        self.notice = Some((text.into(), Instant::now()));
    }

    fn route_names(&self) -> Vec<String> {
        self.routes.current().keys().cloned().collect()
    }

    fn push_call(&mut self, call: CallView) {
        if self.calls.len() >= MAX_CALLS {
            if let Some(pos) = self.calls.iter().position(|c| !c.state.in_flight()) {
                self.calls.remove(pos);
            }
        }
        self.calls.push(call);
    }

    fn new_call(&mut self, spec: CallSpec) -> Vec<Effect> {
        let id = self.next_id;
        self.next_id += 1;
        let peer = spec
            .target
            .rsplit("/p2p/")
            .next()
            .unwrap_or_default()
            .to_string();
        let now = Instant::now();
        let mut output = Output::new(now, self.output_cap);
        output.token_path = self.token_path.clone();
        let mut call = CallView::new(
            id,
            peer,
            &spec.request.route,
            &spec.request.method,
            spec.stream,
            output,
        );
        call.outgoing = true;
        call.state = CallState::Connecting;
        call.spec = Some(spec.clone());
        self.push_call(call);
        self.select_call(self.calls.len() - 1);
        vec![Effect::Send { id, spec }]
    }

    fn select_call(&mut self, index: usize) {
        self.call_sel = index;
        self.output.scroll = 0;
        self.output.follow = true;
        self.output.paused = None;
    }

    fn list_len(&self, pane: Pane) -> usize {
        match pane {
            Pane::Peers => self.peers.len(),
            Pane::Routes => self.routes.current().len(),
            Pane::Calls => self.calls.len(),
            _ => 0,
        }
    }

    fn move_selection(&mut self, delta: isize) {
        let len = self.list_len(self.focus);
        let clamp = |v: usize| -> usize {
            let v = v as isize + delta;
            v.clamp(0, len.saturating_sub(1) as isize) as usize
        };
        match self.focus {
            Pane::Peers => self.peer_sel = clamp(self.peer_sel),
            Pane::Routes => self.route_sel = clamp(self.route_sel),
            Pane::Calls => {
                let i = clamp(self.call_sel);
                if i != self.call_sel {
                    self.select_call(i);
                }
            }
            Pane::Output => {
                if delta < 0 {
                    self.output.follow = false;
                    self.output.scroll = self.output.scroll.saturating_add(delta.unsigned_abs());
                } else {
                    self.output.scroll = self.output.scroll.saturating_sub(delta as usize);
                    if self.output.scroll == 0 {
                        self.output.follow = true;
                    }
                }
            }
            Pane::Log => {
                if delta < 0 {
                    self.log_scroll = self.log_scroll.saturating_add(delta.unsigned_abs());
                } else {
                    self.log_scroll = self.log_scroll.saturating_sub(delta as usize);
                }
            }
            Pane::Composer => {
                let f = self.composer.field as isize + delta.signum();
                self.composer.field = f.clamp(0, 4) as usize;
            }
        }
    }

    fn open_prompt(&mut self, kind: PromptKind, title: &str, initial: &str) {
        let mut input = TextArea::from(vec![initial.to_string()]);
        input.move_cursor(ratatui_textarea::CursorMove::End);
        self.prompt = Some(Prompt {
            kind,
            title: title.to_string(),
            input,
            error: None,
        });
    }

    /// Handles a key while a prompt or a text field owns the keyboard.
    /// Returns `None` when the key was not for them.
    pub fn text_key(&mut self, key: KeyEvent) -> Option<Vec<Effect>> {
        if let Some(prompt) = &mut self.prompt {
            match key.code {
                KeyCode::Esc => self.prompt = None,
                KeyCode::Enter => return Some(self.submit_prompt()),
                _ => {
                    prompt.input.input(key);
                    prompt.error = None;
                }
            }
            return Some(vec![]);
        }
        if self.focus == Pane::Composer && self.composer.editing {
            let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
            match key.code {
                KeyCode::Esc => {
                    self.composer.editing = false;
                    return Some(self.fetch_routes_effect().into_iter().collect());
                }
                KeyCode::Tab => self.composer.field = (self.composer.field + 1) % 5,
                KeyCode::BackTab => self.composer.field = (self.composer.field + 4) % 5,
                KeyCode::Char('s') if ctrl => return Some(self.update(Action::Send)),
                KeyCode::Enter if self.composer.field < F_HEADERS => {
                    self.composer.field += 1;
                }
                _ => {
                    let f = self.composer.field;
                    self.composer.fields[f].input(key);
                    self.composer.warning = None;
                    self.composer.armed = false;
                }
            }
            return Some(vec![]);
        }
        None
    }

    fn composer_entry(&self) -> super::history::Entry {
        super::history::Entry {
            target: self.composer.text(F_TARGET).trim().to_string(),
            route: self.composer.text(F_ROUTE).trim().to_string(),
            method: self.composer.text(F_METHOD).trim().to_string(),
            headers: self.composer.text(F_HEADERS),
            body: self.composer.text(F_BODY),
            stream: self.composer.stream,
        }
    }

    /// Asks for the target peer's routes once per target.
    pub fn fetch_routes_effect(&mut self) -> Option<Effect> {
        let target = self.composer.text(F_TARGET).trim().to_string();
        if crate::node::parse_peer_addr(&target).is_err()
            || self.remote_routes.contains_key(&target)
        {
            return None;
        }
        self.remote_routes
            .insert(target.clone(), Err("asking…".into()));
        Some(Effect::FetchRoutes(target))
    }

    /// A warning when the target's listing says the call cannot work.
    fn listing_warning(&self, spec: &CallSpec) -> Option<String> {
        let Some(Ok(routes)) = self.remote_routes.get(&spec.target) else {
            return None;
        };
        match routes.iter().find(|r| r.name == spec.request.route) {
            None => Some(format!(
                "the peer lists no route '{}': send again to send anyway",
                spec.request.route
            )),
            Some(r) if spec.stream && !r.stream => Some(format!(
                "route '{}' is unary on that peer (m switches to unary): send again to send anyway",
                r.name
            )),
            _ => None,
        }
    }

    fn submit_prompt(&mut self) -> Vec<Effect> {
        let Some(prompt) = self.prompt.take() else {
            return vec![];
        };
        let text = prompt.input.lines().join(" ").trim().to_string();
        let reopen = |state: &mut Self, prompt: Prompt, error: String| {
            state.prompt = Some(Prompt {
                error: Some(error),
                ..prompt
            });
            vec![]
        };
        match prompt.kind.clone() {
            PromptKind::Dial => match crate::node::parse_peer_addr(&text) {
                Ok(_) => vec![Effect::Dial(text)],
                Err(e) => reopen(self, prompt, e.to_string()),
            },
            PromptKind::AddRoute | PromptKind::EditRoute(_) => {
                let parts: Vec<&str> = text.split_whitespace().collect();
                let stream = match parts.get(2).copied() {
                    None | Some("unary") | Some("false") | Some("no") => false,
                    Some("stream") | Some("true") | Some("yes") => true,
                    Some(other) => {
                        return reopen(
                            self,
                            prompt,
                            format!("third word must be 'stream' or 'unary', not {other:?}"),
                        )
                    }
                };
                match parts.as_slice() {
                    [name, url, ..]
                        if url.starts_with("http://") || url.starts_with("https://") =>
                    {
                        let mut effects = vec![Effect::UpsertRoute {
                            name: name.to_string(),
                            url: url.to_string(),
                            stream,
                        }];
                        if let PromptKind::EditRoute(old) = &prompt.kind {
                            if old != name {
                                effects.push(Effect::RemoveRoute(old.clone()));
                            }
                        }
                        effects
                    }
                    _ => reopen(
                        self,
                        prompt,
                        "write: NAME URL [stream|unary], URL starting with http:// or https://"
                            .into(),
                    ),
                }
            }
            PromptKind::Search => {
                self.output.search = (!text.is_empty()).then_some(text);
                self.output.search_hit = 0;
                self.output.follow = false;
                vec![]
            }
            PromptKind::TokenPath => {
                self.token_path = (!text.is_empty()).then_some(text);
                let path = self.token_path.clone();
                if let Some(c) = self.calls.get_mut(self.call_sel) {
                    c.output.set_token_path(path);
                }
                self.notice(match &self.token_path {
                    Some(p) => format!("token text from JSON path {p}"),
                    None => "token text from the common inference shapes".into(),
                });
                vec![]
            }
            PromptKind::SavePath => match self.selected_call() {
                Some(call) if !text.is_empty() => vec![Effect::Save {
                    id: call.id,
                    path: PathBuf::from(text),
                }],
                _ => vec![],
            },
        }
    }

    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        if let Some(q) = self.question.clone() {
            if let Action::Confirm(yes) = action {
                self.question = None;
                return match (q, yes) {
                    (Question::Quit, true) => {
                        self.quit = true;
                        vec![Effect::Quit]
                    }
                    (Question::DeleteRoute(name), true) => vec![Effect::RemoveRoute(name)],
                    _ => vec![],
                };
            }
            if !matches!(
                action,
                Action::Node(_)
                    | Action::CallBytes { .. }
                    | Action::CallEnded { .. }
                    | Action::Log(..)
                    | Action::Peers(_)
                    | Action::Listening(_)
                    | Action::Notice(_)
            ) {
                return vec![];
            }
        }
        match action {
            Action::ForceQuit => {
                self.quit = true;
                return vec![Effect::Quit];
            }
            Action::Quit => {
                if self.in_flight() > 0 {
                    self.question = Some(Question::Quit);
                } else {
                    self.quit = true;
                    return vec![Effect::Quit];
                }
            }
            Action::Confirm(_) => {}
            Action::ToggleHelp => self.help = !self.help,
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
                let next = if matches!(action, Action::FocusNext) {
                    (i + 1) % n
                } else {
                    (i + n - 1) % n
                };
                self.focus = Pane::ALL[next];
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
                    self.output.follow = true;
                    self.output.scroll = 0;
                }
            }
            Action::Activate => match self.focus {
                Pane::Composer => self.composer.editing = true,
                Pane::Calls => self.focus = Pane::Output,
                _ => {}
            },
            Action::NextField => self.composer.field = (self.composer.field + 1) % 5,
            Action::EditKey(key) => {
                let f = self.composer.field;
                self.composer.fields[f].input(key);
            }
            Action::ToggleStream => self.composer.stream = !self.composer.stream,
            Action::HistoryPrev | Action::HistoryNext => {
                if self.history.is_empty() {
                    self.notice("no sent calls yet");
                    return vec![];
                }
                let last = self.history.len() - 1;
                let pos = match (self.history_pos, matches!(action, Action::HistoryPrev)) {
                    (None, _) => last,
                    (Some(p), true) => p.saturating_sub(1),
                    (Some(p), false) => (p + 1).min(last),
                };
                self.history_pos = Some(pos);
                let e = self.history[pos].clone();
                self.composer.set(F_TARGET, &e.target);
                self.composer.set(F_ROUTE, &e.route);
                self.composer.set(F_METHOD, &e.method);
                self.composer.set(F_HEADERS, &e.headers);
                self.composer.set(F_BODY, &e.body);
                self.composer.stream = e.stream;
                self.notice(format!("history {}/{}", pos + 1, self.history.len()));
                return self.fetch_routes_effect().into_iter().collect();
            }
            Action::Send => match self.composer.build().map(|(spec, w)| {
                let w = w.or_else(|| self.listing_warning(&spec));
                (spec, w)
            }) {
                Ok((spec, Some(warning))) if !self.composer.armed => {
                    self.composer.warning = Some(warning);
                    self.composer.armed = true;
                    let _ = spec;
                }
                Ok((spec, _)) => {
                    self.composer.warning = None;
                    self.composer.armed = false;
                    self.composer.editing = false;
                    let entry = self.composer_entry();
                    if self.history.last() != Some(&entry) {
                        self.history.push(entry.clone());
                    }
                    self.history_pos = None;
                    let mut effects = self.new_call(spec);
                    effects.push(Effect::RecordHistory(entry));
                    return effects;
                }
                Err(e) => {
                    self.composer.warning = Some(e);
                    self.composer.armed = false;
                }
            },
            Action::CancelCall => {
                if let Some(call) = self.calls.get_mut(self.call_sel) {
                    if call.outgoing && call.state.in_flight() {
                        call.state = CallState::Cancelled;
                        call.duration = Some(call.started.elapsed());
                        return vec![Effect::Cancel(call.id)];
                    }
                }
            }
            Action::RerunCall => {
                if let Some(spec) = self.selected_call().and_then(|c| c.spec.clone()) {
                    return self.new_call(spec);
                }
            }
            Action::StartDial => self.open_prompt(PromptKind::Dial, "Dial multiaddr", ""),
            Action::DisconnectPeer => {
                if let Some(p) = self.peers.get(self.peer_sel) {
                    return vec![Effect::Disconnect(p.peer)];
                }
            }
            Action::CopyPeerToComposer => {
                if let Some(p) = self.peers.get(self.peer_sel) {
                    let addr = peer_multiaddr(p);
                    self.composer.set(F_TARGET, &addr);
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
                let table = self.routes.current();
                if let Some((name, route)) = table.iter().nth(self.route_sel) {
                    let initial = format!(
                        "{name} {} {}",
                        route.url,
                        if route.stream { "stream" } else { "unary" }
                    );
                    self.open_prompt(
                        PromptKind::EditRoute(name.clone()),
                        "Edit route: NAME URL [stream|unary]",
                        &initial,
                    );
                }
            }
            Action::DeleteRoute => {
                if let Some(name) = self.route_names().get(self.route_sel) {
                    self.question = Some(Question::DeleteRoute(name.clone()));
                }
            }
            Action::CycleView => {
                self.output.mode = match self.output.mode {
                    OutputMode::Raw => OutputMode::Events,
                    OutputMode::Events => OutputMode::Text,
                    OutputMode::Text => OutputMode::Raw,
                };
                self.output.scroll = 0;
            }
            Action::ToggleFollow => {
                self.output.follow = !self.output.follow;
                if self.output.follow {
                    self.output.scroll = 0;
                    self.output.paused = None;
                }
            }
            Action::TogglePause => {
                self.output.paused = match (&self.output.paused, self.selected_call()) {
                    (None, Some(c)) => Some((
                        c.output.raw.len(),
                        c.output.events.len(),
                        c.output.text.len(),
                    )),
                    _ => None,
                };
            }
            Action::ToggleWrap => self.output.wrap = !self.output.wrap,
            Action::StartSearch => self.open_prompt(PromptKind::Search, "Search output", ""),
            Action::SetTokenPath => {
                let current = self.token_path.clone().unwrap_or_default();
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
            Action::CopyOutput => {
                if let Some(c) = self.selected_call() {
                    let text = match self.output.mode {
                        OutputMode::Text => c.output.text.clone(),
                        _ => String::from_utf8_lossy(&c.output.raw).into_owned(),
                    };
                    self.notice(format!(
                        "copied {} bytes to the clipboard (OSC 52)",
                        text.len()
                    ));
                    return vec![Effect::Copy(text)];
                }
            }
            Action::CycleLogLevel => {
                use tracing::Level;
                self.log_level = match self.log_level {
                    Level::ERROR => Level::WARN,
                    Level::WARN => Level::INFO,
                    Level::INFO => Level::DEBUG,
                    _ => Level::ERROR,
                };
            }
            Action::Node(ev) => self.on_node_event(ev),
            Action::CallHead { id, head } => {
                if let Some(c) = self.call_mut(id) {
                    c.status = head.status;
                    c.head = Some(head);
                }
            }
            Action::ToggleHeaders => self.output.show_headers = !self.output.show_headers,
            Action::CallBytes { id, bytes, at } => {
                if let Some(c) = self.call_mut(id) {
                    if c.state.in_flight() {
                        c.state = if c.stream {
                            CallState::Streaming
                        } else {
                            CallState::Waiting
                        };
                        c.bytes += bytes.len() as u64;
                        c.chunks += 1;
                        c.output.push(&bytes, at);
                    }
                }
            }
            Action::CallEnded { id, error, at } => {
                if let Some(c) = self.call_mut(id) {
                    if c.state.in_flight() {
                        c.output.finish(at);
                        c.duration = Some(at.saturating_duration_since(c.started));
                        // Only 1.0.0 carries errors as body text; a 2.0.0
                        // body that looks like one is just a body.
                        let v1 = c
                            .head
                            .as_ref()
                            .is_some_and(|h| h.version == crate::node::ApiVersion::V1);
                        let inband = if v1 { c.output.v1_error() } else { None };
                        match error.or(inband) {
                            Some(e) => {
                                c.state = CallState::Failed;
                                c.error = Some(e);
                            }
                            None => c.state = CallState::Done,
                        }
                    }
                }
            }
            Action::Log(line, level) => {
                if self.log.len() >= MAX_LOG_LINES {
                    self.log.pop_front();
                }
                self.log.push_back((level, line));
            }
            Action::Notice(text) => self.notice(text),
            Action::Peers(peers) => {
                self.peers = peers;
                self.peer_sel = self.peer_sel.min(self.peers.len().saturating_sub(1));
            }
            Action::Listening(addrs) => self.listen = addrs,
            Action::RemoteRoutes { target, routes } => {
                self.remote_routes.insert(target, routes);
            }
            Action::MouseClick { column, row } => {
                if let Some(p) = super::view::pane_at(self, column, row) {
                    self.focus = p;
                }
            }
            Action::Scroll { column, row, down } => {
                if let Some(p) = super::view::pane_at(self, column, row) {
                    let prev = self.focus;
                    self.focus = p;
                    self.move_selection(if down { 3 } else { -3 });
                    self.focus = prev;
                }
            }
        }
        vec![]
    }

    fn on_node_event(&mut self, ev: NodeEvent) {
        match ev {
            NodeEvent::RoutesReloaded { diff, routes, .. } => {
                self.route_change = Some((SystemTime::now(), format!("{diff} ({routes} routes)")));
                self.route_sel = self.route_sel.min(routes.saturating_sub(1));
            }
            NodeEvent::RoutesRejected { error } => {
                self.route_change = Some((SystemTime::now(), format!("rejected: {error}")));
            }
            NodeEvent::ServeStarted {
                id,
                peer,
                route,
                method,
                stream,
            } => {
                let local = self.next_id;
                self.next_id += 1;
                self.served.insert(id, local);
                let now = Instant::now();
                // Served calls keep no body: the caller has it.
                let output = Output::new(now, 1024);
                self.push_call(CallView::new(
                    local,
                    peer.to_string(),
                    &route,
                    &method,
                    stream,
                    output,
                ));
            }
            NodeEvent::ServeFinished {
                id,
                outcome,
                bytes,
                elapsed,
            } => {
                if let Some(local) = self.served.remove(&id) {
                    if let Some(c) = self.call_mut(local) {
                        c.bytes = bytes;
                        c.duration = Some(elapsed);
                        match outcome {
                            ServeOutcome::Ok { status } => {
                                c.state = CallState::Done;
                                c.status = Some(status);
                            }
                            ServeOutcome::CallerGone { error } => {
                                c.state = CallState::Cancelled;
                                c.error = Some(error);
                            }
                            other => {
                                c.state = CallState::Failed;
                                c.error = Some(match other {
                                    ServeOutcome::RouteNotFound => "route not found".into(),
                                    ServeOutcome::StreamNotSupported => {
                                        "stream not supported".into()
                                    }
                                    ServeOutcome::Refused { reason } => reason,
                                    ServeOutcome::Failed { error } => error,
                                    _ => String::new(),
                                });
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// A peer's dialable address: its connection address (or first listen
/// address) with `/p2p/<id>`.
pub fn peer_multiaddr(p: &PeerInfo) -> String {
    let base = if p.direction == crate::node::Direction::Outbound {
        Some(p.addr.clone())
    } else {
        p.listen_addrs
            .iter()
            .find(|a| a.to_string().contains("127.0.0.1"))
            .or(p.listen_addrs.first())
            .cloned()
            .or(Some(p.addr.clone()))
    };
    let mut s = base.map(|a| a.to_string()).unwrap_or_default();
    if !s.contains("/p2p/") {
        s.push_str(&format!("/p2p/{}", p.peer));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        State::new("me".into(), Routes::default(), 1 << 20)
    }

    fn key(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    /// Points the composer at a (made-up) peer and a route.
    fn aim(s: &mut State, route: &str) {
        let peer = libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id();
        s.composer
            .set(F_TARGET, &format!("/ip4/127.0.0.1/tcp/1/p2p/{peer}"));
        s.composer.set(F_ROUTE, route);
    }

    #[test]
    fn tab_cycles_focus_both_ways() {
        let mut s = state();
        s.focus = Pane::Peers;
        s.update(Action::FocusNext);
        assert_eq!(s.focus, Pane::Routes);
        s.update(Action::FocusPrev);
        s.update(Action::FocusPrev);
        assert_eq!(s.focus, Pane::Log);
    }

    #[test]
    fn typing_in_the_composer_never_fires_hotkeys() {
        let mut s = state();
        s.focus = Pane::Composer;
        s.update(Action::Activate);
        s.composer.field = F_ROUTE;
        for c in "quit".chars() {
            assert!(s.text_key(key(c)).is_some());
        }
        assert!(!s.quit);
        assert_eq!(s.composer.text(F_ROUTE), "quit");
        s.text_key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
        assert!(!s.composer.editing);
        assert!(
            s.text_key(key('q')).is_none(),
            "outside editing, keys go to the keymap"
        );
    }

    #[test]
    fn send_validates_and_creates_a_call() {
        let mut s = state();
        let effects = s.update(Action::Send);
        assert!(effects.is_empty());
        assert!(s
            .composer
            .warning
            .as_deref()
            .unwrap_or("")
            .contains("multiaddr"));
        let peer = libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id();
        s.composer
            .set(F_TARGET, &format!("/ip4/127.0.0.1/tcp/1/p2p/{peer}"));
        s.composer.set(F_ROUTE, "inference");
        s.composer.set(F_HEADERS, "content-type: application/json");
        s.composer.set(F_BODY, "{not json");
        assert!(
            s.update(Action::Send).is_empty(),
            "bad JSON is flagged first"
        );
        assert!(s.composer.warning.as_deref().unwrap().contains("JSON"));
        let effects = s.update(Action::Send);
        assert!(
            matches!(
                effects.as_slice(),
                [Effect::Send { .. }, Effect::RecordHistory(_)]
            ),
            "second send goes anyway, and is recorded"
        );
        assert_eq!(s.history.len(), 1);
        s.composer.set(F_ROUTE, "changed");
        s.update(Action::HistoryPrev);
        assert_eq!(
            s.composer.text(F_ROUTE),
            "inference",
            "history recalls the sent call"
        );
        assert_eq!(s.calls.len(), 1);
        assert_eq!(s.calls[0].state, CallState::Connecting);
    }

    #[test]
    fn only_a_1_0_0_body_is_read_as_an_error_text() {
        for (version, failed) in [
            (crate::node::ApiVersion::V1, true),
            (crate::node::ApiVersion::V2, false),
        ] {
            let mut s = state();
            aim(&mut s, "echo");
            s.update(Action::Send);
            let id = s.calls[0].id;
            let at = s.now;
            s.update(Action::CallHead {
                id,
                head: crate::node::ResponseHead {
                    version,
                    status: (version == crate::node::ApiVersion::V2).then_some(200),
                    headers: Default::default(),
                },
            });
            s.update(Action::CallBytes {
                id,
                bytes: bytes::Bytes::from_static(b"Error processing request: echoed text"),
                at,
            });
            s.update(Action::CallEnded {
                id,
                error: None,
                at,
            });
            let want = if failed {
                CallState::Failed
            } else {
                CallState::Done
            };
            assert_eq!(s.calls[0].state, want, "{version:?}");
        }
    }

    #[test]
    fn cancel_marks_the_call_and_asks_the_app_to_abort() {
        let mut s = state();
        aim(&mut s, "x");
        s.update(Action::Send);
        let effects = s.update(Action::CancelCall);
        assert!(matches!(effects.as_slice(), [Effect::Cancel(1)]));
        assert_eq!(s.history.len(), 1);
        assert_eq!(s.calls[0].state, CallState::Cancelled);
        // Late bytes do not revive it.
        s.update(Action::CallBytes {
            id: 1,
            bytes: "x".into(),
            at: Instant::now(),
        });
        assert_eq!(s.calls[0].bytes, 0);
    }

    #[test]
    fn quitting_with_calls_in_flight_asks_first() {
        let mut s = state();
        aim(&mut s, "x");
        s.update(Action::Send);
        assert!(s.update(Action::Quit).is_empty());
        assert_eq!(s.question, Some(Question::Quit));
        assert!(s.update(Action::Confirm(false)).is_empty());
        assert!(!s.quit);
        s.update(Action::Quit);
        assert!(matches!(
            s.update(Action::Confirm(true)).as_slice(),
            [Effect::Quit]
        ));
    }

    #[test]
    fn route_prompt_produces_the_file_edit() {
        let mut s = state();
        s.focus = Pane::Routes;
        s.update(Action::AddRoute);
        for c in "chat http://127.0.0.1:9/v1 stream".chars() {
            s.text_key(key(c));
        }
        let effects = s
            .text_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE))
            .unwrap();
        match effects.as_slice() {
            [Effect::UpsertRoute { name, url, stream }] => {
                assert_eq!(name, "chat");
                assert_eq!(url, "http://127.0.0.1:9/v1");
                assert!(*stream);
            }
            other => panic!("unexpected {other:?}"),
        }
        s.update(Action::AddRoute);
        for c in "bad ftp://x".chars() {
            s.text_key(key(c));
        }
        let effects = s
            .text_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE))
            .unwrap();
        assert!(effects.is_empty());
        assert!(
            s.prompt.as_ref().unwrap().error.is_some(),
            "bad input keeps the prompt open with an error"
        );
    }
}

//! The Calls list: outgoing and served calls, newest last, bounded; the
//! selected one is what Output shows.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::node::{CallId, ResponseHead, ServeOutcome};
use crate::tui::action::LocalId;
use crate::tui::call_response::Output;
use crate::tui::effect::CallSpec;

/// Most calls kept in the Calls list; the oldest finished ones go first.
pub const MAX_CALLS: usize = 10_000;
/// Most bytes of body all listed calls keep together; past it, the oldest
/// finished calls let their bodies go (their figures stay). Checked as each
/// call starts, so in-flight calls may add up to their own caps on top.
pub const MAX_KEPT_OUTPUT_BYTES: usize = 256 * 1024 * 1024;
/// Served calls keep no body (the caller has it), only this much output.
const SERVED_OUTPUT_CAP: usize = 1024;

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
    pub head: Option<ResponseHead>,
    /// The serving node's final timings, when it sent them.
    pub end_timing: Option<crate::wire::frame::ServerTiming>,
    /// The node's number for this call, once known.
    pub node_call: Option<CallId>,
    /// Who had the node make it, for calls another client asked for.
    pub by: Option<String>,
    /// What kind of failure ended it (the table's class), when known.
    pub failure: Option<crate::wire::Failure>,
}

impl CallView {
    /// Where the call's time went, once it has ended (2.0.0 peers that
    /// send their timings).
    pub fn breakdown(&self) -> Option<crate::node::Breakdown> {
        let head = self.head.as_ref()?;
        crate::node::Breakdown::of(head, self.end_timing, self.duration?, self.stream)
    }
}

impl CallView {
    /// A served call that has just started; outgoing calls adjust it.
    pub(super) fn new(
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
            end_timing: None,
            node_call: None,
            by: None,
            failure: None,
            output,
        }
    }
}

/// The list, its selection, and which served call is which row.
pub struct Calls {
    /// A deque: the oldest go from the front as the newest arrive, and a
    /// flood of served calls must not move the whole list each time.
    pub list: VecDeque<CallView>,
    pub sel: usize,
    served: HashMap<CallId, LocalId>,
    /// How the node names this console on the calls it makes for it
    /// (its own calls are followed through their answers, not events).
    pub me: Option<String>,
    /// Calls other clients had the node make, by the node's number.
    pub(super) others: HashMap<CallId, LocalId>,
    next_id: LocalId,
    /// Bytes of output an outgoing call keeps.
    pub output_cap: usize,
    /// Bytes of body all listed calls keep together (default
    /// [`MAX_KEPT_OUTPUT_BYTES`]).
    pub output_budget: usize,
    /// JSON path for token text set by the user (None: the common shapes).
    pub token_path: Option<String>,
    /// The call the Output pane's diff compares the selected one with (`m`).
    pub diff_base: Option<LocalId>,
}

impl Calls {
    pub fn new(output_cap: usize) -> Self {
        Self {
            list: VecDeque::new(),
            sel: 0,
            served: HashMap::new(),
            me: None,
            others: HashMap::new(),
            next_id: 1,
            output_cap,
            output_budget: MAX_KEPT_OUTPUT_BYTES,
            token_path: None,
            diff_base: None,
        }
    }

    /// The call marked as the diff's base, while it is listed.
    pub fn diff_base(&self) -> Option<&CallView> {
        let id = self.diff_base?;
        self.list.iter().find(|c| c.id == id)
    }

    pub fn in_flight(&self) -> usize {
        self.list.iter().filter(|c| c.state.in_flight()).count()
    }

    pub fn selected(&self) -> Option<&CallView> {
        self.list.get(self.sel)
    }

    pub fn selected_mut(&mut self) -> Option<&mut CallView> {
        self.list.get_mut(self.sel)
    }

    pub(super) fn get_mut(&mut self, id: LocalId) -> Option<&mut CallView> {
        // Ids grow as calls are listed, so the list is sorted by id: this
        // runs for every chunk of every call, against up to MAX_CALLS.
        let i = self.list.binary_search_by_key(&id, |c| c.id).ok()?;
        self.list.get_mut(i)
    }

    pub(super) fn next_id(&mut self) -> LocalId {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Lists `call`, the oldest finished one going when the list is full.
    /// Served calls and others' keep at most a KiB each, so only this
    /// console's own calls are weighed against the body budget (it sums
    /// the whole list, too slow for every call of a flood).
    pub(super) fn push(&mut self, call: CallView) {
        if self.list.len() >= MAX_CALLS {
            if let Some(pos) = self.list.iter().position(|c| !c.state.in_flight()) {
                self.list.remove(pos);
                self.sel = self.sel.saturating_sub(usize::from(pos <= self.sel));
            }
        }
        self.list.push_back(call);
    }

    /// Releases the bodies of the oldest finished calls while all together
    /// keep more than the budget.
    fn keep_within_budget(&mut self) {
        let mut kept: usize = self.list.iter().map(|c| c.output.kept_bytes()).sum();
        for c in self.list.iter_mut() {
            if kept <= self.output_budget {
                break;
            }
            if !c.state.in_flight() && !c.output.released {
                kept -= c.output.kept_bytes();
                c.output.release();
            }
        }
    }

    /// A new outgoing call, selected; returns its number.
    pub fn start_outgoing(&mut self, spec: CallSpec, now: Instant) -> LocalId {
        let id = self.next_id();
        let peer = spec
            .target
            .rsplit("/p2p/")
            .next()
            .unwrap_or_default()
            .to_string();
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
        call.spec = Some(spec);
        self.push(call);
        self.keep_within_budget();
        self.sel = self.list.len() - 1;
        id
    }

    /// Marks the selected outgoing call cancelled; returns it if it was in flight.
    pub fn cancel_selected(&mut self, now: Instant) -> Option<LocalId> {
        let call = self.list.get_mut(self.sel)?;
        if !(call.outgoing && call.state.in_flight()) {
            return None;
        }
        call.state = CallState::Cancelled;
        call.duration = Some(now.saturating_duration_since(call.started));
        Some(call.id)
    }

    pub fn on_head(&mut self, id: LocalId, head: ResponseHead) {
        if let Some(c) = self.get_mut(id) {
            c.status = head.status;
            c.head = Some(head);
        }
    }

    /// The selected call, when it is a served call still in flight: its
    /// local id and the node's number for it, to tap.
    pub fn tap_selected(&self) -> Result<(LocalId, CallId), &'static str> {
        let c = self.list.get(self.sel).ok_or("no call selected")?;
        if c.outgoing {
            return Err("t taps a call this node serves; this one it made");
        }
        self.served
            .iter()
            .find(|(_, local)| **local == c.id)
            .map(|(id, local)| (*local, *id))
            .ok_or("that served call has ended: nothing left to tap")
    }

    pub fn on_bytes(&mut self, id: LocalId, bytes: &Bytes, at: Instant) {
        let Some(c) = self.get_mut(id) else { return };
        if !c.outgoing {
            // A tapped served call: its bytes may trail its end.
            c.output.push(bytes, at);
        } else if c.state.in_flight() {
            c.state = if c.stream {
                CallState::Streaming
            } else {
                CallState::Waiting
            };
            c.bytes += bytes.len() as u64;
            c.chunks += 1;
            c.output.push(bytes, at);
        }
    }

    /// A call of ours ended: `error` says why it failed, with its class
    /// when the node named one.
    pub fn on_ended(
        &mut self,
        id: LocalId,
        (error, failure): (Option<String>, Option<crate::wire::Failure>),
        at: Instant,
        server_timing: Option<crate::wire::frame::ServerTiming>,
    ) {
        let Some(c) = self.get_mut(id) else { return };
        if !c.state.in_flight() {
            return;
        }
        c.end_timing = server_timing;
        c.output.finish(at);
        c.duration = Some(at.saturating_duration_since(c.started));
        // Only 1.0.0 carries errors as body text; a 2.0.0 body that looks
        // like one is just a body.
        let v1 = c
            .head
            .as_ref()
            .is_some_and(|h| h.version == crate::node::ApiVersion::V1);
        let inband = if v1 { c.output.v1_error_text() } else { None };
        let inband = inband.map(|e| (e.to_string(), Some(e.failure())));
        match error.map(|e| (e, failure)).or(inband) {
            Some((e, failure)) => {
                c.state = CallState::Failed;
                c.error = Some(e);
                c.failure = failure;
            }
            None => c.state = CallState::Done,
        }
    }

    pub fn on_serve_started(
        &mut self,
        id: CallId,
        peer: String,
        route: &str,
        method: &str,
        stream: bool,
        now: Instant,
    ) {
        let local = self.next_id();
        self.served.insert(id, local);
        let output = Output::new(now, SERVED_OUTPUT_CAP);
        self.push(CallView::new(local, peer, route, method, stream, output));
    }

    pub fn on_serve_finished(
        &mut self,
        id: CallId,
        outcome: ServeOutcome,
        bytes: u64,
        elapsed: Duration,
    ) {
        let Some(local) = self.served.remove(&id) else {
            return;
        };
        let Some(c) = self.get_mut(local) else { return };
        c.bytes = bytes;
        c.duration = Some(elapsed);
        let (state, error) = match outcome {
            ServeOutcome::Ok { status } => {
                c.status = Some(status);
                (CallState::Done, None)
            }
            ServeOutcome::CallerGone { error } => (CallState::Cancelled, Some(error)),
            ServeOutcome::RouteNotFound => (CallState::Failed, Some("route not found".into())),
            ServeOutcome::StreamNotSupported => {
                (CallState::Failed, Some("stream not supported".into()))
            }
            ServeOutcome::Refused { reason } => (CallState::Failed, Some(reason)),
            ServeOutcome::Failed { error } => (CallState::Failed, Some(error)),
        };
        c.state = state;
        c.error = error;
    }
}

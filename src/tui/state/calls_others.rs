//! Calls the node makes for other clients (another attached console, a
//! `ctl call`): listed from the node's call events, told apart from this
//! console's own by the client name the node gave this console in its
//! hello (the events and our calls' answers travel separately, so their
//! order cannot tell them apart).

use std::time::{Duration, Instant};

use libp2p::PeerId;

use super::calls::{CallState, CallView, Calls};
use crate::node::CallId;
use crate::tui::action::LocalId;
use crate::tui::call_response::Output;

/// Others' calls keep no body (it went to whoever asked), only this much.
const OTHERS_OUTPUT_CAP: usize = 1024;

/// A call the node started, as its `CallStarted` event says.
pub struct Started<'a> {
    pub id: CallId,
    pub peer: PeerId,
    pub route: &'a str,
    pub method: &'a str,
    pub stream: bool,
    pub by: Option<String>,
}

impl Calls {
    /// The node's number for one of this console's calls.
    pub fn on_numbered(&mut self, id: LocalId, node_call: CallId) {
        if let Some(c) = self.get_mut(id) {
            c.node_call = Some(node_call);
        }
    }

    /// The node started a call: listed when another client asked for it.
    /// The node's own calls (load runs, library callers) are not listed:
    /// a load run would flood the list.
    pub fn on_node_call_started(&mut self, call: Started<'_>, now: Instant) {
        let Some(by) = call.by else { return };
        if self.me.as_ref() == Some(&by) || self.others.contains_key(&call.id) {
            return;
        }
        let local = self.next_id();
        let output = Output::new(now, OTHERS_OUTPUT_CAP);
        let mut row = CallView::new(
            local,
            call.peer.to_string(),
            call.route,
            call.method,
            call.stream,
            output,
        );
        row.outgoing = true;
        row.state = CallState::Waiting;
        row.node_call = Some(call.id);
        row.by = Some(by);
        self.others.insert(call.id, local);
        self.push(row);
    }

    pub fn on_node_call_responding(&mut self, id: CallId, status: Option<u16>) {
        if let Some(c) = self.other_mut(id) {
            c.status = status;
            if c.stream {
                c.state = CallState::Streaming;
            }
        }
    }

    pub fn on_node_call_finished(&mut self, id: CallId, bytes: u64, chunks: u64, took: Duration) {
        if let Some(c) = self.other_mut(id) {
            c.bytes = bytes;
            c.chunks = chunks;
            c.duration = Some(took);
            c.state = CallState::Done;
        }
        self.others.remove(&id);
    }

    pub fn on_node_call_failed(&mut self, id: CallId, error: String, now: Instant) {
        if let Some(c) = self.other_mut(id) {
            c.duration = Some(now.saturating_duration_since(c.started));
            c.state = CallState::Failed;
            c.error = Some(error);
        }
        self.others.remove(&id);
    }

    /// The console lost events (a gap, or the node went away): others'
    /// calls still open may have ended unseen.
    pub fn lost_track_of_others(&mut self, now: Instant) {
        for id in std::mem::take(&mut self.others).into_values() {
            if let Some(c) = self.get_mut(id) {
                if c.state.in_flight() {
                    c.duration = Some(now.saturating_duration_since(c.started));
                    c.state = CallState::Failed;
                    c.error = Some("its end was not seen (the console missed node events)".into());
                }
            }
        }
    }

    fn other_mut(&mut self, id: CallId) -> Option<&mut CallView> {
        let local = *self.others.get(&id)?;
        self.get_mut(local)
    }
}

//! What the node tells the console: its events, and which node it is.

use super::calls_others::Started;
use super::State;
use crate::node::NodeEvent;

/// A node in another process, as an attached console shows it.
#[derive(Clone, Debug)]
pub struct Attached {
    pub name: String,
    pub role: crate::control::Role,
    /// The node went away; the console is trying to link again.
    pub gone: bool,
    /// The operator's contexts by name, for `:ctx NAME` (empty: none).
    pub contexts: Vec<String>,
}

impl State {
    pub(super) fn on_node_event(&mut self, ev: NodeEvent) {
        self.subnet.on_node_event(&ev, self.wall);
        match ev {
            NodeEvent::Telemetry(t) => self.events.push(*t),
            NodeEvent::RoutesReloaded { diff, routes, .. } => {
                self.routes.change = Some((self.wall, format!("{diff} ({routes} routes)")));
                self.routes.sel = self.routes.sel.min(routes.saturating_sub(1));
            }
            NodeEvent::RoutesRejected { error } => {
                self.routes.change = Some((self.wall, format!("rejected: {error}")));
            }
            NodeEvent::ServeStarted {
                id,
                peer,
                route,
                method,
                stream,
            } => {
                self.calls
                    .on_serve_started(id, peer.to_string(), &route, &method, stream, self.now)
            }
            NodeEvent::CallStarted {
                id,
                peer,
                route,
                method,
                stream,
                by,
            } => {
                let started = Started {
                    id,
                    peer,
                    route: &route,
                    method: &method,
                    stream,
                    by,
                };
                self.calls.on_node_call_started(started, self.now)
            }
            NodeEvent::CallResponding { id, status, .. } => {
                self.calls.on_node_call_responding(id, status)
            }
            NodeEvent::CallFinished {
                id,
                bytes,
                chunks,
                elapsed,
            } => self.calls.on_node_call_finished(id, bytes, chunks, elapsed),
            NodeEvent::CallFailed { id, error } => {
                self.calls.on_node_call_failed(id, error, self.now)
            }
            NodeEvent::ServeFinished {
                id,
                outcome,
                bytes,
                elapsed,
                ..
            } => self.calls.on_serve_finished(id, outcome, bytes, elapsed),
            NodeEvent::LinkSilent { peer, after } => {
                let peer = peer.to_string();
                let short = &peer[peer.len().saturating_sub(6)..];
                self.notice(format!(
                    "link to …{short} went silent (no ping answer within {after:?}): its calls ended; dialling it again"
                ));
            }
            _ => {}
        }
    }
}

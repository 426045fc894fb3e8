//! What the node tells the console: its events, and which node it is.

use super::State;
use crate::node::NodeEvent;

/// A node in another process, as an attached console shows it.
#[derive(Clone, Debug)]
pub struct Attached {
    pub name: String,
    pub role: crate::control::Role,
    /// The node went away; the console is trying to link again.
    pub gone: bool,
}

impl State {
    pub(super) fn on_node_event(&mut self, ev: NodeEvent) {
        self.subnet.on_node_event(&ev);
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
            NodeEvent::ServeFinished {
                id,
                outcome,
                bytes,
                elapsed,
            } => self.calls.on_serve_finished(id, outcome, bytes, elapsed),
            _ => {}
        }
    }
}

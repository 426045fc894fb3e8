//! What the protocol reports of the calls it makes and serves. A node
//! folds these into its own [`NodeEvent`](crate::node::NodeEvent) stream;
//! a swarm that embeds [`ApiProtocol`](super::ApiProtocol) alone
//! subscribes to them directly.

use std::sync::Arc;
use std::time::Duration;

use libp2p::PeerId;
use tokio::sync::broadcast;

/// Identifies one outgoing or served call for the node's lifetime.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct CallId(pub u64);

impl std::fmt::Display for CallId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// How a served call ended.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ServeOutcome {
    /// The backend's response was relayed (its status, as far as we know it).
    Ok {
        status: u16,
    },
    RouteNotFound,
    StreamNotSupported,
    /// The node refused the call because of a limit (too many calls, too large).
    Refused {
        reason: String,
    },
    /// Forwarding failed; the caller got an error text.
    Failed {
        error: String,
    },
    /// The caller went away before the response was written.
    CallerGone {
        error: String,
    },
}

impl std::fmt::Display for ServeOutcome {
    /// As an operator reads it in a log line: `ok 200`, `refused: why`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServeOutcome::Ok { status } => write!(f, "ok {status}"),
            ServeOutcome::RouteNotFound => f.write_str("route not found"),
            ServeOutcome::StreamNotSupported => f.write_str("stream not supported"),
            ServeOutcome::Refused { reason } => write!(f, "refused: {reason}"),
            ServeOutcome::Failed { error } => write!(f, "failed: {error}"),
            ServeOutcome::CallerGone { error } => write!(f, "caller gone: {error}"),
        }
    }
}

/// A call made or served, as it starts, answers and ends.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub enum ApiEvent {
    /// One of our calls started.
    CallStarted {
        id: CallId,
        peer: PeerId,
        route: String,
        method: String,
        stream: bool,
        /// Who asked the node for it, when a control client did (an
        /// attached console, `ctl call`): so that other consoles list it.
        by: Option<String>,
    },
    /// One of our calls got its response head.
    CallResponding {
        id: CallId,
        protocol: String,
        /// The backend's status (2.0.0 only).
        status: Option<u16>,
    },
    /// One of our calls ended well.
    CallFinished {
        id: CallId,
        bytes: u64,
        chunks: u64,
        elapsed: Duration,
    },
    /// One of our calls failed.
    CallFailed { id: CallId, error: String },
    /// A peer's call to us started.
    ServeStarted {
        id: CallId,
        peer: PeerId,
        route: String,
        method: String,
        stream: bool,
    },
    /// A peer's call to us ended, and how.
    ServeFinished {
        id: CallId,
        outcome: ServeOutcome,
        bytes: u64,
        elapsed: Duration,
        /// How long the backend took to its response head, when it answered.
        backend_first_byte: Option<Duration>,
    },
}

/// Where the protocol's events go: its own broadcast when embedded alone,
/// the node's event stream inside a node. Sending never waits; a sink with
/// no listener drops the event.
pub trait EventSink: Send + Sync + 'static {
    fn send(&self, event: ApiEvent);
}

/// The protocol's events, shared by its server and client halves.
pub type Events = Arc<dyn EventSink>;

impl EventSink for broadcast::Sender<ApiEvent> {
    fn send(&self, event: ApiEvent) {
        let _ = broadcast::Sender::send(self, event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_read_as_words_in_log_lines() {
        assert_eq!(ServeOutcome::Ok { status: 200 }.to_string(), "ok 200");
        let refused = ServeOutcome::Refused {
            reason: "method not allowed".into(),
        };
        assert_eq!(refused.to_string(), "refused: method not allowed");
        assert_eq!(ServeOutcome::RouteNotFound.to_string(), "route not found");
    }
}

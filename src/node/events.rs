//! What a node reports: the same events feed the console, the CLI and logs.

use std::time::{Duration, SystemTime};

use libp2p::{Multiaddr, PeerId};

use tokio::sync::broadcast;

use crate::protocol::events::{ApiEvent, EventSink};
pub use crate::protocol::events::{CallId, ServeOutcome};
use crate::routes::{RouteDiff, RouteReload};

/// Capacity of the event broadcast; a subscriber that falls further behind
/// misses events (and is told how many).
pub const EVENT_CAPACITY: usize = 4096;

/// Who opened a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Direction {
    Inbound,
    Outbound,
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        })
    }
}

/// What we know of a connected peer.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct PeerInfo {
    pub peer: PeerId,
    /// The address of the (first) connection.
    pub addr: Multiaddr,
    pub direction: Direction,
    pub connected_since: SystemTime,
    pub agent: Option<String>,
    pub protocols: Vec<String>,
    pub listen_addrs: Vec<Multiaddr>,
    pub rtt_last: Option<Duration>,
    pub rtt_samples: Vec<Duration>,
    pub pings_sent: u32,
    pub pings_failed: u32,
    /// When the last ping was answered: a connected peer whose answers
    /// stopped (a partition, before the ping timeout closes it) shows how
    /// long it has been silent.
    #[serde(default)]
    pub rtt_at: Option<SystemTime>,
    /// The node's ping interval, to tell silence from the wait between pings.
    #[serde(default)]
    pub ping_interval: Duration,
    /// Where identify says this peer sees us (our address from outside).
    #[serde(default)]
    pub observed_addr: Option<Multiaddr>,
}

impl PeerInfo {
    /// Whether identify says the peer serves the 1.0.0 API protocol.
    pub fn serves_api_v1(&self) -> bool {
        self.protocols.iter().any(|p| p == crate::wire::PROTOCOL_V1)
    }

    /// Where to dial it: the connection's address when we dialled, else
    /// an address it listens on; with `/p2p/<id>`.
    pub fn dial_addr(&self) -> String {
        let base = if self.direction == Direction::Outbound {
            &self.addr
        } else {
            self.listen_addrs
                .iter()
                .find(|a| a.to_string().contains("127.0.0.1"))
                .or(self.listen_addrs.first())
                .unwrap_or(&self.addr)
        };
        let mut s = base.to_string();
        if !s.contains("/p2p/") {
            s.push_str(&format!("/p2p/{}", self.peer));
        }
        s
    }

    /// How long the peer has not answered a ping, once that is longer than
    /// two ping intervals (None: it answers, or never did).
    pub fn silent_for(&self, now: SystemTime) -> Option<Duration> {
        let silent = now.duration_since(self.rtt_at?).ok()?;
        (silent > self.ping_interval * 2 + Duration::from_secs(1)).then_some(silent)
    }

    pub fn rtt_avg(&self) -> Option<Duration> {
        if self.rtt_samples.is_empty() {
            return None;
        }
        let sum: Duration = self.rtt_samples.iter().sum();
        Some(sum / self.rtt_samples.len() as u32)
    }

    /// Mean absolute difference between consecutive RTT samples.
    pub fn rtt_jitter(&self) -> Option<Duration> {
        if self.rtt_samples.len() < 2 {
            return None;
        }
        let diffs: Duration = self
            .rtt_samples
            .windows(2)
            .map(|w| w[0].abs_diff(w[1]))
            .sum();
        Some(diffs / (self.rtt_samples.len() - 1) as u32)
    }

    /// Share of pings that failed, 0.0 to 1.0.
    pub fn ping_loss(&self) -> f64 {
        if self.pings_sent == 0 {
            0.0
        } else {
            f64::from(self.pings_failed) / f64::from(self.pings_sent)
        }
    }
}

/// Where the DHT told us of a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Discovery {
    /// Kademlia added it to our routing table.
    RoutingTable,
    /// It was in the answer to one of our queries.
    Query,
}

impl Discovery {
    pub fn as_str(self) -> &'static str {
        match self {
            Discovery::RoutingTable => "routing table",
            Discovery::Query => "query",
        }
    }
}

/// Everything a node reports.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub enum NodeEvent {
    /// A listen address is bound (with `/p2p/<our id>`).
    Listening { addr: Multiaddr },
    /// A connection to a peer opened (its first, or another).
    PeerConnected {
        peer: PeerId,
        addr: Multiaddr,
        direction: Direction,
    },
    /// The last connection to a peer closed.
    PeerDisconnected { peer: PeerId, cause: Option<String> },
    /// Identify told us the peer's agent and protocols.
    PeerIdentified {
        peer: PeerId,
        agent: String,
        protocols: Vec<String>,
    },
    /// A ping round trip (None: the ping failed).
    PeerRtt { peer: PeerId, rtt: Option<Duration> },
    /// A ping went unanswered for `after`: the link is silent, its
    /// connection was closed and the peer will be dialled again.
    LinkSilent { peer: PeerId, after: Duration },
    /// The DHT named a peer we had not heard of.
    PeerDiscovered { peer: PeerId, via: Discovery },
    /// A peer keeps closing our connection: on a strict subnet, the sign
    /// that our peer id is not registered (`hint` says what to do).
    PeerEvicted {
        peer: PeerId,
        times: usize,
        every: Duration,
        hint: String,
    },
    /// A dial failed, with why.
    DialFailed { peer: Option<PeerId>, error: String },
    /// One of our calls started.
    CallStarted {
        id: CallId,
        peer: PeerId,
        route: String,
        method: String,
        stream: bool,
        /// Who asked the node for it, when a control client did (an
        /// attached console, `ctl call`): so that other consoles list it.
        #[serde(default)]
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
        #[serde(default)]
        backend_first_byte: Option<Duration>,
    },
    /// The route file was re-read: what changed.
    RoutesReloaded {
        diff: RouteDiff,
        routes: usize,
        warnings: Vec<String>,
    },
    /// A gossip message arrived (rejected: why it was not relayed).
    Gossip {
        topic: String,
        from: PeerId,
        /// Who signed it.
        author: Option<PeerId>,
        bytes: usize,
        rejected: Option<String>,
    },
    /// A verified DAG node arrived (stored, unless a limit was reached).
    DagNode {
        namespace: String,
        id: String,
        schema_id: String,
        author: PeerId,
        created_at_ms: u64,
        payload: serde_json::Value,
        stored: bool,
    },
    /// A replication of one DAG namespace from a peer ended.
    DagReplicated {
        peer: PeerId,
        namespace: String,
        /// Nodes newly kept, and nodes that failed verification.
        kept: usize,
        invalid: usize,
        /// Why it stopped early, if it did.
        error: Option<String>,
    },
    /// A template node's telemetry event (signature checked).
    Telemetry(Box<crate::subnet::TelemetryEvent>),
    /// The route file changed but is invalid; the old table stays.
    RoutesRejected { error: String },
}

impl From<RouteReload> for NodeEvent {
    fn from(reload: RouteReload) -> Self {
        match reload {
            RouteReload::Reloaded {
                diff,
                routes,
                warnings,
            } => {
                tracing::info!(routes, changes = %diff, "route file reloaded");
                for w in &warnings {
                    tracing::warn!("route file: {w}");
                }
                NodeEvent::RoutesReloaded {
                    diff,
                    routes,
                    warnings,
                }
            }
            RouteReload::Rejected { error } => {
                tracing::warn!("route file rejected, keeping the last good table: {error}");
                NodeEvent::RoutesRejected { error }
            }
        }
    }
}

/// The protocol's call events, as the node reports them.
impl From<ApiEvent> for NodeEvent {
    fn from(event: ApiEvent) -> Self {
        match event {
            ApiEvent::CallStarted {
                id,
                peer,
                route,
                method,
                stream,
                by,
            } => NodeEvent::CallStarted {
                id,
                peer,
                route,
                method,
                stream,
                by,
            },
            ApiEvent::CallResponding {
                id,
                protocol,
                status,
            } => NodeEvent::CallResponding {
                id,
                protocol,
                status,
            },
            ApiEvent::CallFinished {
                id,
                bytes,
                chunks,
                elapsed,
            } => NodeEvent::CallFinished {
                id,
                bytes,
                chunks,
                elapsed,
            },
            ApiEvent::CallFailed { id, error } => NodeEvent::CallFailed { id, error },
            ApiEvent::ServeStarted {
                id,
                peer,
                route,
                method,
                stream,
            } => NodeEvent::ServeStarted {
                id,
                peer,
                route,
                method,
                stream,
            },
            ApiEvent::ServeFinished {
                id,
                outcome,
                bytes,
                elapsed,
                backend_first_byte,
            } => NodeEvent::ServeFinished {
                id,
                outcome,
                bytes,
                elapsed,
                backend_first_byte,
            },
        }
    }
}

/// A node's protocol reports into the node's own event stream, and its
/// served calls into what the node keeps of the last minute.
pub(crate) struct NodeSink {
    pub(crate) events: broadcast::Sender<NodeEvent>,
    pub(crate) recent: std::sync::Arc<super::recent::Recent>,
}

impl EventSink for NodeSink {
    fn send(&self, event: ApiEvent) {
        if let ApiEvent::ServeFinished {
            outcome,
            elapsed,
            backend_first_byte,
            ..
        } = &event
        {
            self.recent.served(outcome, *elapsed, *backend_first_byte);
        }
        let _ = self.events.send(NodeEvent::from(event));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directions_read_as_words() {
        assert_eq!(Direction::Inbound.to_string(), "inbound");
        assert_eq!(Direction::Outbound.to_string(), "outbound");
    }
}

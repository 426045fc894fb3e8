//! What a console (or a script) and a node say to each other. The same
//! owned values go through the in-process link and, serialised, through a
//! control socket: nothing here borrows from the node or names its handle.

use std::net::SocketAddr;

use bytes::Bytes;
use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};

use crate::load::fanout::{PeerResult, RowUpdate};
use crate::load::{HopVsDirect, LoadPlan, Progress, Summary};
use crate::node::{CallRequest, NodeEvent, PeerInfo, ResponseHead};
use crate::routes::{FileState, Route, RouteTable};
use crate::wire::frame::ServerTiming;
use crate::wire::RouteInfo;

/// The version of this message set; a hello with another is refused.
pub const CONTROL_VERSION: u32 = 1;

/// How long either side waits for the other's hello.
pub const HELLO_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

/// A request's number on its connection, chosen by the client.
pub type RequestId = u64;

/// What a client may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Everything the console does.
    Full,
    /// Watch only: no calls, route edits, dials, disconnects or taps.
    Observe,
}

impl Role {
    /// The lesser of what was asked for and what is allowed.
    pub fn capped_by(self, cap: Role) -> Role {
        if self == Role::Observe || cap == Role::Observe {
            Role::Observe
        } else {
            Role::Full
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Full => "full",
            Role::Observe => "observe",
        }
    }
}

/// Who the node is, as its hello says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub peer_id: PeerId,
    /// peerapi's version on the node.
    pub version: String,
    /// The node's log label, when it has one.
    pub name: Option<String>,
    pub listen: Vec<Multiaddr>,
    /// Where the node accepts telemetry, if it does.
    pub telemetry: Option<SocketAddr>,
}

/// What to call: the composer's content, kept with the call for re-runs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CallSpec {
    pub target: String,
    pub request: CallRequest,
    pub stream: bool,
}

/// What a client asks for when it says hello.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Greeting {
    pub role: Role,
    /// Answers only, no updates (see `ToNode::Hello`).
    pub quiet: bool,
}

impl From<Role> for Greeting {
    fn from(role: Role) -> Self {
        Self { role, quiet: false }
    }
}

/// Client to node.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ToNode {
    /// First, once: the version spoken and the role asked for.
    Hello {
        version: u32,
        role: Role,
        /// Answers only: no snapshot, events, log lines or refreshes (a
        /// fleet view that polls `Stats` costs the node nothing between).
        #[serde(default)]
        quiet: bool,
    },
    Request {
        id: RequestId,
        request: Box<Request>,
    },
    /// Stop a request: a call is reset, a run ends with what it has.
    Cancel { id: RequestId },
}

/// Node to client.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum FromNode {
    /// First, once: the version, the role granted, and who the node is.
    Hello {
        version: u32,
        role: Role,
        node: NodeInfo,
        /// How the node names this client on the calls it makes for it
        /// (`CallStarted`'s `by`): a client knows its own calls' events.
        #[serde(default)]
        client: String,
    },
    /// A change of the node's state (after a snapshot, in order).
    Update(Update),
    /// Part of a request's answer; more follow.
    Part { id: RequestId, part: Part },
    /// A request's last word.
    Done { id: RequestId, reply: Reply },
}

/// What one can ask of a node.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Request {
    /// A call made by the node: `Head` and `Bytes` parts, then `CallEnded`.
    Call(CallSpec),
    /// Connect to an address: `Text`.
    Dial { addr: String },
    /// Close every connection to a peer: `Text`.
    Disconnect { peer: PeerId },
    /// Add or replace a route in the node's route file, unless the file
    /// changed since `version` (what the client last saw): `Text`.
    UpsertRoute {
        name: String,
        url: String,
        stream: bool,
        version: Option<u64>,
    },
    /// Remove a route from the route file, under the same rule: `Text`.
    RemoveRoute { name: String, version: Option<u64> },
    /// The bodies the node serves for one route or one call, as its
    /// callers get them: `Tapped` parts until cancelled or `max_bytes`
    /// (default 4 MiB) have passed, then `Text`. Explicit, never on by default.
    Tap {
        on: crate::protocol::tap::TapOn,
        max_bytes: Option<u64>,
    },
    /// The subnet's roster from the peer states the node holds: `Roster`.
    Roster,
    /// The node's figures in one answer (fleet views poll it): `Stats`.
    Stats,
    /// What the node's health prober found (`--health`): `Health`.
    #[cfg(feature = "health")]
    Health,
    /// Re-read the route file now (as a change of it would): `Text`, the
    /// outcome; a rejected file keeps the table in force.
    ReloadRoutes,
    /// A peer's route listing: `RemoteRoutes`.
    RemoteRoutes { target: String },
    /// The same call to these peers at once: `FanOutRow` parts, then `FanOutDone`.
    FanOut { spec: CallSpec, peers: Vec<String> },
    /// A load run on the spec's target: `LoadProgress` parts, then `LoadDone`.
    Load { spec: CallSpec, plan: LoadPlan },
    /// The spec through the hop and straight to the node's own backend for
    /// `route`, in turns: `HopVsDirectRound` parts, then `HopVsDirectDone`.
    HopVsDirect {
        spec: CallSpec,
        route: Box<Route>,
        rounds: usize,
    },
}

impl Request {
    /// Whether it calls, dials, disconnects or edits: what an observer may not do.
    pub fn changes_something(&self) -> bool {
        !matches!(
            self,
            Request::RemoteRoutes { .. } | Request::Roster | Request::Stats
        ) && !self.reads_health()
    }

    #[cfg(feature = "health")]
    fn reads_health(&self) -> bool {
        matches!(self, Request::Health)
    }

    #[cfg(not(feature = "health"))]
    fn reads_health(&self) -> bool {
        false
    }
}

/// Part of an answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Part {
    /// A call's number on the node, sent before the call starts: the
    /// client knows its own call among the node's `CallStarted` events.
    CallStarted(crate::node::CallId),
    Head(ResponseHead),
    Bytes(Bytes),
    FanOutRow {
        index: usize,
        update: RowUpdate,
    },
    LoadProgress(Box<Progress>),
    HopVsDirectRound(usize),
    /// The tap is open: what is served from now on is shown.
    TapOpen,
    Tapped(crate::protocol::tap::TapChunk),
}

/// A request's last word.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Reply {
    CallEnded {
        error: Option<String>,
        /// The error's class (none for a cancelled call).
        #[serde(default)]
        failure: Option<crate::wire::Failure>,
        /// What `peerapi call` would exit with for the error.
        exit_code: Option<u8>,
        server_timing: Option<ServerTiming>,
    },
    /// What happened, for the operator (Err: it failed, and why).
    Text(Result<String, String>),
    RemoteRoutes(Result<Vec<RouteInfo>, String>),
    Roster(Vec<crate::subnet::roster::RosterEntry>),
    Stats(Box<super::stats::NodeStats>),
    /// None: the node does not probe (started without `--health`).
    #[cfg(feature = "health")]
    Health(Box<Option<crate::health::Latest>>),
    FanOutDone(Vec<PeerResult>),
    LoadDone(Box<Summary>),
    HopVsDirectDone(Box<HopVsDirect>),
    /// Not carried out: the role does not allow it, or the node is going.
    Refused(String),
}

/// The route table as the node has it now.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RoutesSnapshot {
    pub table: RouteTable,
    pub file: FileState,
}

impl RoutesSnapshot {
    /// A live table as it is now.
    pub fn of(routes: &crate::routes::Routes) -> Self {
        Self {
            table: (*routes.current()).clone(),
            file: routes.file_state(),
        }
    }
}

/// Each gossip topic's mesh peers, and each DAG namespace's summary.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SubnetStats {
    pub mesh: Vec<(String, Vec<PeerId>)>,
    pub dag: Vec<(String, crate::subnet::Summary)>,
}

/// What changed on the node.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Update {
    /// Everything at once: first, and again after a gap.
    Snapshot(Box<Snapshot>),
    Event(NodeEvent),
    Peers(Vec<PeerInfo>),
    Routes(Box<RoutesSnapshot>),
    Subnet(SubnetStats),
    /// One of the node's log lines (when its process publishes them).
    Log {
        level: crate::log_lines::LogLevel,
        line: String,
    },
    /// This many updates were not sent because the client read too
    /// slowly; a snapshot follows.
    Gap {
        missed: u64,
    },
}

/// The node's state in one message.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Snapshot {
    pub listen: Vec<Multiaddr>,
    pub peers: Vec<PeerInfo>,
    pub routes: RoutesSnapshot,
    pub subnet: SubnetStats,
}

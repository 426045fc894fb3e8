//! What a node is started with: its limits, their defaults, and how a
//! start fails.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use libp2p::{identity::Keypair, Multiaddr};

use super::events::EVENT_CAPACITY;
use super::{muxer, transport};
use crate::protocol::call::CallOptions;
use crate::protocol::metrics;
use crate::protocol::serve::ServeLimits;
use crate::routes::Routes;
use crate::streams::behaviour::{PeerAccess, DEFAULT_INBOUND_QUEUE_DEPTH};
use crate::streams::ip_limit;
use crate::upstream::UpstreamConfig;

/// Default time an idle connection is kept open (Python nodes keep theirs ~75 s).
pub const DEFAULT_IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(120);
/// Default interval between pings to each peer (libp2p's own default; every
/// connection pays for it).
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(15);
/// Default wait for a ping's answer; past it the link is silent and its
/// connection is closed (libp2p's own default). A dead link is found
/// within the ping interval plus this.
pub const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(20);
/// Default number of connected peers below which peers found through the
/// DHT are dialed; past it they are only remembered, and dialed when called.
pub const DEFAULT_PEER_TARGET: usize = 16;
/// Default interval of DHT random walks (peer discovery) while the node
/// needs peers or walks find many.
pub const DEFAULT_DISCOVERY_INTERVAL: Duration = Duration::from_secs(30);
/// Default longest interval of DHT walks, reached by doubling.
pub const DEFAULT_DISCOVERY_INTERVAL_MAX: Duration = Duration::from_secs(480);
/// Default time in-flight calls get to finish on shutdown.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Default most established inbound connections node-wide.
pub const DEFAULT_MAX_INBOUND_CONNECTIONS: usize = 1024;
/// Default most inbound connections still being secured and multiplexed.
pub const DEFAULT_MAX_PENDING_INBOUND_CONNECTIONS: usize = 128;
/// Default most connections to or from one peer.
pub const DEFAULT_MAX_CONNECTIONS_PER_PEER: usize = 8;

/// Connection limits: node-wide, per peer, per remote IP.
#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    pub max_inbound: usize,
    pub max_pending_inbound: usize,
    pub max_per_peer: usize,
    pub max_per_ip: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_inbound: DEFAULT_MAX_INBOUND_CONNECTIONS,
            max_pending_inbound: DEFAULT_MAX_PENDING_INBOUND_CONNECTIONS,
            max_per_peer: DEFAULT_MAX_CONNECTIONS_PER_PEER,
            max_per_ip: ip_limit::DEFAULT_MAX_CONNECTIONS_PER_IP,
        }
    }
}

/// The event broadcast of a node nobody watches (`peerapi node`): its ring
/// is allocated and written whole at start, about 1 MB at `EVENT_CAPACITY`.
pub const HEADLESS_EVENT_CAPACITY: usize = 64;

/// Everything a node needs to start.
pub struct NodeConfig {
    pub keypair: Keypair,
    pub listen: Vec<Multiaddr>,
    pub bootstrap: Vec<Multiaddr>,
    /// The live table; set its in-memory part before starting if you have one.
    pub routes: Routes,
    /// A route file to load and watch; its keys win over the in-memory table.
    pub route_file: Option<PathBuf>,
    pub upstream: UpstreamConfig,
    pub serve: ServeLimits,
    pub call: CallOptions,
    /// Inbound streams that may be getting an "overloaded" answer at once
    /// beyond `serve.max_concurrent_calls`; past it they are refused without
    /// a task of their own.
    pub inbound_queue_depth: usize,
    pub idle_connection_timeout: Duration,
    pub ping_interval: Duration,
    /// A ping unanswered this long closes its connection (calls on it end).
    pub ping_timeout: Duration,
    /// Longest wait between two dials of a lost bootnode or peer.
    pub reconnect_max: Duration,
    pub yamux_split_send_bytes: usize,
    pub yamux_max_streams: usize,
    pub shutdown_grace: Duration,
    /// Private network key; peers without it cannot connect.
    pub psk: Option<libp2p::pnet::PreSharedKey>,
    /// Node-wide allow and deny lists of peer ids.
    pub access: PeerAccess,
    /// How often the DHT is walked to find more subnet peers while the
    /// node is below its peer target or a walk finds a walk's width of new
    /// peers; otherwise the interval doubles.
    pub discovery_interval: Duration,
    /// The longest the walk interval grows to.
    pub discovery_interval_max: Duration,
    /// Interval of Kademlia's own bootstrap, a refresh of the routing table
    /// (None: the longest walk interval; it also runs whenever the table
    /// holds fewer than 20 peers). A fixed 300 s instead of with 30 s walks took
    /// an idle 100-node subnet from 165% to 120% of a core and the time to
    /// know 90% of it from 15-18 s to 59-114 s (`bench --subnet 100`).
    pub kad_bootstrap_interval: Option<Duration>,
    /// Peers found through the DHT are dialed while fewer than this many
    /// are connected. Dialing every one made a subnet a full mesh: at 100
    /// nodes, 99 connections per node, each pinged from both ends.
    pub peer_target: usize,
    /// Security protocol names Noise is offered under, likeliest first.
    pub security_names: Vec<&'static str>,
    pub connection_limits: ConnectionLimits,
    /// DAG sync and the DAG we hold.
    pub subnet: crate::subnet::SubnetConfig,
    /// Names this node in its log lines (`node{name=...}`): for processes
    /// that run several nodes, as the demo does.
    pub log_label: Option<String>,
    /// Where calls and swarm events are counted, for a metrics endpoint
    /// (`NodeMetrics::encode`); None: nothing counted, no cost.
    pub metrics: Option<Arc<metrics::NodeMetrics>>,
    /// Events a subscriber may fall behind by before it misses some (the
    /// console wants `EVENT_CAPACITY`; a node nobody watches, little).
    pub event_capacity: usize,
    /// Takes part in the subnet's DHT: answers Kademlia queries (server
    /// mode). Off for a node that only calls, so peers do not route to a
    /// process that is about to exit.
    pub subnet_member: bool,
    /// Walks the DHT and runs Kademlia's own bootstraps to find peers.
    pub dht_walks: bool,
    /// Runs AutoNAT v2: peers that offer it are asked whether our
    /// addresses can be dialled, and peers that ask are answered.
    pub autonat: bool,
}

impl NodeConfig {
    /// Defaults: listen on a random loopback port, no routes.
    pub fn new(keypair: Keypair) -> Self {
        Self {
            keypair,
            listen: vec!["/ip4/127.0.0.1/tcp/0"
                .parse()
                .expect("static multiaddr is valid")],
            bootstrap: Vec::new(),
            routes: Routes::default(),
            route_file: None,
            upstream: UpstreamConfig::default(),
            serve: ServeLimits::default(),
            call: CallOptions::default(),
            inbound_queue_depth: DEFAULT_INBOUND_QUEUE_DEPTH,
            idle_connection_timeout: DEFAULT_IDLE_CONNECTION_TIMEOUT,
            ping_interval: DEFAULT_PING_INTERVAL,
            ping_timeout: DEFAULT_PING_TIMEOUT,
            reconnect_max: super::reconnects::DEFAULT_RECONNECT_MAX,
            yamux_split_send_bytes: muxer::DEFAULT_YAMUX_SPLIT_SEND_BYTES,
            yamux_max_streams: muxer::DEFAULT_YAMUX_MAX_STREAMS,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            psk: None,
            access: PeerAccess::default(),
            discovery_interval: DEFAULT_DISCOVERY_INTERVAL,
            discovery_interval_max: DEFAULT_DISCOVERY_INTERVAL_MAX,
            kad_bootstrap_interval: None,
            peer_target: DEFAULT_PEER_TARGET,
            security_names: vec![transport::NOISE, transport::POS_TRANSPORT],
            connection_limits: ConnectionLimits::default(),
            subnet: crate::subnet::SubnetConfig::default(),
            metrics: None,
            log_label: None,
            event_capacity: EVENT_CAPACITY,
            subnet_member: true,
            dht_walks: true,
            autonat: true,
        }
    }

    /// A node that only calls (one-shot commands): no DAG sync served or
    /// replicated, no gossip, no DHT walks, Kademlia as a client. (One that
    /// replicated exited before the answer; template nodes logged tracebacks.)
    pub fn only_calls(mut self) -> Self {
        self.subnet.dag_sync = false;
        self.subnet.replicate.enabled = false;
        self.subnet.gossip.enabled = false;
        self.subnet.telemetry_listen = None;
        self.subnet_member = false;
        self.dht_walks = false;
        self
    }
}

/// Why a node could not start or a command could not run.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot build the transport: {0}")]
    Transport(String),
    #[error("cannot listen on {addr}: {message}")]
    Listen { addr: Multiaddr, message: String },
    #[error(transparent)]
    Routes(#[from] crate::routes::RouteFileError),
    #[error(transparent)]
    Upstream(#[from] crate::upstream::UpstreamError),
    #[error("cannot accept telemetry on {addr}: {message} (is the port in use?)")]
    Telemetry {
        addr: std::net::SocketAddr,
        message: String,
    },
    #[error(transparent)]
    DagFile(#[from] crate::subnet::dag_file::DagFileError),
    #[error("the node has stopped")]
    Stopped,
}

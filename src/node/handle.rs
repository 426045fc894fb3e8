//! The cheap, cloneable handle to a running node, and the commands it
//! sends to the swarm's task. Calls by address: dial if needed, then the
//! protocol's client ([`ApiClient`], `call/mod.rs`) does the exchange.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::channel::oneshot;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::{broadcast, mpsc};

use super::events::{CallId, NodeEvent, PeerInfo};
use super::NodeError;
use crate::protocol::call::{
    self, ApiClient, CallError, CallRequest, CallStream, CallTag, Response, ResponseHead,
};
use crate::routes::Routes;
use crate::wire;

pub(crate) enum Command {
    Dial {
        addr: Multiaddr,
        peer: PeerId,
        reply: oneshot::Sender<Result<(), String>>,
    },
    Disconnect {
        peer: PeerId,
    },
    Peers {
        reply: oneshot::Sender<Vec<PeerInfo>>,
    },
    ListenAddrs {
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    GossipMesh {
        reply: oneshot::Sender<Vec<(String, Vec<PeerId>)>>,
    },
    Publish {
        topic: String,
        data: Vec<u8>,
        reply: oneshot::Sender<Result<(), String>>,
    },
    Stop,
}

pub(crate) struct Shared {
    pub(crate) local_peer_id: PeerId,
    pub(crate) commands: mpsc::UnboundedSender<Command>,
    pub(crate) client: ApiClient,
    /// The node's events; the protocol's own are folded into them.
    pub(crate) events: broadcast::Sender<NodeEvent>,
    /// What the node did lately, for fleet views.
    pub(crate) recent: Arc<super::recent::Recent>,
    pub(crate) routes: Routes,
    pub(crate) dag: Arc<std::sync::Mutex<crate::subnet::DagStore>>,
    pub(crate) dag_sync: Option<crate::subnet::DagSyncServer>,
    pub(crate) gossip: Arc<crate::subnet::GossipCounters>,
    pub(crate) replication: Arc<super::replication::ReplicationCounters>,
    pub(crate) telemetry_addr: Arc<std::sync::OnceLock<std::net::SocketAddr>>,
    pub(crate) telemetry: Arc<crate::subnet::TelemetryCounters>,
    /// `node{name}` when the node has a log label, else none.
    pub(crate) log_span: tracing::Span,
    /// The node's log label, which names it to operators too.
    pub(crate) name: Option<String>,
    pub(crate) taps: Arc<crate::protocol::tap::Taps>,
    /// The health prober running beside the node, when there is one.
    pub(crate) health: std::sync::OnceLock<Arc<dyn HealthReport>>,
    /// What AutoNAT found out about our own addresses.
    pub(crate) autonat: Arc<super::reachability::AutonatTests>,
}

/// What runs beside a node and reports through it (the health prober,
/// `health/`): the node only carries it, so it knows nothing of health.
pub trait HealthReport: Send + Sync {
    /// The latest report, as JSON.
    fn report(&self) -> serde_json::Value;
}

/// A cheap, cloneable handle to a running node.
#[derive(Clone)]
pub struct NodeHandle {
    pub(crate) shared: Arc<Shared>,
}

impl NodeHandle {
    pub fn local_peer_id(&self) -> PeerId {
        self.shared.local_peer_id
    }

    /// The span this node's own log lines are written in (it names the node
    /// when `NodeConfig::log_label` is set): work done for the node outside
    /// it, such as a console's call tasks, enters it too.
    pub fn log_span(&self) -> tracing::Span {
        self.shared.log_span.clone()
    }

    /// The node's name (its log label), if it has one.
    pub fn name(&self) -> Option<&str> {
        self.shared.name.as_deref()
    }

    /// Opens a tap on the bodies this node serves for `on` (at most
    /// `max_bytes`): an operator's explicit request, never on by default.
    pub fn tap(
        &self,
        on: crate::protocol::tap::TapOn,
        max_bytes: u64,
    ) -> crate::protocol::tap::TapReader {
        self.shared.taps.open(on, max_bytes)
    }

    /// The live route table this node serves.
    pub fn routes(&self) -> &Routes {
        &self.shared.routes
    }

    /// What the node did lately: served calls of the last minute, the last
    /// route reload, evictions, uptime.
    pub fn recent(&self) -> &super::recent::Recent {
        &self.shared.recent
    }

    /// Registers the health prober that reports through this node (the
    /// first one stays).
    pub fn set_health_report(&self, report: Arc<dyn HealthReport>) {
        let _ = self.shared.health.set(report);
    }

    /// The health prober's latest report, if one runs beside the node.
    pub fn health_report(&self) -> Option<serde_json::Value> {
        self.shared.health.get().map(|r| r.report())
    }

    /// AutoNAT's latest test of each of our addresses (none when no peer
    /// offers AutoNAT, or `NodeConfig::autonat` is off).
    pub fn autonat_tests(&self) -> Vec<super::reachability::AutonatTest> {
        self.shared.autonat.list()
    }

    /// Node events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.shared.events.subscribe()
    }

    /// Tells every subscriber what the node did (for work done on its
    /// behalf, such as a reload a control client asked for).
    pub(crate) fn publish(&self, event: NodeEvent) {
        let _ = self.shared.events.send(event);
    }

    /// Publishes `event` as if the node had: for benchmarks of what
    /// subscribers (consoles, attached or not) take.
    #[cfg(feature = "test-util")]
    pub fn emit_for_bench(&self, event: NodeEvent) {
        let _ = self.shared.events.send(event);
    }

    /// The DAG this node holds (verified nodes only).
    pub fn dag(&self) -> &Arc<std::sync::Mutex<crate::subnet::DagStore>> {
        &self.shared.dag
    }

    /// What the DAG-sync server has answered and refused (None: not served).
    pub fn dag_sync_counters(&self) -> Option<&crate::subnet::sync::SyncCounters> {
        self.shared.dag_sync.as_ref().map(|s| &*s.counters)
    }

    /// Gossip messages received, rejected, and DAG nodes stored from them.
    pub fn gossip_counters(&self) -> &crate::subnet::GossipCounters {
        &self.shared.gossip
    }

    /// What DAG replication from peers has run, kept and rejected.
    pub fn replication_counters(&self) -> &super::replication::ReplicationCounters {
        &self.shared.replication
    }

    /// Where telemetry is accepted (None: not asked for).
    pub fn telemetry_addr(&self) -> Option<std::net::SocketAddr> {
        self.shared.telemetry_addr.get().copied()
    }

    /// Telemetry connections and events accepted, refused and dropped.
    pub fn telemetry_counters(&self) -> &crate::subnet::TelemetryCounters {
        &self.shared.telemetry
    }

    /// Each subscribed gossip topic with its mesh peers (empty when gossip is off).
    pub async fn gossip_mesh(&self) -> Result<Vec<(String, Vec<PeerId>)>, NodeError> {
        self.ask(|reply| Command::GossipMesh { reply }).await
    }

    /// Publishes `data` on a gossip topic this node subscribes to (as
    /// template nodes publish their peer state). Fails while no peer of
    /// the topic is known, or with gossip off.
    pub async fn publish_gossip(&self, topic: &str, data: Vec<u8>) -> Result<(), String> {
        let topic = topic.to_string();
        self.ask(|reply| Command::Publish { topic, data, reply })
            .await
            .map_err(|e| e.to_string())?
    }

    /// The protocol's client, for calls on peers already connected.
    /// The node's metrics, when its config asked for them.
    pub fn metrics(&self) -> Option<&Arc<crate::protocol::metrics::NodeMetrics>> {
        self.shared.client.metrics.as_ref()
    }

    pub fn client(&self) -> &ApiClient {
        &self.shared.client
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NodeError> {
        let (tx, rx) = oneshot::channel();
        self.shared
            .commands
            .send(make(tx))
            .map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)
    }

    /// Our listen addresses, each ending in `/p2p/<peer id>`.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NodeError> {
        self.ask(|reply| Command::ListenAddrs { reply }).await
    }

    /// Connected peers and what we know of them.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, NodeError> {
        self.ask(|reply| Command::Peers { reply }).await
    }

    /// Connects to `addr` (which must end in `/p2p/<peer id>`), if not connected yet.
    pub async fn dial(&self, addr: &Multiaddr) -> Result<PeerId, CallError> {
        let peer = call::peer_of(addr)?;
        if self.shared.client.is_connected(&peer) {
            return Ok(peer);
        }
        let addr = addr.clone();
        self.ask(|reply| Command::Dial { addr, peer, reply })
            .await
            .map_err(|_| CallError::NodeStopped)?
            .map_err(|message| CallError::DialFailed { peer, message })?;
        Ok(peer)
    }

    /// Closes every connection to `peer`.
    pub fn disconnect(&self, peer: PeerId) {
        let _ = self.shared.commands.send(Command::Disconnect { peer });
    }

    /// Connects to `addr` unless connected, within the dial timeout.
    async fn dial_within(&self, addr: &Multiaddr) -> Result<(), CallError> {
        let dial_timeout = self.shared.client.options().dial_timeout;
        let peer = call::peer_of(addr)?;
        tokio::time::timeout(dial_timeout, self.dial(addr))
            .await
            .map_err(|_| CallError::DialFailed {
                peer,
                message: format!("no connection within {dial_timeout:?}"),
            })?
            .map(drop)
    }

    /// Calls `req.route` on the peer at `addr` and returns the body. On 1.0.0
    /// errors arrive in-band (see [`crate::wire::v1::classify_v1_body`]); on
    /// 2.0.0 they are [`CallError::Remote`].
    pub async fn call(&self, addr: &Multiaddr, req: CallRequest) -> Result<Bytes, CallError> {
        self.call_full(addr, req).await.map(|r| r.body)
    }

    /// Like [`call`](Self::call), with the status and headers (2.0.0).
    pub async fn call_full(
        &self,
        addr: &Multiaddr,
        req: CallRequest,
    ) -> Result<Response, CallError> {
        let tag = self.shared.client.own_tag();
        self.call_tagged(addr, req, tag).await
    }

    /// A number for a call made on someone's behalf (see [`CallTag`]).
    pub fn next_call_id(&self) -> CallId {
        self.shared.client.next_call_id()
    }

    /// [`call_full`](Self::call_full) under `tag`'s number and origin.
    pub async fn call_tagged(
        &self,
        addr: &Multiaddr,
        req: CallRequest,
        tag: CallTag,
    ) -> Result<Response, CallError> {
        let peer = call::peer_of(addr)?;
        let client = &self.shared.client;
        client
            .call_after(peer, req, self.dial_within(addr), tag)
            .await
    }

    /// Calls a streaming route and yields chunks as they arrive. Chunk
    /// boundaries are the transport's, not the backend's.
    pub async fn stream(
        &self,
        addr: &Multiaddr,
        req: CallRequest,
    ) -> Result<CallStream, CallError> {
        self.stream_full(addr, req).await.map(|(_, s)| s)
    }

    /// Like [`stream`](Self::stream), with the status and headers (2.0.0),
    /// which arrive before the first chunk. Dropping the stream cancels the
    /// call: the serving node drops its backend request.
    pub async fn stream_full(
        &self,
        addr: &Multiaddr,
        req: CallRequest,
    ) -> Result<(ResponseHead, CallStream), CallError> {
        let tag = self.shared.client.own_tag();
        self.stream_tagged(addr, req, tag).await
    }

    /// [`stream_full`](Self::stream_full) under `tag`'s number and origin.
    pub async fn stream_tagged(
        &self,
        addr: &Multiaddr,
        req: CallRequest,
        tag: CallTag,
    ) -> Result<(ResponseHead, CallStream), CallError> {
        let peer = call::peer_of(addr)?;
        let client = &self.shared.client;
        client
            .stream_after(peer, req, self.dial_within(addr), tag)
            .await
    }

    /// Opens a raw stream on `protocol` to the peer at `addr`, for tools and
    /// tests that speak the bytes themselves.
    pub async fn open_raw(
        &self,
        addr: &Multiaddr,
        protocol: &'static str,
    ) -> Result<crate::streams::outbound::OutboundStream, CallError> {
        self.dial_within(addr).await?;
        self.shared
            .client
            .open_raw(call::peer_of(addr)?, protocol)
            .await
    }

    /// Asks a peer for its route names and stream flags
    /// (`/peerapi/routes/1.0.0`; Python nodes do not serve it).
    pub async fn list_routes(&self, addr: &Multiaddr) -> Result<Vec<wire::RouteInfo>, CallError> {
        let peer = call::peer_of(addr)?;
        let client = &self.shared.client;
        client.list_routes_after(peer, self.dial_within(addr)).await
    }

    /// Mirrors the Python `call_remote(peer, route, method, headers, body)`.
    pub async fn call_remote(
        &self,
        addr: &Multiaddr,
        route: &str,
        method: &str,
        headers: HashMap<String, String>,
        body: impl Into<Bytes>,
    ) -> Result<Bytes, CallError> {
        let req = CallRequest::from_parts(route, method, headers, body);
        self.call(addr, req).await
    }

    /// Mirrors the Python `stream_remote(peer, route, method, headers, body)`.
    pub async fn stream_remote(
        &self,
        addr: &Multiaddr,
        route: &str,
        method: &str,
        headers: HashMap<String, String>,
        body: impl Into<Bytes>,
    ) -> Result<CallStream, CallError> {
        let req = CallRequest::from_parts(route, method, headers, body);
        self.stream(addr, req).await
    }
}

//! The one task that owns the `Swarm`. Commands come in from handles, node
//! events go out on the broadcast; nothing else touches the swarm.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use futures::channel::oneshot;
use futures::StreamExt;
use libp2p::core::ConnectedPoint;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::SwarmEvent;
use libp2p::{autonat, identify, kad, ping, Multiaddr, PeerId, StreamProtocol, Swarm};
use tokio::sync::{broadcast, mpsc};

use super::behaviour::{Behaviour, BehaviourEvent, KAD_PROTOCOL};
use super::events::{Direction, Discovery, NodeEvent, PeerInfo};
use super::muxer::YamuxUpgrade;
use super::{Command, NodeConfig, NodeError};
use crate::protocol::call::ApiClient;
use crate::protocol::ApiProtocol;
use crate::streams::lazy::Confirmed;

/// RTT samples kept per peer for average and jitter.
pub(super) const RTT_SAMPLES: usize = 32;

/// The agent string peers see in identify.
pub fn agent_version() -> String {
    format!("peerapi/{}", env!("CARGO_PKG_VERSION"))
}

pub(crate) struct EventLoop {
    pub(super) swarm: Swarm<Behaviour>,
    pub(super) subnet: super::subnet_parts::SubnetParts,
    pub(super) evictions: super::evictions::Evictions,
    /// What the node did lately (evictions counted here).
    recent: Arc<super::recent::Recent>,
    autonat: Arc<super::reachability::AutonatTests>,
    /// Peers we asked to disconnect (their closes are ours, not evictions).
    pub(super) closing: std::collections::HashSet<PeerId>,
    commands: mpsc::UnboundedReceiver<Command>,
    events: broadcast::Sender<NodeEvent>,
    pub(super) peers: HashMap<PeerId, (PeerInfo, u32)>,
    pending_dials: HashMap<PeerId, Vec<oneshot::Sender<Result<(), String>>>>,
    pub(super) client: ApiClient,
    /// Listeners that have not reported an address yet, and who waits for them.
    unready_listeners: Vec<libp2p::core::transport::ListenerId>,
    pub(super) walks: super::walks::WalkSchedule,
    /// A ping unanswered this long closes its connection.
    pub(super) ping_timeout: std::time::Duration,
    pub(super) ping_interval: std::time::Duration,
    /// Bootnodes and lost peers to dial again.
    pub(super) reconnects: super::reconnects::Reconnects,
    ready: Option<oneshot::Sender<Result<(), NodeError>>>,
}

pub(crate) type Ready = oneshot::Receiver<Result<(), NodeError>>;

impl EventLoop {
    pub(crate) fn new(
        config: NodeConfig,
        api: ApiProtocol,
        subnet: super::subnet_parts::SubnetParts,
        (events, recent, autonat): (
            broadcast::Sender<NodeEvent>,
            Arc<super::recent::Recent>,
            Arc<super::reachability::AutonatTests>,
        ),
        commands: mpsc::UnboundedReceiver<Command>,
    ) -> Result<(Self, Ready), NodeError> {
        let split = config.yamux_split_send_bytes;
        let max_streams = config.yamux_max_streams;
        let ping_interval = config.ping_interval;
        let ping_timeout = config.ping_timeout;
        let reconnects =
            super::reconnects::Reconnects::new(&config.bootstrap, config.reconnect_max);
        let idle = config.idle_connection_timeout;
        let discovery_interval = config.discovery_interval;
        let discovery_most = config.discovery_interval_max;
        let kad_bootstrap = config.kad_bootstrap_interval.unwrap_or(discovery_most);
        let (dht_walks, subnet_member) = (config.dht_walks, config.subnet_member);
        let autonat_on = config.autonat;
        let conn = config.connection_limits.clone();
        let count = |n: usize| Some(u32::try_from(n).unwrap_or(u32::MAX));
        let limits = libp2p::connection_limits::ConnectionLimits::default()
            .with_max_established_incoming(count(conn.max_inbound))
            .with_max_pending_incoming(count(conn.max_pending_inbound))
            .with_max_established_per_peer(count(conn.max_per_peer));
        let client = api.client();
        let gossip_config = config.subnet.gossip.clone();
        // Serving takes inbound streams; replicating opens outbound ones.
        let dag_sync = (subnet.dag_sync.is_some() || config.subnet.replicate.enabled).then(|| {
            let (inbound, dispatch): (_, crate::streams::behaviour::Dispatch) =
                match &subnet.dag_sync {
                    Some(server) => (
                        vec![StreamProtocol::new(crate::subnet::PROTOCOL_DAG_SYNC)],
                        server.dispatcher(),
                    ),
                    None => (Vec::new(), std::sync::Arc::new(|_| {})),
                };
            crate::streams::behaviour::Behaviour::new(
                config.access.clone(),
                inbound,
                dispatch,
                subnet.replicator.connections.clone(),
            )
        });
        let dag_sync = Toggle::from(dag_sync);
        let transport = super::transport::build(
            &config.keypair,
            config.psk,
            config.security_names.clone(),
            YamuxUpgrade::new(split, max_streams),
        )
        .map_err(|e| NodeError::Transport(e.to_string()))?;
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(config.keypair.clone())
            .with_tokio()
            .with_other_transport(|_| transport)
            .map_err(|e| NodeError::Transport(e.to_string()))?
            .with_behaviour(|key| {
                let peer = key.public().to_peer_id();
                let gossip = match gossip_config.enabled {
                    true => Some(Confirmed::idle_streams(
                        crate::subnet::gossip::behaviour(key, &gossip_config)
                            .map_err(Box::<dyn std::error::Error + Send + Sync>::from)?,
                    )),
                    false => None,
                };
                let kad = super::walks::kademlia(peer, kad_bootstrap, dht_walks, subnet_member);
                Ok(Behaviour {
                    limits: libp2p::connection_limits::Behaviour::new(limits),
                    ip_limit: crate::streams::ip_limit::PerIpLimit::new(conn.max_per_ip),
                    api,
                    dag_sync,
                    gossip: Toggle::from(gossip),
                    identify: Confirmed::new(identify::Behaviour::new(
                        identify::Config::new("/ipfs/id/1.0.0".into(), key.public())
                            .with_agent_version(agent_version()),
                    )),
                    ping: Confirmed::new(ping::Behaviour::new(
                        ping::Config::new()
                            .with_interval(ping_interval)
                            .with_timeout(ping_timeout),
                    )),
                    kad: Confirmed::new(kad),
                    autonat_client: Toggle::from(
                        autonat_on
                            .then(|| Confirmed::new(autonat::v2::client::Behaviour::default())),
                    ),
                    autonat_server: Toggle::from(
                        autonat_on.then(autonat::v2::server::Behaviour::default),
                    ),
                })
            })
            .map_err(|e| NodeError::Transport(e.to_string()))?
            .with_swarm_config(|c| {
                // Lazy multistream-select, made safe per protocol: see
                // `lazy` (stock behaviours) and `api` (calls).
                c.with_idle_connection_timeout(idle)
                    .with_substream_upgrade_protocol_override(
                        libp2p::core::upgrade::Version::V1Lazy,
                    )
            })
            .build();

        let mut unready_listeners = Vec::new();
        for addr in &config.listen {
            super::transport::check_port_free(addr).map_err(|message| NodeError::Listen {
                addr: addr.clone(),
                message,
            })?;
            let id = swarm
                .listen_on(addr.clone())
                .map_err(|e| NodeError::Listen {
                    addr: addr.clone(),
                    message: e.to_string(),
                })?;
            unready_listeners.push(id);
        }
        for addr in &config.bootstrap {
            if let Some(Protocol::P2p(peer)) = addr.iter().last() {
                let mut transport_addr = addr.clone();
                transport_addr.pop();
                swarm.behaviour_mut().kad.add_address(&peer, transport_addr);
            }
            if let Err(e) = swarm.dial(addr.clone()) {
                tracing::warn!(%addr, "cannot dial bootstrap peer: {e}");
            }
        }
        let (ready_tx, ready_rx) = oneshot::channel();
        let mut this = Self {
            swarm,
            commands,
            events,
            peers: HashMap::new(),
            pending_dials: HashMap::new(),
            client,
            subnet,
            evictions: Default::default(),
            recent,
            autonat,
            closing: Default::default(),
            unready_listeners,
            walks: super::walks::WalkSchedule::new(discovery_interval, discovery_most)
                .enabled_if(dht_walks),
            ping_timeout,
            ping_interval,
            reconnects,
            ready: Some(ready_tx),
        };
        this.check_ready();
        Ok((this, ready_rx))
    }

    fn check_ready(&mut self) {
        if self.unready_listeners.is_empty() {
            if let Some(tx) = self.ready.take() {
                let _ = tx.send(Ok(()));
            }
        }
    }

    pub(super) fn emit(&self, event: NodeEvent) {
        if matches!(event, NodeEvent::PeerEvicted { .. }) {
            self.recent.evicted();
        }
        let _ = self.events.send(event);
    }

    fn with_p2p(&self, addr: &Multiaddr) -> Multiaddr {
        let mut addr = addr.clone();
        if !matches!(addr.iter().last(), Some(Protocol::P2p(_))) {
            addr.push(Protocol::P2p(*self.swarm.local_peer_id()));
        }
        addr
    }

    pub(crate) async fn run(mut self) {
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                _ = self.walks.due() => self.walk(),
                _ = self.reconnects.due() => self.redial(),
                command = self.commands.recv() => match command {
                    Some(Command::Stop) | None => break,
                    Some(command) => self.on_command(command),
                },
            }
        }
        tracing::debug!("event loop stopped");
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Dial { addr, peer, reply } => {
                if self.swarm.is_connected(&peer) {
                    let _ = reply.send(Ok(()));
                    return;
                }
                let waiting = self.pending_dials.entry(peer).or_default();
                waiting.push(reply);
                if waiting.len() > 1 {
                    return; // A dial to this peer is already under way.
                }
                let mut transport_addr = addr.clone();
                if matches!(transport_addr.iter().last(), Some(Protocol::P2p(_))) {
                    transport_addr.pop();
                }
                let opts = DialOpts::peer_id(peer)
                    .addresses(vec![transport_addr])
                    .build();
                match self.swarm.dial(opts) {
                    Ok(()) => {}
                    // A dial of the swarm's own (bootstrap, discovery) is
                    // under way: its outcome answers this one too.
                    Err(libp2p::swarm::DialError::DialPeerConditionFalse(_)) => {}
                    Err(e) => self.fail_dials(peer, e.to_string()),
                }
            }
            Command::Disconnect { peer } => {
                if self.swarm.disconnect_peer_id(peer).is_ok() {
                    self.closing.insert(peer);
                }
            }
            Command::Peers { reply } => {
                let mut peers: Vec<PeerInfo> =
                    self.peers.values().map(|(info, _)| info.clone()).collect();
                peers.sort_by_key(|p| p.connected_since);
                let _ = reply.send(peers);
            }
            Command::ListenAddrs { reply } => {
                let addrs = self.swarm.listeners().map(|a| self.with_p2p(a)).collect();
                let _ = reply.send(addrs);
            }
            Command::GossipMesh { reply } => {
                let _ = reply.send(self.gossip_mesh());
            }
            Command::Publish { topic, data, reply } => {
                let _ = reply.send(self.publish(topic, data));
            }
            Command::Stop => {}
        }
    }

    fn fail_dials(&mut self, peer: PeerId, message: String) {
        for reply in self.pending_dials.remove(&peer).unwrap_or_default() {
            let _ = reply.send(Err(message.clone()));
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        if let Some(m) = &self.client.metrics {
            super::behaviour::record_swarm(m, &event, &mut self.swarm);
        }
        match event {
            SwarmEvent::NewListenAddr {
                listener_id,
                address,
            } => {
                let full = self.with_p2p(&address);
                tracing::info!(addr = %full, "listening");
                self.emit(NodeEvent::Listening { addr: full });
                self.unready_listeners.retain(|id| *id != listener_id);
                self.check_ready();
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                addresses,
                reason,
            } => {
                if let Err(e) = &reason {
                    tracing::warn!(?addresses, "listener closed: {e}");
                }
                if self.unready_listeners.contains(&listener_id) {
                    if let Some(tx) = self.ready.take() {
                        let _ = tx.send(Err(NodeError::Listen {
                            addr: addresses.first().cloned().unwrap_or_else(Multiaddr::empty),
                            message: match reason {
                                Err(e) => e.to_string(),
                                Ok(()) => "listener closed".into(),
                            },
                        }));
                    }
                }
            }
            SwarmEvent::ListenerError { error, .. } => {
                tracing::warn!("listener error: {error}");
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } => {
                let (addr, direction) = match &endpoint {
                    ConnectedPoint::Dialer { address, .. } => {
                        (address.clone(), Direction::Outbound)
                    }
                    ConnectedPoint::Listener { send_back_addr, .. } => {
                        (send_back_addr.clone(), Direction::Inbound)
                    }
                };
                let entry = self.peers.entry(peer_id).or_insert_with(|| {
                    (
                        PeerInfo {
                            peer: peer_id,
                            addr: addr.clone(),
                            direction,
                            connected_since: SystemTime::now(),
                            agent: None,
                            protocols: Vec::new(),
                            listen_addrs: Vec::new(),
                            rtt_last: None,
                            rtt_samples: Vec::new(),
                            pings_sent: 0,
                            pings_failed: 0,
                            rtt_at: None,
                            ping_interval: self.ping_interval,
                            observed_addr: None,
                        },
                        0,
                    )
                });
                entry.1 = num_established.get();
                if num_established.get() == 1 {
                    self.reconnects.connected(&peer_id);
                    tracing::info!(peer = %peer_id, %addr, %direction, "peer connected");
                    self.emit(NodeEvent::PeerConnected {
                        peer: peer_id,
                        addr,
                        direction,
                    });
                }
                for reply in self.pending_dials.remove(&peer_id).unwrap_or_default() {
                    let _ = reply.send(Ok(()));
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                cause,
                ..
            } => {
                if num_established == 0 {
                    self.peers.remove(&peer_id);
                    let ours = self.closing.remove(&peer_id);
                    self.reconnects.disconnected(&peer_id, ours);
                    let by_remote = !ours
                        && cause.as_ref().is_some_and(|c| {
                            !matches!(c, libp2p::swarm::ConnectionError::KeepAliveTimeout)
                        });
                    if by_remote {
                        self.remote_closed(peer_id);
                    }
                    let cause = cause.map(|c| c.to_string());
                    tracing::info!(peer = %peer_id, cause = cause.as_deref().unwrap_or("closed"), "peer disconnected");
                    self.emit(NodeEvent::PeerDisconnected {
                        peer: peer_id,
                        cause,
                    });
                } else if let Some(entry) = self.peers.get_mut(&peer_id) {
                    entry.1 = num_established;
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                let message = super::dial_error::summary(&error);
                match peer_id {
                    Some(peer) => tracing::warn!(%peer, "dial failed: {error}"),
                    None => tracing::warn!("dial failed: {error}"),
                }
                if let Some(peer) = peer_id {
                    if !self.swarm.is_connected(&peer) {
                        self.fail_dials(peer, message.clone());
                    }
                }
                self.emit(NodeEvent::DialFailed {
                    peer: peer_id,
                    error: message,
                });
            }
            SwarmEvent::IncomingConnectionError { error, .. } => {
                tracing::debug!("incoming connection failed: {error}");
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                let protocols: Vec<String> = info.protocols.iter().map(|p| p.to_string()).collect();
                if self.walks.enabled() && info.protocols.iter().any(|p| p.as_ref() == KAD_PROTOCOL)
                {
                    for addr in &info.listen_addrs {
                        self.swarm
                            .behaviour_mut()
                            .kad
                            .add_address(&peer_id, addr.clone());
                    }
                }
                self.client.set_peer_protocols(peer_id, protocols.clone());
                self.subnet.replicator.on_identified(peer_id, &protocols);
                if let Some((peer, _)) = self.peers.get_mut(&peer_id) {
                    peer.agent = Some(info.agent_version.clone());
                    peer.protocols = protocols.clone();
                    peer.listen_addrs = info.listen_addrs.clone();
                    peer.observed_addr = Some(info.observed_addr.clone());
                }
                tracing::debug!(peer = %peer_id, agent = %crate::logs::Untrusted(&info.agent_version), "peer identified");
                self.emit(NodeEvent::PeerIdentified {
                    peer: peer_id,
                    agent: info.agent_version,
                    protocols,
                });
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(event)) => self.on_ping(event),
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::RoutingUpdated {
                peer,
                addresses,
                is_new_peer: true,
                ..
            })) => self.discovered(peer, addresses.into_vec(), Discovery::RoutingTable),
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                result: kad::QueryResult::GetClosestPeers(Ok(ok)),
                ..
            })) => {
                for info in ok.peers {
                    self.discovered(info.peer_id, info.addrs, Discovery::Query);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Api(never)) => match never {},
            SwarmEvent::Behaviour(BehaviourEvent::Gossip(event)) => self.on_gossip(event),
            SwarmEvent::Behaviour(BehaviourEvent::AutonatClient(event)) => {
                self.autonat.record(&event)
            }
            _ => {}
        }
    }
}

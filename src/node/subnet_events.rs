//! The swarm task's share of the subnet: gossip messages judged (DAG
//! nodes verified before they are relayed) and stored, DHT discoveries
//! reported where they happen.

use std::sync::atomic::Ordering;

use libp2p::gossipsub::{self, MessageAcceptance};
use libp2p::PeerId;

use super::walks::WALK_WIDTH;

use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::Multiaddr;

use super::event_loop::EventLoop;
use super::events::{Discovery, NodeEvent};
use crate::logs::Untrusted;
use crate::subnet::gossip::{judge, Verdict};
use crate::subnet::Ingest;

/// Most peers remembered as discovered (a hostile DHT could name many);
/// past it discoveries are no longer reported.
pub const MAX_DISCOVERED_PEERS: usize = 10_000;

impl EventLoop {
    /// A random walk: it fills the routing table; new peers are dialed
    /// while below the peer target.
    pub(super) fn walk(&mut self) {
        let kad = &mut self.swarm.behaviour_mut().kad;
        kad.get_n_closest_peers(PeerId::random(), WALK_WIDTH);
        let below_target = self.peers.len() < self.subnet.peer_target;
        let next = self
            .walks
            .walked(self.subnet.discovered.len(), below_target);
        if let Some(m) = &self.client.metrics {
            m.walk_interval(next);
        }
        tracing::debug!(?next, "DHT walk; next one after");
    }

    /// Each subscribed topic with its mesh peers (none with gossip off).
    pub(super) fn gossip_mesh(&self) -> Vec<(String, Vec<PeerId>)> {
        let Some(g) = self.swarm.behaviour().gossip.as_ref() else {
            return Vec::new();
        };
        let g = &**g;
        let mut topics: Vec<(String, Vec<PeerId>)> = g
            .topics()
            .map(|t| (t.to_string(), g.mesh_peers(t).copied().collect()))
            .collect();
        topics.sort();
        topics
    }

    /// Publishes on a gossip topic.
    pub(super) fn publish(&mut self, topic: String, data: Vec<u8>) -> Result<(), String> {
        match self.swarm.behaviour_mut().gossip.as_mut() {
            Some(g) => g
                .publish(libp2p::gossipsub::IdentTopic::new(topic), data)
                .map(|_| ())
                .map_err(|e| format!("cannot publish: {e}")),
            None => Err("gossip is off".into()),
        }
    }

    /// The remote closed our last connection to `peer`: on a repeat, say
    /// what a strict subnet's eviction means.
    pub(super) fn remote_closed(&mut self, peer: PeerId) {
        let Some(pattern) = self
            .evictions
            .remote_closed(peer, std::time::Instant::now())
        else {
            return;
        };
        let hint = super::evictions::eviction_hint(self.swarm.local_peer_id());
        // Loud once; a subnet that keeps evicting us would fill the log.
        if pattern.times == super::evictions::EVICTIONS_TO_REPORT {
            tracing::warn!(%peer, every = ?pattern.every, "peer keeps closing our connection: {hint}");
        } else {
            tracing::debug!(%peer, times = pattern.times, "evicted again");
        }
        self.emit(NodeEvent::PeerEvicted {
            peer,
            times: pattern.times,
            every: pattern.every,
            hint,
        });
    }

    /// A peer found through the DHT (its routing table, or a query's
    /// answer): reported once, dialed unless connected or the node has its
    /// target of peers (then it is dialed when something calls it).
    pub(super) fn discovered(&mut self, peer: PeerId, addrs: Vec<Multiaddr>, via: Discovery) {
        if peer == *self.swarm.local_peer_id() {
            return;
        }
        let known = &mut self.subnet.discovered;
        if known.len() < MAX_DISCOVERED_PEERS && known.insert(peer) {
            tracing::info!(%peer, via = via.as_str(), "discovered peer through the DHT");
            if let Some(m) = &self.client.metrics {
                m.discovered_peers(known.len());
            }
            self.emit(NodeEvent::PeerDiscovered { peer, via });
        }
        // Dials under way count: a walk's answers arrive together.
        let info = self.swarm.network_info();
        let coming = info.connection_counters().num_pending_outgoing() as usize;
        let wanted = self.peers.len() + coming < self.subnet.peer_target;
        if wanted && !self.swarm.is_connected(&peer) && !addrs.is_empty() {
            let opts = DialOpts::peer_id(peer)
                .addresses(addrs)
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            let _ = self.swarm.dial(opts);
        }
    }

    pub(super) fn on_gossip(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => {
                let counters = self.subnet.gossip.clone();
                counters.received.fetch_add(1, Ordering::Relaxed);
                let topic = message.topic.to_string();
                let bytes = message.data.len();
                let verdict = judge(&message.data);
                let acceptance = match &verdict {
                    Verdict::Relay(_) => MessageAcceptance::Accept,
                    Verdict::Reject(_) => MessageAcceptance::Reject,
                };
                if let Some(gossip) = self.swarm.behaviour_mut().gossip.as_mut() {
                    gossip.report_message_validation_result(
                        &message_id,
                        &propagation_source,
                        acceptance,
                    );
                }
                let rejected = match verdict {
                    Verdict::Relay(Some(node)) => {
                        self.store_node(*node, propagation_source);
                        None
                    }
                    Verdict::Relay(None) => None,
                    Verdict::Reject(why) => {
                        counters.rejected.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(from = %propagation_source, topic = %Untrusted(&topic), "gossip message rejected: {why}");
                        Some(why)
                    }
                };
                self.emit(NodeEvent::Gossip {
                    topic,
                    from: propagation_source,
                    author: message.source,
                    bytes,
                    rejected,
                });
            }
            gossipsub::Event::Subscribed { peer_id, topic } => {
                tracing::debug!(peer = %peer_id, topic = %Untrusted(topic.as_str()), "peer joined a gossip topic");
            }
            gossipsub::Event::GossipsubNotSupported { peer_id } => {
                tracing::debug!(peer = %peer_id, "peer does not speak gossipsub on /meshsub/2.0.0");
            }
            _ => {}
        }
    }

    fn store_node(&mut self, node: crate::subnet::VerifiedNode, from: PeerId) {
        let ingest = {
            let mut store = self.subnet.dag.lock().unwrap_or_else(|e| e.into_inner());
            store.ingest(node.clone())
        };
        let counters = &self.subnet.gossip;
        match &ingest {
            Ingest::Full(limit) => {
                counters.dag_refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%from, "DAG node not kept: the {limit} limit is reached");
            }
            Ingest::Duplicate => return,
            _ => {
                counters.dag_stored.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.emit(super::replication::dag_node_event(&node, &ingest));
    }
}

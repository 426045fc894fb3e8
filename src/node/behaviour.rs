//! The node's swarm behaviour: every protocol a subnet's nodes expect of a
//! peer, in the order connections meet them, and what the metrics read off
//! its events.

use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{autonat, identify, kad, ping};

use crate::protocol::metrics::NodeMetrics;
use crate::protocol::ApiProtocol;
use crate::streams::lazy::Confirmed;

/// The Kademlia protocol id the Python subnet nodes use (py-libp2p's default).
pub const KAD_PROTOCOL: &str = "/ipfs/kad/1.0.0";

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    // Limits first: a connection they refuse gets no handler from the rest.
    pub(super) limits: libp2p::connection_limits::Behaviour,
    pub(super) ip_limit: crate::streams::ip_limit::PerIpLimit,
    pub(super) api: ApiProtocol,
    /// `/subnet/merkle_dag_sync_protocol/1.0.0`, when served.
    pub(super) dag_sync: Toggle<crate::streams::behaviour::Behaviour>,
    /// Gossipsub on `/meshsub/2.0.0`, when joined.
    pub(super) gossip: Toggle<Confirmed<libp2p::gossipsub::Behaviour>>,
    pub(super) identify: Confirmed<identify::Behaviour>,
    pub(super) ping: Confirmed<ping::Behaviour>,
    pub(super) kad: Confirmed<kad::Behaviour<kad::store::MemoryStore>>,
    /// AutoNAT v2: asks peers that offer it to dial us back, and does the
    /// same for them (`NodeConfig::autonat`).
    pub(super) autonat_client: Toggle<Confirmed<autonat::v2::client::Behaviour>>,
    pub(super) autonat_server: Toggle<autonat::v2::server::Behaviour>,
}

/// libp2p's own metrics for one swarm event; the peer count and the
/// routing table's size when the event may have changed them (counting on
/// every event would cost O(peers) per event).
pub(super) fn record_swarm(
    metrics: &NodeMetrics,
    event: &libp2p::swarm::SwarmEvent<BehaviourEvent>,
    swarm: &mut libp2p::Swarm<Behaviour>,
) {
    use libp2p::metrics::Recorder;
    use libp2p::swarm::SwarmEvent;
    metrics.libp2p.record(event);
    match event {
        SwarmEvent::Behaviour(BehaviourEvent::Identify(e)) => metrics.libp2p.record(e),
        SwarmEvent::Behaviour(BehaviourEvent::Ping(e)) => metrics.libp2p.record(e),
        SwarmEvent::Behaviour(BehaviourEvent::Kad(e)) => {
            metrics.libp2p.record(e);
            if matches!(e, kad::Event::RoutingUpdated { .. }) {
                let known: usize = swarm
                    .behaviour_mut()
                    .kad
                    .kbuckets()
                    .map(|b| b.num_entries())
                    .sum();
                metrics.routing_table_peers(known);
            }
        }
        SwarmEvent::Behaviour(BehaviourEvent::Gossip(e)) => metrics.libp2p.record(e),
        SwarmEvent::ConnectionEstablished { .. } | SwarmEvent::ConnectionClosed { .. } => {
            metrics.connected_peers(swarm.connected_peers().count());
        }
        _ => {}
    }
}

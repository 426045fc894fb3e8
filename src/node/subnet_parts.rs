//! What the swarm task holds of the subnet (its own file, so the swarm
//! task and the files that extend it import it without a circle).

use std::sync::{Arc, Mutex};

use libp2p::PeerId;

use crate::subnet::{DagStore, DagSyncServer, GossipCounters};

/// What the swarm task holds of the subnet.
pub(crate) struct SubnetParts {
    pub(crate) dag: Arc<Mutex<DagStore>>,
    pub(crate) dag_sync: Option<DagSyncServer>,
    pub(crate) gossip: Arc<GossipCounters>,
    pub(crate) replicator: super::replication::Replicator,
    /// Peers already reported as discovered.
    pub(crate) discovered: std::collections::HashSet<PeerId>,
    /// Discoveries are dialed while fewer peers than this are connected.
    pub(crate) peer_target: usize,
}

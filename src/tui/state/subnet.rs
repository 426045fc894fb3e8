//! The Subnet view: the roster from verified peer state, what gossip
//! brought and what was rejected, the DAG held, and evictions with the fix.

use std::collections::{BTreeMap, VecDeque};

use crate::node::NodeEvent;
use crate::subnet::Roster;

/// Most rejections and evictions kept for the view.
pub const MAX_SUBNET_NOTES: usize = 50;

#[derive(Default)]
pub struct SubnetView {
    pub show: bool,
    pub roster: Roster,
    pub gossip_received: u64,
    pub gossip_rejected: u64,
    /// Verified DAG nodes seen per namespace (stored or refused for a limit).
    pub dag_nodes: BTreeMap<String, (u64, u64)>,
    /// Newest last: (peer, why) of rejected gossip.
    pub rejections: VecDeque<(String, String)>,
    /// Newest last: (peer, times, hint).
    pub evictions: VecDeque<(String, usize, String)>,
}

fn push_bounded<T>(q: &mut VecDeque<T>, item: T) {
    if q.len() >= MAX_SUBNET_NOTES {
        q.pop_front();
    }
    q.push_back(item);
}

impl SubnetView {
    /// Takes the node events the view shows; others pass by.
    pub fn on_node_event(&mut self, ev: &NodeEvent) {
        match ev {
            NodeEvent::Gossip { from, rejected, .. } => {
                self.gossip_received += 1;
                if let Some(why) = rejected {
                    self.gossip_rejected += 1;
                    push_bounded(&mut self.rejections, (from.to_string(), why.clone()));
                }
            }
            NodeEvent::DagNode {
                namespace,
                schema_id,
                author,
                created_at_ms,
                payload,
                stored,
                ..
            } => {
                // Namespaces come from peers: bounded like everything else.
                if self.dag_nodes.len() < MAX_SUBNET_NOTES || self.dag_nodes.contains_key(namespace)
                {
                    let e = self.dag_nodes.entry(namespace.clone()).or_default();
                    if *stored {
                        e.0 += 1;
                    } else {
                        e.1 += 1;
                    }
                }
                if schema_id == "peer-state" {
                    self.roster.apply(author, *created_at_ms, payload);
                }
            }
            NodeEvent::PeerEvicted {
                peer, times, hint, ..
            } => push_bounded(
                &mut self.evictions,
                (peer.to_string(), *times, hint.clone()),
            ),
            _ => {}
        }
    }
}

//! A node's figures in one small answer (`Request::Stats`), for fleet
//! views that poll many nodes: cheaper than following each node's events.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::node::recent::{ReloadMark, ServedLately};
use crate::node::NodeHandle;
use crate::subnet::roster::{Roster, RosterEntry};

/// What a fleet row shows of one node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeStats {
    pub uptime: Duration,
    /// When the node started, in ms since the Unix epoch.
    pub started_at_ms: u64,
    pub connected_peers: usize,
    /// Routes the node serves.
    pub routes: usize,
    /// Calls served over the last minute.
    pub served: ServedLately,
    pub last_reload: Option<ReloadMark>,
    pub evictions: u64,
    /// Subnet nodes in the roster the node holds.
    pub roster_size: usize,
    /// The subnet the roster is of (the node's own entry's, else the one
    /// most entries name).
    pub subnet_id: Option<u64>,
    /// The node's own state in that roster (JOINING, ONLINE…), if it has
    /// an entry.
    pub own_state: Option<String>,
    /// What its health prober found last, when it probes (`--health`).
    #[serde(default)]
    pub health: Option<HealthCounts>,
}

/// A node's latest probe round in two numbers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthCounts {
    pub probed: usize,
    /// Unreachable or offline.
    pub down: usize,
}

/// The counts from the prober's report (JSON, so that this module needs
/// nothing of `health/`).
fn health_counts(handle: &NodeHandle) -> Option<HealthCounts> {
    let report = handle.health_report()?;
    let probes = report.get("probes")?.as_array()?;
    let down = probes
        .iter()
        .filter(|p| {
            matches!(
                p.get("verdict").and_then(|v| v.as_str()),
                Some("unreachable" | "offline")
            )
        })
        .count();
    Some(HealthCounts {
        probed: probes.len(),
        down,
    })
}

/// The subnet's roster from every verified peer state the node holds,
/// oldest first: the latest of each subnet node wins, as it does live.
pub fn roster_of(handle: &NodeHandle) -> Vec<RosterEntry> {
    let mut states: Vec<_> = {
        let store = handle.dag().lock().unwrap_or_else(|e| e.into_inner());
        store
            .namespaces()
            .iter()
            .flat_map(|ns| store.nodes(ns))
            .filter(|n| n.schema_id == "peer-state")
            .collect()
    };
    states.sort_by_key(|n| n.created_at_ms);
    let mut roster = Roster::default();
    for n in &states {
        roster.apply(&n.author, n.created_at_ms, &n.payload);
    }
    roster.entries().cloned().collect()
}

pub async fn of(handle: &NodeHandle) -> NodeStats {
    let recent = handle.recent();
    let roster = roster_of(handle);
    let me = handle.local_peer_id().to_string();
    let own = roster.iter().find(|e| e.peer_id == me);
    let subnet_id = own.map(|e| e.subnet_id).or_else(|| most_named(&roster));
    NodeStats {
        uptime: recent.uptime(),
        started_at_ms: recent.started_at_ms(),
        connected_peers: handle.peers().await.map_or(0, |p| p.len()),
        routes: handle.routes().current().len(),
        served: recent.served_lately(),
        last_reload: recent.last_reload(),
        evictions: recent.evictions(),
        roster_size: roster.len(),
        subnet_id,
        own_state: own.map(|e| e.state.clone()),
        health: health_counts(handle),
    }
}

fn most_named(roster: &[RosterEntry]) -> Option<u64> {
    let mut counts = std::collections::BTreeMap::<u64, usize>::new();
    for e in roster {
        *counts.entry(e.subnet_id).or_default() += 1;
    }
    counts.into_iter().max_by_key(|(_, n)| *n).map(|(id, _)| id)
}

//! A fleet: every node an operator runs, named in `contexts.toml`, watched
//! at once through their control sockets (here or over the user's own ssh).
//! No daemon and no new network service: each row is one quiet control
//! client polling `Request::Stats`.
//!
//! `contexts` reads and edits the file, `probe` reaches each node, `rows`
//! filters and sorts what they found; the console's fleet view and
//! `peerapi fleet status --json` both show [`Fleet`].

pub mod actions;
pub mod contexts;
pub mod follow;
pub mod probe;
pub mod rows;
pub mod table;

use std::time::Instant;

use serde::Serialize;

pub use contexts::Context;
pub use probe::{Probe, ProbeOptions};
pub use rows::{FleetFilter, FleetSort};

use crate::control::{NodeInfo, NodeStats, Role};

/// Whether a node answered, as a row shows it.
#[derive(Clone, Debug, PartialEq)]
pub enum Reach {
    /// Not heard from yet.
    Trying,
    Up,
    /// With why (ssh's own words where ssh failed).
    Down(String),
}

/// One node of the fleet: its context and what its probe last found.
#[derive(Clone, Debug)]
pub struct Row {
    pub context: Context,
    pub reach: Reach,
    /// The node's identity and figures when it last answered (kept while
    /// it is down, so a row still says which node it was).
    pub info: Option<NodeInfo>,
    pub role: Option<Role>,
    pub stats: Option<NodeStats>,
    /// When the reach last changed.
    pub since: Instant,
}

/// Every row, in the contexts' order.
pub struct Fleet {
    pub rows: Vec<Row>,
}

impl Fleet {
    pub fn new(contexts: Vec<Context>, now: Instant) -> Self {
        let rows = contexts
            .into_iter()
            .map(|context| Row {
                context,
                reach: Reach::Trying,
                info: None,
                role: None,
                stats: None,
                since: now,
            })
            .collect();
        Self { rows }
    }

    /// Takes what a probe found.
    pub fn apply(&mut self, index: usize, probe: Probe, now: Instant) {
        let Some(row) = self.rows.get_mut(index) else {
            return;
        };
        let reach = match probe {
            Probe::Up { info, role, stats } => {
                row.info = Some(*info);
                row.role = Some(role);
                row.stats = Some(*stats);
                Reach::Up
            }
            Probe::Down { reason } => Reach::Down(reason),
        };
        if std::mem::discriminant(&reach) != std::mem::discriminant(&row.reach) {
            row.since = now;
        }
        row.reach = reach;
    }

    /// Rows whose node could not be reached (not those still being tried).
    pub fn down(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| matches!(r.reach, Reach::Down(_)))
            .count()
    }
}

fn ms(d: Option<std::time::Duration>) -> Option<f64> {
    d.map(|d| (d.as_secs_f64() * 1e6).round() / 1e3)
}

/// A row as `peerapi fleet status --json` prints it.
#[derive(Serialize)]
pub struct RowJson<'a> {
    pub name: &'a str,
    pub labels: &'a std::collections::BTreeMap<String, String>,
    pub reachable: bool,
    pub reason: Option<&'a str>,
    pub peer_id: Option<String>,
    pub version: Option<&'a str>,
    pub uptime_s: Option<u64>,
    pub subnet_id: Option<u64>,
    pub connected_peers: Option<usize>,
    pub roster_size: Option<usize>,
    pub own_state: Option<&'a str>,
    pub routes: Option<usize>,
    pub calls_per_s: Option<f64>,
    pub error_share: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub backend_first_byte_p50_ms: Option<f64>,
    pub last_reload: Option<&'a crate::node::recent::ReloadMark>,
    pub evictions: Option<u64>,
    pub role: Option<String>,
    pub read_only: bool,
}

impl Row {
    pub fn json(&self) -> RowJson<'_> {
        let up = matches!(self.reach, Reach::Up);
        // Figures only for a node that answered now: stale ones would lie.
        let stats = self.stats.as_ref().filter(|_| up);
        RowJson {
            name: &self.context.name,
            labels: &self.context.labels,
            reachable: up,
            reason: match &self.reach {
                Reach::Down(why) => Some(why),
                Reach::Trying => Some("not reached yet"),
                Reach::Up => None,
            },
            peer_id: self.info.as_ref().map(|i| i.peer_id.to_string()),
            version: self.info.as_ref().map(|i| i.version.as_str()),
            uptime_s: stats.map(|s| s.uptime.as_secs()),
            subnet_id: stats.and_then(|s| s.subnet_id),
            connected_peers: stats.map(|s| s.connected_peers),
            roster_size: stats.map(|s| s.roster_size),
            own_state: stats.and_then(|s| s.own_state.as_deref()),
            routes: stats.map(|s| s.routes),
            calls_per_s: stats.map(|s| s.served.per_sec()),
            error_share: stats.map(|s| s.served.error_share()),
            p50_ms: stats.and_then(|s| ms(s.served.p50)),
            p99_ms: stats.and_then(|s| ms(s.served.p99)),
            backend_first_byte_p50_ms: stats.and_then(|s| ms(s.served.backend_first_byte_p50)),
            last_reload: stats.and_then(|s| s.last_reload.as_ref()),
            evictions: stats.map(|s| s.evictions),
            role: self.role.map(|r| format!("{r:?}").to_lowercase()),
            read_only: self.context.read_only,
        }
    }
}

//! The subnet around the API: what template nodes expect of a peer, and
//! what the operator can see of them. `canonical` (Python's canonical
//! JSON, byte-exact), `dag` (Merkle DAG nodes and their verification),
//! `store` (the DAG we hold, bounded), `sync` (the DAG-sync protocol), `replicate` (its client side),
//! `gossip` (gossipsub on `/meshsub/2.0.0`, verified before relayed),
//! `roster` (each subnet node's latest peer state), `telemetry` (the
//! signed events template nodes push over WebSocket).

pub mod canonical;
pub mod dag;
pub mod dag_file;
pub mod gossip;
pub mod replicate;
pub mod roster;
pub mod sign;
pub mod store;
pub mod sync;
pub mod telemetry;

pub use dag::{verify, VerifiedNode, VerifyError};
pub use gossip::{GossipConfig, GossipCounters};
pub use replicate::ReplicateConfig;
pub use roster::{Roster, RosterEntry};
pub use store::{DagLimits, DagStore, Ingest, Summary};
pub use sync::{DagSyncServer, SyncLimits, PROTOCOL_DAG_SYNC};
pub use telemetry::{TelemetryCounters, TelemetryEvent, TelemetryLimits};

/// What the node does in the subnet beyond the API.
#[derive(Clone, Debug)]
pub struct SubnetConfig {
    /// Serve the DAG-sync protocol (template nodes wait for every peer's
    /// inventory at start-up; off, a late joiner never converges).
    pub dag_sync: bool,
    pub sync: SyncLimits,
    pub dag: DagLimits,
    pub gossip: GossipConfig,
    /// Replicating the DAG from peers that serve the sync protocol.
    pub replicate: ReplicateConfig,
    /// Keep the DAG in this file across restarts.
    pub dag_file: Option<std::path::PathBuf>,
    pub dag_save_interval: std::time::Duration,
    /// Accept template nodes' telemetry (WebSocket) here, as node events.
    pub telemetry_listen: Option<std::net::SocketAddr>,
    pub telemetry: TelemetryLimits,
}

impl Default for SubnetConfig {
    fn default() -> Self {
        Self {
            dag_sync: true,
            sync: SyncLimits::default(),
            dag: DagLimits::default(),
            gossip: GossipConfig::default(),
            replicate: ReplicateConfig::default(),
            dag_file: None,
            dag_save_interval: dag_file::DEFAULT_DAG_SAVE_INTERVAL,
            telemetry_listen: None,
            telemetry: TelemetryLimits::default(),
        }
    }
}

//! The subnet's health over time. A node with health on probes every node
//! of the roster and every connected peer once per interval (gently: one
//! probe per node per interval, a bound on probes at once, no API call
//! unless a health route is named), judges each (online, joining,
//! degraded, stale, offline, unreachable, with the reason), keeps every
//! result in an SQLite history, publishes the verdicts to Prometheus and
//! raises alerts when a node turns bad and when it clears.
//!
//! `verdict` judges one probe; `prober` runs the rounds inside the node;
//! `store` is the history file; `table` reads it back as rows and
//! buckets; `alerts` decides and delivers.

pub mod alerts;
pub mod dag;
mod probe;
pub mod prober;
pub mod reach;
mod schema;
pub mod store;
mod store_file;
pub mod table;
pub mod text;
pub mod verdict;

use std::path::PathBuf;
use std::time::Duration;

pub use prober::{spawn, HealthHandle, Latest};
pub use verdict::{Thresholds, Verdict};

/// Default time between two probes of a node.
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(60);
/// Default most probes at once.
pub const DEFAULT_MAX_PROBES_AT_ONCE: usize = 8;
/// Default bound on one dial of a probe.
pub const DEFAULT_PROBE_DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// Default history kept.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// Default age past which a node's peer state is stale.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(30 * 60);
/// Default ping round trip past which a node is degraded.
pub const DEFAULT_SLOW_RTT: Duration = Duration::from_secs(1);
/// Default most nodes probed (the roster's own bound).
pub const DEFAULT_MAX_PROBED_NODES: usize = 1000;

/// How a node probes its subnet.
#[derive(Clone, Debug)]
pub struct HealthConfig {
    pub interval: Duration,
    pub max_at_once: usize,
    pub dial_timeout: Duration,
    /// A route to call on each node (its status and time count), only when
    /// the operator names one.
    pub health_route: Option<String>,
    /// The history file (None: probe without history).
    pub db: Option<PathBuf>,
    pub retention: Duration,
    pub thresholds: Thresholds,
    pub max_nodes: usize,
    pub alerts: alerts::AlertConfig,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            interval: DEFAULT_PROBE_INTERVAL,
            max_at_once: DEFAULT_MAX_PROBES_AT_ONCE,
            dial_timeout: DEFAULT_PROBE_DIAL_TIMEOUT,
            health_route: None,
            db: None,
            retention: DEFAULT_RETENTION,
            thresholds: Thresholds::default(),
            max_nodes: DEFAULT_MAX_PROBED_NODES,
            alerts: alerts::AlertConfig::default(),
        }
    }
}

/// Where a node keeps its history unless told: `$XDG_DATA_HOME/peerapi`
/// (or `~/.local/share/peerapi`), `health-<peer id>.db`.
pub fn default_db(peer: &str) -> PathBuf {
    data_dir().join(format!("health-{peer}.db"))
}

/// peerapi's data directory.
pub fn data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("peerapi");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".local/share/peerapi"),
        None => PathBuf::from(".peerapi"),
    }
}

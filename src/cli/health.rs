//! Health on the command line: the flags that make `peerapi node` probe
//! its subnet and keep the history, and `peerapi subnet health`, which
//! prints the table from that history once (for cron and scripts).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::Args;
use peerapi::health::{self, alerts::AlertConfig, store::History, HealthConfig, Thresholds};
use peerapi::node::NodeHandle;

use super::say::fail;

fn duration(text: &str) -> Result<Duration, String> {
    peerapi::load::parse_duration(text)
        .ok_or_else(|| format!("{text:?} is not a duration like 60s, 30m, 24h or 7d"))
}

/// `90%` or `0.9`.
fn share(text: &str) -> Result<f64, String> {
    let v = match text.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0),
        None => text.trim().parse::<f64>(),
    }
    .map_err(|_| format!("{text:?} is not a share like 90% or 0.9"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{text:?} is not between 0% and 100%"))
    }
}

/// A duration, or `off` (zero).
fn duration_or_off(text: &str) -> Result<Duration, String> {
    if text == "off" {
        return Ok(Duration::ZERO);
    }
    duration(text)
}

#[derive(Args, Debug, Clone)]
pub(crate) struct HealthArgs {
    /// Probe every node of the roster and every connected peer, keep the
    /// results (see `peerapi subnet health`), export them to Prometheus
    /// and alert when a node turns bad.
    #[arg(long)]
    health: bool,
    /// Time between two probes of a node (jittered by ±10 %).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration)]
    health_interval: Duration,
    /// Most probes at once.
    #[arg(long, value_name = "N", default_value_t = health::DEFAULT_MAX_PROBES_AT_ONCE)]
    health_max_at_once: usize,
    /// Bound on a probe's dial and on its health route call.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration)]
    health_dial_timeout: Duration,
    /// A route to call on every node as part of its probe (none unless named).
    #[arg(long, value_name = "ROUTE")]
    health_route: Option<String>,
    /// The history file [default: $XDG_DATA_HOME/peerapi/health-<peer id>.db].
    #[arg(long, value_name = "FILE")]
    health_db: Option<PathBuf>,
    /// History kept.
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = duration)]
    health_retention: Duration,
    /// A peer state older than this makes its node stale.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = duration)]
    health_stale_after: Duration,
    /// A ping round trip over this makes a node degraded.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = duration)]
    health_slow_rtt: Duration,
    /// Most nodes probed.
    #[arg(long, value_name = "N", default_value_t = health::DEFAULT_MAX_PROBED_NODES)]
    health_max_nodes: usize,
    /// POST each alert (JSON) to this URL.
    #[arg(long, value_name = "URL")]
    alert_webhook: Option<String>,
    /// Run this with `sh -c` for each alert, PEERAPI_ALERT (JSON),
    /// PEERAPI_ALERT_NAME, _STATE, _PEER and _REASON in its environment.
    #[arg(long, value_name = "COMMAND")]
    alert_command: Option<String>,
    /// Probes in a row that make a node we saw up "down".
    #[arg(long, value_name = "N", default_value_t = health::alerts::DEFAULT_DOWN_AFTER)]
    alert_down_after: u32,
    /// Alert when probes take longer than this (three in a row).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    alert_slow_probe: Option<Duration>,
    /// Alert when a node we saw up answers fewer than this share of its
    /// probes over --alert-availability-window (e.g. 90%).
    #[arg(long, value_name = "SHARE", value_parser = share)]
    alert_availability_under: Option<f64>,
    /// The window availability is measured over.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = duration)]
    alert_availability_window: Duration,
    /// Alert when a node's DAG heads differ from ours at every probe for
    /// this long (`off`: never).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration_or_off)]
    alert_dag_diverged_for: Duration,
    /// No alert when AutoNAT finds our own node unreachable.
    #[arg(long)]
    no_alert_own_unreachable: bool,
    /// Most alerts sent per minute; the rest are logged and counted.
    #[arg(long, value_name = "N", default_value_t = health::alerts::DEFAULT_MAX_ALERTS_PER_MINUTE)]
    alert_max_per_minute: u32,
}

impl HealthArgs {
    fn config(&self, peer: &str) -> HealthConfig {
        HealthConfig {
            interval: self.health_interval.max(Duration::from_millis(200)),
            max_at_once: self.health_max_at_once.max(1),
            dial_timeout: self.health_dial_timeout,
            health_route: self.health_route.clone(),
            db: Some(
                self.health_db
                    .clone()
                    .unwrap_or_else(|| health::default_db(peer)),
            ),
            retention: self.health_retention,
            thresholds: Thresholds {
                stale_after: self.health_stale_after,
                slow_rtt: self.health_slow_rtt,
            },
            max_nodes: self.health_max_nodes,
            alerts: AlertConfig {
                webhook: self.alert_webhook.clone(),
                command: self.alert_command.clone(),
                down_after: self.alert_down_after,
                slow_probe: self.alert_slow_probe,
                availability_under: self.alert_availability_under,
                availability_window: self.alert_availability_window,
                dag_diverged_for: Some(self.alert_dag_diverged_for).filter(|d| !d.is_zero()),
                own_unreachable: !self.no_alert_own_unreachable,
                max_per_minute: self.alert_max_per_minute,
                ..AlertConfig::default()
            },
        }
    }

    /// Starts probing when `--health` was given. A history file that is
    /// not ours or is damaged stops the start; one that cannot be written
    /// (a read-only directory) is reported, and probing goes on without it.
    pub(crate) fn start(
        &self,
        handle: &NodeHandle,
    ) -> anyhow::Result<Option<health::HealthHandle>> {
        if !self.health {
            return Ok(None);
        }
        let me = handle.local_peer_id().to_string();
        let config = self.config(&me);
        let db = config.db.clone().unwrap_or_default();
        let (history, error) = match History::open(&db, &me) {
            Ok(h) => (Some(h), None),
            Err(e) if e.is_fatal() => return Err(anyhow::anyhow!("{e}")),
            Err(e) => {
                tracing::warn!("no health history: {e}; probing goes on without it");
                (None, Some(e.to_string()))
            }
        };
        tracing::info!(
            interval = ?config.interval,
            db = %db.display(),
            "probing the subnet's nodes"
        );
        Ok(Some(health::spawn(handle.clone(), config, history, error)))
    }

    pub(crate) fn db_shown(&self, handle: &NodeHandle) -> Option<PathBuf> {
        self.health.then(|| {
            self.health_db
                .clone()
                .unwrap_or_else(|| health::default_db(&handle.local_peer_id().to_string()))
        })
    }
}

#[derive(Args)]
pub(crate) struct HealthCmd {
    /// The history a `peerapi node --health` keeps [default: the one
    /// health-*.db in $XDG_DATA_HOME/peerapi].
    #[arg(long, value_name = "FILE")]
    db: Option<PathBuf>,
    /// The window: availability and percentiles over it.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = duration)]
    since: Duration,
    /// One node's history in hourly buckets and its verdict changes.
    #[arg(long, value_name = "PEER_ID")]
    node: Option<String>,
    /// JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// The one history in the data directory, or why there is not one.
fn find_db() -> Result<PathBuf, String> {
    let dir = health::data_dir();
    let found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                    name.starts_with("health-") && name.ends_with(".db")
                })
                .collect()
        })
        .unwrap_or_default();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(format!(
            "no health history in {}: start a node with --health, or give --db FILE",
            dir.display()
        )),
        many => Err(format!(
            "{} health histories in {}: choose one with --db ({})",
            many.len(),
            dir.display(),
            many.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

pub(crate) fn run(cmd: HealthCmd) -> ExitCode {
    let db = match cmd.db.clone().map(Ok).unwrap_or_else(find_db) {
        Ok(db) => db,
        Err(e) => return fail(2, e),
    };
    let history = match History::open_read(&db) {
        Ok(h) => h,
        Err(e) => return fail(2, e),
    };
    let since = SystemTime::now() - cmd.since;
    if let Some(peer) = &cmd.node {
        return node_history(&history, peer, since, cmd.json);
    }
    let rows = match health::table::table(&history, since) {
        Ok(rows) => rows,
        Err(e) => return fail(2, format!("{}: {e}", db.display())),
    };
    let down: Vec<&str> = rows
        .iter()
        .filter(|r| r.went_down())
        .map(|r| r.peer.as_str())
        .collect();
    let reach = history.last_reachability(since).ok().flatten();
    let share = history.reachable_share(since).ok().flatten();
    if cmd.json {
        let out = serde_json::json!({
            "nodes": rows,
            "down": down,
            "this_node": reach.as_ref().map(|r| serde_json::json!({
                "reachability": r.state, "reason": r.reason, "observed": r.observed,
                "at_s": r.at_s, "reachable_share": share,
            })),
        });
        println!("{out}");
    } else {
        if let Some(r) = &reach {
            print!(
                "{}",
                health::text::reachability_line(r.state.name(), &r.reason, &r.observed, share)
            );
        }
        print!("{}", health::text::table(&rows, SystemTime::now()));
        if !down.is_empty() {
            println!(
                "{} node(s) online earlier in the window are down now",
                down.len()
            );
        }
    }
    if down.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn node_history(history: &History, peer: &str, since: SystemTime, json: bool) -> ExitCode {
    let (probes, changes) = match (
        history.probes_of(peer, since),
        history.changes_since(since, Some(peer)),
    ) {
        (Ok(p), Ok(c)) => (p, c),
        (Err(e), _) | (_, Err(e)) => return fail(2, e),
    };
    if probes.is_empty() {
        return fail(
            2,
            format!(
                "no probes of {peer} in the window (see `peerapi subnet health` for the nodes)"
            ),
        );
    }
    let hours = health::table::buckets(&probes, Duration::from_secs(3600));
    let days = health::table::buckets(&probes, Duration::from_secs(86_400));
    if json {
        println!(
            "{}",
            serde_json::json!({ "peer": peer, "hours": hours, "days": days, "changes": changes })
        );
    } else {
        print!("{}", health::text::history(peer, &hours, &changes));
    }
    ExitCode::SUCCESS
}

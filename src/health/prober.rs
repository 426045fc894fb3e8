//! The probe rounds inside a node: every interval (jittered by ±10 %, so
//! that many nodes started together do not probe in step), each node of
//! the roster, each connected peer and each node seen before is probed
//! once, at most `max_at_once` at a time. A node we are connected to costs
//! nothing new: its identify and ping answers are read from the node. One
//! we are not connected to is dialled at the address it advertises.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use libp2p::Multiaddr;

use super::alerts::{deliver, Alert, Alerts};
use super::probe::{probe, with_peer, Target};
use super::store::{History, ProbeRecord};
use super::verdict::{judge, Observation};
use super::{HealthConfig, Verdict};
use crate::node::{NodeHandle, PeerInfo};

/// How often the history is pruned to its retention.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The latest verdict of one node.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LatestProbe {
    pub peer: String,
    pub verdict: Verdict,
    pub reason: String,
    pub at_s: i64,
    pub rtt_ms: Option<f64>,
    pub probe_ms: Option<f64>,
    pub agent: Option<String>,
    #[serde(default)]
    pub dag: Option<super::dag::DagSync>,
}

/// What the prober knows now, for the console, `ctl` and tests.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Latest {
    pub rounds: u64,
    pub probes: Vec<LatestProbe>,
    /// Why history is not being written (a read-only directory, a full
    /// disk), if it is not.
    pub history_error: Option<String>,
    pub alerts_sent: u64,
    pub alerts_suppressed: u64,
    /// The last day from the history, one row per node (empty without
    /// history), refreshed after each round.
    #[serde(default)]
    pub rows: Vec<super::table::NodeHealth>,
    /// The probe interval.
    #[serde(default)]
    pub interval_secs: f64,
    /// Bytes the probes' own exchanges carried since start (DAG
    /// inventories; a connected node's identify and ping cost nothing new).
    #[serde(default)]
    pub probe_bytes: u64,
    /// Probes made since start.
    #[serde(default)]
    pub probes_made: u64,
    /// Our own reachability at the last round.
    #[serde(default)]
    pub reachability: Option<super::reach::Reachability>,
}

/// How far back the rows look.
pub const ROWS_WINDOW: Duration = Duration::from_secs(24 * 3600);

struct Report(Arc<Mutex<Latest>>);

impl crate::node::HealthReport for Report {
    fn report(&self) -> serde_json::Value {
        let latest = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        serde_json::to_value(latest).unwrap_or_default()
    }
}

/// The running prober.
#[derive(Clone)]
pub struct HealthHandle {
    latest: Arc<Mutex<Latest>>,
    task: Arc<tokio::task::AbortHandle>,
}

impl HealthHandle {
    pub fn latest(&self) -> Latest {
        self.latest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn stop(&self) {
        self.task.abort();
    }
}

/// Starts probing with `handle`'s node; `history` is where results go
/// (None: nowhere, and `history_error` says why when there was a file).
pub fn spawn(
    handle: NodeHandle,
    config: HealthConfig,
    history: Option<History>,
    history_error: Option<String>,
) -> HealthHandle {
    let latest = Arc::new(Mutex::new(Latest {
        history_error,
        interval_secs: config.interval.as_secs_f64(),
        ..Latest::default()
    }));
    handle.set_health_report(Arc::new(Report(latest.clone())));
    let me = handle.local_peer_id().to_string();
    let prober = Prober {
        alerts: Alerts::new(config.alerts.clone(), me.clone()),
        handle,
        config,
        history: history.map(|h| Arc::new(Mutex::new(h))),
        latest: latest.clone(),
        known: HashMap::new(),
        http: reqwest::Client::new(),
        me,
        pruned: None,
    };
    let task = tokio::spawn(prober.run());
    HealthHandle {
        latest,
        task: Arc::new(task.abort_handle()),
    }
}

struct Prober {
    handle: NodeHandle,
    config: HealthConfig,
    history: Option<Arc<Mutex<History>>>,
    latest: Arc<Mutex<Latest>>,
    /// Where each node was last reached: it stays a target after it left.
    known: HashMap<String, Multiaddr>,
    alerts: Alerts,
    http: reqwest::Client,
    me: String,
    pruned: Option<Instant>,
}

impl Prober {
    async fn run(mut self) {
        loop {
            let started = Instant::now();
            if !self.round().await {
                return;
            }
            let jitter = 0.9 + rand::random::<f64>() * 0.2;
            let next = self.config.interval.mul_f64(jitter);
            tokio::time::sleep(next.saturating_sub(started.elapsed())).await;
        }
    }

    /// One round; false once the node stopped.
    async fn round(&mut self) -> bool {
        let Ok(peers) = self.handle.peers().await else {
            return false;
        };
        let reach = super::reach::judge(&peers, &self.handle.autonat_tests());
        let connected: HashMap<String, PeerInfo> =
            peers.into_iter().map(|p| (p.peer.to_string(), p)).collect();
        let targets = self.targets(&connected);
        let cfg = &self.config;
        let handle = &self.handle;
        let results: Vec<(Target, Observation, Option<Duration>)> = futures::stream::iter(targets)
            .map(|t| {
                let info = connected.get(&t.peer);
                async move {
                    let (o, took) = probe(handle, cfg, &t, info).await;
                    (t, o, took)
                }
            })
            .buffer_unordered(cfg.max_at_once.max(1))
            .collect()
            .await;
        let now = SystemTime::now();
        let mut records = Vec::with_capacity(results.len());
        let mut alerts = Vec::new();
        let mut latest = Vec::with_capacity(results.len());
        let round_bytes: u64 = results.iter().map(|(_, o, _)| o.bytes).sum();
        let round_probes = results.len() as u64;
        for (t, o, took) in results {
            let (verdict, reason) = judge(&o, &self.config.thresholds);
            if verdict.reachable() {
                if let Some(Ok(addr)) = &t.addr {
                    self.known.insert(t.peer.clone(), addr.clone());
                }
            }
            if let Some(m) = self.handle.metrics() {
                m.set_health(
                    &t.peer,
                    verdict.level().into(),
                    took.map(|d| d.as_secs_f64()),
                );
            }
            let at_s = super::store::secs(now);
            let dag = o.dag.as_ref().and_then(|d| d.as_ref().ok().copied());
            if let Some(Err(e)) = &o.dag {
                tracing::debug!(peer = %t.peer, "health probe: no DAG inventory: {e}");
            }
            alerts.extend(
                self.alerts
                    .observe(&t.peer, verdict, &reason, took, dag, at_s),
            );
            latest.push(LatestProbe {
                peer: t.peer.clone(),
                verdict,
                reason: reason.clone(),
                at_s,
                rtt_ms: o.rtt.map(|d| d.as_secs_f64() * 1e3),
                probe_ms: took.map(|d| d.as_secs_f64() * 1e3),
                agent: o.agent.clone(),
                dag,
            });
            records.push(ProbeRecord {
                peer: t.peer,
                at: now,
                verdict,
                reason,
                rtt: o.rtt,
                probe_time: took,
                dag,
            });
        }
        latest.sort_by(|a, b| a.peer.cmp(&b.peer));
        if let Some(m) = self.handle.metrics() {
            let agreeing = reach.observed.first().map_or(0, |o| o.peers as i64);
            m.set_reachability(reach.state.level().into(), agreeing);
        }
        let at_s = super::store::secs(now);
        alerts.extend(self.alerts.observe_self(reach.state, &reach.reason, at_s));
        let (history_error, rows) = self.store(records, now, reach.clone()).await;
        let mut sent = 0;
        for alert in &alerts {
            if self.alerts.admit(Instant::now()) {
                tracing::warn!(alert = %alert.alert, state = %alert.state, peer = %alert.peer, reason = %alert.reason, "health alert");
                self.send(alert.clone());
                sent += 1;
            } else {
                tracing::warn!(alert = %alert.alert, peer = %alert.peer, "health alert not sent: over --alert-max-per-minute");
            }
        }
        let mut l = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        l.rounds += 1;
        l.probe_bytes += round_bytes;
        l.probes_made += round_probes;
        l.probes = latest;
        l.reachability = Some(reach);
        if self.history.is_some() {
            l.history_error = history_error;
            if let Some(rows) = rows {
                l.rows = rows;
            }
        }
        l.alerts_sent += sent;
        l.alerts_suppressed = self.alerts.suppressed;
        true
    }

    /// The roster, the connected peers and the nodes reached before,
    /// at most `max_nodes`, never ourselves.
    fn targets(&self, connected: &HashMap<String, PeerInfo>) -> Vec<Target> {
        let mut targets: HashMap<String, Target> = HashMap::new();
        let now_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        for e in crate::control::stats::roster_of(&self.handle) {
            let addr = if e.multiaddr.is_empty() {
                None
            } else {
                Some(with_peer(&e.multiaddr, &e.peer_id))
            };
            targets.insert(
                e.peer_id.clone(),
                Target {
                    peer: e.peer_id.clone(),
                    addr,
                    roster_state: Some(e.state.clone()),
                    state_age: Some(Duration::from_millis(now_ms.saturating_sub(e.last_seen_ms))),
                },
            );
        }
        for (peer, info) in connected {
            let t = targets.entry(peer.clone()).or_insert_with(|| Target {
                peer: peer.clone(),
                ..Target::default()
            });
            if t.addr.is_none() {
                t.addr = Some(with_peer(&info.dial_addr(), peer));
            }
        }
        for (peer, addr) in &self.known {
            targets.entry(peer.clone()).or_insert_with(|| Target {
                peer: peer.clone(),
                addr: Some(Ok(addr.clone())),
                ..Target::default()
            });
        }
        targets.remove(&self.me);
        let mut list: Vec<Target> = targets.into_values().collect();
        list.sort_by(|a, b| a.peer.cmp(&b.peer));
        list.truncate(self.config.max_nodes);
        list
    }

    /// Writes the round; the error, if history could not be written (the
    /// probing goes on either way).
    async fn store(
        &mut self,
        records: Vec<ProbeRecord>,
        now: SystemTime,
        reach: super::reach::Reachability,
    ) -> (Option<String>, Option<Vec<super::table::NodeHealth>>) {
        let Some(history) = self.history.clone() else {
            return (None, None);
        };
        let prune = self
            .pruned
            .is_none_or(|t| t.elapsed() >= PRUNE_EVERY)
            .then(|| SystemTime::now() - self.config.retention);
        if prune.is_some() {
            self.pruned = Some(Instant::now());
        }
        let result = tokio::task::spawn_blocking(move || {
            let mut h = history.lock().unwrap_or_else(|e| e.into_inner());
            h.record_all(&records).map_err(|e| e.to_string())?;
            h.record_reachability(now, &reach)
                .map_err(|e| e.to_string())?;
            if let Some(before) = prune {
                let removed = h.prune(before).map_err(|e| e.to_string())?;
                if removed > 0 {
                    tracing::info!(removed, "health history: probes past the retention removed");
                }
            }
            // Rows for whoever asks (the console, ctl): read once a round.
            super::table::table(&h, SystemTime::now() - ROWS_WINDOW).map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        match result {
            Ok(rows) => (None, Some(rows)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot write the health history; probing goes on without it");
                (Some(e), None)
            }
        }
    }

    fn send(&self, alert: Alert) {
        let config = self.alerts.config().clone();
        if !config.delivers() {
            return;
        }
        let http = self.http.clone();
        tokio::spawn(async move { deliver(&config, &http, &alert).await });
    }
}

//! Alerts on the probes' verdicts: a node down for N probes in a row (one
//! we have seen up), a probe slower than a bound for N probes in a row, a
//! node's availability under a share over a window, a node's DAG heads
//! apart from ours for a while, our own node unreachable (AutoNAT).
//! Each fires once when it starts and once when it clears, at most
//! `max_per_minute` in all (the rest are counted and logged, never
//! queued), delivered as a JSON webhook POST and/or a command run with the
//! alert in its environment.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::dag::DagSync;
use super::reach::ReachState;
use super::Verdict;

/// Default probes in a row that make a node down.
pub const DEFAULT_DOWN_AFTER: u32 = 2;
/// Default time a node's DAG heads may differ from ours before it alerts
/// (gossip makes them differ for moments all the time).
pub const DEFAULT_DAG_DIVERGED_FOR: Duration = Duration::from_secs(10 * 60);
/// Default window availability is measured over.
pub const DEFAULT_AVAILABILITY_WINDOW: Duration = Duration::from_secs(3600);
/// Least probes in the window before availability can alert.
const MIN_PROBES_FOR_AVAILABILITY: usize = 3;
/// Rounds in a row our node must test unreachable before it alerts.
const OWN_UNREACHABLE_AFTER: u32 = 2;
/// Default most alerts delivered per minute.
pub const DEFAULT_MAX_ALERTS_PER_MINUTE: u32 = 20;
/// How long a webhook or a command may take.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct AlertConfig {
    /// POST each alert here as JSON.
    pub webhook: Option<String>,
    /// Run this (`sh -c`) with PEERAPI_ALERT* in its environment.
    pub command: Option<String>,
    pub down_after: u32,
    /// A probe slower than this, `slow_after` times in a row, alerts.
    pub slow_probe: Option<Duration>,
    pub slow_after: u32,
    /// A node reachable in less than this share of the window's probes
    /// alerts (off unless given).
    pub availability_under: Option<f64>,
    pub availability_window: Duration,
    /// A node whose DAG heads differ from ours at every probe for this
    /// long alerts (None: never).
    pub dag_diverged_for: Option<Duration>,
    /// Our own node tested unreachable (AutoNAT) alerts.
    pub own_unreachable: bool,
    pub max_per_minute: u32,
}

impl Default for AlertConfig {
    fn default() -> Self {
        Self {
            webhook: None,
            command: None,
            down_after: DEFAULT_DOWN_AFTER,
            slow_probe: None,
            slow_after: 3,
            availability_under: None,
            availability_window: DEFAULT_AVAILABILITY_WINDOW,
            dag_diverged_for: Some(DEFAULT_DAG_DIVERGED_FOR),
            own_unreachable: true,
            max_per_minute: DEFAULT_MAX_ALERTS_PER_MINUTE,
        }
    }
}

impl AlertConfig {
    pub fn delivers(&self) -> bool {
        self.webhook.is_some() || self.command.is_some()
    }
}

/// One alert, as the webhook receives it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Alert {
    /// `node_down`, `probe_slow`, `availability_low`, `dag_diverged` or
    /// `own_unreachable` (whose peer is the probing node itself).
    pub alert: String,
    /// `firing` or `cleared`.
    pub state: String,
    pub peer: String,
    pub reason: String,
    /// Seconds since the epoch.
    pub at_s: i64,
    /// The node that probed.
    pub by: String,
}

/// One alert's state: it fires once a condition held `after` times in a
/// row and clears once it no longer holds; each change is told once.
#[derive(Default)]
struct Latch {
    streak: u32,
    firing: bool,
}

impl Latch {
    /// `holds`: whether the condition held this time (None: no evidence
    /// either way, nothing changes). The change, if any.
    fn step(&mut self, holds: Option<bool>, after: u32) -> Option<&'static str> {
        match holds? {
            true => {
                self.streak = self.streak.saturating_add(1);
                (!self.firing && self.streak >= after.max(1)).then(|| {
                    self.firing = true;
                    "firing"
                })
            }
            false => {
                self.streak = 0;
                std::mem::take(&mut self.firing).then_some("cleared")
            }
        }
    }
}

#[derive(Default)]
struct NodeState {
    seen_up: bool,
    down: Latch,
    slow: Latch,
    /// (probe time, reachable) within the availability window.
    window: VecDeque<(i64, bool)>,
    low: Latch,
    /// When its heads first differed from ours, in the current run.
    dag_apart_since: Option<i64>,
    dag_apart: Latch,
}

/// What each node's alerts stand at, and the rate limit.
pub struct Alerts {
    config: AlertConfig,
    by: String,
    nodes: HashMap<String, NodeState>,
    window: Option<Instant>,
    sent_in_window: u32,
    own_unreachable: Latch,
    /// Alerts dropped by the rate limit so far.
    pub suppressed: u64,
}

impl Alerts {
    pub fn new(config: AlertConfig, by: String) -> Self {
        Self {
            config,
            by,
            nodes: HashMap::new(),
            window: None,
            sent_in_window: 0,
            own_unreachable: Latch::default(),
            suppressed: 0,
        }
    }

    /// Takes one probe's verdict; the alerts it starts or clears.
    pub fn observe(
        &mut self,
        peer: &str,
        verdict: Verdict,
        reason: &str,
        probe_time: Option<Duration>,
        dag: Option<DagSync>,
        at_s: i64,
    ) -> Vec<Alert> {
        let c = &self.config;
        let n = self.nodes.entry(peer.to_string()).or_default();
        let mut out = Vec::new();
        let mut alert = |name: &str, state: &str, reason: String| {
            out.push(Alert {
                alert: name.into(),
                state: state.into(),
                peer: peer.into(),
                reason,
                at_s,
                by: self.by.clone(),
            })
        };
        n.seen_up |= verdict.reachable();
        // Down counts only for a node we have seen up.
        let down = n.seen_up.then_some(!verdict.reachable());
        match n.down.step(down, c.down_after) {
            Some("firing") => alert("node_down", "firing", format!("{verdict}: {reason}")),
            Some(state) => alert("node_down", state, format!("{verdict} again")),
            None => {}
        }
        if let (Some(bound), Some(t)) = (c.slow_probe, probe_time) {
            match n.slow.step(Some(t > bound), c.slow_after) {
                Some("firing") => alert(
                    "probe_slow",
                    "firing",
                    format!(
                        "probe took {} ms (bound {} ms)",
                        t.as_millis(),
                        bound.as_millis()
                    ),
                ),
                Some(state) => alert("probe_slow", state, "probe time within bound".into()),
                None => {}
            }
        }
        if let Some(bound) = c.availability_under {
            let from = at_s - c.availability_window.as_secs() as i64;
            n.window.push_back((at_s, verdict.reachable()));
            while n.window.front().is_some_and(|(t, _)| *t < from) {
                n.window.pop_front();
            }
            let up = n.window.iter().filter(|(_, r)| *r).count();
            let share = up as f64 / n.window.len().max(1) as f64;
            // Low only with enough probes of a node seen up; not low clears.
            let enough = n.seen_up && n.window.len() >= MIN_PROBES_FOR_AVAILABILITY;
            let low = if share < bound {
                enough.then_some(true)
            } else {
                Some(false)
            };
            if let Some(state) = n.low.step(low, 1) {
                let what = format!(
                    "{:.0}% of {} probes in {} (bound {:.0}%)",
                    share * 100.0,
                    n.window.len(),
                    super::verdict::fmt_age(c.availability_window),
                    bound * 100.0
                );
                alert("availability_low", state, what);
            }
        }
        if let (Some(after), Some(dag)) = (c.dag_diverged_for, dag) {
            // Apart long enough fires, in step clears; apart for less, no change.
            let (apart, apart_for) = if dag.in_step() {
                n.dag_apart_since = None;
                (Some(false), 0)
            } else {
                let apart_for = at_s - *n.dag_apart_since.get_or_insert(at_s);
                (
                    (apart_for >= after.as_secs() as i64).then_some(true),
                    apart_for,
                )
            };
            match n.dag_apart.step(apart, 1) {
                Some("firing") => alert(
                    "dag_diverged",
                    "firing",
                    format!(
                        "{dag}, at every probe for {}",
                        super::verdict::fmt_age(Duration::from_secs(apart_for as u64))
                    ),
                ),
                Some(state) => alert("dag_diverged", state, "heads in step again".into()),
                None => {}
            }
        }
        out
    }

    /// Takes our own reachability of a round; the alert it starts or clears.
    pub fn observe_self(&mut self, state: ReachState, reason: &str, at_s: i64) -> Option<Alert> {
        if !self.config.own_unreachable {
            return None;
        }
        let unreachable = match state {
            ReachState::Unreachable => Some(true),
            ReachState::Reachable => Some(false),
            ReachState::Unknown => None,
        };
        let change = self
            .own_unreachable
            .step(unreachable, OWN_UNREACHABLE_AFTER)?;
        Some(Alert {
            alert: "own_unreachable".into(),
            state: change.into(),
            peer: self.by.clone(),
            reason: reason.into(),
            at_s,
            by: self.by.clone(),
        })
    }

    /// Whether another alert may go out now (`max_per_minute`).
    pub fn admit(&mut self, now: Instant) -> bool {
        let fresh = self
            .window
            .is_none_or(|w| now.duration_since(w) >= Duration::from_secs(60));
        if fresh {
            self.window = Some(now);
            self.sent_in_window = 0;
        }
        if self.sent_in_window < self.config.max_per_minute {
            self.sent_in_window += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }

    pub fn config(&self) -> &AlertConfig {
        &self.config
    }
}

/// Sends `alert` where the configuration says; failures are logged.
pub async fn deliver(config: &AlertConfig, http: &reqwest::Client, alert: &Alert) {
    let json = serde_json::to_string(alert).unwrap_or_default();
    if let Some(url) = &config.webhook {
        let sent = http
            .post(url)
            .header("content-type", "application/json")
            .body(json.clone())
            .timeout(DELIVERY_TIMEOUT)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => {
                tracing::warn!(status = %r.status(), alert = %alert.alert, "the alert webhook refused an alert")
            }
            Err(e) => {
                tracing::warn!(error = %e, alert = %alert.alert, "cannot deliver an alert to the webhook")
            }
        }
    }
    if let Some(command) = &config.command {
        let run = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .env("PEERAPI_ALERT", &json)
            .env("PEERAPI_ALERT_NAME", &alert.alert)
            .env("PEERAPI_ALERT_STATE", &alert.state)
            .env("PEERAPI_ALERT_PEER", &alert.peer)
            .env("PEERAPI_ALERT_REASON", &alert.reason)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .status();
        match tokio::time::timeout(DELIVERY_TIMEOUT, run).await {
            Ok(Ok(s)) if s.success() => {}
            Ok(Ok(s)) => tracing::warn!(status = %s, "the alert command failed"),
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot run the alert command"),
            Err(_) => tracing::warn!("the alert command took over {DELIVERY_TIMEOUT:?}; killed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_fires_once_after_n_probes_and_clears_once() {
        let mut a = Alerts::new(AlertConfig::default(), "me".into());
        let v = |a: &mut Alerts, verdict| a.observe("p", verdict, "refused", None, None, 0);
        // Never seen up: no alert for a node that was always down.
        assert!(v(&mut a, Verdict::Unreachable).is_empty());
        assert!(v(&mut a, Verdict::Online).is_empty());
        assert!(v(&mut a, Verdict::Unreachable).is_empty());
        let fired = v(&mut a, Verdict::Unreachable);
        assert_eq!(fired.len(), 1);
        assert_eq!(
            (fired[0].alert.as_str(), fired[0].state.as_str()),
            ("node_down", "firing")
        );
        assert!(
            v(&mut a, Verdict::Unreachable).is_empty(),
            "once per change"
        );
        let cleared = v(&mut a, Verdict::Degraded);
        assert_eq!(cleared[0].state, "cleared");
        assert!(v(&mut a, Verdict::Online).is_empty());
    }

    #[test]
    fn slow_probes_fire_and_clear_and_the_rate_limit_counts_what_it_drops() {
        let config = AlertConfig {
            slow_probe: Some(Duration::from_millis(100)),
            slow_after: 2,
            max_per_minute: 2,
            ..AlertConfig::default()
        };
        let mut a = Alerts::new(config, "me".into());
        let slow = Some(Duration::from_millis(300));
        assert!(a
            .observe("p", Verdict::Online, "", slow, None, 0)
            .is_empty());
        assert_eq!(
            a.observe("p", Verdict::Online, "", slow, None, 1)[0].alert,
            "probe_slow"
        );
        let fast = Some(Duration::from_millis(3));
        assert_eq!(
            a.observe("p", Verdict::Online, "", fast, None, 2)[0].state,
            "cleared"
        );
        let t = Instant::now();
        assert!(a.admit(t) && a.admit(t));
        assert!(!a.admit(t + Duration::from_secs(1)));
        assert_eq!(a.suppressed, 1);
        assert!(a.admit(t + Duration::from_secs(61)), "a new minute");
    }

    #[test]
    fn availability_dag_and_own_reachability_fire_once_and_clear() {
        let config = AlertConfig {
            availability_under: Some(0.75),
            availability_window: Duration::from_secs(600),
            dag_diverged_for: Some(Duration::from_secs(120)),
            ..AlertConfig::default()
        };
        let mut a = Alerts::new(config, "me".into());
        let mut names = Vec::new();
        let ahead = Some(DagSync::Ahead { heads: 2 });
        // One probe a minute: up, up, up, down, down (3 of 5 = 60 %).
        let seq = [
            (Verdict::Online, ahead),
            (Verdict::Online, ahead),
            (Verdict::Online, ahead),
            (Verdict::Unreachable, None),
            (Verdict::Unreachable, None),
            (Verdict::Online, Some(DagSync::InStep)),
        ];
        for (i, (v, dag)) in seq.into_iter().enumerate() {
            for al in a.observe("p", v, "x", None, dag, i as i64 * 60) {
                names.push(format!("{} {} @{}", al.alert, al.state, i));
            }
        }
        assert_eq!(
            names,
            [
                "dag_diverged firing @2",
                "node_down firing @4",
                "availability_low firing @4",
                "node_down cleared @5",
                "dag_diverged cleared @5",
            ],
        );
        // Ten minutes later the old downs have left the window.
        let cleared = a.observe("p", Verdict::Online, "", None, None, 900);
        assert_eq!(cleared[0].alert, "availability_low");
        assert_eq!(cleared[0].state, "cleared");

        assert!(a
            .observe_self(ReachState::Unreachable, "no dial-back", 0)
            .is_none());
        let fired = a
            .observe_self(ReachState::Unreachable, "no dial-back", 60)
            .unwrap();
        assert_eq!(
            (fired.alert.as_str(), fired.peer.as_str()),
            ("own_unreachable", "me")
        );
        assert!(a.observe_self(ReachState::Unreachable, "", 120).is_none());
        assert!(a.observe_self(ReachState::Unknown, "", 180).is_none());
        assert_eq!(
            a.observe_self(ReachState::Reachable, "", 240)
                .unwrap()
                .state,
            "cleared"
        );
    }
}

//! What a node counts for a monitoring stack, as Prometheus text: libp2p's
//! own swarm and protocol metrics (`libp2p-metrics`) and the API's calls,
//! served and made. Label values are bounded: a served call's route is
//! named only when our table has it, and at most [`MAX_ROUTE_LABELS`]
//! route names are ever used as labels.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::events::ServeOutcome;
use crate::wire::frame::Code;

/// Most distinct route names used as label values; later ones are "other".
pub const MAX_ROUTE_LABELS: usize = 256;
/// The label of a served call whose route is not in our table.
pub const UNKNOWN_ROUTE: &str = "unknown";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    route: String,
    protocol: String,
    outcome: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TimeLabels {
    route: String,
    protocol: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabel {
    peer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Call durations from 0.5 ms to about 4.5 minutes.
fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 20))
}

/// One node's metrics.
pub struct NodeMetrics {
    registry: Registry,
    pub(crate) libp2p: libp2p::metrics::Metrics,
    served: Family<CallLabels, Counter>,
    served_seconds: Histograms<TimeLabels>,
    backend_first_byte_seconds: Histograms<RouteLabel>,
    served_bytes: Family<RouteLabel, Counter>,
    serving: Gauge,
    refused: Family<ReasonLabel, Counter>,
    made: Family<CallLabels, Counter>,
    made_seconds: Histograms<TimeLabels>,
    made_bytes: Family<RouteLabel, Counter>,
    calling: Gauge,
    connected_peers: Gauge,
    routing_table_peers: Gauge,
    discovered_peers: Gauge,
    walk_interval_seconds: Gauge,
    route_reloads: Family<ResultLabel, Counter>,
    route_labels: Mutex<HashSet<String>>,
    /// Per probed node (bounded by the prober's node limit).
    health_verdict: Family<PeerLabel, Gauge>,
    health_probe_seconds: Family<PeerLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    reachability: Gauge,
    observed_addr_peers: Gauge,
}

impl std::fmt::Debug for NodeMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeMetrics")
    }
}

impl Default for NodeMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl NodeMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        // Its names carry their own "libp2p_" prefix.
        let libp2p = libp2p::metrics::Metrics::new(&mut registry);
        let m = Self {
            libp2p,
            served: Family::default(),
            served_seconds: Family::new_with_constructor(seconds),
            backend_first_byte_seconds: Family::new_with_constructor(seconds),
            served_bytes: Family::default(),
            serving: Gauge::default(),
            refused: Family::default(),
            made: Family::default(),
            made_seconds: Family::new_with_constructor(seconds),
            made_bytes: Family::default(),
            calling: Gauge::default(),
            connected_peers: Gauge::default(),
            routing_table_peers: Gauge::default(),
            discovered_peers: Gauge::default(),
            walk_interval_seconds: Gauge::default(),
            route_reloads: Family::default(),
            route_labels: Mutex::new(HashSet::new()),
            health_verdict: Family::default(),
            health_probe_seconds: Family::default(),
            reachability: Gauge::default(),
            observed_addr_peers: Gauge::default(),
            registry: Registry::default(),
        };
        let r = registry.sub_registry_with_prefix("peerapi");
        r.register(
            "calls_served",
            "Calls peers made to this node, by route, protocol, outcome and backend status",
            m.served.clone(),
        );
        r.register(
            "call_served_duration_seconds",
            "Time from a call's request read to its response's end, served calls",
            m.served_seconds.clone(),
        );
        r.register(
            "backend_time_to_first_byte_seconds",
            "Time from a served call's backend request to the backend's response head",
            m.backend_first_byte_seconds.clone(),
        );
        r.register(
            "served_response_bytes",
            "Response body bytes sent to callers",
            m.served_bytes.clone(),
        );
        r.register("calls_serving", "Served calls in flight", m.serving.clone());
        r.register(
            "calls_refused",
            "Error answers sent to callers, by reason (the 2.0.0 error code)",
            m.refused.clone(),
        );
        r.register(
            "calls_made",
            "Calls this node made to peers, by route, protocol, outcome and status",
            m.made.clone(),
        );
        r.register(
            "call_made_duration_seconds",
            "Time from a call's start to its response's end, calls made",
            m.made_seconds.clone(),
        );
        r.register(
            "made_response_bytes",
            "Response body bytes received from peers",
            m.made_bytes.clone(),
        );
        r.register(
            "calls_in_flight",
            "Calls made and not yet ended",
            m.calling.clone(),
        );
        r.register(
            "connected_peers",
            "Peers with at least one open connection",
            m.connected_peers.clone(),
        );
        r.register(
            "routing_table_peers",
            "Peers in the Kademlia routing table (the peers this node knows)",
            m.routing_table_peers.clone(),
        );
        r.register(
            "discovered_peers",
            "Peers found through the DHT since start (bounded)",
            m.discovered_peers.clone(),
        );
        r.register(
            "walk_interval_seconds",
            "Seconds until the next DHT walk (doubles while walks find no one new)",
            m.walk_interval_seconds.clone(),
        );
        r.register(
            "route_reloads",
            "Route file reloads, by result (ok, rejected)",
            m.route_reloads.clone(),
        );
        r.register(
            "health_verdict",
            "Each probed node's latest verdict: 0 online, 1 joining, 2 degraded, 3 stale, 4 offline, 5 unreachable",
            m.health_verdict.clone(),
        );
        r.register(
            "health_probe_seconds",
            "Each probed node's latest probe time (dial and health route)",
            m.health_probe_seconds.clone(),
        );
        r.register(
            "reachability",
            "Our own reachability from outside, from a --health node: 0 unknown, 1 reachable, 2 unreachable",
            m.reachability.clone(),
        );
        r.register(
            "observed_addr_peers",
            "Connected peers that agree on the address they observe us at (identify), the most agreed one",
            m.observed_addr_peers.clone(),
        );
        Self { registry, ..m }
    }

    /// Everything, as Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// A probed node's latest verdict level and probe time.
    pub fn set_health(&self, peer: &str, level: i64, probe_seconds: Option<f64>) {
        let label = PeerLabel { peer: peer.into() };
        self.health_verdict.get_or_create(&label).set(level);
        if let Some(s) = probe_seconds {
            self.health_probe_seconds.get_or_create(&label).set(s);
        }
    }

    /// Our own reachability (0 unknown, 1 reachable, 2 unreachable) and
    /// how many peers agree on our most observed address.
    pub fn set_reachability(&self, level: i64, agreeing_peers: i64) {
        self.reachability.set(level);
        self.observed_addr_peers.set(agreeing_peers);
    }

    /// A route name as a label value, within [`MAX_ROUTE_LABELS`].
    fn route_label(&self, route: &str) -> String {
        let mut seen = self.route_labels.lock().unwrap_or_else(|e| e.into_inner());
        if seen.contains(route) {
            return route.to_string();
        }
        if seen.len() >= MAX_ROUTE_LABELS {
            return "other".into();
        }
        seen.insert(route.to_string());
        route.to_string()
    }

    pub(crate) fn serve_started(&self) {
        self.serving.inc();
    }

    /// A served call ended: `known_route` says whether our table had it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn serve_finished(
        &self,
        route: &str,
        known_route: bool,
        v2: bool,
        outcome: &ServeOutcome,
        bytes: u64,
        elapsed: Duration,
        backend_first_byte: Option<Duration>,
    ) {
        self.serving.dec();
        let route = if known_route {
            self.route_label(route)
        } else {
            UNKNOWN_ROUTE.into()
        };
        let (outcome, status) = match outcome {
            ServeOutcome::Ok { status } => ("ok", status.to_string()),
            ServeOutcome::RouteNotFound => ("route_not_found", String::new()),
            ServeOutcome::StreamNotSupported => ("stream_not_supported", String::new()),
            ServeOutcome::Refused { .. } => ("refused", String::new()),
            ServeOutcome::Failed { .. } => ("failed", String::new()),
            ServeOutcome::CallerGone { .. } => ("caller_gone", String::new()),
        };
        let protocol = protocol_label(v2);
        self.served
            .get_or_create(&CallLabels {
                route: route.clone(),
                protocol: protocol.clone(),
                outcome: outcome.into(),
                status,
            })
            .inc();
        self.served_seconds
            .get_or_create(&TimeLabels {
                route: route.clone(),
                protocol,
            })
            .observe(elapsed.as_secs_f64());
        let label = RouteLabel { route };
        if let Some(t) = backend_first_byte {
            self.backend_first_byte_seconds
                .get_or_create(&label)
                .observe(t.as_secs_f64());
        }
        self.served_bytes.get_or_create(&label).inc_by(bytes);
    }

    /// An error answer went to a caller.
    pub(crate) fn refused(&self, code: Code) {
        self.refused
            .get_or_create(&ReasonLabel {
                reason: code.name().to_ascii_lowercase(),
            })
            .inc();
    }

    pub(crate) fn call_started(&self) {
        self.calling.inc();
    }

    /// A call we made ended: `outcome` is "ok" or its error class.
    pub(crate) fn call_finished(
        &self,
        route: &str,
        v2: Option<bool>,
        outcome: &str,
        status: Option<u16>,
        bytes: u64,
        elapsed: Duration,
    ) {
        self.calling.dec();
        let route = self.route_label(route);
        let protocol = v2.map(protocol_label).unwrap_or_default();
        self.made
            .get_or_create(&CallLabels {
                route: route.clone(),
                protocol: protocol.clone(),
                outcome: outcome.into(),
                status: status.map(|s| s.to_string()).unwrap_or_default(),
            })
            .inc();
        self.made_seconds
            .get_or_create(&TimeLabels {
                route: route.clone(),
                protocol,
            })
            .observe(elapsed.as_secs_f64());
        self.made_bytes
            .get_or_create(&RouteLabel { route })
            .inc_by(bytes);
    }

    pub(crate) fn routing_table_peers(&self, count: usize) {
        self.routing_table_peers.set(count as i64);
    }

    pub(crate) fn connected_peers(&self, count: usize) {
        self.connected_peers.set(count as i64);
    }

    pub(crate) fn discovered_peers(&self, count: usize) {
        self.discovered_peers.set(count as i64);
    }

    pub(crate) fn walk_interval(&self, next: std::time::Duration) {
        self.walk_interval_seconds.set(next.as_secs() as i64);
    }

    pub(crate) fn route_reload(&self, ok: bool) {
        self.route_reloads
            .get_or_create(&ResultLabel {
                result: if ok { "ok" } else { "rejected" }.into(),
            })
            .inc();
    }
}

/// One call we make, counted when it ends: as its outcome, or as
/// "cancelled" when its caller drops it first.
pub(crate) struct CallRecord {
    metrics: std::sync::Arc<NodeMetrics>,
    route: String,
    started: std::time::Instant,
    v2: Option<bool>,
    status: Option<u16>,
    ended: bool,
}

impl CallRecord {
    pub(crate) fn start(metrics: std::sync::Arc<NodeMetrics>, route: &str) -> Self {
        metrics.call_started();
        Self {
            metrics,
            route: route.to_string(),
            started: std::time::Instant::now(),
            v2: None,
            status: None,
            ended: false,
        }
    }

    /// The response head arrived.
    pub(crate) fn head(&mut self, v2: bool, status: Option<u16>) {
        (self.v2, self.status) = (Some(v2), status);
    }

    /// The call ended: "ok" or an error class.
    pub(crate) fn end(&mut self, outcome: &str, bytes: u64) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        self.metrics.call_finished(
            &self.route,
            self.v2,
            outcome,
            self.status,
            bytes,
            self.started.elapsed(),
        );
    }
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        self.end("cancelled", 0);
    }
}

fn protocol_label(v2: bool) -> String {
    if v2 { "2.0.0" } else { "1.0.0" }.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_labels_are_bounded_and_unknown_routes_are_not_named() {
        let m = NodeMetrics::new();
        for i in 0..MAX_ROUTE_LABELS + 10 {
            m.call_started();
            m.call_finished(
                &format!("r{i}"),
                Some(true),
                "ok",
                Some(200),
                1,
                Duration::ZERO,
            );
        }
        m.serve_started();
        let ok = ServeOutcome::Ok { status: 200 };
        m.serve_finished(
            "../../etc/passwd",
            false,
            false,
            &ok,
            5,
            Duration::ZERO,
            None,
        );
        let text = m.encode();
        assert!(text.contains(r#"route="other""#), "beyond the bound: other");
        assert!(!text.contains(&format!("r{}\"", MAX_ROUTE_LABELS + 5)));
        assert!(
            !text.contains("passwd"),
            "a peer's route name is not a label"
        );
        assert!(text.contains(r#"peerapi_calls_served_total{route="unknown",protocol="1.0.0",outcome="ok",status="200"} 1"#), "{text}");
        assert!(text.contains("peerapi_calls_in_flight 0"));
        assert!(text.contains("peerapi_calls_serving 0"));
    }
}

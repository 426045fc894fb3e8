//! The node: a tokio task that owns the libp2p `Swarm`, a cheap cloneable
//! [`NodeHandle`] that talks to it, and the subnet behaviours. The API
//! protocol itself ([`crate::protocol`]) sits below: the node adds it to
//! its swarm like any embedder and folds its events into [`NodeEvent`].
//!
//! ```text
//!  NodeHandle ──Command──▶ event_loop (owns Swarm) ──NodeEvent──▶ subscribers
//!      │                        │ protocol::ApiProtocol, subnet behaviours
//!      │ call/stream            ▼
//!      └─opens stream (streams::Connections) ──▶ connection handler
//!          inbound stream ──▶ protocol::serve ──▶ task per call ──▶ Upstream (reqwest)
//! ```

mod behaviour;
mod config;
mod dial_error;
mod event_loop;
pub(crate) mod events;
pub mod evictions;
mod handle;
mod liveness;
pub mod muxer;
mod one_shot;
pub mod reachability;
pub mod recent;
mod reconnects;
mod replication;
mod subnet_events;
mod subnet_parts;
pub mod transport;
mod walks;

// The protocol and the stream behaviour live below the node; these keep
// the paths embedders and the console already use.
pub use crate::protocol::{metrics, tap};
pub use crate::streams::{ip_limit, outbound};

pub use crate::protocol::admission::{
    ReadingLimits, DEFAULT_MAX_READING, DEFAULT_MAX_READING_PER_IP, DEFAULT_MAX_READING_PER_PEER,
    DEFAULT_REQUEST_FIRST_BYTE_TIMEOUT,
};
pub use crate::protocol::call::{
    parse_header_line, parse_peer_addr, peer_of, ApiClient, ApiVersion, Breakdown, CallError,
    CallOptions, CallRequest, CallStream, CallTag, ProtocolChoice, Response, ResponseHead,
    Timeline, DEFAULT_CALL_STREAM_IDLE_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES,
};
pub use crate::streams::behaviour::{OpenError, PeerAccess, DEFAULT_INBOUND_QUEUE_DEPTH};
// The 1.0.0 texts live in `wire::v1`; re-exported where callers met them.
pub use crate::protocol::serve::{
    ServeLimits, DEFAULT_MAX_CALLS_PER_PEER, DEFAULT_MAX_CONCURRENT_CALLS,
    DEFAULT_MAX_REQUEST_HEADERS, DEFAULT_READ_AHEAD_BYTES, DEFAULT_READ_AHEAD_BYTES_PER_CALL,
    DEFAULT_REQUEST_READ_TIMEOUT, DEFAULT_RESPONSE_WRITE_TIMEOUT,
};
pub use crate::wire::v1::{classify_v1_body, V1ErrorText, V1StreamTail, MAX_V1_TRAILER_BYTES};
pub use config::*;
pub use events::{CallId, Direction, Discovery, NodeEvent, PeerInfo, ServeOutcome, EVENT_CAPACITY};
pub(crate) use handle::{Command, Shared};
pub use handle::{HealthReport, NodeHandle};
pub use one_shot::ONE_SHOT_CLOSE_WITHIN;
pub use reconnects::{DEFAULT_RECONNECT_MAX, LOST_PEER_KEPT};
pub use replication::ReplicationCounters;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};

use crate::protocol::{ApiProtocol, ApiProtocolConfig, DrainHandle};
use crate::routes::{RouteWatcher, RELOAD_DEBOUNCE};

/// A running node: its handle and the means to stop it.
pub struct Node {
    handle: NodeHandle,
    tasks: tokio::task::JoinSet<()>,
    drain: DrainHandle,
    replication_quiesce: replication::Quiesce,
    shutdown_grace: Duration,
    _watcher: Option<RouteWatcher>,
    /// Tells the DAG file's keeper to write a last time and stop.
    dag_file_stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Node {
    /// Starts the node: listens, dials the bootstrap peers, serves calls.
    /// Returns once every listen address is bound.
    pub async fn start(config: NodeConfig) -> Result<Node, NodeError> {
        let (events, _) = broadcast::channel(config.event_capacity.max(1));
        let recent = Arc::new(recent::Recent::new());
        let autonat = Arc::new(reachability::AutonatTests::default());
        let (commands, command_rx) = mpsc::unbounded_channel();
        let local_peer_id = config.keypair.public().to_peer_id();
        let routes = config.routes.clone();
        let metrics = config.metrics.clone();
        let log_span = match &config.log_label {
            Some(name) => tracing::info_span!("node", name = %name),
            None => tracing::Span::none(),
        };

        let watcher = match &config.route_file {
            Some(path) => {
                crate::fsutil::clean_stale_temps(path);
                match routes.load_file(path) {
                    Ok((_, warnings)) => {
                        for w in warnings {
                            tracing::warn!(file = %path.display(), "{w}");
                        }
                    }
                    Err(e) => {
                        // A node may start before its route file is valid; it
                        // serves what it has and picks the file up once fixed.
                        tracing::warn!("{e}");
                    }
                }
                let (ev, m, r) = (events.clone(), metrics.clone(), recent.clone());
                Some(RouteWatcher::spawn(
                    routes.clone(),
                    path,
                    RELOAD_DEBOUNCE,
                    move |reload| {
                        if let Some(m) = &m {
                            m.route_reload(matches!(
                                reload,
                                crate::routes::RouteReload::Reloaded { .. }
                            ));
                        }
                        match &reload {
                            crate::routes::RouteReload::Reloaded { .. } => r.reloaded(true, None),
                            crate::routes::RouteReload::Rejected { error } => {
                                r.reloaded(false, Some(error.clone()))
                            }
                        }
                        let _ = ev.send(NodeEvent::from(reload));
                    },
                )?)
            }
            None => None,
        };

        let call_ids = Arc::new(AtomicU64::new(1));
        let api = ApiProtocol::with_events(
            ApiProtocolConfig {
                routes: routes.clone(),
                upstream: config.upstream.clone(),
                serve: config.serve.clone(),
                call: config.call.clone(),
                access: config.access.clone(),
                inbound_queue_depth: config.inbound_queue_depth,
                metrics: metrics.clone(),
                log_span: log_span.clone(),
            },
            Arc::new(events::NodeSink {
                events: events.clone(),
                recent: recent.clone(),
            }),
            call_ids,
        )?;
        let (drain, taps) = (api.drain_handle(), api.taps());
        let dag = Arc::new(std::sync::Mutex::new(crate::subnet::DagStore::new(
            config.subnet.dag.clone(),
        )));
        // Read before anything can add to it; a bad file stops the start.
        let dag_file = match config.subnet.dag_file.clone() {
            Some(path) => {
                let (loaded, seen) = {
                    let mut store = dag.lock().unwrap_or_else(|e| e.into_inner());
                    crate::subnet::dag_file::load(&path, &mut store)?
                };
                tracing::info!(path = %path.display(), kept = loaded.kept, skipped = loaded.skipped, "DAG file read");
                Some((path, seen))
            }
            None => None,
        };
        let dag_sync = config.subnet.dag_sync.then(|| {
            crate::subnet::DagSyncServer::new(
                dag.clone(),
                local_peer_id,
                config.subnet.sync.clone(),
            )
        });
        let gossip = Arc::new(crate::subnet::GossipCounters::default());
        let telemetry_addr = Arc::new(std::sync::OnceLock::new());
        let telemetry_counters = Arc::new(crate::subnet::TelemetryCounters::default());
        let (telemetry_ready_tx, telemetry_ready_rx) = tokio::sync::oneshot::channel();
        let replication = Arc::new(replication::ReplicationCounters::default());
        let shared = Arc::new(Shared {
            local_peer_id,
            commands,
            client: api.client(),
            events: events.clone(),
            recent: recent.clone(),
            routes,
            dag: dag.clone(),
            dag_sync: dag_sync.clone(),
            gossip: gossip.clone(),
            replication: replication.clone(),
            telemetry_addr: telemetry_addr.clone(),
            telemetry: telemetry_counters.clone(),
            log_span: log_span.clone(),
            name: config.log_label.clone(),
            taps,
            health: Default::default(),
            autonat: autonat.clone(),
        });
        let replicator = replication::Replicator::new(
            dag.clone(),
            config.subnet.replicate.clone(),
            local_peer_id,
            events.clone(),
            gossip.clone(),
            replication,
        );
        let replication_quiesce = replicator.quiesce();
        let subnet = subnet_parts::SubnetParts {
            replicator,
            dag,
            dag_sync,
            gossip,
            discovered: Default::default(),
            peer_target: config.peer_target,
        };
        let mut tasks = tokio::task::JoinSet::new();
        let mut dag_file_stop = None;
        if let Some((path, seen)) = dag_file {
            let (stop, stopped) = tokio::sync::oneshot::channel();
            dag_file_stop = Some(stop);
            tasks.spawn(crate::subnet::dag_file::keep(
                path,
                shared.dag.clone(),
                seen,
                config.subnet.dag_save_interval,
                stopped,
            ));
        }
        if let Some(addr) = config.subnet.telemetry_listen {
            tasks.spawn(forward_telemetry(
                addr,
                config.subnet.telemetry.clone(),
                events.clone(),
                telemetry_counters.clone(),
                telemetry_ready_tx,
            ));
            let bound = telemetry_ready_rx.await.map_err(|_| NodeError::Stopped)?;
            let bound = bound.map_err(|message| NodeError::Telemetry { addr, message })?;
            let _ = telemetry_addr.set(bound);
        }
        let handle = NodeHandle { shared };
        let shutdown_grace = config.shutdown_grace;
        let (swarm_loop, ready) =
            event_loop::EventLoop::new(config, api, subnet, (events, recent, autonat), command_rx)?;
        tasks.spawn(tracing::Instrument::instrument(swarm_loop.run(), log_span));
        ready.await.map_err(|_| NodeError::Stopped)??;
        Ok(Node {
            handle,
            tasks,
            drain,
            replication_quiesce,
            shutdown_grace,
            _watcher: watcher,
            dag_file_stop,
        })
    }

    pub fn handle(&self) -> NodeHandle {
        self.handle.clone()
    }

    /// Stops taking new calls and asking peers for the DAG, lets in-flight
    /// calls finish and the answers asked for arrive for up to the shutdown
    /// grace, then stops the swarm.
    pub async fn shutdown(mut self) {
        let (drained, answered) = tokio::join!(
            self.drain.drain(self.shutdown_grace),
            self.replication_quiesce.stop_asking(self.shutdown_grace)
        );
        if !answered {
            tracing::info!("DAG answers still outstanding at the end of the grace period");
        }
        if !drained {
            tracing::warn!(
                grace = ?self.shutdown_grace,
                "in-flight calls did not finish within the grace period; stopping anyway"
            );
        }
        let _ = self.handle.shared.commands.send(Command::Stop);
        if let Some(stop) = self.dag_file_stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        self.tasks.abort_all();
    }

    /// Stops at once, abandoning calls in flight.
    pub fn abort(mut self) {
        self.tasks.abort_all();
    }
}

/// Accepts telemetry and turns each event into a node event, until
/// aborted (which stops the server too).
async fn forward_telemetry(
    addr: std::net::SocketAddr,
    limits: crate::subnet::TelemetryLimits,
    events: broadcast::Sender<NodeEvent>,
    counters: Arc<crate::subnet::TelemetryCounters>,
    ready: tokio::sync::oneshot::Sender<Result<std::net::SocketAddr, String>>,
) {
    let (tx, mut rx) = mpsc::channel(crate::subnet::telemetry::TELEMETRY_QUEUE);
    let server = match crate::subnet::telemetry::serve(addr, limits, tx, counters).await {
        Ok((bound, task)) => {
            tracing::info!("accepting telemetry on ws://{bound}");
            let _ = ready.send(Ok(bound));
            task
        }
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            return;
        }
    };
    struct AbortOnDrop(tokio::task::JoinHandle<()>);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let _server = AbortOnDrop(server);
    while let Some(ev) = rx.recv().await {
        let _ = events.send(NodeEvent::Telemetry(Box::new(ev)));
    }
}

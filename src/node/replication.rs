//! Replicating the DAG from peers whose identify lists the sync protocol
//! (see `subnet::replicate` for the exchange): at most one replication per
//! peer per interval, a bounded number at once, each exchange bounded in
//! time and in the bytes read.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::AsyncWriteExt;
use libp2p::PeerId;
use tokio::sync::{broadcast, Semaphore};

use super::events::NodeEvent;
use crate::streams::behaviour::Connections;
use crate::subnet::replicate::{replicate, ReplicateConfig};
use crate::subnet::{DagStore, GossipCounters, Ingest, VerifiedNode, PROTOCOL_DAG_SYNC};
use crate::wire;

/// Most peers whose last replication time is remembered; older entries are
/// dropped first (a dropped peer may be asked again sooner, nothing worse).
const MAX_REMEMBERED_PEERS: usize = 4_096;

/// Counts since start, for the operator.
#[derive(Debug, Default)]
pub struct ReplicationCounters {
    pub runs: AtomicU64,
    pub failed: AtomicU64,
    pub nodes_kept: AtomicU64,
    pub invalid: AtomicU64,
    /// Replications that waited their turn because as many were running as
    /// allowed (a node joining a subnet identifies many peers at once).
    pub queued_busy: AtomicU64,
}

/// Stops a node's replications at shutdown: no new one starts and no
/// running one asks again, while the answers already asked for may still
/// arrive (a template node whose answer stream is reset mid-write logs a
/// traceback).
#[derive(Clone)]
pub(crate) struct Quiesce {
    stopping: Arc<AtomicBool>,
    permits: Arc<Semaphore>,
    total: u32,
}

impl Quiesce {
    /// Stops asking, then waits up to `grace` for the answers outstanding;
    /// `true` when none is left.
    pub(crate) async fn stop_asking(&self, grace: std::time::Duration) -> bool {
        self.stopping.store(true, Ordering::SeqCst);
        tokio::time::timeout(grace, self.permits.acquire_many(self.total))
            .await
            .is_ok_and(|p| p.is_ok())
    }
}

pub(crate) struct Replicator {
    pub(crate) connections: Connections,
    stopping: Arc<AtomicBool>,
    store: Arc<Mutex<DagStore>>,
    config: ReplicateConfig,
    local: PeerId,
    last: HashMap<PeerId, Instant>,
    permits: Arc<Semaphore>,
    events: broadcast::Sender<NodeEvent>,
    gossip: Arc<GossipCounters>,
    pub(crate) counters: Arc<ReplicationCounters>,
}

/// The event for a node newly kept, wherever it came from.
pub(crate) fn dag_node_event(node: &VerifiedNode, ingest: &Ingest) -> NodeEvent {
    NodeEvent::DagNode {
        namespace: node.namespace.clone(),
        id: node.id.clone(),
        schema_id: node.schema_id.clone(),
        author: node.author,
        created_at_ms: node.created_at_ms,
        payload: node.payload.clone(),
        stored: !matches!(ingest, Ingest::Full(_)),
    }
}

impl Replicator {
    pub(crate) fn new(
        store: Arc<Mutex<DagStore>>,
        config: ReplicateConfig,
        local: PeerId,
        events: broadcast::Sender<NodeEvent>,
        gossip: Arc<GossipCounters>,
        counters: Arc<ReplicationCounters>,
    ) -> Self {
        Self {
            connections: Connections::default(),
            stopping: Arc::default(),
            permits: Arc::new(Semaphore::new(config.max_concurrent.max(1))),
            store,
            config,
            local,
            last: HashMap::new(),
            events,
            gossip,
            counters,
        }
    }

    pub(crate) fn quiesce(&self) -> Quiesce {
        Quiesce {
            stopping: self.stopping.clone(),
            permits: self.permits.clone(),
            total: u32::try_from(self.config.max_concurrent.max(1)).unwrap_or(u32::MAX),
        }
    }

    /// Identify answered: replicate from `peer` if it serves the sync
    /// protocol and was not asked within the interval.
    pub(crate) fn on_identified(&mut self, peer: PeerId, protocols: &[String]) {
        self.connections.set_protocols(peer, protocols.to_vec());
        if !self.config.enabled
            || self.stopping.load(Ordering::SeqCst)
            || !protocols.iter().any(|p| p == PROTOCOL_DAG_SYNC)
        {
            return;
        }
        let now = Instant::now();
        if self
            .last
            .get(&peer)
            .is_some_and(|t| now.duration_since(*t) < self.config.min_interval)
        {
            return;
        }
        if self.last.len() >= MAX_REMEMBERED_PEERS {
            let interval = self.config.min_interval;
            self.last.retain(|_, t| now.duration_since(*t) < interval);
            if self.last.len() >= MAX_REMEMBERED_PEERS {
                self.last.clear();
            }
        }
        self.last.insert(peer, now);
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let job = Job {
            stopping: self.stopping.clone(),
            peer,
            local: self.local.to_string(),
            connections: self.connections.clone(),
            store: self.store.clone(),
            config: self.config.clone(),
            events: self.events.clone(),
            gossip: self.gossip.clone(),
            counters: self.counters.clone(),
        };
        // A replication over the bound waits for a turn rather than being
        // dropped: identify may not answer again for minutes, and a peer
        // skipped now would keep its DAG nodes from us until then. One
        // waiter per peer per interval (`last`), so the queue is bounded by
        // the connection limit.
        let permits = self.permits.clone();
        let busy = permits.available_permits() == 0;
        if busy {
            self.counters.queued_busy.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, "DAG replication waits: as many running as allowed");
        }
        // In the node's log span (the event loop's), so its lines say which node.
        rt.spawn(tracing::Instrument::in_current_span(async move {
            let Ok(permit) = permits.acquire_owned().await else {
                return;
            };
            if !job.stopping.load(Ordering::SeqCst) {
                job.run().await;
            }
            drop(permit);
        }));
    }
}

struct Job {
    stopping: Arc<AtomicBool>,
    peer: PeerId,
    local: String,
    connections: Connections,
    store: Arc<Mutex<DagStore>>,
    config: ReplicateConfig,
    events: broadcast::Sender<NodeEvent>,
    gossip: Arc<GossipCounters>,
    counters: Arc<ReplicationCounters>,
}

impl Job {
    async fn run(self) {
        self.counters.runs.fetch_add(1, Ordering::Relaxed);
        for namespace in &self.config.namespaces {
            let ask = |request: Vec<u8>| self.exchange(request);
            let result = replicate(
                ask,
                &self.local,
                namespace,
                &self.store,
                self.config.max_rounds,
                |node, ingest| {
                    match ingest {
                        Ingest::Full(_) => self.gossip.dag_refused.fetch_add(1, Ordering::Relaxed),
                        _ => self.gossip.dag_stored.fetch_add(1, Ordering::Relaxed),
                    };
                    let _ = self.events.send(dag_node_event(node, ingest));
                },
            )
            .await;
            let peer = self.peer;
            let (kept, invalid, error) = match result {
                Ok(r) => {
                    tracing::info!(%peer, namespace = %r.namespace, advertised = r.advertised, kept = r.kept, invalid = r.invalid, rounds = r.rounds, "DAG replicated");
                    (r.kept, r.invalid, None)
                }
                Err(e) => {
                    self.counters.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(%peer, %namespace, "DAG replication stopped: {e}");
                    (0, 0, Some(e.to_string()))
                }
            };
            self.counters
                .nodes_kept
                .fetch_add(kept as u64, Ordering::Relaxed);
            self.counters
                .invalid
                .fetch_add(invalid as u64, Ordering::Relaxed);
            let _ = self.events.send(NodeEvent::DagReplicated {
                peer,
                namespace: namespace.clone(),
                kept,
                invalid,
                error,
            });
        }
    }

    /// One request on a fresh stream, its answer read to the limit.
    async fn exchange(&self, request: Vec<u8>) -> Result<Vec<u8>, String> {
        if self.stopping.load(Ordering::SeqCst) {
            return Err("the node is stopping".into());
        }
        let work = async {
            let (mut stream, _) = self
                .connections
                .open(self.peer, &[PROTOCOL_DAG_SYNC])
                .await
                .map_err(|e| e.to_string())?;
            stream
                .write_all(&wire::encode_bytes_prefixed(&request))
                .await
                .map_err(|e| format!("writing the request: {e}"))?;
            let answer = wire::read_length_prefixed(&mut stream, self.config.max_response_bytes)
                .await
                .map(Vec::from)
                .map_err(|e| format!("reading the answer: {e}"));
            let _ = stream.close().await;
            answer
        };
        tokio::time::timeout(self.config.exchange_timeout, work)
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "no answer within {:?}",
                    self.config.exchange_timeout
                ))
            })
    }
}

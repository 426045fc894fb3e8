//! `/subnet/merkle_dag_sync_protocol/1.0.0`, served as the template frames
//! it: one varint-prefixed canonical-JSON request, one response, close.
//! Inventory requests get the summary of the DAG we hold (empty when we
//! hold none): a node starting up asks every peer and waits for each, so
//! answering `na` kept late joiners from ever converging. Fetch requests
//! get the nodes we hold. Anything else is closed without an answer (what
//! a template node does), logged and counted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{AsyncWriteExt, FutureExt};
use libp2p::PeerId;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use super::canonical;
use super::store::{snapshot, DagStore};
use crate::logs::Untrusted;
use crate::streams::behaviour::{Dispatch, InboundStream};
use crate::wire;

pub const PROTOCOL_DAG_SYNC: &str = "/subnet/merkle_dag_sync_protocol/1.0.0";
/// Default largest sync request read.
pub const DEFAULT_MAX_SYNC_REQUEST_BYTES: usize = 1024 * 1024;
/// Default time a peer has to send its whole request.
pub const DEFAULT_SYNC_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default sync streams served at once, node-wide and per peer.
pub const DEFAULT_MAX_SYNC_STREAMS: usize = 64;
pub const DEFAULT_MAX_SYNC_STREAMS_PER_PEER: usize = 8;
/// Default most nodes one fetch response carries, and ancestor levels followed.
pub const DEFAULT_MAX_FETCH_NODES: usize = 1_000;
pub const DEFAULT_MAX_ANCESTOR_DEPTH: usize = 64;

#[derive(Clone, Debug)]
pub struct SyncLimits {
    pub max_request_bytes: usize,
    pub read_timeout: Duration,
    pub max_streams: usize,
    pub max_streams_per_peer: usize,
    pub max_fetch_nodes: usize,
    pub max_ancestor_depth: usize,
}

impl Default for SyncLimits {
    fn default() -> Self {
        Self {
            max_request_bytes: DEFAULT_MAX_SYNC_REQUEST_BYTES,
            read_timeout: DEFAULT_SYNC_READ_TIMEOUT,
            max_streams: DEFAULT_MAX_SYNC_STREAMS,
            max_streams_per_peer: DEFAULT_MAX_SYNC_STREAMS_PER_PEER,
            max_fetch_nodes: DEFAULT_MAX_FETCH_NODES,
            max_ancestor_depth: DEFAULT_MAX_ANCESTOR_DEPTH,
        }
    }
}

/// Why a request got no answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SyncRefusal {
    #[error("request is not JSON: {0}")]
    NotJson(String),
    #[error("request is not a JSON object with a string kind")]
    NoKind,
    #[error("unknown request kind {0}")]
    UnknownKind(String),
    #[error("field {0} is missing or of the wrong type")]
    Field(&'static str),
}

/// Counts since start, for the operator.
#[derive(Debug, Default)]
pub struct SyncCounters {
    pub inventory: AtomicU64,
    pub fetch: AtomicU64,
    pub refused: AtomicU64,
    pub busy: AtomicU64,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn str_of<'a>(req: &'a Value, key: &'static str) -> Result<&'a str, SyncRefusal> {
    req.get(key)
        .and_then(Value::as_str)
        .ok_or(SyncRefusal::Field(key))
}

/// The response to one request (canonical JSON), or why there is none.
pub fn respond(
    store: &DagStore,
    local: &PeerId,
    request: &[u8],
    limits: &SyncLimits,
) -> Result<Vec<u8>, SyncRefusal> {
    let req: Value =
        serde_json::from_slice(request).map_err(|e| SyncRefusal::NotJson(e.to_string()))?;
    let kind = req
        .get("kind")
        .and_then(Value::as_str)
        .ok_or(SyncRefusal::NoKind)?;
    let message_id = str_of(&req, "message_id")?;
    let namespace = str_of(&req, "namespace")?;
    let now = now_ms();
    let mut response = json!({
        "created_at_ms": now,
        "message_id": message_id,
        "namespace": namespace,
        "peer_id": local.to_string(),
    });
    match kind {
        "inventory_request" => {
            let s = store.summary(namespace);
            response["kind"] = json!("inventory_response");
            response["summary"] = json!({
                "generated_at_ms": now,
                "head_ids": s.head_ids,
                "namespace": namespace,
                "node_count": s.node_count,
                "orphan_count": s.orphan_count,
            });
        }
        "fetch_request" => {
            let ids: Vec<String> = req
                .get("node_ids")
                .and_then(Value::as_array)
                .ok_or(SyncRefusal::Field("node_ids"))?
                .iter()
                .take(limits.max_fetch_nodes)
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .ok_or(SyncRefusal::Field("node_ids"))?;
            let bodies = req
                .get("include_bodies")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            let depth = req
                .get("max_ancestor_depth")
                .and_then(Value::as_u64)
                .unwrap_or(0)
                .min(limits.max_ancestor_depth as u64) as usize;
            let (found, not_found) = store.fetch(namespace, &ids, depth, limits.max_fetch_nodes);
            response["kind"] = json!("fetch_response");
            response["nodes"] = found.iter().map(|n| snapshot(n, bodies)).collect();
            response["not_found"] = json!(not_found);
        }
        other => return Err(SyncRefusal::UnknownKind(format!("'{}'", Untrusted(other)))),
    }
    canonical::to_vec(&response).map_err(|_| SyncRefusal::Field("summary"))
}

/// Serves the sync protocol from a shared store, bounded.
#[derive(Clone)]
pub struct DagSyncServer {
    store: Arc<Mutex<DagStore>>,
    local: PeerId,
    limits: SyncLimits,
    permits: Arc<Semaphore>,
    per_peer: Arc<Mutex<HashMap<PeerId, usize>>>,
    pub counters: Arc<SyncCounters>,
}

impl DagSyncServer {
    pub fn new(store: Arc<Mutex<DagStore>>, local: PeerId, limits: SyncLimits) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(limits.max_streams.max(1))),
            store,
            local,
            limits,
            per_peer: Arc::default(),
            counters: Arc::default(),
        }
    }

    /// The inbound-stream dispatch for the streams behaviour.
    pub fn dispatcher(&self) -> Dispatch {
        let this = self.clone();
        Arc::new(move |inbound| this.dispatch(inbound))
    }

    fn dispatch(&self, inbound: InboundStream) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let peer = inbound.peer;
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            self.refuse_busy(peer, "node-wide");
            return;
        };
        {
            let mut per_peer = self.per_peer.lock().unwrap_or_else(|e| e.into_inner());
            let n = per_peer.entry(peer).or_insert(0);
            if *n >= self.limits.max_streams_per_peer {
                drop(per_peer);
                self.refuse_busy(peer, "per peer");
                return;
            }
            *n += 1;
        }
        let this = self.clone();
        rt.spawn(async move {
            let mut stream = inbound.stream;
            // A panic inside must not leave the peer's slot taken.
            let _ = std::panic::AssertUnwindSafe(this.serve(&mut stream, peer))
                .catch_unwind()
                .await;
            let _ = stream.close().await;
            let mut per_peer = this.per_peer.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = per_peer.get_mut(&peer) {
                *n -= 1;
                if *n == 0 {
                    per_peer.remove(&peer);
                }
            }
            drop(permit);
        });
    }

    fn refuse_busy(&self, peer: PeerId, which: &str) {
        self.counters.busy.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%peer, "DAG sync stream refused: too many at once ({which})");
    }

    async fn serve(&self, stream: &mut libp2p::Stream, peer: PeerId) {
        let read = wire::read_length_prefixed(stream, self.limits.max_request_bytes);
        let request = match tokio::time::timeout(self.limits.read_timeout, read).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%peer, "DAG sync request unreadable: {e}");
                return;
            }
            Err(_) => {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%peer, "DAG sync request not sent within {:?}", self.limits.read_timeout);
                return;
            }
        };
        let answer = {
            let store = self.store.lock().unwrap_or_else(|e| e.into_inner());
            respond(&store, &self.local, &request, &self.limits)
        };
        match answer {
            Ok(bytes) => {
                let kind = if bytes.windows(16).any(|w| w == b"fetch_response\",") {
                    &self.counters.fetch
                } else {
                    &self.counters.inventory
                };
                kind.fetch_add(1, Ordering::Relaxed);
                let framed = wire::encode_bytes_prefixed(&bytes);
                if let Err(e) = stream.write_all(&framed).await {
                    tracing::debug!(%peer, "DAG sync answer not written: {e}");
                }
            }
            Err(why) => {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                tracing::info!(%peer, "DAG sync request refused: {why}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subnet::dag::verify;
    use crate::subnet::store::DagLimits;

    fn request(kind: &str, extra: Value) -> Vec<u8> {
        let mut v = json!({"kind": kind, "message_id": "m1", "namespace": "general-dag",
                           "peer_id": "x", "created_at_ms": 1});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn an_empty_store_answers_inventory_with_an_empty_summary() {
        let me = PeerId::random();
        let store = DagStore::new(DagLimits::default());
        let out = respond(
            &store,
            &me,
            &request(
                "inventory_request",
                json!({"known_heads": [], "node_count": 0}),
            ),
            &SyncLimits::default(),
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["kind"], "inventory_response");
        assert_eq!(v["message_id"], "m1");
        assert_eq!(v["peer_id"], me.to_string());
        assert_eq!(v["summary"]["head_ids"], json!([]));
        assert_eq!(v["summary"]["node_count"], 0);
        assert_eq!(out, canonical::to_vec(&v).unwrap(), "canonical bytes");
    }

    #[test]
    fn held_nodes_are_summarised_and_fetched_as_received() {
        let (store, dag) = crate::subnet::store::vector_store();
        let me = PeerId::random();
        let limits = SyncLimits::default();
        let inv = respond(
            &store,
            &me,
            &request("inventory_request", json!({})),
            &limits,
        )
        .unwrap();
        let inv: Value = serde_json::from_slice(&inv).unwrap();
        assert_eq!(inv["summary"]["node_count"], 12);
        assert_eq!(
            inv["summary"]["head_ids"], dag["heads"],
            "the heads the template node reported for the same nodes"
        );
        let head = inv["summary"]["head_ids"][0].clone();
        let fetch = respond(
            &store,
            &me,
            &request(
                "fetch_request",
                json!({"node_ids": [head, "sha256:00"], "include_bodies": true, "max_ancestor_depth": 3}),
            ),
            &limits,
        )
        .unwrap();
        let fetch: Value = serde_json::from_slice(&fetch).unwrap();
        assert_eq!(fetch["kind"], "fetch_response");
        assert_eq!(fetch["not_found"], json!(["sha256:00"]));
        let node = &fetch["nodes"][0];
        verify(node).expect("a fetched node verifies as it did when it arrived");
    }

    #[test]
    fn bad_requests_get_no_answer_and_a_reason() {
        let (store, me, l) = (DagStore::default(), PeerId::random(), SyncLimits::default());
        assert!(matches!(
            respond(&store, &me, b"{", &l),
            Err(SyncRefusal::NotJson(_))
        ));
        assert_eq!(respond(&store, &me, b"[1]", &l), Err(SyncRefusal::NoKind));
        assert!(matches!(
            respond(&store, &me, &request("announcement", json!({})), &l),
            Err(SyncRefusal::UnknownKind(_))
        ));
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(matches!(
            respond(&store, &me, deep.as_bytes(), &l),
            Err(SyncRefusal::NotJson(_))
        ));
        assert_eq!(
            respond(
                &store,
                &me,
                &request("fetch_request", json!({"node_ids": 5})),
                &l
            ),
            Err(SyncRefusal::Field("node_ids"))
        );
    }
}

//! Replicating the DAG from peers over the sync protocol, as an observer:
//! ask a peer for its inventory of a namespace, fetch the heads we lack
//! with their ancestors, verify every node as gossip's are verified, and
//! keep what verifies; parents still missing are asked for in further
//! rounds. The exchange itself (`Ask`) is a function, so the same logic
//! runs over a libp2p stream in the node and over `sync::respond` in tests.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{json, Value};

use super::canonical;
use super::dag::{verify, VerifiedNode};
use super::store::{DagStore, Ingest};

/// The namespace template nodes keep peer state in.
pub const DEFAULT_DAG_NAMESPACE: &str = "general-dag";
/// Default largest sync response read (a fetch of 1,000 peer-state nodes
/// is about 1.5 MB).
pub const DEFAULT_MAX_SYNC_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
/// Default time one exchange (open, ask, read the answer) may take.
pub const DEFAULT_SYNC_EXCHANGE_TIMEOUT: Duration = Duration::from_secs(15);
/// Default least time between two replications from the same peer.
pub const DEFAULT_REPLICATE_INTERVAL: Duration = Duration::from_secs(60);
/// Default replications running at once.
pub const DEFAULT_MAX_REPLICATIONS: usize = 4;
/// Default fetch rounds per namespace (each follows parents still missing).
pub const DEFAULT_MAX_FETCH_ROUNDS: usize = 32;
/// Ancestor levels asked for with each fetch (the template's servers cap
/// what they follow themselves).
pub const FETCH_ANCESTOR_DEPTH: u64 = 64;
/// Most ids asked for in one fetch.
pub const MAX_IDS_PER_FETCH: usize = 1_000;

#[derive(Clone, Debug)]
pub struct ReplicateConfig {
    /// Replicate from peers whose identify lists the sync protocol.
    pub enabled: bool,
    /// Namespaces asked for.
    pub namespaces: Vec<String>,
    pub max_response_bytes: usize,
    pub exchange_timeout: Duration,
    pub min_interval: Duration,
    pub max_concurrent: usize,
    pub max_rounds: usize,
}

impl Default for ReplicateConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            namespaces: vec![DEFAULT_DAG_NAMESPACE.to_string()],
            max_response_bytes: DEFAULT_MAX_SYNC_RESPONSE_BYTES,
            exchange_timeout: DEFAULT_SYNC_EXCHANGE_TIMEOUT,
            min_interval: DEFAULT_REPLICATE_INTERVAL,
            max_concurrent: DEFAULT_MAX_REPLICATIONS,
            max_rounds: DEFAULT_MAX_FETCH_ROUNDS,
        }
    }
}

/// What one replication of one namespace from one peer did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub namespace: String,
    /// Heads the peer advertised.
    pub advertised: usize,
    /// Nodes the peer sent.
    pub received: usize,
    /// Nodes newly kept (stored or waiting for parents).
    pub kept: usize,
    /// Nodes that failed verification or were of another namespace.
    pub invalid: usize,
    /// Nodes not kept for a store limit.
    pub refused: usize,
    /// Fetch rounds run.
    pub rounds: usize,
}

/// Why a replication stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ReplicateError {
    #[error("exchange failed: {0}")]
    Exchange(String),
    #[error("answer is not what the protocol sends: {0}")]
    Answer(&'static str),
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn request(kind: &str, local: &str, namespace: &str, extra: Value) -> Vec<u8> {
    let now = now_ms();
    let mut v = json!({
        "created_at_ms": now,
        "kind": kind,
        "message_id": format!("{kind}:{local}:{now}"),
        "namespace": namespace,
        "peer_id": local,
    });
    if let (Some(v), Value::Object(extra)) = (v.as_object_mut(), extra) {
        v.extend(extra);
    }
    // Only strings and integers: canonical encoding cannot fail.
    canonical::to_vec(&v).unwrap_or_default()
}

/// The inventory request a template node sends at start-up.
pub fn inventory_request(local: &str, namespace: &str, heads: &[String], count: usize) -> Vec<u8> {
    request(
        "inventory_request",
        local,
        namespace,
        json!({"known_heads": heads, "node_count": count}),
    )
}

/// A fetch of `ids` with bodies and ancestors.
pub fn fetch_request(local: &str, namespace: &str, ids: &[String]) -> Vec<u8> {
    request(
        "fetch_request",
        local,
        namespace,
        json!({"node_ids": ids, "include_bodies": true, "max_ancestor_depth": FETCH_ANCESTOR_DEPTH}),
    )
}

fn answer(bytes: &[u8], kind: &'static str) -> Result<Value, ReplicateError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|_| ReplicateError::Answer("JSON"))?;
    if v.get("kind").and_then(Value::as_str) != Some(kind) {
        return Err(ReplicateError::Answer(kind));
    }
    Ok(v)
}

/// Replicates `namespace` through `ask` (one request out, its answer back)
/// into `store`; `kept` hears of each node newly kept.
pub async fn replicate<A, F>(
    mut ask: A,
    local: &str,
    namespace: &str,
    store: &Mutex<DagStore>,
    max_rounds: usize,
    mut kept: impl FnMut(&VerifiedNode, &Ingest),
) -> Result<Report, ReplicateError>
where
    A: FnMut(Vec<u8>) -> F,
    F: Future<Output = Result<Vec<u8>, String>>,
{
    let lock = || store.lock().unwrap_or_else(|e| e.into_inner());
    let mut report = Report {
        namespace: namespace.to_string(),
        ..Report::default()
    };
    let ours = lock().summary(namespace);
    let inventory = ask(inventory_request(
        local,
        namespace,
        &ours.head_ids,
        ours.node_count,
    ))
    .await
    .map_err(ReplicateError::Exchange)?;
    let inventory = answer(&inventory, "inventory_response")?;
    let heads: Vec<String> = inventory
        .pointer("/summary/head_ids")
        .and_then(Value::as_array)
        .ok_or(ReplicateError::Answer("summary.head_ids"))?
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    report.advertised = heads.len();
    let mut asked: HashSet<String> = HashSet::new();
    // Heads we lack, and what orphans of an earlier run still wait for.
    let mut wanted: Vec<String> = {
        let store = lock();
        let mut wanted: Vec<String> = heads
            .into_iter()
            .filter(|id| store.get(namespace, id).is_none())
            .collect();
        wanted.extend(store.wanted_parents(namespace, MAX_IDS_PER_FETCH));
        wanted.sort();
        wanted.dedup();
        wanted
    };
    while !wanted.is_empty() && report.rounds < max_rounds {
        report.rounds += 1;
        wanted.truncate(MAX_IDS_PER_FETCH);
        asked.extend(wanted.iter().cloned());
        let bytes = ask(fetch_request(local, namespace, &wanted))
            .await
            .map_err(ReplicateError::Exchange)?;
        let fetched = answer(&bytes, "fetch_response")?;
        let nodes = fetched
            .get("nodes")
            .and_then(Value::as_array)
            .ok_or(ReplicateError::Answer("nodes"))?;
        report.received += nodes.len();
        let mut missing: Vec<String> = Vec::new();
        for raw in nodes {
            let node = match verify(raw) {
                Ok(n) if n.namespace == namespace => n,
                Ok(_) | Err(_) => {
                    report.invalid += 1;
                    continue;
                }
            };
            let ingest = lock().ingest(node.clone());
            match &ingest {
                Ingest::Duplicate => continue,
                Ingest::Full(_) => report.refused += 1,
                Ingest::Orphan { missing: m } => {
                    report.kept += 1;
                    missing.extend(m.iter().cloned());
                }
                Ingest::Accepted { .. } => report.kept += 1,
            }
            kept(&node, &ingest);
        }
        let store = lock();
        missing.retain(|id| !asked.contains(id) && store.get(namespace, id).is_none());
        missing.sort();
        missing.dedup();
        wanted = missing;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subnet::sync::{respond, SyncLimits};
    use libp2p::PeerId;

    fn vector_store() -> DagStore {
        crate::subnet::store::vector_store().0
    }

    /// A peer answering as our server answers (itself checked byte-exact
    /// against the template's format in `sync`), with a limited fetch.
    fn peer(
        store: DagStore,
        limits: SyncLimits,
    ) -> impl FnMut(Vec<u8>) -> std::future::Ready<Result<Vec<u8>, String>> {
        let me = PeerId::random();
        move |req| {
            std::future::ready(respond(&store, &me, &req, &limits).map_err(|e| e.to_string()))
        }
    }

    #[tokio::test]
    async fn an_empty_store_replicates_a_peers_whole_dag() {
        let source = vector_store();
        let want = source.summary(DEFAULT_DAG_NAMESPACE);
        let ours = Mutex::new(DagStore::default());
        let mut heard = 0;
        let report = replicate(
            peer(source, SyncLimits::default()),
            "me",
            DEFAULT_DAG_NAMESPACE,
            &ours,
            8,
            |_, _| heard += 1,
        )
        .await
        .unwrap();
        assert_eq!(report.kept, 12);
        assert_eq!(heard, 12);
        assert_eq!(report.invalid, 0);
        assert_eq!(ours.lock().unwrap().summary(DEFAULT_DAG_NAMESPACE), want);
        // A second run asks for nothing: every head is held.
        let again = replicate(
            peer(vector_store(), SyncLimits::default()),
            "me",
            DEFAULT_DAG_NAMESPACE,
            &ours,
            8,
            |_, _| {},
        )
        .await
        .unwrap();
        assert_eq!((again.rounds, again.kept), (0, 0));
    }

    #[tokio::test]
    async fn missing_parents_are_followed_in_further_rounds() {
        // A peer that follows no ancestors: parents come one round at a time.
        let limits = SyncLimits {
            max_ancestor_depth: 0,
            ..SyncLimits::default()
        };
        let ours = Mutex::new(DagStore::default());
        let report = replicate(
            peer(vector_store(), limits),
            "me",
            DEFAULT_DAG_NAMESPACE,
            &ours,
            64,
            |_, _| {},
        )
        .await
        .unwrap();
        assert!(report.rounds > 1, "{report:?}");
        let s = ours.lock().unwrap().summary(DEFAULT_DAG_NAMESPACE);
        assert_eq!((s.node_count, s.orphan_count), (12, 0));
    }

    #[tokio::test]
    async fn a_replication_cut_short_is_finished_by_the_next() {
        // One level per round and one round per run: each run goes one
        // level deeper, from the orphans the last one left.
        let limits = SyncLimits {
            max_ancestor_depth: 0,
            ..SyncLimits::default()
        };
        let ours = Mutex::new(DagStore::default());
        let mut runs = 0;
        loop {
            runs += 1;
            assert!(runs < 50, "never finished");
            replicate(
                peer(vector_store(), limits.clone()),
                "me",
                DEFAULT_DAG_NAMESPACE,
                &ours,
                1,
                |_, _| {},
            )
            .await
            .unwrap();
            let s = ours.lock().unwrap().summary(DEFAULT_DAG_NAMESPACE);
            if s.node_count == 12 {
                assert_eq!(s.orphan_count, 0);
                break;
            }
        }
        assert!(runs > 2, "it took several runs: {runs}");
    }

    #[tokio::test]
    async fn forged_nodes_and_wrong_answers_are_not_kept() {
        let node = vector_store().nodes(DEFAULT_DAG_NAMESPACE)[0].json.clone();
        let mut bad = node.clone();
        bad["body"]["payload"]["state"] = json!(0);
        let ours = Mutex::new(DagStore::default());
        let id = node["header"]["node_id"].as_str().unwrap().to_string();
        let mut step = 0;
        let ask = |_req: Vec<u8>| {
            step += 1;
            let out = if step == 1 {
                json!({"kind": "inventory_response", "summary": {"head_ids": [id]}})
            } else {
                json!({"kind": "fetch_response", "nodes": [bad, {"header": 5}], "not_found": []})
            };
            std::future::ready(Ok(serde_json::to_vec(&out).unwrap()))
        };
        let report = replicate(ask, "me", DEFAULT_DAG_NAMESPACE, &ours, 8, |_, _| {})
            .await
            .unwrap();
        assert_eq!((report.invalid, report.kept), (2, 0));
        assert_eq!(
            ours.lock()
                .unwrap()
                .summary(DEFAULT_DAG_NAMESPACE)
                .node_count,
            0
        );

        let wrong =
            |_req: Vec<u8>| std::future::ready(Ok(b"{\"kind\":\"fetch_response\"}".to_vec()));
        assert!(matches!(
            replicate(wrong, "me", DEFAULT_DAG_NAMESPACE, &ours, 8, |_, _| {}).await,
            Err(ReplicateError::Answer("inventory_response"))
        ));
    }
}

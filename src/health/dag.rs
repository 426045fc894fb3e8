//! A node's advertised DAG heads against ours: one inventory request over
//! the DAG sync protocol per probe (what template nodes ask each other
//! anyway), only to a peer whose identify lists that protocol. The heads
//! it names that we do not hold put it ahead of us; when we hold all of
//! them, our heads it does not name put it behind.

use std::time::Duration;

use futures::AsyncWriteExt;
use libp2p::Multiaddr;
use serde_json::Value;

use crate::node::NodeHandle;
use crate::subnet::replicate::{inventory_request, DEFAULT_DAG_NAMESPACE};
use crate::subnet::{DagStore, PROTOCOL_DAG_SYNC};

/// Largest inventory answer read (head ids and counts: a few kB).
pub const MAX_INVENTORY_BYTES: usize = 1024 * 1024;

/// Where a node's DAG stands against ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "is")]
pub enum DagSync {
    /// It names exactly our heads.
    InStep,
    /// It lacks `heads` of ours (it names none we lack).
    Behind { heads: usize },
    /// It names `heads` we do not hold.
    Ahead { heads: usize },
}

impl DagSync {
    /// The code kept in the history (`probes.dag`).
    pub fn code(self) -> (i64, i64) {
        match self {
            DagSync::InStep => (0, 0),
            DagSync::Behind { heads } => (1, heads as i64),
            DagSync::Ahead { heads } => (2, heads as i64),
        }
    }

    pub fn from_code(code: i64, heads: i64) -> Option<DagSync> {
        let heads = usize::try_from(heads).unwrap_or(0);
        match code {
            0 => Some(DagSync::InStep),
            1 => Some(DagSync::Behind { heads }),
            2 => Some(DagSync::Ahead { heads }),
            _ => None,
        }
    }

    /// `in step`, `behind 2`, `ahead 3`: a table's cell.
    pub fn short(self) -> String {
        match self {
            DagSync::InStep => "in step".into(),
            DagSync::Behind { heads } => format!("behind {heads}"),
            DagSync::Ahead { heads } => format!("ahead {heads}"),
        }
    }

    pub fn in_step(self) -> bool {
        self == DagSync::InStep
    }
}

impl std::fmt::Display for DagSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DagSync::InStep => f.write_str("in step"),
            DagSync::Behind { heads } => write!(f, "behind: lacks {heads} of our heads"),
            DagSync::Ahead { heads } => write!(f, "ahead: {heads} heads we lack"),
        }
    }
}

/// Compares the heads a node advertises with ours.
pub fn compare(theirs: &[String], store: &DagStore, namespace: &str) -> DagSync {
    let we_lack = theirs
        .iter()
        .filter(|id| store.get(namespace, id).is_none())
        .count();
    if we_lack > 0 {
        return DagSync::Ahead { heads: we_lack };
    }
    let ours = store.summary(namespace).head_ids;
    let they_lack = ours.iter().filter(|h| !theirs.contains(h)).count();
    if they_lack == 0 && ours.len() == theirs.len() {
        DagSync::InStep
    } else {
        DagSync::Behind {
            heads: they_lack.max(1),
        }
    }
}

/// Asks the node at `addr` for its inventory of the peer-state namespace
/// and compares its heads with ours; with the bytes of the request and
/// the answer (what the probe adds to the link, before framing).
pub async fn probe(
    handle: &NodeHandle,
    addr: &Multiaddr,
    within: Duration,
) -> Result<(DagSync, u64), String> {
    let namespace = DEFAULT_DAG_NAMESPACE;
    let request = {
        let store = handle.dag().lock().unwrap_or_else(|e| e.into_inner());
        let ours = store.summary(namespace);
        inventory_request(
            &handle.local_peer_id().to_string(),
            namespace,
            &ours.head_ids,
            ours.node_count,
        )
    };
    let sent = crate::wire::encode_bytes_prefixed(&request).len() as u64;
    let exchange = async {
        let mut stream = handle
            .open_raw(addr, PROTOCOL_DAG_SYNC)
            .await
            .map_err(|e| e.to_string())?;
        stream
            .write_all(&crate::wire::encode_bytes_prefixed(&request))
            .await
            .map_err(|e| format!("writing the inventory request: {e}"))?;
        let answer = crate::wire::read_length_prefixed(&mut stream, MAX_INVENTORY_BYTES)
            .await
            .map_err(|e| format!("reading the inventory: {e}"));
        let _ = stream.close().await;
        answer
    };
    let bytes = tokio::time::timeout(within, exchange)
        .await
        .map_err(|_| format!("no inventory within {within:?}"))??;
    let v: Value =
        serde_json::from_slice(&bytes).map_err(|_| "the inventory is not JSON".to_string())?;
    let heads: Vec<String> = v
        .pointer("/summary/head_ids")
        .and_then(Value::as_array)
        .ok_or("the inventory has no summary.head_ids")?
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    let store = handle.dag().lock().unwrap_or_else(|e| e.into_inner());
    Ok((
        compare(&heads, &store, namespace),
        sent + bytes.len() as u64,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_compared_on_real_peer_state_nodes() {
        let (store, dag) = crate::subnet::store::vector_store();
        let ns = store.namespaces()[0].clone();
        // The template node's own heads for these nodes: in step.
        let theirs: Vec<String> = dag["heads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap().to_string())
            .collect();
        assert_eq!(compare(&theirs, &store, &ns), DagSync::InStep);
        let ours = store.summary(&ns).head_ids;
        assert!(!ours.is_empty());
        assert_eq!(compare(&ours, &store, &ns), DagSync::InStep);
        assert_eq!(
            compare(&["unknown-id".into()], &store, &ns),
            DagSync::Ahead { heads: 1 }
        );
        // It names an older node of ours as its head: it lacks ours.
        let older = store.nodes(&ns)[0].id.clone();
        assert!(matches!(
            compare(&[older], &store, &ns),
            DagSync::Behind { .. }
        ));
        assert_eq!(
            compare(&[], &store, &ns),
            DagSync::Behind { heads: ours.len() }
        );
    }
}

//! The DAG we hold, per namespace, bounded: verified nodes only; nodes
//! whose parents have not arrived wait as orphans (bounded too) and join
//! when their parents do. When full, new nodes are refused and counted:
//! never evicting keeps every head we advertise fetchable with all its
//! ancestors, which a peer syncing from us needs to converge.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::Value;

use super::dag::VerifiedNode;

/// Default most nodes held per namespace.
pub const DEFAULT_MAX_DAG_NODES: usize = 10_000;
/// Default most bytes (canonical JSON) held across namespaces.
pub const DEFAULT_MAX_DAG_BYTES: usize = 64 * 1024 * 1024;
/// Default most orphans waiting for parents, across namespaces.
pub const DEFAULT_MAX_ORPHANS: usize = 1_000;
/// Default most namespaces.
pub const DEFAULT_MAX_NAMESPACES: usize = 64;

#[derive(Clone, Debug)]
pub struct DagLimits {
    pub max_nodes_per_namespace: usize,
    pub max_bytes: usize,
    pub max_orphans: usize,
    pub max_namespaces: usize,
}

impl Default for DagLimits {
    fn default() -> Self {
        Self {
            max_nodes_per_namespace: DEFAULT_MAX_DAG_NODES,
            max_bytes: DEFAULT_MAX_DAG_BYTES,
            max_orphans: DEFAULT_MAX_ORPHANS,
            max_namespaces: DEFAULT_MAX_NAMESPACES,
        }
    }
}

/// What became of a node offered to the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ingest {
    /// Stored (with the orphans it let in).
    Accepted { resolved: usize },
    /// Already held.
    Duplicate,
    /// Held until these parents arrive.
    Orphan { missing: Vec<String> },
    /// Over a limit: not held.
    Full(&'static str),
}

#[derive(Default)]
struct Namespace {
    nodes: HashMap<String, Arc<VerifiedNode>>,
    /// Nodes no held node names as a parent.
    heads: BTreeSet<String>,
    /// Ids some held node names as a parent.
    named_as_parent: std::collections::HashSet<String>,
    /// Insertion order, for listing.
    order: VecDeque<String>,
}

/// A namespace's summary as the sync protocol reports it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    pub head_ids: Vec<String>,
    pub node_count: usize,
    pub orphan_count: usize,
}

#[derive(Default)]
pub struct DagStore {
    limits: DagLimits,
    namespaces: HashMap<String, Namespace>,
    /// Orphans by id, with the parents they still miss.
    orphans: HashMap<String, (Arc<VerifiedNode>, Vec<String>)>,
    bytes: usize,
    /// Nodes refused for a limit, since start.
    pub refused: u64,
}

impl DagStore {
    pub fn new(limits: DagLimits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    pub fn limits(&self) -> &DagLimits {
        &self.limits
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Namespaces held, sorted.
    pub fn namespaces(&self) -> Vec<String> {
        let mut names: Vec<String> = self.namespaces.keys().cloned().collect();
        names.sort();
        names
    }

    pub fn get(&self, namespace: &str, id: &str) -> Option<Arc<VerifiedNode>> {
        self.namespaces.get(namespace)?.nodes.get(id).cloned()
    }

    /// Every node of a namespace, oldest first.
    pub fn nodes(&self, namespace: &str) -> Vec<Arc<VerifiedNode>> {
        self.namespaces
            .get(namespace)
            .map(|ns| {
                ns.order
                    .iter()
                    .filter_map(|id| ns.nodes.get(id).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn summary(&self, namespace: &str) -> Summary {
        let orphan_count = self
            .orphans
            .values()
            .filter(|(n, _)| n.namespace == namespace)
            .count();
        match self.namespaces.get(namespace) {
            None => Summary {
                head_ids: Vec::new(),
                node_count: 0,
                orphan_count,
            },
            Some(ns) => Summary {
                head_ids: ns.heads.iter().cloned().collect(),
                node_count: ns.nodes.len(),
                orphan_count,
            },
        }
    }

    /// Offers a verified node.
    pub fn ingest(&mut self, node: VerifiedNode) -> Ingest {
        let node = Arc::new(node);
        if self.holds(&node) {
            return Ingest::Duplicate;
        }
        let missing = self.missing_parents(&node);
        if !missing.is_empty() {
            if self.orphans.len() >= self.limits.max_orphans {
                self.refused += 1;
                return Ingest::Full("orphans");
            }
            self.orphans
                .insert(node.id.clone(), (node, missing.clone()));
            return Ingest::Orphan { missing };
        }
        if let Err(limit) = self.insert(node.clone()) {
            self.refused += 1;
            return Ingest::Full(limit);
        }
        Ingest::Accepted {
            resolved: self.resolve_orphans(),
        }
    }

    /// Parents the orphans of `namespace` still wait for (at most `limit`),
    /// sorted: what a replication should ask for next.
    pub fn wanted_parents(&self, namespace: &str, limit: usize) -> Vec<String> {
        let mut wanted: Vec<String> = self
            .orphans
            .values()
            .filter(|(n, _)| n.namespace == namespace)
            .flat_map(|(_, missing)| missing.iter().cloned())
            .filter(|id| !self.orphans.contains_key(id))
            .collect();
        wanted.sort();
        wanted.dedup();
        wanted.truncate(limit);
        wanted
    }

    fn holds(&self, node: &VerifiedNode) -> bool {
        self.orphans.contains_key(&node.id)
            || self
                .namespaces
                .get(&node.namespace)
                .is_some_and(|ns| ns.nodes.contains_key(&node.id))
    }

    fn missing_parents(&self, node: &VerifiedNode) -> Vec<String> {
        let ns = self.namespaces.get(&node.namespace);
        node.parents
            .iter()
            .filter(|p| !ns.is_some_and(|ns| ns.nodes.contains_key(*p)))
            .cloned()
            .collect()
    }

    fn insert(&mut self, node: Arc<VerifiedNode>) -> Result<(), &'static str> {
        if self.bytes.saturating_add(node.size) > self.limits.max_bytes {
            return Err("bytes");
        }
        if !self.namespaces.contains_key(&node.namespace)
            && self.namespaces.len() >= self.limits.max_namespaces
        {
            return Err("namespaces");
        }
        let ns = self.namespaces.entry(node.namespace.clone()).or_default();
        if ns.nodes.len() >= self.limits.max_nodes_per_namespace {
            return Err("nodes");
        }
        for p in &node.parents {
            ns.heads.remove(p);
            ns.named_as_parent.insert(p.clone());
        }
        // A node is a head unless a held node already names it as parent.
        if !ns.named_as_parent.contains(&node.id) {
            ns.heads.insert(node.id.clone());
        }
        ns.order.push_back(node.id.clone());
        self.bytes += node.size;
        ns.nodes.insert(node.id.clone(), node);
        Ok(())
    }

    /// Lets in every orphan whose parents are now all held.
    fn resolve_orphans(&mut self) -> usize {
        let mut resolved = 0;
        loop {
            let ready: Vec<String> = self
                .orphans
                .iter()
                .filter(|(_, (n, _))| self.missing_parents(n).is_empty())
                .map(|(id, _)| id.clone())
                .collect();
            if ready.is_empty() {
                return resolved;
            }
            for id in ready {
                if let Some((node, _)) = self.orphans.remove(&id) {
                    if self.insert(node).is_ok() {
                        resolved += 1;
                    } else {
                        self.refused += 1;
                    }
                }
            }
        }
    }

    /// The nodes asked for and their ancestors up to `depth` levels, at
    /// most `max` of them; ids not held come back in the second list.
    pub fn fetch(
        &self,
        namespace: &str,
        ids: &[String],
        depth: usize,
        max: usize,
    ) -> (Vec<Arc<VerifiedNode>>, Vec<String>) {
        let (mut found, mut not_found) = (Vec::new(), Vec::new());
        let mut seen = std::collections::HashSet::new();
        let mut queue: VecDeque<(String, usize)> = ids.iter().map(|i| (i.clone(), 0)).collect();
        while let Some((id, level)) = queue.pop_front() {
            if found.len() >= max {
                break;
            }
            if !seen.insert(id.clone()) {
                continue;
            }
            match self.get(namespace, &id) {
                Some(node) => {
                    if level < depth {
                        queue.extend(node.parents.iter().map(|p| (p.clone(), level + 1)));
                    }
                    found.push(node);
                }
                None if level == 0 => not_found.push(id),
                None => {}
            }
        }
        (found, not_found)
    }
}

/// A node as the sync protocol sends it: header, and body unless only
/// headers were asked for.
pub fn snapshot(node: &VerifiedNode, include_body: bool) -> Value {
    let mut v = serde_json::json!({ "header": node.json["header"].clone() });
    v["body"] = if include_body {
        node.json["body"].clone()
    } else {
        Value::Null
    };
    v
}

/// The real peer-state records of `tests/vectors/peer_state_dag.json`,
/// verified into a store, and the file as JSON (its `heads` are the
/// template node's own): what the DAG tests start from.
#[cfg(test)]
pub(crate) fn vector_store() -> (DagStore, serde_json::Value) {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/peer_state_dag.json"),
    )
    .unwrap();
    let dag: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut store = DagStore::new(DagLimits::default());
    for n in dag["nodes"].as_array().unwrap() {
        store.ingest(super::dag::verify(n).unwrap());
    }
    (store, dag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, parents: &[&str]) -> VerifiedNode {
        VerifiedNode {
            id: id.into(),
            namespace: "ns".into(),
            schema_id: "s".into(),
            parents: parents.iter().map(|p| p.to_string()).collect(),
            author: libp2p::PeerId::random(),
            created_at_ms: 0,
            payload: Value::Null,
            json: serde_json::json!({"header": {"node_id": id}, "body": {"node_id": id}}),
            size: 100,
        }
    }

    #[test]
    fn heads_orphans_and_their_resolution() {
        let mut s = DagStore::new(DagLimits::default());
        assert_eq!(s.ingest(node("a", &[])), Ingest::Accepted { resolved: 0 });
        assert_eq!(
            s.ingest(node("c", &["b"])),
            Ingest::Orphan {
                missing: vec!["b".into()]
            }
        );
        assert_eq!(s.summary("ns").orphan_count, 1);
        assert_eq!(
            s.ingest(node("b", &["a"])),
            Ingest::Accepted { resolved: 1 }
        );
        let sum = s.summary("ns");
        assert_eq!(sum.head_ids, vec!["c".to_string()]);
        assert_eq!((sum.node_count, sum.orphan_count), (3, 0));
        assert_eq!(s.ingest(node("a", &[])), Ingest::Duplicate);
        let (found, missing) = s.fetch("ns", &["c".into(), "zz".into()], 5, 100);
        let ids: Vec<&str> = found.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["c", "b", "a"]);
        assert_eq!(missing, ["zz"]);
        let (found, _) = s.fetch("ns", &["c".into()], 0, 100);
        assert_eq!(found.len(), 1, "depth 0: only what was asked");
    }

    #[test]
    fn a_full_store_refuses_and_counts() {
        let mut s = DagStore::new(DagLimits {
            max_nodes_per_namespace: 2,
            max_orphans: 1,
            ..DagLimits::default()
        });
        s.ingest(node("a", &[]));
        s.ingest(node("b", &[]));
        assert_eq!(s.ingest(node("c", &[])), Ingest::Full("nodes"));
        s.ingest(node("x", &["p"]));
        assert_eq!(s.ingest(node("y", &["p"])), Ingest::Full("orphans"));
        assert_eq!(s.refused, 2);
        assert_eq!(s.summary("ns").node_count, 2);
    }
}

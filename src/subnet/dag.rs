//! Merkle DAG nodes as subnet-template nodes write them, and their
//! verification: `node_id` is the sha256 of the canonical header without
//! `node_id` and `signature`; `signature` signs those same bytes with the
//! key in `public_key` (hex libp2p protobuf) whose peer id is `author`;
//! `body_hash`/`body_size` are the sha256 and length of the canonical
//! `body.payload`. Everything here comes from peers: nothing is trusted
//! until `verify` says so.

use libp2p::identity::PublicKey;
use libp2p::PeerId;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::canonical;

/// A node whose hashes and signature checked out.
#[derive(Clone, Debug)]
pub struct VerifiedNode {
    pub id: String,
    pub namespace: String,
    pub schema_id: String,
    pub parents: Vec<String>,
    pub author: PeerId,
    pub created_at_ms: u64,
    pub payload: Value,
    /// The node as received (`{header, body}`), served again to peers.
    pub json: Value,
    /// Its size as canonical JSON, for memory bounds.
    pub size: usize,
}

/// Why a node was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("not a DAG node: {0}")]
    Shape(String),
    #[error("node_id does not match the header's hash")]
    NodeId,
    #[error("body hash or size does not match the header")]
    Body,
    #[error("public key cannot be read: {0}")]
    Key(String),
    #[error("author is not the public key's peer id")]
    Author,
    #[error("signature does not verify")]
    Signature,
}

fn shape(what: &str) -> VerifyError {
    VerifyError::Shape(what.to_string())
}

/// `sha256:<hex>` of `bytes`, as the template names digests.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn str_field<'a>(h: &'a Map<String, Value>, key: &str) -> Result<&'a str, VerifyError> {
    h.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| shape(&format!("header.{key} is not a string")))
}

fn int_field(h: &Map<String, Value>, key: &str) -> Result<u64, VerifyError> {
    h.get(key)
        .and_then(Value::as_u64)
        .ok_or_else(|| shape(&format!("header.{key} is not a non-negative integer")))
}

/// Checks a node (`{header, body}`) as the template does.
pub fn verify(node: &Value) -> Result<VerifiedNode, VerifyError> {
    let header = node
        .get("header")
        .and_then(Value::as_object)
        .ok_or_else(|| shape("no header object"))?;
    let body = node
        .get("body")
        .and_then(Value::as_object)
        .ok_or_else(|| shape("no body object"))?;
    let node_id = str_field(header, "node_id")?;
    let signature = str_field(header, "signature")?;
    let author = str_field(header, "author")?;
    let public_key = str_field(header, "public_key")?;
    let body_hash = str_field(header, "body_hash")?;
    let namespace = str_field(header, "namespace")?;
    let schema_id = str_field(header, "schema_id")?;
    let body_size = int_field(header, "body_size")?;
    let created_at_ms = int_field(header, "created_at_ms")?;
    let version = header.get("version").cloned().unwrap_or(Value::from(1));
    if !version.is_u64() {
        return Err(shape("header.version is not an integer"));
    }
    let metadata = match header.get("metadata") {
        None => Value::Object(Map::new()),
        Some(m @ Value::Object(_)) => m.clone(),
        Some(_) => return Err(shape("header.metadata is not an object")),
    };
    let parents: Vec<String> = match header.get("parent_ids") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|p| p.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| shape("header.parent_ids holds a non-string"))?,
        Some(_) => return Err(shape("header.parent_ids is not a list")),
    };

    let unsigned = serde_json::json!({
        "author": author,
        "body_hash": body_hash,
        "body_size": body_size,
        "created_at_ms": created_at_ms,
        "metadata": metadata,
        "namespace": namespace,
        "parent_ids": parents,
        "public_key": public_key,
        "schema_id": schema_id,
        "version": version,
    });
    let unsigned = canonical::to_vec(&unsigned).map_err(|e| shape(&e.to_string()))?;
    if digest(&unsigned) != node_id {
        return Err(VerifyError::NodeId);
    }
    if body.get("node_id").and_then(Value::as_str) != Some(node_id) {
        return Err(shape("body.node_id differs from the header's"));
    }
    let payload = body
        .get("payload")
        .ok_or_else(|| shape("no body.payload"))?;
    let payload_bytes = canonical::to_vec(payload).map_err(|e| shape(&e.to_string()))?;
    if digest(&payload_bytes) != body_hash || payload_bytes.len() as u64 != body_size {
        return Err(VerifyError::Body);
    }
    let key_bytes = hex::decode(public_key).map_err(|e| VerifyError::Key(e.to_string()))?;
    let key =
        PublicKey::try_decode_protobuf(&key_bytes).map_err(|e| VerifyError::Key(e.to_string()))?;
    let author: PeerId = author.parse().map_err(|_| VerifyError::Author)?;
    if key.to_peer_id() != author {
        return Err(VerifyError::Author);
    }
    let signature = hex::decode(signature).map_err(|_| VerifyError::Signature)?;
    if !key.verify(&unsigned, &signature) {
        return Err(VerifyError::Signature);
    }
    Ok(VerifiedNode {
        id: node_id.to_string(),
        namespace: namespace.to_string(),
        schema_id: schema_id.to_string(),
        parents,
        author,
        created_at_ms,
        payload: payload.clone(),
        size: unsigned.len() + payload_bytes.len() + signature.len() * 2,
        json: node.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vectors(file: &str) -> Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/vectors")
            .join(file);
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn every_real_peer_state_node_verifies() {
        let dag = vectors("peer_state_dag.json");
        let nodes = dag["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), 12);
        for node in nodes {
            let v = verify(node).unwrap_or_else(|e| panic!("{e}: {node}"));
            assert_eq!(v.schema_id, "peer-state");
            assert!(v.payload.get("subnet_node_id").is_some());
        }
    }

    #[test]
    fn every_real_gossip_message_carries_a_node_that_verifies() {
        let gossip = vectors("peer_state_gossip.json");
        let messages = gossip["messages"].as_array().unwrap();
        assert!(!messages.is_empty());
        for m in messages {
            assert_eq!(m["data"]["kind"], "node_gossip");
            verify(&m["data"]["node"]).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[test]
    fn any_change_to_a_real_node_is_caught() {
        let node = vectors("peer_state_dag.json")["nodes"][0].clone();
        let mut payload = node.clone();
        payload["body"]["payload"]["state"] = Value::from(2);
        assert_eq!(verify(&payload).unwrap_err(), VerifyError::Body);
        let mut meta = node.clone();
        meta["header"]["metadata"]["state"] = Value::from(2);
        assert_eq!(verify(&meta).unwrap_err(), VerifyError::NodeId);
        let mut sig = node.clone();
        let s = sig["header"]["signature"]
            .as_str()
            .unwrap()
            .replacen('e', "f", 1);
        sig["header"]["signature"] = Value::from(s);
        assert_eq!(verify(&sig).unwrap_err(), VerifyError::Signature);
        let mut author = node.clone();
        author["header"]["author"] = Value::from(PeerId::random().to_string());
        assert_eq!(verify(&author).unwrap_err(), VerifyError::NodeId);
        assert!(matches!(
            verify(&Value::from("x")).unwrap_err(),
            VerifyError::Shape(_)
        ));
    }
}

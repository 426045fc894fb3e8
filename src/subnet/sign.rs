//! Signed records as subnet-template nodes write them: peer-state DAG
//! nodes, their gossip envelope, and telemetry events. The demo's peers
//! publish these; `dag::verify` and `telemetry::verify_event` stay the
//! judges (the tests below run every record through them).

use libp2p::identity::Keypair;
use serde_json::{json, Value};

use super::canonical;
use super::dag::digest;

/// The namespace template nodes keep their DAG in.
pub const GENERAL_DAG: &str = "general-dag";

/// A DAG node of `schema_id` over `payload`, signed by `key`, with
/// `parents`, as `{header, body}`.
pub fn dag_node(
    key: &Keypair,
    schema_id: &str,
    payload: &Value,
    parents: &[String],
    created_at_ms: u64,
) -> Result<Value, String> {
    let body = canonical::to_vec(payload).map_err(|e| e.to_string())?;
    let mut header = json!({
        "author": key.public().to_peer_id().to_string(),
        "body_hash": digest(&body),
        "body_size": body.len(),
        "created_at_ms": created_at_ms,
        "metadata": payload,
        "namespace": GENERAL_DAG,
        "parent_ids": parents,
        "public_key": hex::encode(key.public().encode_protobuf()),
        "schema_id": schema_id,
        "version": 1,
    });
    let unsigned = canonical::to_vec(&header).map_err(|e| e.to_string())?;
    let node_id = digest(&unsigned);
    let signature = key.sign(&unsigned).map_err(|e| e.to_string())?;
    header["node_id"] = Value::from(node_id.clone());
    header["signature"] = Value::from(hex::encode(signature));
    Ok(json!({ "header": header, "body": { "node_id": node_id, "payload": payload } }))
}

/// A peer-state payload: the template's numbering of `state` (JOINING 1,
/// ONLINE 2).
pub fn peer_state(
    subnet_id: u64,
    subnet_node_id: u64,
    state: u64,
    epoch: u64,
    multiaddr: &str,
) -> Value {
    json!({
        "epoch": epoch,
        "multiaddr": multiaddr,
        "role": 0,
        "state": state,
        "subnet_id": subnet_id,
        "subnet_node_id": subnet_node_id,
        "uid": format!("node-{subnet_node_id}"),
    })
}

/// The gossip message template nodes publish a DAG node in.
pub fn node_gossip(key: &Keypair, node: &Value, now_ms: u64) -> Vec<u8> {
    let me = key.public().to_peer_id().to_string();
    let id = node["header"]["node_id"].as_str().unwrap_or_default();
    json!({
        "created_at_ms": now_ms,
        "kind": "node_gossip",
        "namespace": GENERAL_DAG,
        "peer_id": me,
        "message_id": format!("node-gossip:{me}:{id}:{now_ms}"),
        "node": node,
    })
    .to_string()
    .into_bytes()
}

/// A telemetry event signed as template nodes sign theirs.
pub fn telemetry_event(
    key: &Keypair,
    event: &str,
    subnet_id: u64,
    subnet_node_id: u64,
    timestamp: f64,
    data: Value,
) -> Result<String, String> {
    let mut v = json!({
        "event": event,
        "timestamp": timestamp,
        "host": "demo",
        "subnet_id": subnet_id,
        "subnet_node_id": subnet_node_id,
        "peer_id": key.public().to_peer_id().to_string(),
        "data": data,
    });
    let bytes = canonical::to_vec(&v).map_err(|e| e.to_string())?;
    v["signature"] = Value::from(hex::encode(key.sign(&bytes).map_err(|e| e.to_string())?));
    v["pubkey"] = Value::from(hex::encode(key.public().encode_protobuf()));
    Ok(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_signed_here_verifies_with_the_verifiers() {
        let key = Keypair::generate_ed25519();
        let first = dag_node(
            &key,
            "peer-state",
            &peer_state(1, 7, 1, 10, "/ip4/127.0.0.1/tcp/1"),
            &[],
            1_700_000_000_000,
        )
        .unwrap();
        let v = crate::subnet::verify(&first).expect("the node verifies");
        assert_eq!(
            (v.schema_id.as_str(), v.author),
            ("peer-state", key.public().to_peer_id())
        );
        let next = dag_node(
            &key,
            "peer-state",
            &peer_state(1, 7, 2, 11, "/ip4/127.0.0.1/tcp/1"),
            std::slice::from_ref(&v.id),
            1_700_000_001_000,
        )
        .unwrap();
        assert_eq!(crate::subnet::verify(&next).unwrap().parents, vec![v.id]);
        let gossip = node_gossip(&key, &next, 1);
        assert!(matches!(
            crate::subnet::gossip::judge(&gossip),
            crate::subnet::gossip::Verdict::Relay(Some(_))
        ));
        let event =
            telemetry_event(&key, "heartbeat", 1, 7, 1795832393.5, json!({"load": 0.5})).unwrap();
        assert!(crate::subnet::telemetry::verify_event(&event).is_ok());
    }
}

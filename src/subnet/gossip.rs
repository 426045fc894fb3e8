//! Gossipsub as template nodes run it: only under `/meshsub/2.0.0` (their
//! `subnet/config.py`), v1.1 semantics, strict signing, their mesh
//! parameters. We subscribe to the operator's topics (default
//! `peer_state`), relay like any peer, and never publish. DAG nodes in
//! `node_gossip` messages are verified before they are relayed: a forged
//! one is rejected (and counted), never passed on.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use libp2p::gossipsub::{self, MessageAuthenticity, ValidationMode, Version};
use libp2p::identity::Keypair;
use serde_json::Value;

use super::dag::{verify, VerifiedNode};

pub const PROTOCOL_MESHSUB_V2: &str = "/meshsub/2.0.0";
/// The template's peer-state topic.
pub const PEER_STATE_TOPIC: &str = "peer_state";
/// Default largest gossip message accepted (template messages are ~1.4 KB).
pub const DEFAULT_MAX_GOSSIP_MESSAGE_BYTES: usize = 64 * 1024;

#[derive(Clone, Debug)]
pub struct GossipConfig {
    /// Join the subnet's gossip at all.
    pub enabled: bool,
    /// Topics subscribed to.
    pub topics: Vec<String>,
    pub max_message_bytes: usize,
    /// Mesh degree and its bounds, as template nodes set them (7, 5-10).
    pub mesh_n: usize,
    pub mesh_n_low: usize,
    pub mesh_n_high: usize,
    pub heartbeat: Duration,
}

impl Default for GossipConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            topics: vec![PEER_STATE_TOPIC.to_string()],
            max_message_bytes: DEFAULT_MAX_GOSSIP_MESSAGE_BYTES,
            mesh_n: 7,
            mesh_n_low: 5,
            mesh_n_high: 10,
            heartbeat: Duration::from_secs(2),
        }
    }
}

/// The gossipsub behaviour for `key`, subscribed to the configured topics.
pub fn behaviour(key: &Keypair, config: &GossipConfig) -> Result<gossipsub::Behaviour, String> {
    let gossip_config = gossipsub::ConfigBuilder::default()
        .protocol_id(PROTOCOL_MESHSUB_V2, Version::V1_1)
        .validation_mode(ValidationMode::Strict)
        .validate_messages()
        .max_transmit_size(config.max_message_bytes)
        .mesh_n(config.mesh_n)
        .mesh_n_low(config.mesh_n_low)
        .mesh_n_high(config.mesh_n_high)
        .mesh_outbound_min(config.mesh_n_low.saturating_sub(1).min(config.mesh_n / 2))
        .heartbeat_interval(config.heartbeat)
        .build()
        .map_err(|e| format!("gossip settings: {e}"))?;
    let mut gossip =
        gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), gossip_config)
            .map_err(|e| format!("gossip: {e}"))?;
    for topic in &config.topics {
        gossip
            .subscribe(&gossipsub::IdentTopic::new(topic.clone()))
            .map_err(|e| format!("cannot subscribe to {topic}: {e}"))?;
    }
    Ok(gossip)
}

/// What a message deserves.
#[derive(Debug)]
pub enum Verdict {
    /// Relay it; with the DAG node it carried, verified.
    Relay(Option<Box<VerifiedNode>>),
    /// Do not relay it, and tell gossipsub the sender misbehaved.
    Reject(String),
}

/// Judges one message's data: a DAG node must verify; anything else on
/// the topic is relayed as it came (we are one peer of the mesh, not its
/// schema police).
pub fn judge(data: &[u8]) -> Verdict {
    let Ok(envelope) = serde_json::from_slice::<Value>(data) else {
        return Verdict::Relay(None);
    };
    if envelope.get("kind").and_then(Value::as_str) != Some("node_gossip") {
        return Verdict::Relay(None);
    }
    let Some(node) = envelope.get("node") else {
        return Verdict::Reject("node_gossip without a node".into());
    };
    match verify(node) {
        Ok(v) => Verdict::Relay(Some(Box::new(v))),
        Err(e) => Verdict::Reject(e.to_string()),
    }
}

/// Counts since start.
#[derive(Debug, Default)]
pub struct GossipCounters {
    pub received: AtomicU64,
    pub rejected: AtomicU64,
    pub dag_stored: AtomicU64,
    pub dag_refused: AtomicU64,
}

impl GossipCounters {
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_gossip_is_relayed_with_its_node_and_forgeries_are_rejected() {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/vectors/peer_state_gossip.json"),
        )
        .unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        let data = serde_json::to_vec(&v["messages"][0]["data"]).unwrap();
        assert!(matches!(judge(&data), Verdict::Relay(Some(_))));
        let mut forged = v["messages"][0]["data"].clone();
        forged["node"]["body"]["payload"]["state"] = Value::from(2);
        let data = serde_json::to_vec(&forged).unwrap();
        assert!(matches!(judge(&data), Verdict::Reject(_)));
        assert!(matches!(judge(b"not json"), Verdict::Relay(None)));
        assert!(matches!(
            judge(br#"{"kind":"announcement"}"#),
            Verdict::Relay(None)
        ));
    }
}

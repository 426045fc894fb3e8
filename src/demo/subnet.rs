//! The demo's peers as members of a small subnet: each publishes its
//! signed peer state on `peer_state` as template nodes do (JOINING, then
//! ONLINE, a chain of DAG nodes it also keeps), and sends signed telemetry
//! to the console node's listener. Records are signed by `subnet::sign`
//! and judged by the same verifier as any peer's, so the Subnet and Events
//! views show what a real subnet would.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::SinkExt;
use libp2p::identity::Keypair;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::node::NodeHandle;
use crate::subnet::sign;

/// The demo subnet's id.
const DEMO_SUBNET: u64 = 1;
/// Peer state is signed again this often (template nodes: about 20 s).
const STATE_EVERY: Duration = Duration::from_secs(10);
/// A telemetry heartbeat this often.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// A demo peer is JOINING for this long, then ONLINE.
const JOINING_FOR: Duration = Duration::from_secs(8);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Runs one demo peer's subnet life until the task is aborted.
pub async fn member(
    handle: NodeHandle,
    key: Keypair,
    subnet_node_id: u64,
    telemetry: Option<std::net::SocketAddr>,
) {
    let started = tokio::time::Instant::now();
    let me = handle
        .listen_addrs()
        .await
        .ok()
        .and_then(|a| a.into_iter().next())
        .map(|a| a.to_string())
        .unwrap_or_default();
    let mut ws = None;
    let mut parent: Vec<String> = Vec::new();
    let mut epoch = 0;
    let mut state_due = tokio::time::Instant::now();
    let mut heartbeat = tokio::time::interval(HEARTBEAT_EVERY);
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(state_due) => {
                let state = if started.elapsed() < JOINING_FOR { 1 } else { 2 };
                match publish_state(&handle, &key, subnet_node_id, state, epoch, &me, &parent).await {
                    Ok(id) => {
                        parent = vec![id];
                        epoch += 1;
                        // Sooner while JOINING, so the change to ONLINE shows early.
                        state_due += if state == 1 { Duration::from_secs(4) } else { STATE_EVERY };
                    }
                    // No mesh peer yet: try again shortly.
                    Err(e) => {
                        tracing::debug!(subnet_node_id, "demo peer state not published yet: {e}");
                        state_due = tokio::time::Instant::now() + Duration::from_secs(1);
                    }
                }
            }
            _ = heartbeat.tick() => {
                let Some(addr) = telemetry else { continue };
                if ws.is_none() {
                    ws = tokio_tungstenite::connect_async(format!("ws://{addr}")).await.ok().map(|(w, _)| w);
                }
                let Some(socket) = ws.as_mut() else { continue };
                let event = if epoch <= 1 { "node_started" } else { "heartbeat" };
                let data = json!({"uptime_s": started.elapsed().as_secs(), "epoch": epoch});
                let ts = now_ms() as f64 / 1000.0;
                let Ok(text) = sign::telemetry_event(&key, event, DEMO_SUBNET, subnet_node_id, ts, data) else {
                    continue;
                };
                if socket.send(Message::text(text)).await.is_err() {
                    ws = None;
                }
            }
        }
    }
}

/// Signs the next peer-state node, keeps it in our DAG and publishes it;
/// its id.
async fn publish_state(
    handle: &NodeHandle,
    key: &Keypair,
    subnet_node_id: u64,
    state: u64,
    epoch: u64,
    multiaddr: &str,
    parents: &[String],
) -> Result<String, String> {
    let payload = sign::peer_state(DEMO_SUBNET, subnet_node_id, state, epoch, multiaddr);
    let node = sign::dag_node(key, "peer-state", &payload, parents, now_ms())?;
    let verified = crate::subnet::verify(&node).map_err(|e| e.to_string())?;
    let id = verified.id.clone();
    handle
        .publish_gossip("peer_state", sign::node_gossip(key, &node, now_ms()))
        .await?;
    if let Ok(mut dag) = handle.dag().lock() {
        dag.ingest(verified);
    }
    Ok(id)
}

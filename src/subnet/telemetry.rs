//! Telemetry that template nodes push with `--telemetry_url`: WebSocket
//! text messages, each a JSON event `{event, timestamp, host, subnet_id,
//! subnet_node_id, peer_id, data, signature, pubkey}` signed over the
//! canonical JSON (sorted keys, no spaces) of the event without
//! `signature` and `pubkey`, by the libp2p key whose peer id it claims.
//! We accept them on `--telemetry-listen`, verify each, and report it;
//! every connection and message is bounded.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::StreamExt;
use libp2p::identity::PublicKey;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use super::canonical;

/// Default largest telemetry message.
pub const DEFAULT_MAX_TELEMETRY_MESSAGE_BYTES: usize = 256 * 1024;
/// Events waiting to be handed on; more are dropped (telemetry must never
/// hold the node back).
pub const TELEMETRY_QUEUE: usize = 4096;
/// Default telemetry connections at once.
pub const DEFAULT_MAX_TELEMETRY_CONNECTIONS: usize = 256;

#[derive(Clone, Debug)]
pub struct TelemetryLimits {
    pub max_message_bytes: usize,
    pub max_connections: usize,
    /// Most connections from one IP (template nodes send from one each).
    pub max_connections_per_ip: usize,
    /// How long a connection has to finish its WebSocket handshake.
    pub handshake_timeout: std::time::Duration,
}

impl Default for TelemetryLimits {
    fn default() -> Self {
        Self {
            max_message_bytes: DEFAULT_MAX_TELEMETRY_MESSAGE_BYTES,
            max_connections: DEFAULT_MAX_TELEMETRY_CONNECTIONS,
            max_connections_per_ip: crate::gate::DEFAULT_MAX_CONNECTIONS_PER_IP,
            handshake_timeout: crate::gate::DEFAULT_HEAD_TIMEOUT,
        }
    }
}

/// Counts since start, for the operator.
#[derive(Debug, Default)]
pub struct TelemetryCounters {
    pub connections: AtomicU64,
    /// Connections refused: as many open as allowed.
    pub refused_busy: AtomicU64,
    /// Connections ended by an error: a message over the limit, a broken
    /// handshake or frame.
    pub broken: AtomicU64,
    pub verified: AtomicU64,
    pub unverified: AtomicU64,
    /// Events dropped because the node was not taking them fast enough.
    pub dropped: AtomicU64,
}

/// One event as it arrived, and whether its signature holds.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct TelemetryEvent {
    /// The sender's socket address.
    pub from: String,
    pub event: Option<String>,
    pub peer_id: Option<String>,
    pub subnet_id: Option<u64>,
    pub subnet_node_id: Option<u64>,
    /// Seconds since the epoch, as the sender stamped it.
    pub timestamp: Option<f64>,
    pub data: Value,
    pub verified: bool,
    /// Why it does not verify.
    pub error: Option<String>,
}

/// Verifies one event's text.
pub fn verify_event(text: &str) -> Result<Value, String> {
    let mut v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let obj = v.as_object_mut().ok_or("not a JSON object")?;
    let signature = obj
        .remove("signature")
        .and_then(|s| s.as_str().map(str::to_string))
        .ok_or("no signature")?;
    let pubkey = obj
        .remove("pubkey")
        .and_then(|s| s.as_str().map(str::to_string))
        .ok_or("no pubkey")?;
    let signed = canonical::to_vec(&v).map_err(|e| e.to_string())?;
    let key = hex::decode(&pubkey)
        .ok()
        .and_then(|b| PublicKey::try_decode_protobuf(&b).ok())
        .ok_or("pubkey is not a libp2p public key")?;
    let signature = hex::decode(&signature).map_err(|_| "signature is not hex")?;
    if !key.verify(&signed, &signature) {
        return Err("signature does not verify".into());
    }
    if v.get("peer_id").and_then(Value::as_str) != Some(key.to_peer_id().to_string().as_str()) {
        return Err("peer_id is not the signing key's".into());
    }
    Ok(v)
}

/// Reads `text` into an event for the operator, verified or not.
pub fn judge(from: &str, text: &str) -> TelemetryEvent {
    let loose: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let get_str = |k: &str| loose.get(k).and_then(Value::as_str).map(str::to_string);
    let get_num = |k: &str| loose.get(k).and_then(Value::as_u64);
    let result = verify_event(text);
    TelemetryEvent {
        from: from.to_string(),
        event: get_str("event"),
        peer_id: get_str("peer_id"),
        subnet_id: get_num("subnet_id"),
        subnet_node_id: get_num("subnet_node_id"),
        timestamp: loose.get("timestamp").and_then(Value::as_f64),
        data: loose.get("data").cloned().unwrap_or(Value::Null),
        verified: result.is_ok(),
        error: result.err(),
    }
}

/// Accepts telemetry on `addr` until the returned task is aborted; each
/// event goes to `sink` (dropped when the sink is full: telemetry must
/// never hold the node back).
pub async fn serve(
    addr: SocketAddr,
    limits: TelemetryLimits,
    sink: mpsc::Sender<TelemetryEvent>,
    counters: Arc<TelemetryCounters>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let gate = crate::gate::Gate::new(crate::gate::GateLimits {
        max_connections: limits.max_connections,
        max_per_ip: limits.max_connections_per_ip,
        head_timeout: limits.handshake_timeout,
    });
    let config = WebSocketConfig::default()
        .max_message_size(Some(limits.max_message_bytes))
        .max_frame_size(Some(limits.max_message_bytes));
    let task = tokio::spawn(async move {
        loop {
            let (tcp, peer, admitted) = gate
                .accept(&listener, |peer, why| {
                    counters.refused_busy.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%peer, ?why, "telemetry connection refused: too many at once");
                })
                .await;
            counters.connections.fetch_add(1, Ordering::Relaxed);
            let sink = sink.clone();
            let counters = counters.clone();
            tokio::spawn(async move {
                // A sender whose handshake request arrived is active: no
                // longer evicted for room.
                // The error type is tungstenite's, not ours to shrink.
                #[allow(clippy::result_large_err)]
                let on_request =
                    |_: &tokio_tungstenite::tungstenite::handshake::server::Request, response| {
                        admitted.active();
                        Ok(response)
                    };
                let handshake = tokio::time::timeout(
                    admitted.head_timeout(),
                    tokio_tungstenite::accept_hdr_async_with_config(tcp, on_request, Some(config)),
                );
                let ws = tokio::select! {
                    ws = handshake => ws,
                    _ = admitted.evicted() => return,
                };
                let Ok(Ok(mut ws)) = ws else {
                    counters.broken.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                let from = peer.to_string();
                while let Some(msg) = ws.next().await {
                    let text = match msg {
                        Ok(Message::Text(t)) => t.to_string(),
                        Ok(Message::Binary(b)) => String::from_utf8_lossy(&b).into_owned(),
                        Ok(Message::Close(_)) => break,
                        Ok(_) => continue,
                        Err(e) => {
                            counters.broken.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(%from, "telemetry connection ended: {e}");
                            break;
                        }
                    };
                    let event = judge(&from, &text);
                    let count = match event.verified {
                        true => &counters.verified,
                        false => &counters.unverified,
                    };
                    count.fetch_add(1, Ordering::Relaxed);
                    if sink.try_send(event).is_err() {
                        counters.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    Ok((local, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(key: &libp2p::identity::Keypair, event: Value) -> String {
        let bytes = canonical::to_vec(&event).unwrap();
        let mut v = event;
        v["signature"] = Value::from(hex::encode(key.sign(&bytes).unwrap()));
        v["pubkey"] = Value::from(hex::encode(key.public().encode_protobuf()));
        v.to_string()
    }

    #[test]
    fn a_signed_event_verifies_and_any_change_does_not() {
        let key = libp2p::identity::Keypair::generate_ed25519();
        let event = serde_json::json!({"event": "node_started", "timestamp": 1795832393.5621457,
            "host": "h", "subnet_id": 1, "subnet_node_id": 2,
            "peer_id": key.public().to_peer_id().to_string(), "data": {"é": [1, 2.5]}});
        let text = signed(&key, event.clone());
        assert!(verify_event(&text).is_ok());
        assert!(judge("x", &text).verified);
        let forged = text.replace("node_started", "node_stopped");
        assert_eq!(
            verify_event(&forged).unwrap_err(),
            "signature does not verify"
        );
        let other = libp2p::identity::Keypair::generate_ed25519();
        let mut claims = event;
        claims["peer_id"] = Value::from(key.public().to_peer_id().to_string());
        let text = signed(&other, claims);
        assert_eq!(
            verify_event(&text).unwrap_err(),
            "peer_id is not the signing key's"
        );
        assert!(!judge("x", "{").verified);
    }
}

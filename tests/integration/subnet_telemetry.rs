//! Template nodes' telemetry (a WebSocket of signed JSON events) against
//! a real py-libp2p-keyed sender and a real node: verified events,
//! forgeries and impostors flagged, and what a sender controls bounded.

use serde_json::Value;

use crate::common::{config, start, within};
use crate::python::{python_for, PyLibp2p};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_from_a_template_style_sender_is_verified_and_forgeries_flagged() {
    use tokio::io::AsyncBufReadExt;
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_peerapi"))
        .args(["telemetry", "--json", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(server.stdout.take().unwrap()).lines();
    let first: Value =
        serde_json::from_str(&within(lines.next_line()).await.unwrap().unwrap()).unwrap();
    let url = first["addr"].as_str().unwrap().to_string();
    let out = within(
        tokio::process::Command::new(python_for(PyLibp2p::V081))
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/interop/telemetry_sender.py"
            ))
            .args([url.as_str(), "--count", "3"])
            .output(),
    )
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("Traceback"),
        "{stderr}"
    );
    let mut events = Vec::new();
    while events.len() < 5 {
        let line = within(lines.next_line())
            .await
            .unwrap()
            .expect("server runs");
        events.push(serde_json::from_str::<Value>(&line).unwrap());
    }
    let verified: Vec<&Value> = events.iter().filter(|e| e["verified"] == true).collect();
    assert_eq!(verified.len(), 3, "{events:#?}");
    assert!(verified
        .iter()
        .all(|e| e["event"] == "api_call_remote" && e["subnet_node_id"] == 7));
    let errors: Vec<&str> = events.iter().filter_map(|e| e["error"].as_str()).collect();
    assert_eq!(
        errors,
        [
            "signature does not verify",
            "peer_id is not the signing key's"
        ]
    );
}

/// A template-style signed telemetry event (see telemetry_sender.py).
fn signed_event(key: &libp2p::identity::Keypair, event: &str) -> String {
    let body = serde_json::json!({"event": event, "timestamp": 1795832393.25, "host": "h",
        "subnet_id": 1, "subnet_node_id": 9, "peer_id": key.public().to_peer_id().to_string(),
        "data": {}});
    let bytes = peerapi::subnet::canonical::to_vec(&body).unwrap();
    let mut v = body;
    v["signature"] = hex::encode(key.sign(&bytes).unwrap()).into();
    v["pubkey"] = hex::encode(key.public().encode_protobuf()).into();
    v.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_takes_telemetry_as_events_and_bounds_what_senders_control() {
    use futures::{SinkExt, StreamExt};
    use std::sync::atomic::Ordering::Relaxed;
    use tokio_tungstenite::tungstenite::Message;
    let mut cfg = config();
    cfg.subnet.telemetry_listen = Some("127.0.0.1:0".parse().unwrap());
    cfg.subnet.telemetry.max_connections = 3;
    cfg.subnet.telemetry.max_message_bytes = 4096;
    let (node, _) = start(cfg).await;
    let h = node.handle();
    let mut events = h.subscribe();
    let url = format!("ws://{}", h.telemetry_addr().expect("telemetry bound"));
    async fn telemetry(
        events: &mut tokio::sync::broadcast::Receiver<peerapi::NodeEvent>,
    ) -> peerapi::subnet::TelemetryEvent {
        within(async {
            loop {
                if let peerapi::NodeEvent::Telemetry(ev) = events.recv().await.expect("events") {
                    return *ev;
                }
            }
        })
        .await
    }

    // The template-style sender (py-libp2p keys, trio-websocket).
    let out = within(
        tokio::process::Command::new(python_for(PyLibp2p::V081))
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/interop/telemetry_sender.py"
            ))
            .args([url.as_str(), "--count", "2"])
            .output(),
    )
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("Traceback"),
        "{stderr}"
    );
    let mut got = Vec::new();
    for _ in 0..4 {
        let ev = telemetry(&mut events).await;
        got.push((ev.verified, ev.error.clone()));
    }
    assert_eq!(got.iter().filter(|(v, _)| *v).count(), 2, "{got:?}");
    assert!(got.contains(&(false, Some("signature does not verify".into()))));

    // As many connections as allowed, held open: one more is refused.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(
            within(tokio_tungstenite::connect_async(url.as_str()))
                .await
                .unwrap()
                .0,
        );
    }
    // The accept loop takes connections in order: once the held ones are
    // counted, the next is refused (the handshake fails).
    let refused = within(tokio_tungstenite::connect_async(url.as_str())).await;
    assert!(refused.is_err(), "a fourth connection was accepted");
    assert_eq!(h.telemetry_counters().refused_busy.load(Relaxed), 1);

    // Invalid JSON is shown, flagged; an oversized message ends its connection.
    held[0].send(Message::text("{not json")).await.unwrap();
    let ev = telemetry(&mut events).await;
    assert!(
        !ev.verified && ev.error.as_deref().unwrap().starts_with("not JSON"),
        "{ev:?}"
    );
    held[1].send(Message::text("x".repeat(8192))).await.unwrap();
    let ended = within(async { held[1].next().await }).await;
    assert!(!matches!(ended, Some(Ok(Message::Text(_)))), "{ended:?}");

    // Their slots come back: a new sender is heard, verified.
    drop(held);
    let key = libp2p::identity::Keypair::generate_ed25519();
    let mut sender = within(async {
        loop {
            if let Ok((ws, _)) = tokio_tungstenite::connect_async(url.as_str()).await {
                return ws;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    sender
        .send(Message::text(signed_event(&key, "after")))
        .await
        .unwrap();
    let ev = telemetry(&mut events).await;
    assert!(
        ev.verified && ev.event.as_deref() == Some("after"),
        "{ev:?}"
    );
    assert!(h.telemetry_counters().broken.load(Relaxed) >= 1);
    node.abort();
}

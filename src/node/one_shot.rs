//! How a one-shot command's node ends. A process that exits the moment its
//! call is answered cuts the peer's identify answer mid-write, and a
//! py-libp2p node logs a traceback for it ("Error sending identify
//! response ... Broken pipe"). So: wait (bounded) until every connected
//! peer's identify has arrived, close each connection, then stop.

use std::time::Duration;

use tokio::time::Instant;

use super::{Node, NodeEvent};

/// The longest a one-shot command waits for identify to finish and its
/// connections to close before it exits anyway.
pub const ONE_SHOT_CLOSE_WITHIN: Duration = Duration::from_secs(2);

impl Node {
    /// Ends a node that only called: identify settled with every peer
    /// (within `within`), connections closed, then stopped.
    pub async fn close_gently(self, within: Duration) {
        let handle = self.handle();
        let mut events = handle.subscribe();
        let deadline = Instant::now() + within;
        loop {
            let Ok(peers) = handle.peers().await else {
                break;
            };
            if peers.iter().all(|p| p.agent.is_some()) {
                for p in &peers {
                    handle.disconnect(p.peer);
                }
                if peers.is_empty() {
                    break;
                }
            }
            // The next change (an identify, a disconnection), or the end.
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Err(_) => break,
                Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => break,
                Ok(Ok(NodeEvent::PeerIdentified { .. } | NodeEvent::PeerDisconnected { .. }))
                | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
                Ok(Ok(_)) => continue,
            }
        }
        self.shutdown().await;
    }
}

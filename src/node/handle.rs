//! The cheap, cloneable handle to a running node, and the commands it
//! sends to the swarm's task. (The calling methods, `call`, `stream` and
//! their kin, are the client half in `call.rs`.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::channel::oneshot;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::{broadcast, mpsc};

use super::call::{self, CallError, CallOptions};
use super::events::{CallId, NodeEvent, PeerInfo};
use super::{api, NodeError};
use crate::routes::Routes;

pub(crate) enum Command {
    Dial {
        addr: Multiaddr,
        peer: PeerId,
        reply: oneshot::Sender<Result<(), String>>,
    },
    Disconnect {
        peer: PeerId,
    },
    Peers {
        reply: oneshot::Sender<Vec<PeerInfo>>,
    },
    ListenAddrs {
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    Stop,
}

pub(crate) struct Shared {
    pub(crate) local_peer_id: PeerId,
    pub(crate) commands: mpsc::UnboundedSender<Command>,
    pub(crate) connections: api::Connections,
    pub(crate) events: broadcast::Sender<NodeEvent>,
    pub(crate) next_call_id: Arc<AtomicU64>,
    pub(crate) routes: Routes,
    pub(crate) call_options: CallOptions,
}

/// A cheap, cloneable handle to a running node.
#[derive(Clone)]
pub struct NodeHandle {
    pub(crate) shared: Arc<Shared>,
}

impl NodeHandle {
    pub fn local_peer_id(&self) -> PeerId {
        self.shared.local_peer_id
    }

    /// The live route table this node serves.
    pub fn routes(&self) -> &Routes {
        &self.shared.routes
    }

    /// Node events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.shared.events.subscribe()
    }

    pub(crate) fn next_call_id(&self) -> CallId {
        CallId(self.shared.next_call_id.fetch_add(1, Ordering::Relaxed))
    }

    pub(crate) fn emit(&self, event: NodeEvent) {
        let _ = self.shared.events.send(event);
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NodeError> {
        let (tx, rx) = oneshot::channel();
        self.shared
            .commands
            .send(make(tx))
            .map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)
    }

    /// Our listen addresses, each ending in `/p2p/<peer id>`.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NodeError> {
        self.ask(|reply| Command::ListenAddrs { reply }).await
    }

    /// Connected peers and what we know of them.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, NodeError> {
        self.ask(|reply| Command::Peers { reply }).await
    }

    /// Connects to `addr` (which must end in `/p2p/<peer id>`), if not connected yet.
    pub async fn dial(&self, addr: &Multiaddr) -> Result<PeerId, CallError> {
        let peer = call::peer_of(addr)?;
        if self.shared.connections.is_connected(&peer) {
            return Ok(peer);
        }
        let addr = addr.clone();
        self.ask(|reply| Command::Dial { addr, peer, reply })
            .await
            .map_err(|_| CallError::NodeStopped)?
            .map_err(|message| CallError::DialFailed { peer, message })?;
        Ok(peer)
    }

    /// Closes every connection to `peer`.
    pub fn disconnect(&self, peer: PeerId) {
        let _ = self.shared.commands.send(Command::Disconnect { peer });
    }
}

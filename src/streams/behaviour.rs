//! Our own network behaviour for API streams.
//!
//! Inbound: every negotiated stream is handed to the server's dispatch
//! function right on the connection's task, which starts serving it or
//! answers "overloaded" explicitly. (libp2p-stream 0.5.0-alpha's `accept`
//! holds a single stream and silently drops the rest while the application
//! is busy.)
//!
//! Outbound: callers send open requests straight to a connection's handler
//! through the shared [`Connections`] registry, without a round trip through
//! the swarm's task, and any number of streams may be negotiating at once
//! (libp2p-stream allows one at a time).
//!
//! Negotiation: the swarm runs multistream-select in its lazy variant, which
//! sends the request right behind the protocol proposal when one protocol is
//! left to try (one round trip less per call). A call therefore proposes a
//! single protocol only where identify confirmed the peer speaks it;
//! otherwise [`NEGOTIATION_SENTINEL`] goes last, so every real proposal is
//! answered before anything is sent and a refusal stays a clean
//! "unsupported".

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::channel::oneshot;
use libp2p::core::transport::PortUse;
use libp2p::core::upgrade::{InboundUpgrade, OutboundUpgrade, UpgradeInfo};
use libp2p::core::Endpoint;
use libp2p::swarm::handler::{
    ConnectionEvent, DialUpgradeError, FullyNegotiatedInbound, FullyNegotiatedOutbound,
};
use libp2p::swarm::{
    ConnectionClosed, ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId,
    FromSwarm, NetworkBehaviour, Stream, StreamProtocol, StreamUpgradeError, SubstreamProtocol,
    THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};

/// Default most inbound streams being answered at once beyond the call
/// limits (each is refused "overloaded" quickly); past it they are refused
/// without a task of their own.
pub const DEFAULT_INBOUND_QUEUE_DEPTH: usize = 1024;
pub use super::lazy::NEGOTIATION_SENTINEL;
use super::outbound::OutboundStream;
/// How long protocol negotiation of a new outbound stream may take.
pub const OPEN_STREAM_TIMEOUT: Duration = Duration::from_secs(10);

/// A negotiated inbound stream waiting to be served.
pub struct InboundStream {
    pub peer: PeerId,
    /// The connection's remote IP, for per-IP budgets.
    pub remote_ip: Option<std::net::IpAddr>,
    pub protocol: StreamProtocol,
    pub stream: Stream,
}

/// Why an outbound stream could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("peer does not support any of the protocols {0:?}")]
    Unsupported(Vec<String>),
    #[error("stream negotiation timed out")]
    Timeout,
    #[error("i/o while opening stream: {0}")]
    Io(#[from] std::io::Error),
    #[error("connection closed before the stream was opened")]
    ConnectionClosed,
}

type OpenReply = oneshot::Sender<Result<(Stream, StreamProtocol), OpenError>>;

/// Request to a connection handler to open one stream.
#[derive(Debug)]
pub struct OpenStream {
    protocols: Vec<StreamProtocol>,
    reply: OpenReply,
}

/// Takes each negotiated inbound stream, on the connection's task: it must
/// start serving it or answer and close it explicitly, never just drop it.
pub type Dispatch = Arc<dyn Fn(InboundStream) + Send + Sync>;

struct PeerConnections {
    /// Open-request channels of this peer's live connections, oldest first.
    handlers: Vec<(ConnectionId, tokio::sync::mpsc::UnboundedSender<OpenStream>)>,
    /// What identify says the peer speaks; `None` until it has answered.
    protocols: Option<Arc<Vec<String>>>,
}

/// Live connections and what their peers speak, shared by the swarm's
/// handlers and every [`NodeHandle`](super::NodeHandle).
#[derive(Clone, Default)]
pub(crate) struct Connections(Arc<Mutex<HashMap<PeerId, PeerConnections>>>);

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PeerId, PeerConnections>> {
        // A panic elsewhere while holding the lock leaves a usable map.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn is_connected(&self, peer: &PeerId) -> bool {
        self.lock()
            .get(peer)
            .is_some_and(|p| !p.handlers.is_empty())
    }

    /// Records what identify reported for `peer`.
    pub(crate) fn set_protocols(&self, peer: PeerId, protocols: Vec<String>) {
        if let Some(p) = self.lock().get_mut(&peer) {
            p.protocols = Some(Arc::new(protocols));
        }
    }

    fn register(
        &self,
        peer: PeerId,
        id: ConnectionId,
        tx: tokio::sync::mpsc::UnboundedSender<OpenStream>,
    ) {
        self.lock()
            .entry(peer)
            .or_insert_with(|| PeerConnections {
                handlers: Vec::new(),
                protocols: None,
            })
            .handlers
            .push((id, tx));
    }

    fn unregister(&self, peer: PeerId, id: ConnectionId) {
        let mut map = self.lock();
        if let Some(p) = map.get_mut(&peer) {
            p.handlers.retain(|(c, _)| *c != id);
            if p.handlers.is_empty() {
                map.remove(&peer);
            }
        }
    }

    /// Asks a connection to `peer` to open a stream with the first of
    /// `wanted` the peer accepts. Resolves with the stream and the protocol
    /// agreed on.
    pub(crate) async fn open(
        &self,
        peer: PeerId,
        wanted: &[&'static str],
    ) -> Result<(OutboundStream, StreamProtocol), OpenError> {
        let (tx, rx) = oneshot::channel();
        {
            let mut map = self.lock();
            let Some(conns) = map.get_mut(&peer) else {
                return Err(OpenError::ConnectionClosed);
            };
            let protocols = proposals(wanted, conns.protocols.as_deref().map(Vec::as_slice));
            let mut open = OpenStream {
                protocols,
                reply: tx,
            };
            // A handler whose connection is gone (or was denied before the
            // swarm reported it) has dropped its receiver: skip it.
            loop {
                let Some((_, handler)) = conns.handlers.first() else {
                    map.remove(&peer);
                    return Err(OpenError::ConnectionClosed);
                };
                match handler.send(open) {
                    Ok(()) => break,
                    Err(tokio::sync::mpsc::error::SendError(back)) => {
                        open = back;
                        conns.handlers.remove(0);
                    }
                }
            }
        }
        let (stream, protocol) = rx.await.map_err(|_| OpenError::ConnectionClosed)??;
        Ok((OutboundStream::new(stream), protocol))
    }
}

/// What to propose for `wanted` (in order of preference) to a peer that
/// identify says speaks `known`.
fn proposals(wanted: &[&'static str], known: Option<&[String]>) -> Vec<StreamProtocol> {
    if let Some(known) = known {
        // Confirmed: propose only the best one the peer has, lazily.
        if let Some(p) = wanted.iter().find(|w| known.iter().any(|k| k == *w)) {
            return vec![StreamProtocol::new(p)];
        }
    }
    wanted
        .iter()
        .map(|p| StreamProtocol::new(p))
        .chain(std::iter::once(StreamProtocol::new(NEGOTIATION_SENTINEL)))
        .collect()
}

/// Node-wide peer access: who may connect at all (the same filter a
/// route's policy uses for who may call it).
pub type PeerAccess = crate::routes::PeerFilter;

#[derive(Debug, thiserror::Error)]
#[error("peer {0} is not admitted by this node's allow/deny lists")]
struct NotAdmitted(PeerId);

pub struct Behaviour {
    access: PeerAccess,
    inbound_protocols: Vec<StreamProtocol>,
    dispatch: Dispatch,
    connections: Connections,
}

impl Behaviour {
    pub(crate) fn new(
        access: PeerAccess,
        inbound_protocols: Vec<StreamProtocol>,
        dispatch: Dispatch,
        connections: Connections,
    ) -> Self {
        Self {
            access,
            inbound_protocols,
            dispatch,
            connections,
        }
    }

    fn handler(
        &self,
        peer: PeerId,
        id: ConnectionId,
        remote: &Multiaddr,
    ) -> Result<Handler, ConnectionDenied> {
        // Like libp2p's allow/block lists: a peer not admitted is refused
        // as soon as its identity is known, in either direction.
        if !self.access.admits(&peer) {
            tracing::info!(%peer, "refusing connection: peer not admitted");
            return Err(ConnectionDenied::new(NotAdmitted(peer)));
        }
        let (tx, opens) = tokio::sync::mpsc::unbounded_channel();
        self.connections.register(peer, id, tx);
        Ok(Handler {
            peer,
            remote_ip: super::ip_limit::ip_of(remote),
            inbound_protocols: self.inbound_protocols.clone(),
            dispatch: self.dispatch.clone(),
            opens,
        })
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = Handler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.handler(peer, id, remote)
    }

    fn handle_established_outbound_connection(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        remote: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.handler(peer, id, remote)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        if let FromSwarm::ConnectionClosed(ConnectionClosed {
            peer_id,
            connection_id,
            ..
        }) = event
        {
            self.connections.unregister(peer_id, connection_id);
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

pub struct Handler {
    peer: PeerId,
    remote_ip: Option<std::net::IpAddr>,
    inbound_protocols: Vec<StreamProtocol>,
    dispatch: Dispatch,
    opens: tokio::sync::mpsc::UnboundedReceiver<OpenStream>,
}

impl ConnectionHandler for Handler {
    type FromBehaviour = Infallible;
    type ToBehaviour = Infallible;
    type InboundProtocol = Upgrade;
    type OutboundProtocol = Upgrade;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = OpenReply;

    fn listen_protocol(&self) -> SubstreamProtocol<Upgrade, ()> {
        SubstreamProtocol::new(Upgrade(self.inbound_protocols.clone()), ())
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<Upgrade, OpenReply, Infallible>> {
        match self.opens.poll_recv(cx) {
            Poll::Ready(Some(open)) => {
                Poll::Ready(ConnectionHandlerEvent::OutboundSubstreamRequest {
                    protocol: SubstreamProtocol::new(Upgrade(open.protocols), open.reply)
                        .with_timeout(OPEN_STREAM_TIMEOUT),
                })
            }
            // All senders gone: the registry dropped this connection.
            Poll::Ready(None) | Poll::Pending => Poll::Pending,
        }
    }

    fn on_behaviour_event(&mut self, event: Infallible) {
        match event {}
    }

    fn on_connection_event(&mut self, event: ConnectionEvent<Upgrade, Upgrade, (), OpenReply>) {
        match event {
            ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound {
                protocol: (stream, protocol),
                ..
            }) => {
                (self.dispatch)(InboundStream {
                    peer: self.peer,
                    remote_ip: self.remote_ip,
                    protocol,
                    stream,
                });
            }
            ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound {
                protocol: (stream, protocol),
                info: reply,
            }) => {
                // Settling on the sentinel means the peer refused the rest;
                // dropping the stream resets it.
                let _ = if protocol.as_ref() == NEGOTIATION_SENTINEL {
                    reply.send(Err(OpenError::Unsupported(vec![])))
                } else {
                    reply.send(Ok((stream, protocol)))
                };
            }
            ConnectionEvent::DialUpgradeError(DialUpgradeError { info: reply, error }) => {
                let err = match error {
                    StreamUpgradeError::Timeout => OpenError::Timeout,
                    StreamUpgradeError::NegotiationFailed => OpenError::Unsupported(vec![]),
                    StreamUpgradeError::Io(e) => OpenError::Io(e),
                    StreamUpgradeError::Apply(never) => match never {},
                };
                let _ = reply.send(Err(err));
            }
            _ => {}
        }
    }
}

/// Offers a list of protocols and hands over the raw stream with the one chosen.
#[derive(Clone, Debug)]
pub struct Upgrade(Vec<StreamProtocol>);

impl UpgradeInfo for Upgrade {
    type Info = StreamProtocol;
    type InfoIter = std::vec::IntoIter<StreamProtocol>;

    fn protocol_info(&self) -> Self::InfoIter {
        self.0.clone().into_iter()
    }
}

impl InboundUpgrade<Stream> for Upgrade {
    type Output = (Stream, StreamProtocol);
    type Error = Infallible;
    type Future = futures::future::Ready<Result<Self::Output, Infallible>>;

    fn upgrade_inbound(self, socket: Stream, info: StreamProtocol) -> Self::Future {
        futures::future::ready(Ok((socket, info)))
    }
}

impl OutboundUpgrade<Stream> for Upgrade {
    type Output = (Stream, StreamProtocol);
    type Error = Infallible;
    type Future = futures::future::Ready<Result<Self::Output, Infallible>>;

    fn upgrade_outbound(self, socket: Stream, info: StreamProtocol) -> Self::Future {
        futures::future::ready(Ok((socket, info)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{PROTOCOL_V1, PROTOCOL_V2};

    fn names(p: Vec<StreamProtocol>) -> Vec<String> {
        p.into_iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn confirmed_protocol_is_proposed_alone() {
        let known = vec![PROTOCOL_V1.to_string(), PROTOCOL_V2.to_string()];
        assert_eq!(
            names(proposals(&[PROTOCOL_V2, PROTOCOL_V1], Some(&known))),
            vec![PROTOCOL_V2]
        );
        let python = vec![PROTOCOL_V1.to_string()];
        assert_eq!(
            names(proposals(&[PROTOCOL_V2, PROTOCOL_V1], Some(&python))),
            vec![PROTOCOL_V1]
        );
    }

    #[test]
    fn unconfirmed_proposals_end_in_the_sentinel() {
        assert_eq!(
            names(proposals(&[PROTOCOL_V2, PROTOCOL_V1], None)),
            vec![PROTOCOL_V2, PROTOCOL_V1, NEGOTIATION_SENTINEL]
        );
        // Identify answered but without the protocol: ask properly, so the
        // refusal is a clean "unsupported".
        let python = vec![PROTOCOL_V1.to_string()];
        assert_eq!(
            names(proposals(&[PROTOCOL_V2], Some(&python))),
            vec![PROTOCOL_V2, NEGOTIATION_SENTINEL]
        );
    }
}

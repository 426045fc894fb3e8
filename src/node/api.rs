//! Our own network behaviour for API streams.
//!
//! Inbound: every negotiated stream goes into one bounded queue that the
//! serving task drains. libp2p-stream 0.5.0-alpha's `accept` holds a single
//! stream and silently drops the rest while the application is busy; here
//! nothing is dropped silently: when the queue is full the stream is answered
//! with an explicit "overloaded" reply and closed.
//!
//! Outbound: any number of streams may be negotiating at once on one
//! connection (libp2p-stream allows one at a time).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures::channel::oneshot;
use libp2p::core::transport::PortUse;
use libp2p::core::upgrade::{InboundUpgrade, OutboundUpgrade, UpgradeInfo};
use libp2p::core::Endpoint;
use libp2p::swarm::handler::{
    ConnectionEvent, DialUpgradeError, FullyNegotiatedInbound, FullyNegotiatedOutbound,
};
use libp2p::swarm::{
    ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm,
    NetworkBehaviour, NotifyHandler, Stream, StreamProtocol, StreamUpgradeError, SubstreamProtocol,
    THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};
use tokio::sync::mpsc;

/// Default depth of the queue between the swarm and the serving task.
pub const DEFAULT_INBOUND_QUEUE_DEPTH: usize = 1024;
/// How long protocol negotiation of a new outbound stream may take.
pub const OPEN_STREAM_TIMEOUT: Duration = Duration::from_secs(10);

/// A negotiated inbound stream waiting to be served.
pub struct InboundStream {
    pub peer: PeerId,
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

/// Called with a stream that found the queue full: it must answer and close
/// it explicitly (on a runtime of its own), never just drop it.
pub type Refuser = std::sync::Arc<dyn Fn(InboundStream) + Send + Sync>;

/// Node-wide peer access: who may connect at all.
#[derive(Clone, Debug, Default)]
pub struct PeerAccess {
    /// Only these peers may connect; `None` admits everyone not denied.
    pub allow: Option<Vec<PeerId>>,
    pub deny: Vec<PeerId>,
}

impl PeerAccess {
    pub fn admits(&self, peer: &PeerId) -> bool {
        !self.deny.contains(peer) && self.allow.as_ref().is_none_or(|a| a.contains(peer))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("peer {0} is not admitted by this node's allow/deny lists")]
struct NotAdmitted(PeerId);

pub struct Behaviour {
    access: PeerAccess,
    inbound_protocols: Vec<StreamProtocol>,
    inbound_tx: mpsc::Sender<InboundStream>,
    refuse: Refuser,
    pending: VecDeque<ToSwarm<Infallible, OpenStream>>,
    waker: Option<Waker>,
}

impl Behaviour {
    pub fn new(
        access: PeerAccess,
        inbound_protocols: Vec<StreamProtocol>,
        inbound_tx: mpsc::Sender<InboundStream>,
        refuse: Refuser,
    ) -> Self {
        Self {
            access,
            inbound_protocols,
            inbound_tx,
            refuse,
            pending: VecDeque::new(),
            waker: None,
        }
    }

    /// Asks a connection to `peer` to open a stream offering `protocols` in order.
    pub fn open(&mut self, peer: PeerId, protocols: Vec<StreamProtocol>, reply: OpenReply) {
        self.pending.push_back(ToSwarm::NotifyHandler {
            peer_id: peer,
            handler: NotifyHandler::Any,
            event: OpenStream { protocols, reply },
        });
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    fn handler(&self, peer: PeerId) -> Result<Handler, ConnectionDenied> {
        // Like libp2p's allow/block lists: a peer not admitted is refused
        // as soon as its identity is known, in either direction.
        if !self.access.admits(&peer) {
            tracing::info!(%peer, "refusing connection: peer not admitted");
            return Err(ConnectionDenied::new(NotAdmitted(peer)));
        }
        Ok(Handler {
            peer,
            inbound_protocols: self.inbound_protocols.clone(),
            inbound_tx: self.inbound_tx.clone(),
            refuse: self.refuse.clone(),
            opens: VecDeque::new(),
            waker: None,
        })
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = Handler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.handler(peer)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.handler(peer)
    }

    fn on_swarm_event(&mut self, _: FromSwarm) {}

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        if let Some(ev) = self.pending.pop_front() {
            return Poll::Ready(ev);
        }
        self.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

pub struct Handler {
    peer: PeerId,
    inbound_protocols: Vec<StreamProtocol>,
    inbound_tx: mpsc::Sender<InboundStream>,
    refuse: Refuser,
    opens: VecDeque<OpenStream>,
    waker: Option<Waker>,
}

impl ConnectionHandler for Handler {
    type FromBehaviour = OpenStream;
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
        if let Some(open) = self.opens.pop_front() {
            return Poll::Ready(ConnectionHandlerEvent::OutboundSubstreamRequest {
                protocol: SubstreamProtocol::new(Upgrade(open.protocols), open.reply)
                    .with_timeout(OPEN_STREAM_TIMEOUT),
            });
        }
        self.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    fn on_behaviour_event(&mut self, event: OpenStream) {
        self.opens.push_back(event);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    fn on_connection_event(&mut self, event: ConnectionEvent<Upgrade, Upgrade, (), OpenReply>) {
        match event {
            ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound {
                protocol: (stream, protocol),
                ..
            }) => {
                let inbound = InboundStream {
                    peer: self.peer,
                    protocol,
                    stream,
                };
                match self.inbound_tx.try_send(inbound) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(inbound)) => {
                        tracing::warn!(peer = %self.peer, "inbound queue full: refusing stream");
                        (self.refuse)(inbound);
                    }
                    Err(mpsc::error::TrySendError::Closed(inbound)) => {
                        // Shutting down: the server no longer takes calls.
                        (self.refuse)(inbound);
                    }
                }
            }
            ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound {
                protocol: (stream, protocol),
                info: reply,
            }) => {
                let _ = reply.send(Ok((stream, protocol)));
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

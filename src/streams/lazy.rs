//! Lazy negotiation only where identify confirmed the protocol.
//!
//! The swarm runs multistream-select in its lazy variant (V1Lazy): when one
//! protocol is left to propose, the payload follows the proposal without
//! waiting for the answer. That saves a round trip per stream, but a peer
//! that lacks the protocol answers `na` and then reads our payload as its
//! next protocol name; py-libp2p 0.8.1 dies of that (`UnicodeDecodeError`
//! in multistream-select, taking the whole host down).
//!
//! [`Confirmed`] wraps a stock behaviour (identify, ping, Kademlia): each
//! outbound stream of its handler proposes the behaviour's own protocols and,
//! unless identify has confirmed the last of them for this connection, then
//! [`NEGOTIATION_SENTINEL`]. Lazy negotiation only ever settles on the last
//! proposal, so every real proposal waits for its answer; landing on the
//! sentinel means the peer refused them all, which the wrapped handler sees
//! as a clean `NegotiationFailed`. The API behaviour does the same in
//! [`super::api`].

use std::collections::HashSet;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use futures::FutureExt;
use libp2p::core::transport::PortUse;
use libp2p::core::upgrade::UpgradeInfo;
use libp2p::core::Endpoint;
use libp2p::swarm::handler::{
    ConnectionEvent, DialUpgradeError, FullyNegotiatedInbound, FullyNegotiatedOutbound,
    InboundUpgradeSend, ListenUpgradeError, OutboundUpgradeSend, ProtocolsChange, UpgradeInfoSend,
};
use libp2p::swarm::{
    ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm,
    NetworkBehaviour, Stream, StreamProtocol, StreamUpgradeError, SubstreamProtocol, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};

/// Proposed last where identify has not confirmed a protocol, never served:
/// the swarm's lazy negotiation settles on it without asking, and having
/// settled on it means every real proposal was refused.
pub const NEGOTIATION_SENTINEL: &str = "/peerapi/no-protocol-agreed/0";

/// A behaviour whose outbound streams are proposed lazily only where
/// identify confirmed the protocol on that connection.
pub struct Confirmed<B> {
    inner: B,
    streams_keep_alive: bool,
}

impl<B> Confirmed<B> {
    pub fn new(inner: B) -> Self {
        Self {
            inner,
            streams_keep_alive: true,
        }
    }

    /// For a behaviour that holds a stream open for the connection's life
    /// (gossipsub): its streams do not keep the connection open, its
    /// handler's own keep-alive does (gossipsub: mesh membership). Otherwise
    /// such a stream keeps every connection ever made open for good, and a
    /// subnet becomes a full mesh.
    pub fn idle_streams(inner: B) -> Self {
        Self {
            inner,
            streams_keep_alive: false,
        }
    }
}

impl<B> std::ops::Deref for Confirmed<B> {
    type Target = B;
    fn deref(&self) -> &B {
        &self.inner
    }
}

impl<B> std::ops::DerefMut for Confirmed<B> {
    fn deref_mut(&mut self) -> &mut B {
        &mut self.inner
    }
}

impl<B: NetworkBehaviour> NetworkBehaviour for Confirmed<B> {
    type ConnectionHandler = ConfirmedHandler<THandler<B>>;
    type ToSwarm = B::ToSwarm;

    fn handle_pending_inbound_connection(
        &mut self,
        id: ConnectionId,
        local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.inner
            .handle_pending_inbound_connection(id, local, remote)
    }

    fn handle_established_inbound_connection(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.inner
            .handle_established_inbound_connection(id, peer, local, remote)
            .map(|h| ConfirmedHandler::new(h, self.streams_keep_alive))
    }

    fn handle_pending_outbound_connection(
        &mut self,
        id: ConnectionId,
        peer: Option<PeerId>,
        addresses: &[Multiaddr],
        effective_role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        self.inner
            .handle_pending_outbound_connection(id, peer, addresses, effective_role)
    }

    fn handle_established_outbound_connection(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        role_override: Endpoint,
        port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.inner
            .handle_established_outbound_connection(id, peer, addr, role_override, port_use)
            .map(|h| ConfirmedHandler::new(h, self.streams_keep_alive))
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        self.inner.on_swarm_event(event)
    }

    fn on_connection_handler_event(
        &mut self,
        peer: PeerId,
        id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        self.inner.on_connection_handler_event(peer, id, event)
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        self.inner.poll(cx)
    }
}

/// The wrapped handler and what the remote confirmed on this connection.
pub struct ConfirmedHandler<H> {
    inner: H,
    confirmed: HashSet<StreamProtocol>,
    streams_keep_alive: bool,
}

impl<H> ConfirmedHandler<H> {
    fn new(inner: H, streams_keep_alive: bool) -> Self {
        Self {
            inner,
            confirmed: HashSet::new(),
            streams_keep_alive,
        }
    }
}

/// An inner upgrade, with the sentinel proposed after it unless confirmed.
pub struct WithSentinel<U> {
    inner: U,
    sentinel: bool,
    keep_alive: bool,
}

/// An inner inbound upgrade whose stream may be told not to keep the
/// connection open.
pub struct Inbound<U> {
    inner: U,
    keep_alive: bool,
}

impl<U: UpgradeInfoSend> UpgradeInfo for Inbound<U> {
    type Info = U::Info;
    type InfoIter = U::InfoIter;

    fn protocol_info(&self) -> Self::InfoIter {
        self.inner.protocol_info()
    }
}

impl<U: InboundUpgradeSend> libp2p::core::upgrade::InboundUpgrade<Stream> for Inbound<U> {
    type Output = U::Output;
    type Error = U::Error;
    type Future = U::Future;

    fn upgrade_inbound(self, mut stream: Stream, info: Self::Info) -> Self::Future {
        if !self.keep_alive {
            stream.ignore_for_keep_alive();
        }
        self.inner.upgrade_inbound(stream, info)
    }
}

/// One proposal: one of the inner upgrade's, or the sentinel.
#[derive(Clone)]
pub enum Proposal<I> {
    Inner(I),
    Sentinel,
}

impl<I: AsRef<str>> AsRef<str> for Proposal<I> {
    fn as_ref(&self) -> &str {
        match self {
            Proposal::Inner(i) => i.as_ref(),
            Proposal::Sentinel => NEGOTIATION_SENTINEL,
        }
    }
}

/// The outcome of landing on the sentinel, or the inner upgrade's error.
#[derive(Debug)]
pub enum SentinelError<E> {
    Inner(E),
    Refused,
}

impl<U: OutboundUpgradeSend> UpgradeInfo for WithSentinel<U> {
    type Info = Proposal<U::Info>;
    type InfoIter = std::vec::IntoIter<Self::Info>;

    fn protocol_info(&self) -> Self::InfoIter {
        let mut all: Vec<_> = self.inner.protocol_info().map(Proposal::Inner).collect();
        if self.sentinel {
            all.push(Proposal::Sentinel);
        }
        all.into_iter()
    }
}

impl<U: OutboundUpgradeSend> libp2p::core::upgrade::OutboundUpgrade<Stream> for WithSentinel<U> {
    type Output = U::Output;
    type Error = SentinelError<U::Error>;
    type Future = BoxFuture<'static, Result<U::Output, Self::Error>>;

    fn upgrade_outbound(self, mut stream: Stream, info: Self::Info) -> Self::Future {
        if !self.keep_alive {
            stream.ignore_for_keep_alive();
        }
        match info {
            Proposal::Inner(info) => self
                .inner
                .upgrade_outbound(stream, info)
                .map(|r| r.map_err(SentinelError::Inner))
                .boxed(),
            // Dropping the stream resets it: the peer sees no payload.
            Proposal::Sentinel => futures::future::ready(Err(SentinelError::Refused)).boxed(),
        }
    }
}

impl<H: ConnectionHandler> ConnectionHandler for ConfirmedHandler<H> {
    type FromBehaviour = H::FromBehaviour;
    type ToBehaviour = H::ToBehaviour;
    type InboundProtocol = Inbound<H::InboundProtocol>;
    type OutboundProtocol = WithSentinel<H::OutboundProtocol>;
    type InboundOpenInfo = H::InboundOpenInfo;
    type OutboundOpenInfo = H::OutboundOpenInfo;

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol, H::InboundOpenInfo> {
        let keep_alive = self.streams_keep_alive;
        self.inner
            .listen_protocol()
            .map_upgrade(|inner| Inbound { inner, keep_alive })
    }

    fn connection_keep_alive(&self) -> bool {
        self.inner.connection_keep_alive()
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<Self::OutboundProtocol, H::OutboundOpenInfo, H::ToBehaviour>>
    {
        let confirmed = &self.confirmed;
        let keep_alive = self.streams_keep_alive;
        self.inner.poll(cx).map(|event| {
            event.map_protocol(|inner| {
                // Lazy negotiation settles on the last proposal unasked.
                let last = inner.protocol_info().last();
                let sentinel =
                    !last.is_some_and(|p| confirmed.iter().any(|c| c.as_ref() == p.as_ref()));
                WithSentinel {
                    inner,
                    sentinel,
                    keep_alive,
                }
            })
        })
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Option<H::ToBehaviour>> {
        self.inner.poll_close(cx)
    }

    fn on_behaviour_event(&mut self, event: H::FromBehaviour) {
        self.inner.on_behaviour_event(event)
    }

    fn on_connection_event(
        &mut self,
        event: ConnectionEvent<
            Self::InboundProtocol,
            Self::OutboundProtocol,
            H::InboundOpenInfo,
            H::OutboundOpenInfo,
        >,
    ) {
        let forwarded = match event {
            ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound { protocol, info }) => {
                ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound { protocol, info })
            }
            ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound {
                protocol,
                info,
            }) => {
                ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound { protocol, info })
            }
            ConnectionEvent::AddressChange(e) => ConnectionEvent::AddressChange(e),
            ConnectionEvent::DialUpgradeError(DialUpgradeError { info, error }) => {
                let error = match error {
                    StreamUpgradeError::Apply(SentinelError::Inner(e)) => {
                        StreamUpgradeError::Apply(e)
                    }
                    StreamUpgradeError::Apply(SentinelError::Refused) => {
                        StreamUpgradeError::NegotiationFailed
                    }
                    StreamUpgradeError::Timeout => StreamUpgradeError::Timeout,
                    StreamUpgradeError::NegotiationFailed => StreamUpgradeError::NegotiationFailed,
                    StreamUpgradeError::Io(e) => StreamUpgradeError::Io(e),
                };
                ConnectionEvent::DialUpgradeError(DialUpgradeError { info, error })
            }
            ConnectionEvent::ListenUpgradeError(ListenUpgradeError { info, error }) => {
                ConnectionEvent::ListenUpgradeError(ListenUpgradeError { info, error })
            }
            ConnectionEvent::LocalProtocolsChange(e) => ConnectionEvent::LocalProtocolsChange(e),
            ConnectionEvent::RemoteProtocolsChange(change) => {
                match change.clone() {
                    ProtocolsChange::Added(added) => self.confirmed.extend(added.cloned()),
                    ProtocolsChange::Removed(removed) => {
                        for p in removed {
                            self.confirmed.remove(p);
                        }
                    }
                }
                ConnectionEvent::RemoteProtocolsChange(change)
            }
            // Events added by a later libp2p: nothing to forward safely.
            _ => return,
        };
        self.inner.on_connection_event(forwarded)
    }
}

//! [`ApiProtocol`]: the API protocol as one rust-libp2p behaviour, for any
//! swarm. It serves the route table to peers (1.0.0, framed 2.0.0 and the
//! route listing) and hands out an [`ApiClient`] that calls connected
//! peers. Our own [`Node`](crate::Node) is one user of it; the Python
//! equivalent is `ApiProtocol(host, config)` with `call_remote` and
//! `stream_remote`.
//!
//! ```no_run
//! use libp2p::{identify, noise, swarm::NetworkBehaviour, tcp, yamux};
//! use peerapi::protocol::{ApiProtocol, ApiProtocolConfig};
//! use peerapi::{CallRequest, Route, Routes};
//!
//! #[derive(NetworkBehaviour)]
//! struct Behaviour {
//!     identify: identify::Behaviour,
//!     api: ApiProtocol,
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = ApiProtocolConfig::default();
//! config.routes = Routes::new(
//!     [("health".to_string(), Route::new("http://127.0.0.1:8000/health", false))].into(),
//! );
//! let api = ApiProtocol::new(config)?;
//! let client = api.client(); // take it before the swarm owns the behaviour
//! let mut swarm = libp2p::SwarmBuilder::with_new_identity()
//!     .with_tokio()
//!     .with_tcp(tcp::Config::default(), noise::Config::new, yamux::Config::default)?
//!     .with_behaviour(|key| Behaviour {
//!         identify: identify::Behaviour::new(identify::Config::new(
//!             "/ipfs/id/1.0.0".into(),
//!             key.public(),
//!         )),
//!         api,
//!     })?
//!     .build();
//! swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse()?)?;
//! // Drive the swarm as usual; once a peer is connected, call it:
//! # let peer = libp2p::PeerId::random();
//! let response = client.call(peer, CallRequest::new("health")).await?;
//! println!("{}", String::from_utf8_lossy(&response.body));
//! # Ok(())
//! # }
//! ```

pub mod admission;
pub mod call;
mod codec;
pub mod events;
pub mod metrics;
pub mod serve;
pub mod tap;

use std::convert::Infallible;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use libp2p::core::transport::PortUse;
use libp2p::core::Endpoint;
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, StreamProtocol, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};
use tokio::sync::broadcast;

use crate::streams::behaviour::{self, Connections, PeerAccess, DEFAULT_INBOUND_QUEUE_DEPTH};
pub use call::ApiClient;
use call::CallOptions;
use events::{ApiEvent, Events};
use serve::{ServeLimits, Server};

/// Capacity of an embedded protocol's own event broadcast; a subscriber
/// that falls further behind misses events (and is told how many).
pub const EVENT_CAPACITY: usize = 4096;
use crate::routes::Routes;
use crate::upstream::{Upstream, UpstreamConfig, UpstreamError};
use crate::wire::{PROTOCOL_ROUTES, PROTOCOL_V1, PROTOCOL_V2};

/// What the protocol serves and how it calls.
#[derive(Clone)]
pub struct ApiProtocolConfig {
    /// The live route table served to peers (swap it whole at any time).
    pub routes: Routes,
    /// How backends are reached.
    pub upstream: UpstreamConfig,
    /// Limits on served calls.
    pub serve: ServeLimits,
    /// Limits and protocol choice of our calls.
    pub call: CallOptions,
    /// Peers refused at connection time.
    pub access: PeerAccess,
    /// Inbound streams that may be getting an "overloaded" answer at once
    /// beyond `serve.max_concurrent_calls`.
    pub inbound_queue_depth: usize,
    /// Counts calls served and made, for `NodeMetrics::encode` (None: no
    /// counting, no cost).
    pub metrics: Option<Arc<metrics::NodeMetrics>>,
    /// The span served calls log in (`Span::none()`: none).
    pub log_span: tracing::Span,
}

impl Default for ApiProtocolConfig {
    fn default() -> Self {
        Self {
            routes: Routes::default(),
            upstream: UpstreamConfig::default(),
            serve: ServeLimits::default(),
            call: CallOptions::default(),
            access: PeerAccess::default(),
            inbound_queue_depth: DEFAULT_INBOUND_QUEUE_DEPTH,
            metrics: None,
            log_span: tracing::Span::none(),
        }
    }
}

/// The protocols served: framed 2.0.0 first, the Python nodes' 1.0.0, and
/// our route listing.
pub fn served_protocols() -> Vec<StreamProtocol> {
    vec![
        StreamProtocol::new(PROTOCOL_V2),
        StreamProtocol::new(PROTOCOL_V1),
        StreamProtocol::new(PROTOCOL_ROUTES),
    ]
}

/// The API protocol as a behaviour: add it to a swarm's behaviour struct.
pub struct ApiProtocol {
    behaviour: behaviour::Behaviour,
    server: Server,
    client: ApiClient,
    taps: Arc<tap::Taps>,
    /// Its own events; empty when a node took them into its own stream.
    events: broadcast::Sender<ApiEvent>,
}

impl ApiProtocol {
    /// The protocol with its own event channel.
    pub fn new(config: ApiProtocolConfig) -> Result<Self, UpstreamError> {
        let (own, _) = broadcast::channel(EVENT_CAPACITY);
        let mut protocol =
            Self::with_events(config, Arc::new(own.clone()), Arc::new(AtomicU64::new(1)))?;
        protocol.events = own;
        Ok(protocol)
    }

    /// The protocol reporting to `events`, numbering calls from `call_ids`
    /// (a node shares both with its swarm's own events).
    pub(crate) fn with_events(
        config: ApiProtocolConfig,
        events: Events,
        call_ids: Arc<AtomicU64>,
    ) -> Result<Self, UpstreamError> {
        let upstream = Upstream::new(config.upstream)?;
        let taps = Arc::new(tap::Taps::default());
        let server = Server::new(
            config.routes,
            upstream,
            config.serve,
            config.inbound_queue_depth,
            serve::Reports {
                events: events.clone(),
                call_ids: call_ids.clone(),
                metrics: config.metrics.clone(),
                log_span: config.log_span,
                taps: taps.clone(),
            },
        );
        let connections = Connections::default();
        let behaviour = behaviour::Behaviour::new(
            config.access,
            served_protocols(),
            server.dispatcher(),
            connections.clone(),
        );
        let client = ApiClient {
            connections,
            options: config.call,
            events,
            ids: call_ids,
            metrics: config.metrics,
            silent: Default::default(),
        };
        Ok(Self {
            behaviour,
            server,
            client,
            taps,
            events: broadcast::channel(1).0,
        })
    }

    /// The client half: calls on connected peers. Cheap to clone; take it
    /// before the swarm owns the behaviour.
    pub fn client(&self) -> ApiClient {
        self.client.clone()
    }

    /// Taps on the bodies this protocol serves (see [`tap`]).
    pub fn taps(&self) -> Arc<tap::Taps> {
        self.taps.clone()
    }

    /// Served and made calls, as events, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ApiEvent> {
        self.events.subscribe()
    }

    /// A handle that stops taking calls and waits for those in flight.
    pub fn drain_handle(&self) -> DrainHandle {
        DrainHandle(self.server.clone())
    }
}

/// Stops an [`ApiProtocol`] taking new calls (they are refused with a
/// reason) and waits for the ones in flight.
#[derive(Clone)]
pub struct DrainHandle(Server);

impl DrainHandle {
    /// `true` when every call finished within `grace`.
    pub async fn drain(&self, grace: Duration) -> bool {
        self.0.drain(grace).await
    }
}

impl NetworkBehaviour for ApiProtocol {
    type ConnectionHandler = behaviour::Handler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.behaviour
            .handle_established_inbound_connection(id, peer, local, remote)
    }

    fn handle_established_outbound_connection(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        role: Endpoint,
        port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.behaviour
            .handle_established_outbound_connection(id, peer, addr, role, port_use)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        self.behaviour.on_swarm_event(event)
    }

    fn on_connection_handler_event(
        &mut self,
        peer: PeerId,
        id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        self.behaviour.on_connection_handler_event(peer, id, event)
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        self.behaviour.poll(cx)
    }
}

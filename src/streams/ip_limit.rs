//! Inbound connections per remote IP, pending and established: one host
//! cannot take every connection slot of the node by minting peer ids.
//! (rust-libp2p's `connection-limits` counts node-wide and per peer, not per
//! IP; it runs beside this for the node-wide limits.)

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::task::{Context, Poll};

use libp2p::core::transport::PortUse;
use libp2p::core::Endpoint;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{
    dummy, ConnectionClosed, ConnectionDenied, ConnectionId, FromSwarm, ListenFailure,
    NetworkBehaviour, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};

/// Default most inbound connections (pending and established) from one IP.
/// Generous, because a subnet run on one machine puts every node on 127.0.0.1.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 128;

/// The first IP address in a multiaddr.
pub fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

#[derive(Debug, thiserror::Error)]
#[error("{count} connections from {ip} already (limit {limit})")]
struct TooManyFromIp {
    ip: IpAddr,
    count: usize,
    limit: usize,
}

pub struct PerIpLimit {
    limit: usize,
    by_connection: HashMap<ConnectionId, IpAddr>,
    per_ip: HashMap<IpAddr, usize>,
}

impl PerIpLimit {
    pub fn new(limit: usize) -> Self {
        Self {
            limit: limit.max(1),
            by_connection: HashMap::new(),
            per_ip: HashMap::new(),
        }
    }

    fn release(&mut self, id: ConnectionId) {
        if let Some(ip) = self.by_connection.remove(&id) {
            if let Some(n) = self.per_ip.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    self.per_ip.remove(&ip);
                }
            }
        }
    }
}

impl NetworkBehaviour for PerIpLimit {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        id: ConnectionId,
        _local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        let Some(ip) = ip_of(remote) else {
            return Ok(());
        };
        let count = self.per_ip.get(&ip).copied().unwrap_or(0);
        if count >= self.limit {
            tracing::warn!(%ip, count, limit = self.limit, "refusing connection: too many from this IP");
            return Err(ConnectionDenied::new(TooManyFromIp {
                ip,
                count,
                limit: self.limit,
            }));
        }
        *self.per_ip.entry(ip).or_default() += 1;
        self.by_connection.insert(id, ip);
        Ok(())
    }

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionClosed(ConnectionClosed { connection_id, .. })
            | FromSwarm::ListenFailure(ListenFailure { connection_id, .. }) => {
                self.release(connection_id)
            }
            _ => {}
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

//! Admission for the node's side listeners (metrics, telemetry): a cap on
//! connections in total and per remote address, a deadline for the
//! request head or handshake, and silent connections evicted before
//! active ones. Without it, 2,000 connections that sent half a request
//! held 2,000 file descriptors for good, and 256 silent WebSocket
//! connections locked every real telemetry sender out.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

/// Most connections a side listener holds at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = 64;
/// Most connections from one remote address.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 8;
/// How long a connection has to send its request head or handshake.
pub const DEFAULT_HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// The limits of one listener.
#[derive(Clone, Debug)]
pub struct GateLimits {
    pub max_connections: usize,
    pub max_per_ip: usize,
    pub head_timeout: Duration,
}

impl Default for GateLimits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            head_timeout: DEFAULT_HEAD_TIMEOUT,
        }
    }
}

struct Entry {
    ip: IpAddr,
    evict: Arc<Notify>,
}

#[derive(Default)]
struct State {
    next: u64,
    /// Every open connection, by id.
    open: HashMap<u64, Entry>,
    per_ip: HashMap<IpAddr, usize>,
    /// Connections still in their head or handshake, oldest first.
    silent: VecDeque<u64>,
}

impl State {
    /// Evicts the oldest silent connection (of `ip`, if given).
    fn evict_silent(&mut self, ip: Option<IpAddr>) -> bool {
        let found = self
            .silent
            .iter()
            .position(|id| ip.is_none_or(|ip| self.open.get(id).is_some_and(|e| e.ip == ip)));
        let Some(at) = found else {
            return false;
        };
        let Some(id) = self.silent.remove(at) else {
            return false;
        };
        if let Some(entry) = self.open.remove(&id) {
            self.release_ip(entry.ip);
            entry.evict.notify_one();
        }
        true
    }

    fn release_ip(&mut self, ip: IpAddr) {
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }
}

/// Admits connections within the limits.
#[derive(Clone)]
pub struct Gate {
    limits: GateLimits,
    state: Arc<Mutex<State>>,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The listener holds as many active connections as allowed.
    Full,
    /// This address holds as many active connections as allowed.
    PerIp,
}

impl Gate {
    pub fn new(limits: GateLimits) -> Self {
        Self {
            limits,
            state: Arc::default(),
        }
    }

    pub fn limits(&self) -> &GateLimits {
        &self.limits
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().open.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a connection from `ip`, evicting the oldest silent one (of
    /// that address first) when a limit is reached; refuses it when every
    /// connection in the way is active.
    pub fn admit(&self, ip: IpAddr) -> Result<Admitted, Refused> {
        let mut s = self.lock();
        if s.per_ip.get(&ip).copied().unwrap_or(0) >= self.limits.max_per_ip.max(1)
            && !s.evict_silent(Some(ip))
        {
            return Err(Refused::PerIp);
        }
        if s.open.len() >= self.limits.max_connections.max(1) && !s.evict_silent(None) {
            return Err(Refused::Full);
        }
        let id = s.next;
        s.next += 1;
        let evict = Arc::new(Notify::new());
        s.open.insert(
            id,
            Entry {
                ip,
                evict: evict.clone(),
            },
        );
        *s.per_ip.entry(ip).or_default() += 1;
        s.silent.push_back(id);
        Ok(Admitted {
            gate: self.clone(),
            id,
            evict,
        })
    }
}

impl Gate {
    /// The next connection of `listener` the gate admits; a refused one is
    /// closed at once and told to `on_refused`. Accept errors (mostly: out
    /// of file descriptors) are logged and waited out, never spun on.
    pub async fn accept(
        &self,
        listener: &tokio::net::TcpListener,
        on_refused: impl Fn(std::net::SocketAddr, Refused),
    ) -> (tokio::net::TcpStream, std::net::SocketAddr, Admitted) {
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(ok) => ok,
                Err(e) => {
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            match self.admit(peer.ip()) {
                Ok(admitted) => return (tcp, peer, admitted),
                Err(why) => on_refused(peer, why),
            }
        }
    }
}

/// An admitted connection; its slot is given back when dropped.
pub struct Admitted {
    gate: Gate,
    id: u64,
    evict: Arc<Notify>,
}

impl Admitted {
    /// The request head or handshake arrived: no longer evicted for room.
    pub fn active(&self) {
        let mut s = self.gate.lock();
        s.silent.retain(|id| *id != self.id);
    }

    /// Resolves when the connection was evicted to make room.
    pub async fn evicted(&self) {
        self.evict.notified().await
    }

    /// The deadline for the head or handshake.
    pub fn head_timeout(&self) -> Duration {
        self.gate.limits.head_timeout
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut s = self.gate.lock();
        if let Some(entry) = s.open.remove(&self.id) {
            s.release_ip(entry.ip);
        }
        s.silent.retain(|id| *id != self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(total: usize, per_ip: usize) -> Gate {
        Gate::new(GateLimits {
            max_connections: total,
            max_per_ip: per_ip,
            head_timeout: Duration::from_secs(1),
        })
    }

    #[tokio::test]
    async fn silent_connections_make_room_active_ones_keep_theirs() {
        let g = gate(2, 10);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let first = g.admit(a).unwrap();
        let second = g.admit(a).unwrap();
        second.active();
        // Full: the silent one goes, the active one stays.
        let third = g.admit(a).unwrap();
        tokio::time::timeout(Duration::from_secs(1), first.evicted())
            .await
            .expect("the silent connection is told to go");
        assert_eq!(g.open(), 2);
        third.active();
        assert_eq!(g.admit(a).err(), Some(Refused::Full), "all active: refused");
        drop(second);
        assert!(g.admit(a).is_ok(), "a slot given back is free again");
    }

    #[test]
    fn one_address_cannot_take_every_slot() {
        let g = gate(10, 2);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let x = g.admit(a).unwrap();
        let y = g.admit(a).unwrap();
        x.active();
        y.active();
        assert_eq!(g.admit(a).err(), Some(Refused::PerIp));
        assert!(g.admit(b).is_ok());
    }
}

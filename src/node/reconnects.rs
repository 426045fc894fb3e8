//! Who to dial again, and when: the bootnodes (for as long as they are
//! away) and peers lost to a silent link (for a while), with backoff.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use tokio::time::Instant;

/// Default longest wait between two dials of a lost bootnode or peer.
pub const DEFAULT_RECONNECT_MAX: Duration = Duration::from_secs(10);
/// A peer lost to a silent link is dialled again for this long.
pub const LOST_PEER_KEPT: Duration = Duration::from_secs(10 * 60);
/// First wait before dialling again.
const RECONNECT_FIRST: Duration = Duration::from_millis(500);

/// Who to dial again, and when.
pub(crate) struct Reconnects {
    targets: HashMap<PeerId, Target>,
    max: Duration,
}

struct Target {
    addrs: Vec<Multiaddr>,
    wait: Duration,
    /// When to dial next (None: connected, nothing to do).
    next: Option<Instant>,
    /// Given up after (None: a bootnode, never).
    until: Option<Instant>,
    /// When the link was lost, for the log.
    lost_at: Option<SystemTime>,
}

impl Reconnects {
    /// The bootnodes (those given with their peer id) are kept for good.
    pub(crate) fn new(bootstrap: &[Multiaddr], max: Duration) -> Self {
        let mut targets = HashMap::new();
        for addr in bootstrap {
            let mut transport = addr.clone();
            if let Some(Protocol::P2p(peer)) = transport.pop() {
                targets.insert(
                    peer,
                    Target {
                        addrs: vec![transport],
                        wait: RECONNECT_FIRST,
                        next: None,
                        until: None,
                        lost_at: None,
                    },
                );
            }
        }
        Self {
            targets,
            max: max.max(RECONNECT_FIRST),
        }
    }

    /// A connection to `peer` is up: no more dials, backoff from the start.
    pub(crate) fn connected(&mut self, peer: &PeerId) {
        if let Some(t) = self.targets.get_mut(peer) {
            if t.until.is_some() {
                self.targets.remove(peer);
                return;
            }
            t.next = None;
            t.wait = RECONNECT_FIRST;
            t.lost_at = None;
        }
    }

    /// `peer`'s last connection closed: a bootnode is dialled again.
    /// `by_us`: an operator's disconnect, which is respected.
    pub(crate) fn disconnected(&mut self, peer: &PeerId, by_us: bool) {
        if by_us {
            return;
        }
        if let Some(t) = self.targets.get_mut(peer) {
            t.lost_at.get_or_insert_with(SystemTime::now);
            t.next.get_or_insert_with(|| Instant::now() + t.wait);
        }
    }

    /// `peer` went silent: it is dialled again at `addrs` for a while.
    pub(crate) fn lost(&mut self, peer: PeerId, addrs: Vec<Multiaddr>) {
        let now = Instant::now();
        let t = self.targets.entry(peer).or_insert_with(|| Target {
            addrs: Vec::new(),
            wait: RECONNECT_FIRST,
            next: None,
            until: Some(now + LOST_PEER_KEPT),
            lost_at: None,
        });
        for a in addrs {
            if !t.addrs.contains(&a) {
                t.addrs.push(a);
            }
        }
        t.lost_at = Some(SystemTime::now());
        t.next = Some(now + t.wait);
    }

    /// Waits until a dial is due (forever when none is).
    pub(crate) async fn due(&self) {
        match self.targets.values().filter_map(|t| t.next).min() {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    }

    /// The dials due now; each one's next is pushed back (doubling).
    pub(crate) fn take_due(&mut self) -> Vec<(PeerId, Vec<Multiaddr>, Option<SystemTime>)> {
        let now = Instant::now();
        self.targets
            .retain(|_, t| t.until.is_none_or(|until| until > now));
        let mut due = Vec::new();
        for (peer, t) in &mut self.targets {
            if t.next.is_some_and(|at| at <= now) {
                due.push((*peer, t.addrs.clone(), t.lost_at));
                t.wait = (t.wait * 2).min(self.max);
                t.next = Some(now + t.wait);
            }
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boot() -> (PeerId, Multiaddr) {
        let peer = libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id();
        let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/4001/p2p/{peer}")
            .parse()
            .unwrap();
        (peer, addr)
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_bootnode_is_dialled_again_with_backoff_and_an_operators_disconnect_is_kept() {
        let (peer, addr) = boot();
        let mut r = Reconnects::new(&[addr], Duration::from_secs(4));
        assert!(r.take_due().is_empty(), "connected at start: nothing due");
        r.disconnected(&peer, false);
        let mut dials = Vec::new();
        let start = Instant::now();
        while dials.len() < 5 {
            r.due().await;
            for (p, addrs, _) in r.take_due() {
                assert_eq!(p, peer);
                assert_eq!(addrs[0].to_string(), "/ip4/127.0.0.1/tcp/4001");
                dials.push(start.elapsed());
            }
        }
        let ms: Vec<u128> = dials.iter().map(|d| d.as_millis()).collect();
        // 0.5 s, then 1, 2, 4 and 4 (the most) more.
        assert_eq!(ms, vec![500, 1500, 3500, 7500, 11500]);
        r.connected(&peer);
        assert!(r.targets[&peer].next.is_none(), "back: no more dials");
        r.disconnected(&peer, true);
        assert!(
            r.targets[&peer].next.is_none(),
            "the operator's choice stands"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_lost_to_silence_is_dialled_for_a_while_then_let_go() {
        let (peer, _) = boot();
        let mut r = Reconnects::new(&[], DEFAULT_RECONNECT_MAX);
        r.lost(peer, vec!["/ip4/10.0.0.1/tcp/1".parse().unwrap()]);
        r.due().await;
        assert_eq!(r.take_due().len(), 1);
        tokio::time::advance(LOST_PEER_KEPT).await;
        assert!(r.take_due().is_empty());
        assert!(r.targets.is_empty(), "given up after {LOST_PEER_KEPT:?}");
        r.lost(peer, vec![]);
        r.connected(&peer);
        assert!(r.targets.is_empty(), "found again: forgotten");
    }
}

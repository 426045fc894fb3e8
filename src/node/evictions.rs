//! Telling a strict subnet's eviction from bad luck. A subnet that runs
//! proof of stake and connection maintenance disconnects, at every
//! maintenance tick (60 s in the template), each peer whose id is not
//! registered on chain for the subnet; all the evicted peer sees is
//! "connection is closed". The same peer closing on us again and again is
//! that pattern, and the fix is on chain, so we say so.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use libp2p::PeerId;

/// Remote closes looked at: this far back.
pub const EVICTION_WINDOW: Duration = Duration::from_secs(600);
/// Remote closes by one peer within the window that make a pattern.
pub const EVICTIONS_TO_REPORT: usize = 2;
/// Peers whose closes are remembered at once.
const MAX_TRACKED_PEERS: usize = 1024;

/// What the operator is told once the pattern shows.
pub fn eviction_hint(me: &PeerId) -> String {
    format!(
        "probably not registered on chain for this subnet: a strict subnet (proof of stake with \
         connection maintenance) disconnects every peer that is not registered as a node, \
         bootnode or client peer. Register this node's peer id {me} as a client peer of the subnet"
    )
}

#[derive(Default)]
pub(crate) struct Evictions {
    closes: HashMap<PeerId, VecDeque<Instant>>,
}

/// A peer that keeps closing our connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvictionPattern {
    pub times: usize,
    /// The mean gap between its closes.
    pub every: Duration,
}

impl Evictions {
    /// Records that `peer` closed our last connection to it; the pattern
    /// once it shows (and at each close after).
    pub(crate) fn remote_closed(&mut self, peer: PeerId, now: Instant) -> Option<EvictionPattern> {
        if self.closes.len() >= MAX_TRACKED_PEERS && !self.closes.contains_key(&peer) {
            // Forget the peer whose last close is oldest.
            let oldest = self
                .closes
                .iter()
                .min_by_key(|(_, t)| t.back().copied())
                .map(|(p, _)| *p);
            if let Some(p) = oldest {
                self.closes.remove(&p);
            }
        }
        let times = self.closes.entry(peer).or_default();
        times.push_back(now);
        while times
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > EVICTION_WINDOW)
        {
            times.pop_front();
        }
        while times.len() > 16 {
            times.pop_front();
        }
        if times.len() < EVICTIONS_TO_REPORT {
            return None;
        }
        let first = *times.front()?;
        let every = now.saturating_duration_since(first) / (times.len() as u32 - 1);
        Some(EvictionPattern {
            times: times.len(),
            every,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_second_close_within_the_window_is_a_pattern() {
        let mut e = Evictions::default();
        let (p, q) = (PeerId::random(), PeerId::random());
        let t0 = Instant::now();
        assert_eq!(e.remote_closed(p, t0), None);
        assert_eq!(
            e.remote_closed(q, t0),
            None,
            "another peer is another story"
        );
        let got = e.remote_closed(p, t0 + Duration::from_secs(60)).unwrap();
        assert_eq!(got.times, 2);
        assert_eq!(got.every, Duration::from_secs(60));
        let later = t0 + EVICTION_WINDOW * 3;
        assert_eq!(e.remote_closed(q, later), None, "old closes age out");
    }
}

//! When to walk the DHT: often while walks still find peers, less and less
//! often once they stop. A fixed 30 s walk (and Kademlia's bootstrap with
//! it) kept every connection of a 100-node subnet busy: each walk touches
//! a dozen peers, so within the idle timeout every node had touched every
//! other and the subnet stayed a full mesh, using 1-1.5 cores doing
//! nothing.

use std::num::NonZeroUsize;
use std::pin::Pin;
use std::time::Duration;

use libp2p::{kad, PeerId, StreamProtocol};
use tokio::time::{Instant, Sleep};

/// The walk interval: the base while the node is below its peer target or
/// a walk finds a walk's width of new peers, else doubling up to the most.
/// (Resetting on any new peer kept walks at the base for good: in a
/// 100-node subnet, narrow walks keep finding one more now and then.)
pub(crate) struct WalkSchedule {
    base: Duration,
    most: Duration,
    current: Duration,
    known_at_last_walk: usize,
    next: Pin<Box<Sleep>>,
    /// Off for a node that only calls: it never walks.
    enabled: bool,
}

impl WalkSchedule {
    /// The first walk is due one base interval from now (the bootstrap
    /// dial and Kademlia's own start-up bootstrap come first).
    pub(crate) fn new(base: Duration, most: Duration) -> Self {
        let base = base.max(Duration::from_millis(1));
        Self {
            base,
            most: most.max(base),
            current: base,
            known_at_last_walk: 0,
            next: Box::pin(tokio::time::sleep(base)),
            enabled: true,
        }
    }

    /// Off: a schedule that is never due.
    pub(crate) fn enabled_if(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// Resolves when the next walk is due.
    pub(crate) async fn due(&mut self) {
        if !self.enabled {
            return std::future::pending().await;
        }
        self.next.as_mut().await
    }

    /// Records a walk made now with `known` peers known, and schedules the
    /// next; returns the interval until it.
    pub(crate) fn walked(&mut self, known: usize, below_target: bool) -> Duration {
        let found = known.saturating_sub(self.known_at_last_walk);
        self.current = if below_target || found >= WALK_WIDTH.get() {
            self.base
        } else {
            (self.current * 2).min(self.most)
        };
        self.known_at_last_walk = known;
        self.next.as_mut().reset(Instant::now() + self.current);
        self.current
    }
}

/// Peers a walk asks the closest of, not Kademlia's 20: a query ends when
/// that many closest have answered, so a narrow walk contacts a handful of
/// peers instead of 20-30, while every answer still names up to 20.
pub const WALK_WIDTH: NonZeroUsize = NonZeroUsize::MIN.saturating_add(4);

/// Kademlia for a node: a subnet member answers queries (server mode;
/// auto mode would stay a client until an external address is confirmed);
/// a node that does not walk runs no bootstraps and keeps its table empty
/// (Kademlia bootstraps whenever its table gains a peer).
pub(crate) fn kademlia(
    peer: PeerId,
    bootstrap_interval: Duration,
    walks: bool,
    member: bool,
) -> kad::Behaviour<kad::store::MemoryStore> {
    let mut config = kad::Config::new(StreamProtocol::new(super::behaviour::KAD_PROTOCOL));
    if walks {
        config.set_periodic_bootstrap_interval(Some(bootstrap_interval));
    } else {
        config.set_periodic_bootstrap_interval(None);
        config.set_kbucket_inserts(kad::BucketInserts::Manual);
    }
    let mut kad = kad::Behaviour::with_config(peer, kad::store::MemoryStore::new(peer), config);
    kad.set_mode(Some(match member {
        true => kad::Mode::Server,
        false => kad::Mode::Client,
    }));
    kad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn walks_back_off_unless_a_walk_finds_its_width_or_the_node_needs_peers() {
        let s = Duration::from_secs;
        let mut w = WalkSchedule::new(s(30), s(480));
        assert_eq!(w.walked(5, false), s(30), "found a walk's width: the base");
        assert_eq!(w.walked(5, false), s(60));
        assert_eq!(w.walked(5, false), s(120));
        assert_eq!(w.walked(6, false), s(240), "one more peer is not news");
        assert_eq!(w.walked(8, false), s(480));
        assert_eq!(w.walked(8, false), s(480), "never past the most");
        assert_eq!(w.walked(13, false), s(30), "a walk's width of new peers");
        assert_eq!(w.walked(13, false), s(60));
        assert_eq!(w.walked(13, true), s(30), "below the peer target");
    }

    #[tokio::test]
    async fn a_most_below_the_base_is_the_base() {
        let s = Duration::from_secs;
        let mut w = WalkSchedule::new(s(30), s(1));
        assert_eq!(w.walked(0, true), s(30));
    }
}

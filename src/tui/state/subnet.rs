//! The Subnet view: the roster from verified peer state, what gossip
//! brought and what was rejected, the DAG held, and evictions with the fix.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::node::NodeEvent;
use crate::subnet::{Roster, Summary};

/// Most rejections and evictions kept for the view.
pub const MAX_SUBNET_NOTES: usize = 50;

/// One gossip topic as this node sees it.
#[derive(Clone, Debug, Default)]
pub struct TopicStats {
    /// Peers in our mesh for it (from the last refresh).
    pub mesh: usize,
    pub received: u64,
    pub rejected: u64,
    /// Messages per minute over the last [`GOSSIP_RATE_WINDOW`] (less
    /// while the view is younger than that).
    pub per_minute: f64,
    /// (when, received) at refreshes, oldest first: the window and the
    /// newest sample before it. (A rate between two refreshes read 0 for a
    /// message every 20 s nearly always, and spiked between.)
    samples: VecDeque<(Instant, u64)>,
}

/// The window gossip rates are taken over.
pub const GOSSIP_RATE_WINDOW: Duration = Duration::from_secs(60);
/// Refreshes closer together than this add no sample (bounds the samples).
const GOSSIP_RATE_STEP: Duration = Duration::from_secs(1);

impl TopicStats {
    fn sample(&mut self, now: Instant) {
        let due = self
            .samples
            .back()
            .is_none_or(|(at, _)| now.saturating_duration_since(*at) >= GOSSIP_RATE_STEP);
        if due {
            self.samples.push_back((now, self.received));
        }
        // Keep one sample at or before the window's start as the anchor.
        while self
            .samples
            .get(1)
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) >= GOSSIP_RATE_WINDOW)
        {
            self.samples.pop_front();
        }
        if let Some((then, count)) = self.samples.front() {
            let secs = now.saturating_duration_since(*then).as_secs_f64();
            if secs > 0.0 {
                self.per_minute = self.received.saturating_sub(*count) as f64 * 60.0 / secs;
            }
        }
    }
}

#[derive(Default)]
pub struct SubnetView {
    pub show: bool,
    pub roster: Roster,
    pub gossip_received: u64,
    pub gossip_rejected: u64,
    /// Verified DAG nodes seen per namespace (stored or refused for a limit).
    pub dag_nodes: BTreeMap<String, (u64, u64)>,
    /// Per topic: mesh peers, messages and their rate.
    pub topics: BTreeMap<String, TopicStats>,
    /// The DAG held per namespace (heads, nodes, orphans), refreshed.
    pub dag: Vec<(String, Summary)>,
    /// Newest last: (peer, why) of rejected gossip.
    pub rejections: VecDeque<(String, String)>,
    /// Newest last: (peer, times, hint).
    pub evictions: VecDeque<(String, usize, String)>,
    /// Newest last: links found silent, and when they came back.
    pub links: VecDeque<LinkNote>,
}

/// A peer lost to a silent link (a ping went unanswered).
#[derive(Clone, Debug, PartialEq)]
pub struct LinkNote {
    pub peer: String,
    pub lost_at: std::time::SystemTime,
    /// The ping timeout that found it.
    pub after: Duration,
    /// How long until it was connected again (None: not yet).
    pub back_after: Option<Duration>,
}

fn push_bounded<T>(q: &mut VecDeque<T>, item: T) {
    if q.len() >= MAX_SUBNET_NOTES {
        q.pop_front();
    }
    q.push_back(item);
}

impl SubnetView {
    /// A refresh: mesh sizes and rates per topic, the DAG per namespace.
    pub fn on_stats(
        &mut self,
        mesh: Vec<(String, Vec<libp2p::PeerId>)>,
        dag: Vec<(String, Summary)>,
        now: Instant,
    ) {
        for (topic, peers) in mesh {
            if self.topics.len() < MAX_SUBNET_NOTES || self.topics.contains_key(&topic) {
                self.topics.entry(topic).or_default().mesh = peers.len();
            }
        }
        for t in self.topics.values_mut() {
            t.sample(now);
        }
        self.dag = dag;
        self.dag.truncate(MAX_SUBNET_NOTES);
    }

    /// Takes the node events the view shows (at wall-clock `now`); others
    /// pass by.
    pub fn on_node_event(&mut self, ev: &NodeEvent, now: std::time::SystemTime) {
        match ev {
            NodeEvent::Gossip {
                from,
                rejected,
                topic,
                ..
            } => {
                self.gossip_received += 1;
                if self.topics.len() < MAX_SUBNET_NOTES || self.topics.contains_key(topic) {
                    let t = self.topics.entry(topic.clone()).or_default();
                    t.received += 1;
                    t.rejected += u64::from(rejected.is_some());
                }
                if let Some(why) = rejected {
                    self.gossip_rejected += 1;
                    push_bounded(&mut self.rejections, (from.to_string(), why.clone()));
                }
            }
            NodeEvent::DagNode {
                namespace,
                schema_id,
                author,
                created_at_ms,
                payload,
                stored,
                ..
            } => {
                // Namespaces come from peers: bounded like everything else.
                if self.dag_nodes.len() < MAX_SUBNET_NOTES || self.dag_nodes.contains_key(namespace)
                {
                    let e = self.dag_nodes.entry(namespace.clone()).or_default();
                    if *stored {
                        e.0 += 1;
                    } else {
                        e.1 += 1;
                    }
                }
                if schema_id == "peer-state" {
                    self.roster.apply(author, *created_at_ms, payload);
                }
            }
            NodeEvent::PeerEvicted {
                peer, times, hint, ..
            } => push_bounded(
                &mut self.evictions,
                (peer.to_string(), *times, hint.clone()),
            ),
            NodeEvent::LinkSilent { peer, after } => push_bounded(
                &mut self.links,
                LinkNote {
                    peer: peer.to_string(),
                    lost_at: now,
                    after: *after,
                    back_after: None,
                },
            ),
            NodeEvent::PeerConnected { peer, .. } => {
                let peer = peer.to_string();
                if let Some(note) = self
                    .links
                    .iter_mut()
                    .rev()
                    .find(|n| n.peer == peer && n.back_after.is_none())
                {
                    note.back_after = Some(now.duration_since(note.lost_at).unwrap_or_default());
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gossip(view: &mut SubnetView) {
        view.on_node_event(
            &NodeEvent::Gossip {
                topic: "peer_state".into(),
                from: libp2p::PeerId::random(),
                author: None,
                bytes: 0,
                rejected: None,
            },
            std::time::SystemTime::UNIX_EPOCH,
        );
    }

    #[test]
    fn a_link_lost_to_silence_and_its_return_are_noted() {
        use std::time::SystemTime;
        let mut view = SubnetView::default();
        let peer = libp2p::PeerId::random();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let silent = NodeEvent::LinkSilent {
            peer,
            after: Duration::from_secs(20),
        };
        view.on_node_event(&silent, t0);
        assert_eq!(view.links[0].back_after, None);
        let back = NodeEvent::PeerConnected {
            peer,
            addr: "/ip4/127.0.0.1/tcp/1".parse().unwrap(),
            direction: crate::node::Direction::Outbound,
        };
        view.on_node_event(&back, t0 + Duration::from_millis(4200));
        assert_eq!(view.links[0].back_after, Some(Duration::from_millis(4200)));
    }

    #[test]
    fn a_message_every_20_s_reads_3_per_minute_at_every_refresh() {
        let mut view = SubnetView::default();
        let start = Instant::now();
        let mesh = || vec![("peer_state".to_string(), Vec::new())];
        let mut rates = Vec::new();
        // Refreshes every 2 s for 4 minutes; a message every 20 s.
        for tick in 0..=120u64 {
            if tick % 10 == 5 {
                gossip(&mut view);
            }
            view.on_stats(mesh(), Vec::new(), start + Duration::from_secs(tick * 2));
            if tick * 2 >= 60 {
                rates.push(view.topics["peer_state"].per_minute);
            }
        }
        for r in &rates {
            assert!(
                (2.0..=4.0).contains(r),
                "a steady 3/min reads 2-4/min, not {r}: {rates:?}"
            );
        }
        assert!(
            view.topics["peer_state"].samples.len() <= 32,
            "samples stay bounded"
        );
    }
}

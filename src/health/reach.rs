//! Our own node's reachability from outside, and how we know: AutoNAT's
//! dial-backs where peers offer it, peers that dialled us, and the
//! addresses peers observe us at (identify), with how many agree.
//! "unknown" says why when none of these can tell. Pure: the prober
//! gathers, this judges.

use std::collections::BTreeMap;

use crate::node::reachability::{AutonatTest, AUTONAT_DIAL_REQUEST};
use crate::node::{Direction, PeerInfo};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReachState {
    Unknown,
    Reachable,
    Unreachable,
}

impl ReachState {
    pub fn name(self) -> &'static str {
        match self {
            ReachState::Unknown => "unknown",
            ReachState::Reachable => "reachable",
            ReachState::Unreachable => "unreachable",
        }
    }

    /// The number Prometheus shows.
    pub fn level(self) -> u8 {
        match self {
            ReachState::Unknown => 0,
            ReachState::Reachable => 1,
            ReachState::Unreachable => 2,
        }
    }

    pub fn from_level(level: i64) -> ReachState {
        match level {
            1 => ReachState::Reachable,
            2 => ReachState::Unreachable,
            _ => ReachState::Unknown,
        }
    }
}

impl std::fmt::Display for ReachState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An address peers observe us at, and how many of them agree.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Observed {
    pub addr: String,
    pub peers: usize,
}

/// What we know of our own reachability, and how.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Reachability {
    pub state: ReachState,
    /// How we know, or why we cannot tell.
    pub reason: String,
    /// Observed addresses, most agreed first.
    pub observed: Vec<Observed>,
    /// Connected peers that dialled us.
    pub inbound_peers: usize,
    /// Connected peers that offer AutoNAT.
    pub autonat_peers: usize,
    pub connected: usize,
    pub autonat: Vec<AutonatTest>,
}

/// Most observed addresses listed (a peer controls what it says it sees).
const MAX_OBSERVED_LISTED: usize = 8;

/// Judges our reachability from the connected peers and AutoNAT's tests.
pub fn judge(peers: &[PeerInfo], autonat: &[AutonatTest]) -> Reachability {
    let mut by_addr: BTreeMap<String, usize> = BTreeMap::new();
    for p in peers {
        if let Some(a) = &p.observed_addr {
            *by_addr.entry(a.to_string()).or_default() += 1;
        }
    }
    let mut observed: Vec<Observed> = by_addr
        .into_iter()
        .map(|(addr, peers)| Observed { addr, peers })
        .collect();
    observed.sort_by(|a, b| b.peers.cmp(&a.peers).then(a.addr.cmp(&b.addr)));
    observed.truncate(MAX_OBSERVED_LISTED);
    let inbound: Vec<&PeerInfo> = peers
        .iter()
        .filter(|p| p.direction == Direction::Inbound)
        .collect();
    let autonat_peers = peers
        .iter()
        .filter(|p| p.protocols.iter().any(|x| x == AUTONAT_DIAL_REQUEST))
        .count();
    let confirmed: Vec<&AutonatTest> = autonat.iter().filter(|t| t.reachable).collect();
    let (state, reason) = if let Some(t) = confirmed.last() {
        (
            ReachState::Reachable,
            format!(
                "AutoNAT: {} dialled us back at {} ({} of {} addresses confirmed)",
                crate::health::text::short_peer(&t.server),
                t.addr,
                confirmed.len(),
                autonat.len()
            ),
        )
    } else if let Some(t) = autonat.last() {
        (
            ReachState::Unreachable,
            format!(
                "AutoNAT: {} could not dial us at {}: {}",
                crate::health::text::short_peer(&t.server),
                t.addr,
                t.error.as_deref().unwrap_or("failed")
            ),
        )
    } else if !inbound.is_empty() {
        (
            ReachState::Reachable,
            format!(
                "{} of {} connected peers dialled us",
                inbound.len(),
                peers.len()
            ),
        )
    } else if peers.is_empty() {
        (ReachState::Unknown, "no peer connected".into())
    } else {
        let why = if autonat_peers == 0 {
            "and none offers AutoNAT (template nodes do not run it)".to_string()
        } else {
            format!("and AutoNAT has not tested us yet ({autonat_peers} peers offer it)")
        };
        (
            ReachState::Unknown,
            format!("we dialled all {} connected peers, {why}", peers.len()),
        )
    };
    Reachability {
        state,
        reason,
        observed,
        inbound_peers: inbound.len(),
        autonat_peers,
        connected: peers.len(),
        autonat: autonat.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    fn peer(direction: Direction, observed: &str, autonat: bool) -> PeerInfo {
        PeerInfo {
            peer: libp2p::PeerId::random(),
            addr: "/ip4/10.0.0.2/tcp/4001".parse().unwrap(),
            direction,
            connected_since: SystemTime::now(),
            agent: None,
            protocols: if autonat {
                vec![AUTONAT_DIAL_REQUEST.into()]
            } else {
                vec![]
            },
            listen_addrs: vec![],
            rtt_last: None,
            rtt_samples: vec![],
            pings_sent: 0,
            pings_failed: 0,
            rtt_at: None,
            ping_interval: Duration::from_secs(15),
            observed_addr: Some(observed.parse().unwrap()),
        }
    }

    fn test(addr: &str, ok: bool) -> AutonatTest {
        AutonatTest {
            addr: addr.into(),
            server: "12D3KooWServer".into(),
            reachable: ok,
            error: (!ok).then(|| "dial back failed".into()),
            at_ms: 0,
        }
    }

    #[test]
    fn nothing_tells_so_it_is_unknown_with_the_reason_and_the_agreeing_peers() {
        let a = "/ip4/203.0.113.7/tcp/4001";
        let peers = [
            peer(Direction::Outbound, a, false),
            peer(Direction::Outbound, a, false),
            peer(Direction::Outbound, "/ip4/203.0.113.7/tcp/5555", false),
        ];
        let r = judge(&peers, &[]);
        assert_eq!(r.state, ReachState::Unknown);
        assert!(r.reason.contains("none offers AutoNAT"), "{}", r.reason);
        assert_eq!(
            r.observed[0],
            Observed {
                addr: a.into(),
                peers: 2
            }
        );
        assert_eq!(r.observed.len(), 2);
        assert_eq!(judge(&[], &[]).reason, "no peer connected");
    }

    #[test]
    fn inbound_peers_and_autonat_decide_and_autonat_wins() {
        let a = "/ip4/203.0.113.7/tcp/4001";
        let peers = [
            peer(Direction::Inbound, a, true),
            peer(Direction::Outbound, a, false),
        ];
        let r = judge(&peers, &[]);
        assert_eq!((r.state, r.autonat_peers), (ReachState::Reachable, 1));
        assert!(r.reason.contains("1 of 2 connected peers dialled us"));
        let r = judge(&peers, &[test(a, false)]);
        assert_eq!(r.state, ReachState::Unreachable);
        assert!(r.reason.contains("could not dial us at"), "{}", r.reason);
        let r = judge(&peers, &[test(a, false), test("/ip4/1.2.3.4/tcp/1", true)]);
        assert_eq!(r.state, ReachState::Reachable);
        assert!(
            r.reason.contains("1 of 2 addresses confirmed"),
            "{}",
            r.reason
        );
    }
}

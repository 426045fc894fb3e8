//! The Peers pane: connected peers, refreshed each second, sorted by one
//! column and narrowed by a filter. The selection follows its peer through
//! refreshes, so a re-sort or a new peer never moves it to another one.

use std::time::Duration;

use crate::node::PeerInfo;

/// What the Peers pane is sorted by (`s` cycles).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PeerSort {
    /// Longest connected first: the order peers arrived in.
    #[default]
    Age,
    Id,
    Agent,
    /// Fastest first; peers without a ping yet last.
    Rtt,
    /// API peers first, then by the protocols they speak.
    Protocol,
}

impl PeerSort {
    pub fn next(self) -> Self {
        match self {
            Self::Age => Self::Id,
            Self::Id => Self::Agent,
            Self::Agent => Self::Rtt,
            Self::Rtt => Self::Protocol,
            Self::Protocol => Self::Age,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Age => "up",
            Self::Id => "id",
            Self::Agent => "agent",
            Self::Rtt => "rtt",
            Self::Protocol => "protocol",
        }
    }
}

#[derive(Default)]
pub struct PeersView {
    /// Every connected peer, in the sort order.
    pub list: Vec<PeerInfo>,
    /// Indices into `list` of the peers the filter lets through.
    pub shown: Vec<usize>,
    /// Index into `shown`.
    pub sel: usize,
    pub sort: PeerSort,
    /// Words that must all match (see [`PeerFilter`]); empty: all peers.
    pub filter: PeerFilter,
}

impl PeersView {
    /// A fresh list of peers from the node.
    pub fn set(&mut self, peers: Vec<PeerInfo>) {
        let keep = self.selected().map(|p| p.peer);
        self.list = peers;
        self.refresh(keep);
    }

    pub fn selected(&self) -> Option<&PeerInfo> {
        self.shown.get(self.sel).and_then(|&i| self.list.get(i))
    }

    pub fn cycle_sort(&mut self) {
        let keep = self.selected().map(|p| p.peer);
        self.sort = self.sort.next();
        self.refresh(keep);
    }

    pub fn set_filter(&mut self, filter: PeerFilter) {
        let keep = self.selected().map(|p| p.peer);
        self.filter = filter;
        self.refresh(keep);
    }

    fn refresh(&mut self, keep: Option<libp2p::PeerId>) {
        let key_rtt = |p: &PeerInfo| p.rtt_last.unwrap_or(Duration::MAX);
        match self.sort {
            PeerSort::Age => self.list.sort_by_key(|p| p.connected_since),
            PeerSort::Id => self.list.sort_by_cached_key(|p| p.peer.to_string()),
            PeerSort::Agent => self
                .list
                .sort_by(|a, b| a.agent.cmp(&b.agent).then(a.peer.cmp(&b.peer))),
            PeerSort::Rtt => self.list.sort_by_key(key_rtt),
            PeerSort::Protocol => self.list.sort_by(|a, b| {
                (!a.serves_api_v1(), &a.protocols).cmp(&(!b.serves_api_v1(), &b.protocols))
            }),
        }
        self.shown = (0..self.list.len())
            .filter(|&i| self.filter.matches(&self.list[i]))
            .collect();
        let at = keep.and_then(|peer| self.shown.iter().position(|&i| self.list[i].peer == peer));
        self.sel = at.unwrap_or(self.sel.min(self.shown.len().saturating_sub(1)));
    }
}

/// The Peers filter: space-separated words that must all match. `rtt<50ms`
/// and `rtt>1s` compare the last ping; any other word is looked for, case
/// aside, in the peer id, the agent and the protocols.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PeerFilter {
    pub text: String,
    words: Vec<FilterWord>,
}

#[derive(Clone, Debug, PartialEq)]
enum FilterWord {
    Text(String),
    RttBelow(Duration),
    RttAbove(Duration),
}

impl PeerFilter {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut words = Vec::new();
        for word in text.split_whitespace() {
            let rtt = |rest: &str| {
                crate::load::parse_duration(rest)
                    .ok_or_else(|| format!("{word}: not a duration (e.g. rtt<50ms, rtt>1s)"))
            };
            words.push(if let Some(rest) = word.strip_prefix("rtt<") {
                FilterWord::RttBelow(rtt(rest)?)
            } else if let Some(rest) = word.strip_prefix("rtt>") {
                FilterWord::RttAbove(rtt(rest)?)
            } else {
                FilterWord::Text(word.to_lowercase())
            });
        }
        Ok(Self {
            text: text.trim().to_string(),
            words,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    fn matches(&self, p: &PeerInfo) -> bool {
        let id = p.peer.to_string();
        let mut fields: Vec<&str> = vec![&id];
        fields.extend(p.agent.as_deref());
        fields.extend(p.protocols.iter().map(String::as_str));
        self.matches_fields(&fields, p.rtt_last)
    }

    /// Every word matches: a text word some field (case aside), an RTT
    /// bound `rtt`. The Health view filters its rows with it too.
    pub fn matches_fields(&self, fields: &[&str], rtt: Option<Duration>) -> bool {
        self.words.iter().all(|w| match w {
            FilterWord::RttBelow(d) => rtt.is_some_and(|r| r < *d),
            FilterWord::RttAbove(d) => rtt.is_some_and(|r| r > *d),
            FilterWord::Text(t) => fields.iter().any(|f| f.to_lowercase().contains(t)),
        })
    }
}

/// A peer's dialable address (see [`PeerInfo::dial_addr`]).
pub fn peer_multiaddr(p: &PeerInfo) -> String {
    p.dial_addr()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn peer(agent: &str, rtt_ms: Option<u64>, api: bool, age: u64) -> PeerInfo {
        PeerInfo {
            peer: libp2p::PeerId::random(),
            addr: "/ip4/127.0.0.1/tcp/1".parse().unwrap(),
            direction: crate::node::Direction::Outbound,
            connected_since: SystemTime::UNIX_EPOCH + Duration::from_secs(age),
            agent: Some(agent.into()),
            protocols: if api {
                vec![crate::wire::PROTOCOL_V1.to_string()]
            } else {
                vec!["/ipfs/ping/1.0.0".into()]
            },
            listen_addrs: vec![],
            rtt_last: rtt_ms.map(Duration::from_millis),
            rtt_samples: vec![],
            pings_sent: 0,
            pings_failed: 0,
            rtt_at: None,
            ping_interval: Duration::from_secs(15),
            observed_addr: None,
        }
    }

    fn agents(v: &PeersView) -> Vec<String> {
        v.shown
            .iter()
            .map(|&i| v.list[i].agent.clone().unwrap_or_default())
            .collect()
    }

    #[test]
    fn sorting_and_filtering_keep_the_selected_peer() {
        let mut v = PeersView::default();
        v.set(vec![
            peer("py-libp2p/0.6.0", Some(30), true, 3),
            peer("peerapi/0.1.0", Some(2), true, 1),
            peer("go-ipfs", None, false, 2),
        ]);
        assert_eq!(agents(&v), ["peerapi/0.1.0", "go-ipfs", "py-libp2p/0.6.0"]);
        v.sel = 2;
        let chosen = v.selected().unwrap().peer;
        v.cycle_sort(); // id
        v.cycle_sort(); // agent
        assert_eq!(v.sort, PeerSort::Agent);
        assert_eq!(agents(&v), ["go-ipfs", "peerapi/0.1.0", "py-libp2p/0.6.0"]);
        assert_eq!(v.selected().unwrap().peer, chosen);
        v.cycle_sort(); // rtt: fastest first, no ping last
        assert_eq!(agents(&v), ["peerapi/0.1.0", "py-libp2p/0.6.0", "go-ipfs"]);
        v.cycle_sort(); // protocol: API peers first
        assert_eq!(agents(&v)[2], "go-ipfs");

        v.set_filter(PeerFilter::parse("rtt>10ms").unwrap());
        assert_eq!(agents(&v), ["py-libp2p/0.6.0"]);
        assert_eq!(v.selected().unwrap().peer, chosen);
        v.set_filter(PeerFilter::parse("PY-LIBP2P rtt<10ms").unwrap());
        assert!(v.shown.is_empty() && v.selected().is_none());
        v.set_filter(PeerFilter::parse("api_protocol").unwrap());
        assert_eq!(v.shown.len(), 2);
        v.set_filter(PeerFilter::parse("").unwrap());
        assert_eq!(v.shown.len(), 3);

        // A refresh with the selected peer gone keeps a valid selection.
        v.set(vec![peer("a", None, false, 1)]);
        assert_eq!(v.sel, 0);
        assert!(v.selected().is_some());
    }

    #[test]
    fn a_bad_rtt_word_says_how_to_write_it() {
        let e = PeerFilter::parse("rtt<fast").unwrap_err();
        assert!(e.contains("rtt<50ms"), "{e}");
    }
}

//! The Peers pane: connected peers, refreshed each second.

use crate::node::PeerInfo;

#[derive(Default)]
pub struct PeersView {
    pub list: Vec<PeerInfo>,
    pub sel: usize,
}

/// A peer's dialable address: its connection address (or first listen
/// address) with `/p2p/<id>`.
pub fn peer_multiaddr(p: &PeerInfo) -> String {
    let base = if p.direction == crate::node::Direction::Outbound {
        Some(p.addr.clone())
    } else {
        p.listen_addrs
            .iter()
            .find(|a| a.to_string().contains("127.0.0.1"))
            .or(p.listen_addrs.first())
            .cloned()
            .or(Some(p.addr.clone()))
    };
    let mut s = base.map(|a| a.to_string()).unwrap_or_default();
    if !s.contains("/p2p/") {
        s.push_str(&format!("/p2p/{}", p.peer));
    }
    s
}

use std::time::Duration;

use crate::common::*;

/// A newcomer that knows only the bootnode finds the other subnet peer
/// through the DHT, connects to it and lists it.
#[tokio::test]
async fn newcomer_finds_subnet_peers_through_the_bootnode() {
    let fast = |bootstrap: Vec<libp2p::Multiaddr>| {
        let mut cfg = config();
        cfg.bootstrap = bootstrap;
        cfg.discovery_interval = Duration::from_millis(300);
        cfg
    };
    let (boot, boot_addr) = start(fast(vec![])).await;
    let (member, _) = start(fast(vec![boot_addr.clone()])).await;
    let (newcomer, _) = start(fast(vec![boot_addr.clone()])).await;
    let member_id = member.handle().local_peer_id();
    let h = newcomer.handle();
    let mut events = h.subscribe();
    let found = within(async {
        loop {
            let peers = h.peers().await.unwrap();
            if peers.iter().any(|p| p.peer == member_id) {
                return peers;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(found
        .iter()
        .any(|p| p.peer == boot.handle().local_peer_id()));
    // Reported where the DHT named it, not only as a dial target.
    within(async {
        loop {
            if let peerapi::NodeEvent::PeerDiscovered { peer, .. } = events.recv().await.unwrap() {
                if peer == member_id {
                    return;
                }
            }
        }
    })
    .await;
    for n in [boot, member, newcomer] {
        n.abort();
    }
}

/// Gossip holds a stream open on every connection for its life; that
/// stream must not hold the connection (else every connection a subnet
/// ever made stays, a full mesh): a peer outside the mesh is let go when
/// the connection has been idle for the timeout.
#[tokio::test]
async fn a_connection_only_gossip_holds_closes_when_idle() {
    let node = |topic: &str| {
        let mut cfg = config();
        // Different topics: the peers exchange subscriptions (the streams
        // open) but are in no mesh together.
        cfg.subnet.gossip.topics = vec![topic.to_string()];
        cfg.idle_connection_timeout = Duration::from_secs(1);
        cfg
    };
    let (a, a_addr) = start(node("a-only")).await;
    let (b, _) = start(node("b-only")).await;
    let a_id = a.handle().local_peer_id();
    let mut events = b.handle().subscribe();
    within(b.handle().dial(&a_addr)).await.unwrap();
    let identified = within(async {
        loop {
            match events.recv().await.unwrap() {
                peerapi::NodeEvent::PeerIdentified {
                    peer, protocols, ..
                } if peer == a_id => return protocols,
                peerapi::NodeEvent::PeerDisconnected { peer, .. } if peer == a_id => {
                    panic!("closed before identify")
                }
                _ => {}
            }
        }
    })
    .await;
    assert!(identified.iter().any(|p| p.starts_with("/meshsub/")));
    within(async {
        loop {
            if let peerapi::NodeEvent::PeerDisconnected { peer, .. } = events.recv().await.unwrap()
            {
                if peer == a_id {
                    return;
                }
            }
        }
    })
    .await;
    a.abort();
    b.abort();
}

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

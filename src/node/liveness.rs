//! Whether a link is alive, and getting it back. A partition keeps TCP
//! connections open with nothing crossing them, and a silent stream (a
//! model thinking for a minute) looks the same from inside the stream;
//! only ping tells them apart. A ping that gets no answer within the ping
//! timeout closes that connection: calls on it end at once instead of
//! waiting on a peer that is gone. The node then dials its bootnodes and
//! the peers it lost that way again by itself, with backoff, so a healed
//! partition heals the subnet too.

use std::time::Duration;

use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{ping, Multiaddr};

use super::event_loop::{EventLoop, RTT_SAMPLES};
use super::NodeEvent;

impl EventLoop {
    pub(super) fn on_ping(&mut self, event: ping::Event) {
        let ping::Event {
            peer,
            connection,
            result,
        } = event;
        let rtt = result.as_ref().ok().copied();
        if let Some((info, _)) = self.peers.get_mut(&peer) {
            info.pings_sent = info.pings_sent.saturating_add(1);
            match rtt {
                Some(rtt) => {
                    info.rtt_last = Some(rtt);
                    info.rtt_at = Some(std::time::SystemTime::now());
                    if info.rtt_samples.len() == RTT_SAMPLES {
                        info.rtt_samples.remove(0);
                    }
                    info.rtt_samples.push(rtt);
                }
                None => info.pings_failed = info.pings_failed.saturating_add(1),
            }
        }
        self.emit(NodeEvent::PeerRtt { peer, rtt });
        // Only silence: a peer without ping (some py-libp2p builds) answers
        // "unsupported" and keeps its connection.
        if matches!(result, Err(ping::Failure::Timeout)) {
            let timeout = self.ping_timeout;
            tracing::warn!(
                %peer,
                "the link went silent: no answer to a ping within {timeout:?}; closing its connection (calls on it end now) and dialling it again"
            );
            let addrs = self
                .peers
                .get(&peer)
                .map(|(info, _)| match info.direction {
                    // What we dialled worked: dial it again.
                    super::Direction::Outbound => vec![info.addr.clone()],
                    // It dialled us: where it says it listens.
                    super::Direction::Inbound => info.listen_addrs.clone(),
                })
                .unwrap_or_default();
            let addrs = addrs
                .into_iter()
                .filter(|a| !is_circuit(a))
                .map(|mut a| {
                    if matches!(a.iter().last(), Some(Protocol::P2p(_))) {
                        a.pop();
                    }
                    a
                })
                .collect();
            self.reconnects.lost(peer, addrs);
            self.client.silent.mark(peer, timeout);
            self.swarm.close_connection(connection);
            self.emit(NodeEvent::LinkSilent {
                peer,
                after: timeout,
            });
        }
    }

    /// Dials whoever is due again.
    pub(super) fn redial(&mut self) {
        for (peer, addrs, lost_at) in self.reconnects.take_due() {
            if self.swarm.is_connected(&peer) || addrs.is_empty() {
                continue;
            }
            let lost_for = lost_at
                .and_then(|t| t.elapsed().ok())
                .map(|d| format!("{:.0?}", Duration::from_secs(d.as_secs())))
                .unwrap_or_else(|| "-".into());
            tracing::info!(%peer, lost_for, "dialling a lost peer again");
            let opts = DialOpts::peer_id(peer)
                .addresses(addrs)
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            let _ = self.swarm.dial(opts);
        }
    }
}

fn is_circuit(a: &Multiaddr) -> bool {
    a.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}

//! One node's probe: dial it where it advertises (unless connected),
//! read identify and the first ping, compare its DAG heads with ours when
//! it serves DAG sync, and call the health route when one is configured.

use std::time::{Duration, Instant};

use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;

use super::verdict::Observation;
use super::HealthConfig;
use crate::node::{CallRequest, NodeHandle, PeerInfo};

/// How long after a dial a probe waits for the first ping answer.
const RTT_WAIT: Duration = Duration::from_secs(3);

/// One node to probe this round.
#[derive(Clone, Debug, Default)]
pub(super) struct Target {
    pub(super) peer: String,
    pub(super) addr: Option<Result<Multiaddr, String>>,
    pub(super) roster_state: Option<String>,
    pub(super) state_age: Option<Duration>,
}

/// `addr` with `/p2p/<peer>` at its end.
pub(super) fn with_peer(addr: &str, peer: &str) -> Result<Multiaddr, String> {
    let mut a: Multiaddr = addr
        .parse()
        .map_err(|e| format!("its advertised address {addr:?} does not parse: {e}"))?;
    if !matches!(a.iter().last(), Some(Protocol::P2p(_))) {
        let id = peer
            .parse()
            .map_err(|e| format!("its peer id does not parse: {e}"))?;
        a.push(Protocol::P2p(id));
    }
    Ok(a)
}

/// Probes one node: (what was seen, how long the probe's own work took).
pub(super) async fn probe(
    handle: &NodeHandle,
    cfg: &HealthConfig,
    t: &Target,
    connected: Option<&PeerInfo>,
) -> (Observation, Option<Duration>) {
    let mut o = Observation {
        roster_state: t.roster_state.clone(),
        state_age: t.state_age,
        ..Observation::default()
    };
    let mut took: Option<Duration> = None;
    let mut info = connected.cloned();
    if info.is_some() {
        o.dial = Some(Ok(Duration::ZERO));
    } else {
        match &t.addr {
            None => o.dial = None,
            Some(Err(e)) => o.dial = Some(Err(e.clone())),
            Some(Ok(addr)) => {
                let start = Instant::now();
                let dialled = tokio::time::timeout(cfg.dial_timeout, handle.dial(addr)).await;
                let spent = start.elapsed();
                o.dial = Some(match dialled {
                    Ok(Ok(_)) => Ok(spent),
                    // The peer id is the row's own: the reason keeps the rest.
                    Ok(Err(e)) => Err(e
                        .to_string()
                        .replace(&format!("cannot connect to {}: ", t.peer), "dial ")),
                    Err(_) => Err(format!("dial timed out after {:?}", cfg.dial_timeout)),
                });
                took = Some(spent);
                if o.dial.as_ref().is_some_and(|d| d.is_ok()) {
                    info = first_ping(handle, &t.peer).await;
                }
            }
        }
    }
    if let Some(i) = &info {
        o.agent = i.agent.clone();
        o.rtt = i.rtt_last;
        if let (Some(Ok(advertised)), Some(_)) = (&t.addr, &t.roster_state) {
            if let Some(listens) = advertised_elsewhere(advertised, i) {
                // Where it advertises is where the others dial: try it.
                o.advertised_elsewhere = dial_advertised(advertised, cfg.dial_timeout)
                    .await
                    .err()
                    .map(|e| format!("{e} (where it advertises; it listens on {listens})"));
            }
        }
    }
    if let (Some(i), Some(Ok(addr))) = (&info, &t.addr) {
        if i.protocols
            .iter()
            .any(|p| p == crate::subnet::PROTOCOL_DAG_SYNC)
        {
            let start = Instant::now();
            let asked = super::dag::probe(handle, addr, cfg.dial_timeout).await;
            o.dag = Some(asked.map(|(dag, bytes)| {
                o.bytes += bytes;
                dag
            }));
            took = Some(took.unwrap_or_default() + start.elapsed());
        }
    }
    if let (Some(route), Some(Ok(addr)), true) = (
        &cfg.health_route,
        &t.addr,
        o.dial.as_ref().is_some_and(|d| d.is_ok()),
    ) {
        let start = Instant::now();
        let call = tokio::time::timeout(
            cfg.dial_timeout,
            handle.call_full(addr, CallRequest::new(route.clone())),
        )
        .await;
        let spent = start.elapsed();
        o.health_route = Some(match call {
            Ok(Ok(r)) => Ok((r.head.status.unwrap_or(200), spent)),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {:?}", cfg.dial_timeout)),
        });
        took = Some(took.unwrap_or_default() + spent);
    }
    (o, took)
}

/// The IP and TCP port of an address.
fn socket_of(a: &Multiaddr) -> Option<(String, u16)> {
    let mut ip = None;
    for p in a.iter() {
        match p {
            Protocol::Ip4(v) => ip = Some(v.to_string()),
            Protocol::Ip6(v) => ip = Some(v.to_string()),
            Protocol::Dns(h) | Protocol::Dns4(h) | Protocol::Dns6(h) => ip = Some(h.to_string()),
            Protocol::Tcp(port) => return ip.map(|ip| (ip, port)),
            _ => {}
        }
    }
    None
}

/// Where a connected roster node listens, when that is not where it
/// advertises (neither our connection, when we dialled, nor what identify
/// says it listens on): None when it matches or cannot be told.
fn advertised_elsewhere(advertised: &Multiaddr, info: &PeerInfo) -> Option<String> {
    let want = socket_of(advertised)?;
    let mut seen: Vec<&Multiaddr> = info.listen_addrs.iter().collect();
    if info.direction == crate::node::Direction::Outbound {
        seen.push(&info.addr);
    }
    if seen.is_empty() || seen.iter().any(|a| socket_of(a).as_ref() == Some(&want)) {
        return None;
    }
    let listens: Vec<String> = info.listen_addrs.iter().map(|a| a.to_string()).collect();
    Some(if listens.is_empty() {
        "?".into()
    } else {
        listens.join(", ")
    })
}

/// A TCP connection to where a node advertises (a port forward to it
/// passes): the dial's error when none can be made. Only the handshake:
/// the peer behind is the one we are connected to elsewhere.
async fn dial_advertised(advertised: &Multiaddr, within: Duration) -> Result<(), String> {
    let (host, port) = socket_of(advertised).ok_or("no TCP address")?;
    let target = format!("{host}:{port}");
    let connect = tokio::net::TcpStream::connect((host.as_str(), port));
    match tokio::time::timeout(within, connect).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("dial {target}: {}", e.kind())),
        Err(_) => Err(format!("dial {target}: no answer within {within:?}")),
    }
}

/// The peer's info once its first ping came back (or after [`RTT_WAIT`]).
async fn first_ping(handle: &NodeHandle, peer: &str) -> Option<PeerInfo> {
    let until = Instant::now() + RTT_WAIT;
    loop {
        let info = handle
            .peers()
            .await
            .ok()?
            .into_iter()
            .find(|p| p.peer.to_string() == peer);
        if info.as_ref().is_some_and(|i| i.rtt_last.is_some()) || Instant::now() >= until {
            return info;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

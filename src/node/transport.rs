//! The transport stack the subnet nodes use: TCP, optionally a private
//! network (pre-shared key), multistream-select, Noise offered under both
//! `/noise` and the proof-of-stake name `/pos-transport/1.0.0`, then yamux.

use std::time::Duration;

use futures::{AsyncRead, AsyncWrite};
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::{Boxed, Transport};
use libp2p::core::upgrade::{
    self, InboundConnectionUpgrade, OutboundConnectionUpgrade, UpgradeInfo,
};
use libp2p::identity::Keypair;
use libp2p::pnet::{PnetConfig, PreSharedKey};
use libp2p::{noise, tcp, PeerId};

use super::muxer::YamuxUpgrade;

/// Security protocol name of subnet-template nodes running with proof of stake.
pub const POS_TRANSPORT: &str = "/pos-transport/1.0.0";
/// Noise's own security protocol name.
pub const NOISE: &str = "/noise";
/// Where `peerapi node` and `subnet watch` listen unless told.
pub const NODE_LISTEN: &str = "/ip4/0.0.0.0/tcp/4001";
/// Where the console's own node listens unless told: a port of its own
/// (it usually runs beside a node, which keeps 4001).
pub const CONSOLE_LISTEN: &str = "/ip4/0.0.0.0/tcp/0";
/// How long a new connection may take to be secured and multiplexed.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(20);

/// Noise, offered under each of `names`. The handshake is the same; proof
/// of stake nodes only check the remote peer id after it.
#[derive(Clone)]
pub struct SubnetNoise {
    inner: noise::Config,
    names: Vec<&'static str>,
}

impl SubnetNoise {
    pub fn new(key: &Keypair, names: Vec<&'static str>) -> Result<Self, noise::Error> {
        Ok(Self {
            inner: noise::Config::new(key)?,
            names,
        })
    }
}

impl UpgradeInfo for SubnetNoise {
    type Info = &'static str;
    type InfoIter = std::vec::IntoIter<&'static str>;

    fn protocol_info(&self) -> Self::InfoIter {
        self.names.clone().into_iter()
    }
}

impl<T> InboundConnectionUpgrade<T> for SubnetNoise
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Output = <noise::Config as InboundConnectionUpgrade<T>>::Output;
    type Error = <noise::Config as InboundConnectionUpgrade<T>>::Error;
    type Future = <noise::Config as InboundConnectionUpgrade<T>>::Future;

    fn upgrade_inbound(self, socket: T, _: Self::Info) -> Self::Future {
        self.inner.upgrade_inbound(socket, NOISE)
    }
}

impl<T> OutboundConnectionUpgrade<T> for SubnetNoise
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Output = <noise::Config as OutboundConnectionUpgrade<T>>::Output;
    type Error = <noise::Config as OutboundConnectionUpgrade<T>>::Error;
    type Future = <noise::Config as OutboundConnectionUpgrade<T>>::Future;

    fn upgrade_outbound(self, socket: T, _: Self::Info) -> Self::Future {
        self.inner.upgrade_outbound(socket, NOISE)
    }
}

/// Builds the authenticated, multiplexed TCP transport.
pub fn build(
    key: &Keypair,
    psk: Option<PreSharedKey>,
    security_names: Vec<&'static str>,
    yamux: YamuxUpgrade,
) -> Result<Boxed<(PeerId, StreamMuxerBox)>, noise::Error> {
    let security = SubnetNoise::new(key, security_names)?;
    let tcp = tcp::tokio::Transport::new(tcp::Config::default().nodelay(true));
    Ok(match psk {
        None => tcp
            .upgrade(upgrade::Version::V1)
            .authenticate(security)
            .multiplex(yamux)
            .timeout(UPGRADE_TIMEOUT)
            .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)))
            .boxed(),
        Some(psk) => tcp
            .and_then(move |socket, _| PnetConfig::new(psk).handshake(socket))
            .upgrade(upgrade::Version::V1)
            .authenticate(security)
            .multiplex(yamux)
            .timeout(UPGRADE_TIMEOUT)
            .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)))
            .boxed(),
    })
}

/// Refuses a TCP listen address whose port another process listens on.
///
/// libp2p-tcp sets SO_REUSEPORT on every listener, so a second process on
/// the same port starts without a word and the kernel spreads inbound
/// connections across both: peers then reach the wrong peer id. A plain
/// bind (SO_REUSEADDR alone) fails on a port any socket listens on, so
/// binding one for a moment tells. (Dials keep port reuse: they bind our
/// own listen port so that peers observe the address we listen on.)
pub fn check_port_free(addr: &libp2p::Multiaddr) -> Result<(), String> {
    use libp2p::multiaddr::Protocol;
    let mut ip = None;
    let mut port = None;
    for p in addr.iter() {
        match p {
            Protocol::Ip4(a) => ip = Some(std::net::IpAddr::V4(a)),
            Protocol::Ip6(a) => ip = Some(std::net::IpAddr::V6(a)),
            Protocol::Tcp(p) => port = Some(p),
            _ => {}
        }
    }
    let (Some(ip), Some(port)) = (ip, port) else {
        return Ok(());
    };
    if port == 0 {
        return Ok(());
    }
    match std::net::TcpListener::bind((ip, port)) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(format!(
            "another process listens on port {port} there (choose another --listen port, or stop that process)"
        )),
        // Anything else (no such address here, no permission) is for the
        // real listener to report.
        Err(_) => Ok(()),
    }
}

/// Reads a libp2p pre-shared-key file (`/key/swarm/psk/1.0.0/`, `/base16/`, 64 hex digits).
pub fn load_psk(path: &std::path::Path) -> Result<PreSharedKey, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read PSK file {}: {e}", path.display()))?;
    text.parse::<PreSharedKey>().map_err(|e| {
        format!(
            "PSK file {} is not a libp2p swarm key ({e}); expected the lines /key/swarm/psk/1.0.0/, /base16/ and 64 hex digits",
            path.display()
        )
    })
}

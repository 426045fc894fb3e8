//! What `call`, `stream` and `load` share: the request to send (method,
//! headers, body, limits, identity) and whom to send it to (one peer, a
//! list, or every connected peer that lists the route).

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use libp2p::Multiaddr;
use peerapi::node::{parse_peer_addr, CallRequest, NodeConfig, ProtocolChoice};
use peerapi::NodeHandle;

#[derive(Args, Debug)]
pub(crate) struct RequestArgs {
    /// HTTP method (default GET, or POST when -d is given).
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    method: Option<String>,
    /// Header to forward, 'Name: value' (repeatable).
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    headers: Vec<String>,
    /// Body: literal text, @FILE, or @- for standard input.
    #[arg(short = 'd', long = "data", value_name = "DATA")]
    data: Option<String>,
    /// Take method, headers and body from a curl command line (as browsers
    /// and API docs give them); -X, -H and -d given too win over it.
    #[arg(long, value_name = "'curl ...'")]
    from_curl: Option<String>,
    /// Seconds the whole call may take (unary) or to the first byte (stream).
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    timeout: f64,
    /// Seconds a stream may go without a chunk (a dead link is found
    /// sooner, by ping).
    #[arg(long, value_name = "SECS", default_value_t = peerapi::node::DEFAULT_CALL_STREAM_IDLE_TIMEOUT.as_secs_f64())]
    idle_timeout: f64,
    /// Largest unary response accepted.
    #[arg(long, value_name = "BYTES", default_value_t = peerapi::node::DEFAULT_MAX_RESPONSE_BYTES)]
    max_response_bytes: usize,
    /// Key file for our identity (default: a new one per run).
    #[arg(long, value_name = "PATH")]
    key: Option<std::path::PathBuf>,
    /// Private-network key file, to reach peers of a subnet that uses one.
    #[arg(long, value_name = "FILE")]
    psk: Option<std::path::PathBuf>,
    /// Largest 2.0.0 frame accepted from the peer.
    #[arg(long, value_name = "BYTES", default_value_t = peerapi::wire::frame::DEFAULT_MAX_FRAME_BYTES)]
    max_frame_bytes: usize,
    /// Force a protocol version: 1 (/subnet/api_protocol/1.0.0) or 2
    /// (/peerapi/api/2.0.0). Default: 2 when the peer has it, else 1.
    #[arg(long, value_name = "1|2", value_parser = clap::value_parser!(u8).range(1..=2))]
    protocol: Option<u8>,
}

/// Whom to call, when not one peer.
#[derive(Args, Debug)]
pub(crate) struct Targets {
    /// Call these peers (comma-separated multiaddrs) with the same request.
    #[arg(long, value_name = "ADDR,ADDR", value_delimiter = ',')]
    pub peers: Vec<String>,
    /// Call every peer reached through --bootstrap that lists the route.
    #[arg(long, requires = "bootstrap")]
    pub all_peers: bool,
    /// Peer to join through, for --all-peers (repeatable).
    #[arg(long, value_name = "ADDR")]
    pub bootstrap: Vec<String>,
    /// Seconds to find peers before --all-peers calls them.
    #[arg(long, value_name = "SECS", default_value_t = 3.0)]
    pub discover_secs: f64,
    /// Peers called at once (--peers, --all-peers).
    #[arg(long, value_name = "N", default_value_t = peerapi::load::fanout::DEFAULT_FANOUT_CONCURRENCY)]
    pub fanout_concurrency: usize,
}

impl Targets {
    pub(crate) fn is_set(&self) -> bool {
        !self.peers.is_empty() || self.all_peers
    }

    /// The one peer (if any) and the route from the positionals: ADDR
    /// ROUTE, or ROUTE alone with --peers/--all-peers.
    pub(crate) fn positionals(
        &self,
        first: &str,
        second: &Option<String>,
    ) -> Result<(Option<String>, String), &'static str> {
        match (second, self.is_set()) {
            (Some(route), false) => Ok((Some(first.to_string()), route.clone())),
            (None, true) => Ok((None, first.to_string())),
            (None, false) => Err("give ADDR ROUTE, or ROUTE with --peers A,B or --all-peers"),
            (Some(_), true) => Err("with --peers or --all-peers give the ROUTE only"),
        }
    }

    /// The peers to call for `route`: those given, or every connected
    /// peer whose route listing has it (found within --discover-secs).
    pub(crate) async fn resolve(
        &self,
        handle: &NodeHandle,
        route: &str,
    ) -> Result<Vec<Multiaddr>, String> {
        if !self.all_peers {
            return self
                .peers
                .iter()
                .map(|p| parse_peer_addr(p).map_err(|e| e.to_string()))
                .collect();
        }
        let wait = Duration::try_from_secs_f64(self.discover_secs)
            .map_err(|_| "--discover-secs must be a non-negative number".to_string())?;
        tokio::time::sleep(wait).await;
        let peers = handle.peers().await.map_err(|e| e.to_string())?;
        let mut found = Vec::new();
        for p in peers.iter().filter(|p| p.serves_api_v1()) {
            let mut addr: Multiaddr = p
                .addr
                .iter()
                .filter(|c| !matches!(c, libp2p::multiaddr::Protocol::P2p(_)))
                .collect();
            addr.push(libp2p::multiaddr::Protocol::P2p(p.peer));
            // Only peers that list the route: the others would refuse.
            if let Ok(routes) = handle.list_routes(&addr).await {
                if routes.iter().any(|r| r.name == route) {
                    found.push(addr);
                }
            }
        }
        if found.is_empty() {
            return Err(format!(
                "no connected peer lists the route {route:?} after {wait:?} (try a longer --discover-secs)"
            ));
        }
        Ok(found)
    }
}

impl RequestArgs {
    /// The request for `route` and the local node's configuration; or an
    /// exit code and what to say.
    pub(crate) fn prepare(
        &self,
        route: &str,
        targets: &Targets,
    ) -> Result<(CallRequest, NodeConfig), (u8, String)> {
        let curl = match &self.from_curl {
            Some(line) => Some(
                peerapi::cmdline::from_curl(line).map_err(|e| (2, format!("--from-curl: {e}")))?,
            ),
            None => None,
        };
        let mut headers: HashMap<String, String> = curl
            .iter()
            .flat_map(|c| c.headers.iter().cloned())
            .collect();
        headers.extend(parse_headers(&self.headers).map_err(|e| (1, e))?);
        let body = match (&self.data, &curl) {
            (None, Some(c)) => Bytes::from(c.body.clone()),
            _ => read_body(&self.data).map_err(|e| (1, e))?,
        };
        let (Ok(timeout), Ok(idle)) = (
            Duration::try_from_secs_f64(self.timeout),
            Duration::try_from_secs_f64(self.idle_timeout),
        ) else {
            return Err((
                1,
                "--timeout and --idle-timeout must be non-negative numbers of seconds".into(),
            ));
        };
        let method = match (&self.method, &curl) {
            (Some(m), _) => m.clone(),
            (None, Some(c)) if self.data.is_none() => c.method.clone(),
            _ if self.data.is_some() => "POST".to_string(),
            _ => "GET".to_string(),
        };
        let keypair = match &self.key {
            Some(path) => peerapi::keys::load_key(path).map_err(|e| (1, e.to_string()))?,
            None => libp2p::identity::Keypair::generate_ed25519(),
        };
        let mut config = NodeConfig::new(keypair).only_calls();
        config.listen = Vec::new();
        config.call.timeout = timeout;
        config.call.stream_idle_timeout = idle;
        config.call.max_response_bytes = self.max_response_bytes;
        config.call.max_frame_bytes = self.max_frame_bytes;
        if let Some(path) = &self.psk {
            config.psk =
                Some(peerapi::node::transport::load_psk(path).map_err(|e| (1, e.to_string()))?);
        }
        config.call.protocol = match self.protocol {
            Some(1) => ProtocolChoice::V1,
            Some(_) => ProtocolChoice::V2,
            None => ProtocolChoice::Auto,
        };
        config.bootstrap = targets
            .bootstrap
            .iter()
            .map(|b| parse_peer_addr(b))
            .collect::<Result<_, _>>()
            .map_err(|e| (3, e.to_string()))?;
        if targets.all_peers {
            // It calls every peer it finds, so it connects to every one,
            // and walks the DHT to find them (still no DAG sync or gossip).
            config.peer_target = usize::MAX;
            config.dht_walks = true;
        }
        let req = CallRequest {
            route: route.to_string(),
            method,
            headers,
            body,
        };
        Ok((req, config))
    }
}

pub(crate) fn parse_headers(raw: &[String]) -> Result<HashMap<String, String>, String> {
    let mut headers = HashMap::new();
    for h in raw {
        let (name, value) =
            peerapi::node::parse_header_line(h).map_err(|why| format!("header {h:?} {why}"))?;
        headers.insert(name.to_string(), value.to_string());
    }
    Ok(headers)
}

pub(crate) fn read_body(data: &Option<String>) -> Result<Bytes, String> {
    match data.as_deref() {
        None => Ok(Bytes::new()),
        Some("@-") => {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
                .map_err(|e| format!("cannot read the body from standard input: {e}"))?;
            Ok(buf.into())
        }
        Some(s) if s.starts_with('@') => std::fs::read(&s[1..])
            .map(Bytes::from)
            .map_err(|e| format!("cannot read body file {}: {e}", &s[1..])),
        Some(s) => Ok(Bytes::copy_from_slice(s.as_bytes())),
    }
}

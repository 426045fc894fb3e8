//! The calling side's public types: what to call, with which limits, what
//! comes back, and why a call failed.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

use crate::wire::frame::{self, Code};
use crate::wire::{ApiRequest, ResponseType, PROTOCOL_V1, PROTOCOL_V2};

/// Default time a whole unary call may take, dial included.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Default time a streamed call may go without a chunk: long, because a
/// model may think for minutes before its first token; a dead link is
/// found sooner by ping (`NodeConfig::ping_timeout`).
pub const DEFAULT_CALL_STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Default time to connect to a peer.
pub const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// Default cap on a unary response held in memory.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

/// Which protocol a call uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProtocolChoice {
    /// 2.0.0 when the peer has it (identify, else negotiation), else 1.0.0.
    #[default]
    Auto,
    V1,
    V2,
}

/// The protocol a call went over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ApiVersion {
    V1,
    V2,
}

impl ApiVersion {
    pub fn id(self) -> &'static str {
        match self {
            ApiVersion::V1 => PROTOCOL_V1,
            ApiVersion::V2 => PROTOCOL_V2,
        }
    }
}

/// What a response says before its body: 2.0.0 carries status and headers.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ResponseHead {
    pub version: ApiVersion,
    pub status: Option<u16>,
    /// A repeated header's values are joined by
    /// [`crate::upstream::REPEATED_HEADER_SEPARATOR`]; see [`Self::header_values`].
    pub headers: HashMap<String, String>,
    /// The serving node's timings (2.0.0 peers that send them). For a
    /// unary call they cover the whole call; a stream's final ones come
    /// with its end ([`CallStream::server_timing`](super::CallStream::server_timing)).
    pub server_timing: Option<frame::ServerTiming>,
    /// This side's timeline up to the head.
    pub timeline: Timeline,
}

/// When each step of a call ended, from the call's start, on the caller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Timeline {
    /// Connected (a dial, or at once when the connection was reused).
    pub connected: Duration,
    /// The stream opened and its protocol agreed.
    pub opened: Duration,
    /// The request written (for unary calls, possibly after the head).
    pub written: Option<Duration>,
    /// The head (2.0.0) or, for 1.0.0, the first bytes (unary: all).
    pub head: Duration,
}

impl ResponseHead {
    /// A 1.0.0 head: nothing but the protocol.
    pub fn v1(timeline: Timeline) -> Self {
        Self {
            version: ApiVersion::V1,
            status: None,
            headers: HashMap::new(),
            server_timing: None,
            timeline,
        }
    }
}

impl ResponseHead {
    /// Every value of header `name` (case-insensitive), in order.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(crate::upstream::REPEATED_HEADER_SEPARATOR))
            .collect()
    }
}

/// A call's number on the node and who asked for it: taken before the
/// call starts, so that whoever asked can tell its call's events apart.
#[derive(Clone, Debug)]
pub struct CallTag {
    pub id: crate::protocol::events::CallId,
    /// `None` for the node's own calls (load runs, the library's callers).
    pub by: Option<String>,
}

/// A whole response.
#[derive(Clone, Debug)]
pub struct Response {
    pub head: ResponseHead,
    pub body: Bytes,
}

/// Limits on the calling side.
#[derive(Clone, Debug)]
pub struct CallOptions {
    pub timeout: Duration,
    pub stream_idle_timeout: Duration,
    pub dial_timeout: Duration,
    pub max_response_bytes: usize,
    /// Largest 2.0.0 frame accepted.
    pub max_frame_bytes: usize,
    pub protocol: ProtocolChoice,
}

impl Default for CallOptions {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_CALL_TIMEOUT,
            stream_idle_timeout: DEFAULT_CALL_STREAM_IDLE_TIMEOUT,
            dial_timeout: DEFAULT_DIAL_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_frame_bytes: frame::DEFAULT_MAX_FRAME_BYTES,
            protocol: ProtocolChoice::Auto,
        }
    }
}

/// A call to make: the route and the HTTP request to forward.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct CallRequest {
    pub route: String,
    /// HTTP method; empty means GET.
    pub method: String,
    pub headers: HashMap<String, String>,
    pub body: Bytes,
}

impl CallRequest {
    /// A request from the four parts the Python API takes.
    pub fn from_parts(
        route: &str,
        method: &str,
        headers: HashMap<String, String>,
        body: impl Into<Bytes>,
    ) -> Self {
        Self {
            route: route.into(),
            method: method.into(),
            headers,
            body: body.into(),
        }
    }

    pub fn new(route: impl Into<String>) -> Self {
        Self {
            route: route.into(),
            ..Default::default()
        }
    }

    pub fn method(mut self, method: impl Into<String>) -> Self {
        self.method = method.into();
        self
    }

    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    pub(super) fn to_wire(&self, response_type: ResponseType, timeout: Duration) -> ApiRequest {
        ApiRequest {
            route: self.route.clone(),
            method: if self.method.is_empty() {
                "GET".into()
            } else {
                self.method.clone()
            },
            headers: self.headers.clone(),
            body: self.body.clone(),
            response_type: response_type as i32,
            timeout_ms: u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX),
        }
    }
}

/// Splits a `Name: value` header line (trimmed). The one parser for the
/// CLI's `-H` and the console's headers field.
pub fn parse_header_line(line: &str) -> Result<(&str, &str), &'static str> {
    let (name, value) = line.split_once(':').ok_or("must look like 'Name: value'")?;
    let name = name.trim();
    if name.is_empty() {
        return Err("has an empty name");
    }
    Ok((name, value.trim()))
}

/// Why a call failed. Each variant is a distinct class for scripts.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    #[error("invalid multiaddr {addr:?}: {reason}")]
    BadAddress { addr: String, reason: String },
    #[error("cannot connect to {peer}: {message}")]
    DialFailed { peer: PeerId, message: String },
    #[error("peer {peer} does not speak {protocol}")]
    Unsupported { peer: PeerId, protocol: String },
    #[error("stream to {peer} failed: {message}")]
    Stream { peer: PeerId, message: String },
    #[error("no response within {after:?}")]
    Timeout { after: Duration },
    #[error("the link to {peer} went silent: no answer to a ping within {after:?}, so its connection was closed")]
    LinkSilent { peer: PeerId, after: Duration },
    #[error("response exceeds the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("peer closed the stream without replying to a {bytes}-byte request; 1.0.0 (Python) servers drop requests over about 64 KiB")]
    LikelyOversizeRequest { bytes: usize },
    #[error("the local node has stopped")]
    NodeStopped,
    #[error("peer answered {code}: {message}")]
    Remote { code: Code, message: String },
    #[error("the response ended after {received} bytes without its end frame (truncated)")]
    Truncated { received: u64 },
    #[error("peer broke the 2.0.0 framing: {0}")]
    BadFrame(String),
}

/// The peer id at the end of `addr` (`.../p2p/<peer id>`).
pub fn peer_of(addr: &Multiaddr) -> Result<PeerId, CallError> {
    match addr.iter().last() {
        Some(Protocol::P2p(peer)) => Ok(peer),
        _ => Err(CallError::BadAddress {
            addr: addr.to_string(),
            reason: "it must end in /p2p/<peer id>".into(),
        }),
    }
}

/// Parses a multiaddr given as text, with an error that says what is expected.
pub fn parse_peer_addr(text: &str) -> Result<Multiaddr, CallError> {
    let addr: Multiaddr = text.trim().parse().map_err(|e| CallError::BadAddress {
        addr: text.to_string(),
        reason: format!("{e} (expected e.g. /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW...)"),
    })?;
    peer_of(&addr)?;
    Ok(addr)
}

impl CallError {
    /// The failure's class (see [`crate::wire::failure`]).
    pub fn failure(&self) -> crate::wire::Failure {
        use crate::wire::Failure;
        match self {
            CallError::BadAddress { .. } => Failure::BadAddress,
            CallError::DialFailed { .. } => Failure::Dial,
            CallError::Unsupported { .. } => Failure::Unsupported,
            CallError::Stream { .. } | CallError::NodeStopped => Failure::Stream,
            CallError::Timeout { .. } | CallError::LinkSilent { .. } => Failure::Timeout,
            CallError::TooLarge { .. } => Failure::ResponseTooLarge,
            CallError::LikelyOversizeRequest { .. } => Failure::OversizeRequest,
            CallError::Truncated { .. } => Failure::Truncated,
            CallError::BadFrame(_) => Failure::BadFrame,
            CallError::Remote { code, .. } => Failure::of_code(*code),
        }
    }

    /// The exit code `peerapi call` (and `ctl call`) ends with for it.
    pub fn exit_code(&self) -> u8 {
        self.failure().exit_code()
    }

    /// The failure's label, stable for scripts, tables and metrics.
    pub fn class(&self) -> &'static str {
        self.failure().label()
    }
}

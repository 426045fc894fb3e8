//! The calling half: dial if needed, open a stream, write the request once,
//! read the response to EOF (unary) or chunk by chunk (stream).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::{AsyncReadExt, AsyncWriteExt, Stream};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId, StreamProtocol};

use super::events::{CallId, NodeEvent};
use super::{Command, NodeHandle};
use crate::wire::{self, v1_text, ApiRequest, ResponseType, PROTOCOL_V1};

/// Default time a whole unary call may take, dial included.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Default time a streamed call may go without a chunk.
pub const DEFAULT_CALL_STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default time to connect to a peer.
pub const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// Default cap on a unary response held in memory.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;
/// Read buffer for streamed responses.
const STREAM_READ_BYTES: usize = 64 * 1024;
/// A 1.0.0 server that closes without replying to a request at least this
/// large probably dropped it for its size (Python servers read once).
const LIKELY_OVERSIZE_REQUEST_BYTES: usize = 60 * 1024;

/// Limits on the calling side.
#[derive(Clone, Debug)]
pub struct CallOptions {
    pub timeout: Duration,
    pub stream_idle_timeout: Duration,
    pub dial_timeout: Duration,
    pub max_response_bytes: usize,
}

impl Default for CallOptions {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_CALL_TIMEOUT,
            stream_idle_timeout: DEFAULT_CALL_STREAM_IDLE_TIMEOUT,
            dial_timeout: DEFAULT_DIAL_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

/// A call to make: the route and the HTTP request to forward.
#[derive(Clone, Debug, Default)]
pub struct CallRequest {
    pub route: String,
    /// HTTP method; empty means GET.
    pub method: String,
    pub headers: HashMap<String, String>,
    pub body: Bytes,
}

impl CallRequest {
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

    fn to_wire(&self, response_type: ResponseType) -> ApiRequest {
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
            timeout_ms: 0,
        }
    }
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
    #[error("response exceeds the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("peer closed the stream without replying to a {bytes}-byte request; 1.0.0 (Python) servers drop requests over about 64 KiB")]
    LikelyOversizeRequest { bytes: usize },
    #[error("the local node has stopped")]
    NodeStopped,
}

/// An in-band 1.0.0 error text, recognised in a response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum V1ErrorText {
    RouteNotFound,
    StreamNotSupported(String),
    Processing(String),
}

impl std::fmt::Display for V1ErrorText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::RouteNotFound => write!(f, "{}", v1_text::ROUTE_NOT_FOUND),
            Self::StreamNotSupported(route) => {
                write!(f, "{}", v1_text::stream_not_supported(route))
            }
            Self::Processing(m) => write!(f, "{}", v1_text::error(m)),
        }
    }
}

/// Recognises the three 1.0.0 error texts when they are a whole body (1.0.0
/// cannot tell them from a body that happens to say the same).
pub fn classify_v1_body(body: &[u8]) -> Option<V1ErrorText> {
    let text = std::str::from_utf8(body).ok()?;
    if text == v1_text::ROUTE_NOT_FOUND {
        Some(V1ErrorText::RouteNotFound)
    } else if let Some(route) = text.strip_prefix(v1_text::STREAM_NOT_SUPPORTED_PREFIX) {
        Some(V1ErrorText::StreamNotSupported(route.to_string()))
    } else {
        text.strip_prefix(v1_text::ERROR_PREFIX)
            .map(|m| V1ErrorText::Processing(m.to_string()))
    }
}

/// The peer id at the end of `addr` (`.../p2p/<peer id>`).
pub(crate) fn peer_of(addr: &Multiaddr) -> Result<PeerId, CallError> {
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

/// Writes the request in one write and half-closes: the server reads one
/// message and must not wait for more.
async fn write_request_and_close<W: futures::AsyncWrite + Unpin>(
    mut io: W,
    req: &ApiRequest,
) -> std::io::Result<()> {
    io.write_all(&wire::encode_length_prefixed(req)).await?;
    io.flush().await?;
    io.close().await
}

/// A streamed response: chunks as they arrive, then `None` at the end.
pub struct CallStream {
    inner: std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, CallError>> + Send>>,
    pub id: CallId,
}

impl Stream for CallStream {
    type Item = Result<Bytes, CallError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl NodeHandle {
    async fn open_v1(&self, peer: PeerId) -> Result<libp2p::Stream, CallError> {
        self.open(peer, PROTOCOL_V1).await
    }

    async fn open(
        &self,
        peer: PeerId,
        protocol: &'static str,
    ) -> Result<libp2p::Stream, CallError> {
        let (tx, rx) = futures::channel::oneshot::channel();
        self.shared
            .commands
            .send(Command::Open {
                peer,
                protocols: vec![StreamProtocol::new(protocol)],
                reply: tx,
            })
            .map_err(|_| CallError::NodeStopped)?;
        match rx.await.map_err(|_| CallError::NodeStopped)? {
            Ok((stream, _)) => Ok(stream),
            Err(super::OpenError::Unsupported(_)) => Err(CallError::Unsupported {
                peer,
                protocol: protocol.into(),
            }),
            Err(e) => Err(CallError::Stream {
                peer,
                message: e.to_string(),
            }),
        }
    }

    /// Dials (bounded by the dial timeout) and opens a stream.
    async fn open_call(&self, addr: &Multiaddr) -> Result<(PeerId, libp2p::Stream), CallError> {
        let dial_timeout = self.shared.call_options.dial_timeout;
        let peer = peer_of(addr)?;
        tokio::time::timeout(dial_timeout, self.dial(addr))
            .await
            .map_err(|_| CallError::DialFailed {
                peer,
                message: format!("no connection within {dial_timeout:?}"),
            })??;
        Ok((peer, self.open_v1(peer).await?))
    }

    /// Calls `req.route` on the peer at `addr` and returns the whole response
    /// body (1.0.0: errors arrive in-band, see [`classify_v1_body`]).
    pub async fn call(&self, addr: &Multiaddr, req: CallRequest) -> Result<Bytes, CallError> {
        let options = self.shared.call_options.clone();
        let id = self.next_call_id();
        let started = Instant::now();
        let peer = peer_of(addr)?;
        self.emit(NodeEvent::CallStarted {
            id,
            peer,
            route: req.route.clone(),
            method: req.method.clone(),
            stream: false,
        });
        let wire_req = req.to_wire(ResponseType::Unary);
        let request_bytes = wire_req.body.len();
        let result = tokio::time::timeout(options.timeout, async {
            let (peer, stream) = self.open_call(addr).await?;
            let limit = options.max_response_bytes;
            // Write and read at once: a server that refuses the request (too
            // large, overloaded) answers before reading it all, then resets.
            let (reader, writer) = stream.split();
            let write = std::pin::pin!(write_request_and_close(writer, &wire_req));
            let read = std::pin::pin!(async move {
                let mut body = Vec::new();
                reader
                    .take(limit as u64 + 1)
                    .read_to_end(&mut body)
                    .await
                    .map(|_| body)
            });
            let stream_err = |e: std::io::Error| CallError::Stream {
                peer,
                message: e.to_string(),
            };
            let body = match futures::future::select(write, read).await {
                // The server answered (and closed) before taking the whole
                // request: the answer is what counts.
                futures::future::Either::Right((read, _)) => read.map_err(stream_err)?,
                futures::future::Either::Left((written, read)) => match (written, read.await) {
                    (_, Ok(body)) if !body.is_empty() => body,
                    (Err(e), _) | (Ok(()), Err(e)) => return Err(stream_err(e)),
                    (Ok(()), Ok(body)) => body,
                },
            };
            if body.len() > limit {
                return Err(CallError::TooLarge { limit });
            }
            if body.is_empty() && request_bytes >= LIKELY_OVERSIZE_REQUEST_BYTES {
                return Err(CallError::LikelyOversizeRequest {
                    bytes: request_bytes,
                });
            }
            Ok(Bytes::from(body))
        })
        .await
        .unwrap_or(Err(CallError::Timeout {
            after: options.timeout,
        }));
        match &result {
            Ok(body) => self.emit(NodeEvent::CallFinished {
                id,
                bytes: body.len() as u64,
                chunks: 1,
                elapsed: started.elapsed(),
            }),
            Err(e) => self.emit(NodeEvent::CallFailed {
                id,
                error: e.to_string(),
            }),
        }
        result
    }

    /// Calls a streaming route and yields chunks as they arrive. Chunk
    /// boundaries are the transport's, not the backend's.
    pub async fn stream(
        &self,
        addr: &Multiaddr,
        req: CallRequest,
    ) -> Result<CallStream, CallError> {
        let options = self.shared.call_options.clone();
        let id = self.next_call_id();
        let started = Instant::now();
        let peer = peer_of(addr)?;
        self.emit(NodeEvent::CallStarted {
            id,
            peer,
            route: req.route.clone(),
            method: req.method.clone(),
            stream: true,
        });
        let wire_req = req.to_wire(ResponseType::Stream);
        let opened = async {
            let (peer, mut stream) = self.open_call(addr).await?;
            write_request_and_close(&mut stream, &wire_req)
                .await
                .map_err(|e| CallError::Stream {
                    peer,
                    message: e.to_string(),
                })?;
            Ok::<_, CallError>((peer, stream))
        };
        let stream = match tokio::time::timeout(options.timeout, opened)
            .await
            .unwrap_or(Err(CallError::Timeout {
                after: options.timeout,
            })) {
            Ok((_, stream)) => stream,
            Err(e) => {
                self.emit(NodeEvent::CallFailed {
                    id,
                    error: e.to_string(),
                });
                return Err(e);
            }
        };
        self.emit(NodeEvent::CallResponding {
            id,
            protocol: PROTOCOL_V1.into(),
        });
        struct State {
            stream: libp2p::Stream,
            handle: NodeHandle,
            bytes: u64,
            chunks: u64,
            done: bool,
        }
        let state = State {
            stream,
            handle: self.clone(),
            bytes: 0,
            chunks: 0,
            done: false,
        };
        let idle = options.stream_idle_timeout;
        let inner = futures::stream::unfold(state, move |mut st| async move {
            if st.done {
                return None;
            }
            let mut buf = BytesMut::zeroed(STREAM_READ_BYTES);
            let read = tokio::time::timeout(idle, st.stream.read(&mut buf)).await;
            let err = match read {
                Ok(Ok(0)) => {
                    st.done = true;
                    st.handle.emit(NodeEvent::CallFinished {
                        id,
                        bytes: st.bytes,
                        chunks: st.chunks,
                        elapsed: started.elapsed(),
                    });
                    return None;
                }
                Ok(Ok(n)) => {
                    buf.truncate(n);
                    st.bytes += n as u64;
                    st.chunks += 1;
                    st.handle.emit(NodeEvent::CallChunk { id, bytes: n });
                    return Some((Ok(buf.freeze()), st));
                }
                Ok(Err(e)) => CallError::Stream {
                    peer,
                    message: e.to_string(),
                },
                Err(_) => CallError::Timeout { after: idle },
            };
            st.done = true;
            st.handle.emit(NodeEvent::CallFailed {
                id,
                error: err.to_string(),
            });
            Some((Err(err), st))
        });
        Ok(CallStream {
            inner: Box::pin(inner),
            id,
        })
    }

    /// Asks a peer for its route names and stream flags
    /// (`/peerapi/routes/1.0.0`; Python nodes do not serve it).
    pub async fn list_routes(&self, addr: &Multiaddr) -> Result<Vec<wire::RouteInfo>, CallError> {
        let timeout = self.shared.call_options.timeout;
        tokio::time::timeout(timeout, async {
            let peer = peer_of(addr)?;
            tokio::time::timeout(self.shared.call_options.dial_timeout, self.dial(addr))
                .await
                .map_err(|_| CallError::DialFailed {
                    peer,
                    message: "no connection within the dial timeout".into(),
                })??;
            let mut stream = self.open(peer, wire::PROTOCOL_ROUTES).await?;
            let _ = stream.close().await;
            let payload = wire::read_length_prefixed(&mut stream, wire::MAX_ROUTE_LIST_BYTES)
                .await
                .map_err(|e| CallError::Stream {
                    peer,
                    message: e.to_string(),
                })?;
            let list = <wire::RouteList as prost::Message>::decode(payload).map_err(|e| {
                CallError::Stream {
                    peer,
                    message: format!("invalid route listing: {e}"),
                }
            })?;
            Ok(list.routes)
        })
        .await
        .unwrap_or(Err(CallError::Timeout { after: timeout }))
    }

    /// Mirrors the Python `call_remote(peer, route, method, headers, body)`.
    pub async fn call_remote(
        &self,
        addr: &Multiaddr,
        route: &str,
        method: &str,
        headers: HashMap<String, String>,
        body: impl Into<Bytes>,
    ) -> Result<Bytes, CallError> {
        let req = CallRequest {
            route: route.into(),
            method: method.into(),
            headers,
            body: body.into(),
        };
        self.call(addr, req).await
    }

    /// Mirrors the Python `stream_remote(peer, route, method, headers, body)`.
    pub async fn stream_remote(
        &self,
        addr: &Multiaddr,
        route: &str,
        method: &str,
        headers: HashMap<String, String>,
        body: impl Into<Bytes>,
    ) -> Result<CallStream, CallError> {
        let req = CallRequest {
            route: route.into(),
            method: method.into(),
            headers,
            body: body.into(),
        };
        self.stream(addr, req).await
    }
}

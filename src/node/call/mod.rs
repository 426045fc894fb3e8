//! The calling half: dial if needed, open a stream, write the request once,
//! read the response to EOF (unary) or chunk by chunk (stream).
//!
//! Homes: `types` (what a call is and returns), `reader` (the response
//! codec); this file holds the client methods of [`NodeHandle`].

mod reader;
mod types;

pub(crate) use types::peer_of;
pub use types::*;

use std::collections::HashMap;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures::{AsyncReadExt, AsyncWriteExt, Stream};
use libp2p::{Multiaddr, PeerId, StreamProtocol};

use super::events::{CallId, NodeEvent};
use super::NodeHandle;
use crate::wire::{self, ResponseType, PROTOCOL_V1, PROTOCOL_V2};
use reader::{for_version, read_body_frame, read_head, write_request, BodyFrame};

/// Read buffer for streamed responses.
const STREAM_READ_BYTES: usize = 64 * 1024;
/// A 1.0.0 server that closes without replying to a request at least this
/// large probably dropped it for its size (Python servers read once).
const LIKELY_OVERSIZE_REQUEST_BYTES: usize = 60 * 1024;

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
    async fn open(
        &self,
        peer: PeerId,
        protocols: Vec<&'static str>,
    ) -> Result<(libp2p::Stream, StreamProtocol), CallError> {
        match self.shared.connections.open(peer, &protocols).await {
            Ok(opened) => Ok(opened),
            Err(super::OpenError::Unsupported(_)) => Err(CallError::Unsupported {
                peer,
                protocol: protocols.join(" or "),
            }),
            Err(e) => Err(CallError::Stream {
                peer,
                message: e.to_string(),
            }),
        }
    }

    /// Connects to `addr` unless connected, within the dial timeout.
    async fn dial_within(&self, addr: &Multiaddr) -> Result<PeerId, CallError> {
        let dial_timeout = self.shared.call_options.dial_timeout;
        let peer = peer_of(addr)?;
        tokio::time::timeout(dial_timeout, self.dial(addr))
            .await
            .map_err(|_| CallError::DialFailed {
                peer,
                message: format!("no connection within {dial_timeout:?}"),
            })?
    }

    /// Dials (bounded by the dial timeout) and opens an API stream in the
    /// protocol the options ask for.
    async fn open_call(
        &self,
        addr: &Multiaddr,
    ) -> Result<(PeerId, libp2p::Stream, ApiVersion), CallError> {
        let peer = self.dial_within(addr).await?;
        let protocols = match self.shared.call_options.protocol {
            ProtocolChoice::Auto => vec![PROTOCOL_V2, PROTOCOL_V1],
            ProtocolChoice::V1 => vec![PROTOCOL_V1],
            ProtocolChoice::V2 => vec![PROTOCOL_V2],
        };
        let (stream, chosen) = self.open(peer, protocols).await?;
        let version = if chosen.as_ref() == PROTOCOL_V2 {
            ApiVersion::V2
        } else {
            ApiVersion::V1
        };
        Ok((peer, stream, version))
    }

    /// Calls `req.route` on the peer at `addr` and returns the body. On 1.0.0
    /// errors arrive in-band (see [`crate::wire::v1::classify_v1_body`]); on 2.0.0 they are
    /// [`CallError::Remote`].
    pub async fn call(&self, addr: &Multiaddr, req: CallRequest) -> Result<Bytes, CallError> {
        self.call_full(addr, req).await.map(|r| r.body)
    }

    /// Like [`call`](Self::call), with the status and headers (2.0.0).
    pub async fn call_full(
        &self,
        addr: &Multiaddr,
        req: CallRequest,
    ) -> Result<Response, CallError> {
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
        let mut wire_req = req.to_wire(ResponseType::Unary, options.timeout);
        let request_bytes = wire_req.body.len();
        let result = tokio::time::timeout(options.timeout, async {
            let (peer, stream, version) = self.open_call(addr).await?;
            for_version(&mut wire_req, version);
            let limit = options.max_response_bytes;
            let (mut reader, mut writer) = stream.split();
            let response = {
                let write = std::pin::pin!(write_request(&mut writer, &wire_req));
                let read = std::pin::pin!(async {
                    match version {
                        ApiVersion::V1 => {
                            let mut body = Vec::new();
                            (&mut reader)
                                .take((limit as u64).saturating_add(1))
                                .read_to_end(&mut body)
                                .await
                                .map_err(|e| CallError::Stream {
                                    peer,
                                    message: e.to_string(),
                                })?;
                            if body.len() > limit {
                                return Err(CallError::TooLarge { limit });
                            }
                            Ok(Response {
                                head: ResponseHead {
                                    version,
                                    status: None,
                                    headers: HashMap::new(),
                                },
                                body: Bytes::from(body),
                            })
                        }
                        ApiVersion::V2 => {
                            let head =
                                read_head(&mut reader, peer, options.max_frame_bytes).await?;
                            let mut body = BytesMut::new();
                            while let BodyFrame::Data(d) = read_body_frame(
                                &mut reader,
                                peer,
                                options.max_frame_bytes,
                                body.len() as u64,
                            )
                            .await?
                            {
                                if body.len().saturating_add(d.len()) > limit {
                                    return Err(CallError::TooLarge { limit });
                                }
                                body.extend_from_slice(&d);
                            }
                            Ok(Response {
                                head,
                                body: body.freeze(),
                            })
                        }
                    }
                });
                match futures::future::select(write, read).await {
                    // The server answered (and closed) before taking the whole
                    // request: the answer is what counts.
                    futures::future::Either::Right((read, _)) => read?,
                    futures::future::Either::Left((written, read)) => match (written, read.await) {
                        (_, Ok(r)) if !(r.body.is_empty() && r.head.version == ApiVersion::V1) => r,
                        (_, Err(e @ CallError::Remote { .. })) => return Err(e),
                        (Err(e), _) => {
                            return Err(CallError::Stream {
                                peer,
                                message: e.to_string(),
                            })
                        }
                        (Ok(()), r) => r?,
                    },
                }
            };
            // Our side stayed open until the response was in; close it now.
            let _ = writer.close().await;
            if version == ApiVersion::V1
                && response.body.is_empty()
                && request_bytes >= LIKELY_OVERSIZE_REQUEST_BYTES
            {
                return Err(CallError::LikelyOversizeRequest {
                    bytes: request_bytes,
                });
            }
            Ok(response)
        })
        .await
        .unwrap_or(Err(CallError::Timeout {
            after: options.timeout,
        }));
        match &result {
            Ok(r) => {
                self.emit(NodeEvent::CallResponding {
                    id,
                    protocol: r.head.version.id().into(),
                    status: r.head.status,
                });
                self.emit(NodeEvent::CallFinished {
                    id,
                    bytes: r.body.len() as u64,
                    chunks: 1,
                    elapsed: started.elapsed(),
                })
            }
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
        self.stream_full(addr, req).await.map(|(_, s)| s)
    }

    /// Like [`stream`](Self::stream), with the status and headers (2.0.0),
    /// which arrive before the first chunk. Dropping the stream cancels the
    /// call: the serving node drops its backend request.
    pub async fn stream_full(
        &self,
        addr: &Multiaddr,
        req: CallRequest,
    ) -> Result<(ResponseHead, CallStream), CallError> {
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
        let mut wire_req = req.to_wire(ResponseType::Stream, options.stream_idle_timeout);
        let opened = async {
            let (peer, mut stream, version) = self.open_call(addr).await?;
            for_version(&mut wire_req, version);
            write_request(&mut stream, &wire_req)
                .await
                .map_err(|e| CallError::Stream {
                    peer,
                    message: e.to_string(),
                })?;
            let head = match version {
                ApiVersion::V1 => ResponseHead {
                    version,
                    status: None,
                    headers: HashMap::new(),
                },
                ApiVersion::V2 => read_head(&mut stream, peer, options.max_frame_bytes).await?,
            };
            Ok::<_, CallError>((stream, head))
        };
        let (stream, head) = match tokio::time::timeout(options.timeout, opened)
            .await
            .unwrap_or(Err(CallError::Timeout {
                after: options.timeout,
            })) {
            Ok(opened) => opened,
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
            protocol: head.version.id().into(),
            status: head.status,
        });
        struct State {
            stream: libp2p::Stream,
            handle: NodeHandle,
            version: ApiVersion,
            bytes: u64,
            chunks: u64,
            done: bool,
        }
        let state = State {
            stream,
            handle: self.clone(),
            version: head.version,
            bytes: 0,
            chunks: 0,
            done: false,
        };
        let idle = options.stream_idle_timeout;
        let max_frame = options.max_frame_bytes;
        let inner = futures::stream::unfold(state, move |mut st| async move {
            if st.done {
                return None;
            }
            let next = match st.version {
                ApiVersion::V1 => {
                    let mut buf = BytesMut::zeroed(STREAM_READ_BYTES);
                    match tokio::time::timeout(idle, st.stream.read(&mut buf)).await {
                        Ok(Ok(0)) => {
                            let _ = st.stream.close().await;
                            Ok(None)
                        }
                        Ok(Ok(n)) => {
                            buf.truncate(n);
                            Ok(Some(buf.freeze()))
                        }
                        Ok(Err(e)) => Err(CallError::Stream {
                            peer,
                            message: e.to_string(),
                        }),
                        Err(_) => Err(CallError::Timeout { after: idle }),
                    }
                }
                ApiVersion::V2 => {
                    match tokio::time::timeout(
                        idle,
                        read_body_frame(&mut st.stream, peer, max_frame, st.bytes),
                    )
                    .await
                    {
                        Ok(Ok(BodyFrame::Data(d))) => Ok(Some(d)),
                        Ok(Ok(BodyFrame::End)) => {
                            let _ = st.stream.close().await;
                            Ok(None)
                        }
                        Ok(Err(e)) => Err(e),
                        Err(_) => Err(CallError::Timeout { after: idle }),
                    }
                }
            };
            match next {
                Ok(Some(chunk)) => {
                    st.bytes += chunk.len() as u64;
                    st.chunks += 1;
                    st.handle.emit(NodeEvent::CallChunk {
                        id,
                        bytes: chunk.len(),
                    });
                    Some((Ok(chunk), st))
                }
                Ok(None) => {
                    st.done = true;
                    st.handle.emit(NodeEvent::CallFinished {
                        id,
                        bytes: st.bytes,
                        chunks: st.chunks,
                        elapsed: started.elapsed(),
                    });
                    None
                }
                Err(err) => {
                    st.done = true;
                    st.handle.emit(NodeEvent::CallFailed {
                        id,
                        error: err.to_string(),
                    });
                    Some((Err(err), st))
                }
            }
        });
        Ok((
            head,
            CallStream {
                inner: Box::pin(inner),
                id,
            },
        ))
    }

    /// Opens a raw stream on `protocol` to the peer at `addr`, for tools and
    /// tests that speak the bytes themselves.
    pub async fn open_raw(
        &self,
        addr: &Multiaddr,
        protocol: &'static str,
    ) -> Result<libp2p::Stream, CallError> {
        let peer = self.dial_within(addr).await?;
        self.open(peer, vec![protocol]).await.map(|(s, _)| s)
    }

    /// Asks a peer for its route names and stream flags
    /// (`/peerapi/routes/1.0.0`; Python nodes do not serve it).
    pub async fn list_routes(&self, addr: &Multiaddr) -> Result<Vec<wire::RouteInfo>, CallError> {
        let timeout = self.shared.call_options.timeout;
        tokio::time::timeout(timeout, async {
            let peer = self.dial_within(addr).await?;
            let (mut stream, _) = self.open(peer, vec![wire::PROTOCOL_ROUTES]).await?;
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

//! The calling half: dial if needed, open a stream, write the request once,
//! read the response to EOF (unary) or chunk by chunk (stream).
//!
//! Homes: `types` (what a call is and returns), `reader` (the response
//! codec), `timing` (where a call's time went); this file holds [`ApiClient`], the client half of the protocol
//! for peers already connected. [`NodeHandle`](super::NodeHandle) adds
//! dialing by address in front of it (`handle.rs`).

mod extras;
pub mod silent;
mod timing;
pub(in crate::protocol) mod types;

pub use timing::Breakdown;
pub use types::*;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures::{AsyncReadExt, AsyncWriteExt, Stream};
use libp2p::{PeerId, StreamProtocol};

use crate::protocol::codec::read::{
    for_version, read_body_frame, read_head, read_v1_chunk, read_v1_whole, BodyFrame,
};
use crate::protocol::events::{ApiEvent, CallId};
use crate::streams::behaviour::{Connections, OpenError};
use crate::streams::outbound::OutboundStream;
use crate::wire::{self, ResponseType, PROTOCOL_V1, PROTOCOL_V2};
// One write (a Python server reads the request with one read), and our side
// stays open, as the Python callers do: dropping an open yamux stream resets
// it, which is how the server learns of a cancel (yamux 0.14 does not reset
// a half-closed stream that is dropped). 2.0.0 servers also read our closing
// it as a cancel.
use wire::write_request;

/// A 1.0.0 server that closes without replying to a request at least this
/// large probably dropped it for its size (Python servers read once).
const LIKELY_OVERSIZE_REQUEST_BYTES: usize = 60 * 1024;

/// A streamed response: chunks as they arrive, then `None` at the end.
pub struct CallStream {
    inner: std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, CallError>> + Send>>,
    pub id: CallId,
    end_timing: Arc<std::sync::OnceLock<wire::frame::ServerTiming>>,
}

impl CallStream {
    /// The serving node's timings for the whole call, once the stream has
    /// ended (2.0.0 peers that send them).
    pub fn server_timing(&self) -> Option<wire::frame::ServerTiming> {
        self.end_timing.get().copied()
    }

    /// Where the final timings land once the stream ends, for a reader
    /// that hands the stream itself on.
    pub fn end_timing_cell(&self) -> Arc<std::sync::OnceLock<wire::frame::ServerTiming>> {
        self.end_timing.clone()
    }
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

/// The client half of the API protocol: calls on peers this swarm is
/// connected to (dialing is the swarm owner's business). Cheap to clone.
#[derive(Clone)]
pub struct ApiClient {
    pub(crate) connections: Connections,
    pub(crate) options: CallOptions,
    pub(crate) events: crate::protocol::events::Events,
    pub(crate) ids: Arc<AtomicU64>,
    pub(crate) metrics: Option<Arc<crate::protocol::metrics::NodeMetrics>>,
    /// Links the node found silent: streams over them end at once.
    pub(crate) silent: silent::SilentLinks,
}

/// The connect step of a call on a peer already connected.
fn connected() -> std::future::Ready<Result<(), CallError>> {
    std::future::ready(Ok(()))
}

impl ApiClient {
    pub(crate) fn next_call_id(&self) -> CallId {
        CallId(self.ids.fetch_add(1, Ordering::Relaxed))
    }

    /// A fresh number for a call made by the node for itself.
    pub(crate) fn own_tag(&self) -> CallTag {
        CallTag {
            id: self.next_call_id(),
            by: None,
        }
    }

    pub(crate) fn emit(&self, event: ApiEvent) {
        self.events.send(event);
    }

    async fn open(
        &self,
        peer: PeerId,
        protocols: Vec<&'static str>,
    ) -> Result<(OutboundStream, StreamProtocol), CallError> {
        match self.connections.open(peer, &protocols).await {
            Ok(opened) => Ok(opened),
            Err(OpenError::Unsupported(_)) => Err(CallError::Unsupported {
                peer,
                protocol: protocols.join(" or "),
            }),
            Err(e) => Err(CallError::Stream {
                peer,
                message: e.to_string(),
            }),
        }
    }

    /// Opens an API stream to `peer` in the protocol the options ask for.
    async fn open_api(&self, peer: PeerId) -> Result<(OutboundStream, ApiVersion), CallError> {
        let protocols = match self.options.protocol {
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
        Ok((stream, version))
    }

    /// Calls `req.route` on a connected `peer`: the status, headers (2.0.0)
    /// and whole body. On 1.0.0 errors arrive in-band (see
    /// [`crate::wire::v1::classify_v1_body`]); on 2.0.0 they are
    /// [`CallError::Remote`].
    pub async fn call(&self, peer: PeerId, req: CallRequest) -> Result<Response, CallError> {
        self.call_after(peer, req, connected(), self.own_tag())
            .await
    }

    /// [`call`](Self::call) after `connect` (a dial), all within the call
    /// timeout, under the number and origin `tag` gives it.
    pub(crate) async fn call_after(
        &self,
        peer: PeerId,
        req: CallRequest,
        connect: impl Future<Output = Result<(), CallError>>,
        tag: CallTag,
    ) -> Result<Response, CallError> {
        let options = self.options.clone();
        let id = tag.id;
        let started = Instant::now();
        self.emit(ApiEvent::CallStarted {
            id,
            peer,
            route: req.route.clone(),
            method: req.method.clone(),
            stream: false,
            by: tag.by,
        });
        let mut record = self.record(&req.route);
        let mut wire_req = req.to_wire(ResponseType::Unary, options.timeout);
        let request_bytes = wire_req.body.len();
        let result = tokio::time::timeout(options.timeout, async {
            connect.await?;
            let connected = started.elapsed();
            let (stream, version) = self.open_api(peer).await?;
            let opened = started.elapsed();
            for_version(&mut wire_req, version);
            let limit = options.max_response_bytes;
            let (mut reader, mut writer) = stream.split();
            let written = std::sync::OnceLock::new();
            let mut response = {
                let write = std::pin::pin!(async {
                    let result = write_request(&mut writer, &wire_req).await;
                    let _ = written.set(started.elapsed());
                    result
                });
                let read = std::pin::pin!(async {
                    match version {
                        ApiVersion::V1 => {
                            let body = read_v1_whole(&mut reader, peer, limit).await?;
                            Ok(Response {
                                head: ResponseHead::v1(Timeline {
                                    head: started.elapsed(),
                                    ..Timeline::default()
                                }),
                                body,
                            })
                        }
                        ApiVersion::V2 => {
                            let mut head =
                                read_head(&mut reader, peer, options.max_frame_bytes).await?;
                            head.timeline.head = started.elapsed();
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
            let timeline = &mut response.head.timeline;
            (timeline.connected, timeline.opened, timeline.written) =
                (connected, opened, written.get().copied());
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
        if let Some(rec) = record.as_mut() {
            match &result {
                Ok(r) => {
                    rec.head(r.head.version == ApiVersion::V2, r.head.status);
                    rec.end("ok", r.body.len() as u64);
                }
                Err(e) => rec.end(e.class(), 0),
            }
        }
        match &result {
            Ok(r) => {
                self.emit(ApiEvent::CallResponding {
                    id,
                    protocol: r.head.version.id().into(),
                    status: r.head.status,
                });
                self.emit(ApiEvent::CallFinished {
                    id,
                    bytes: r.body.len() as u64,
                    chunks: 1,
                    elapsed: started.elapsed(),
                })
            }
            Err(e) => self.emit(ApiEvent::CallFailed {
                id,
                error: e.to_string(),
            }),
        }
        result
    }

    /// Calls a streaming route on a connected `peer`: the status and
    /// headers (2.0.0), which arrive before the first chunk, then chunks as
    /// they arrive (the transport's boundaries, not the backend's).
    /// Dropping the stream cancels the call: the serving node drops its
    /// backend request.
    pub async fn stream(
        &self,
        peer: PeerId,
        req: CallRequest,
    ) -> Result<(ResponseHead, CallStream), CallError> {
        self.stream_after(peer, req, connected(), self.own_tag())
            .await
    }

    /// [`stream`](Self::stream) after `connect`, within the call timeout,
    /// under the number and origin `tag` gives it.
    pub(crate) async fn stream_after(
        &self,
        peer: PeerId,
        req: CallRequest,
        connect: impl Future<Output = Result<(), CallError>>,
        tag: CallTag,
    ) -> Result<(ResponseHead, CallStream), CallError> {
        let options = self.options.clone();
        let id = tag.id;
        let started = Instant::now();
        self.emit(ApiEvent::CallStarted {
            id,
            peer,
            route: req.route.clone(),
            method: req.method.clone(),
            stream: true,
            by: tag.by,
        });
        let mut record = self.record(&req.route);
        let mut wire_req = req.to_wire(ResponseType::Stream, options.stream_idle_timeout);
        let opened = async {
            connect.await?;
            let connected = started.elapsed();
            let (mut stream, version) = self.open_api(peer).await?;
            let opened = started.elapsed();
            for_version(&mut wire_req, version);
            write_request(&mut stream, &wire_req)
                .await
                .map_err(|e| CallError::Stream {
                    peer,
                    message: e.to_string(),
                })?;
            let written = Some(started.elapsed());
            let mut head = match version {
                ApiVersion::V1 => ResponseHead::v1(Timeline::default()),
                ApiVersion::V2 => read_head(&mut stream, peer, options.max_frame_bytes).await?,
            };
            head.timeline = Timeline {
                connected,
                opened,
                written,
                head: started.elapsed(),
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
                if let Some(rec) = record.as_mut() {
                    rec.end(e.class(), 0);
                }
                self.emit(ApiEvent::CallFailed {
                    id,
                    error: e.to_string(),
                });
                return Err(e);
            }
        };
        if let Some(rec) = record.as_mut() {
            rec.head(head.version == ApiVersion::V2, head.status);
        }
        self.emit(ApiEvent::CallResponding {
            id,
            protocol: head.version.id().into(),
            status: head.status,
        });
        let end_timing = Arc::new(std::sync::OnceLock::new());
        struct State {
            end_timing: Arc<std::sync::OnceLock<wire::frame::ServerTiming>>,
            stream: OutboundStream,
            client: ApiClient,
            version: ApiVersion,
            bytes: u64,
            chunks: u64,
            done: bool,
            /// Counted when the stream ends, or as cancelled when dropped.
            record: Option<crate::protocol::metrics::CallRecord>,
            /// The peer's link silences before the call began.
            silences: u64,
        }
        let state = State {
            end_timing: end_timing.clone(),
            stream,
            client: self.clone(),
            version: head.version,
            bytes: 0,
            chunks: 0,
            done: false,
            record,
            silences: self.silent.generation(&peer),
        };
        let idle = options.stream_idle_timeout;
        let max_frame = options.max_frame_bytes;
        let inner = futures::stream::unfold(state, move |mut st| async move {
            if st.done {
                return None;
            }
            let silent = st.client.silent.clone();
            let silenced = silent.silenced(peer, st.silences);
            let read = async {
                match st.version {
                    ApiVersion::V1 => match read_v1_chunk(&mut st.stream, peer, idle).await {
                        Ok(None) => {
                            let _ = st.stream.close().await;
                            Ok(None)
                        }
                        other => other,
                    },
                    ApiVersion::V2 => {
                        match tokio::time::timeout(
                            idle,
                            read_body_frame(&mut st.stream, peer, max_frame, st.bytes),
                        )
                        .await
                        {
                            Ok(Ok(BodyFrame::Data(d))) => Ok(Some(d)),
                            Ok(Ok(BodyFrame::End(timing))) => {
                                if let Some(t) = timing {
                                    let _ = st.end_timing.set(t);
                                }
                                let _ = st.stream.close().await;
                                Ok(None)
                            }
                            Ok(Err(e)) => Err(e),
                            Err(_) => Err(CallError::Timeout { after: idle }),
                        }
                    }
                }
            };
            let next = tokio::select! {
                next = read => next.map_err(|e| silent.cause_of(e, peer, st.silences)),
                after = silenced => Err(CallError::LinkSilent { peer, after }),
            };
            match next {
                Ok(Some(chunk)) => {
                    st.bytes += chunk.len() as u64;
                    st.chunks += 1;
                    Some((Ok(chunk), st))
                }
                Ok(None) => {
                    st.done = true;
                    if let Some(rec) = st.record.as_mut() {
                        rec.end("ok", st.bytes);
                    }
                    st.client.emit(ApiEvent::CallFinished {
                        id,
                        bytes: st.bytes,
                        chunks: st.chunks,
                        elapsed: started.elapsed(),
                    });
                    None
                }
                Err(err) => {
                    st.done = true;
                    if let Some(rec) = st.record.as_mut() {
                        rec.end(err.class(), st.bytes);
                    }
                    st.client.emit(ApiEvent::CallFailed {
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
                end_timing,
            },
        ))
    }
}

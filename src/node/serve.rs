//! The serving half: drain the inbound queue, one task per call, forward to
//! the backend, answer in the 1.0.0 format.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures::{AsyncWrite, AsyncWriteExt, FutureExt, StreamExt};
use tokio::sync::{broadcast, mpsc, Notify, Semaphore};
use tokio_util::task::TaskTracker;

use super::api::{InboundStream, Refuser};
use super::events::{CallId, NodeEvent, ServeOutcome};
use crate::routes::Routes;
use crate::upstream::{Upstream, UpstreamError};
use crate::wire::{self, v1_text, WireError};

/// Default most calls served at once; past it new calls are refused at once.
pub const DEFAULT_MAX_CONCURRENT_CALLS: usize = 256;
/// Default time a caller has to send its whole request.
pub const DEFAULT_REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time one write to a caller may block (a caller that stops reading).
pub const DEFAULT_RESPONSE_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Most bytes of ready stream chunks joined into one write.
const MAX_COALESCED_BYTES: usize = 1024 * 1024;

/// Limits on the serving side.
#[derive(Clone, Debug)]
pub struct ServeLimits {
    pub max_request_bytes: usize,
    pub max_concurrent_calls: usize,
    pub request_read_timeout: Duration,
    pub response_write_timeout: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            max_request_bytes: wire::DEFAULT_MAX_REQUEST_BYTES,
            max_concurrent_calls: DEFAULT_MAX_CONCURRENT_CALLS,
            request_read_timeout: DEFAULT_REQUEST_READ_TIMEOUT,
            response_write_timeout: DEFAULT_RESPONSE_WRITE_TIMEOUT,
        }
    }
}

struct Inner {
    routes: Routes,
    upstream: Upstream,
    limits: ServeLimits,
    events: broadcast::Sender<NodeEvent>,
    permits: Arc<Semaphore>,
    tracker: TaskTracker,
    stop_accepting: Notify,
    call_ids: Arc<AtomicU64>,
}

#[derive(Clone)]
pub(crate) struct Server {
    inner: Arc<Inner>,
}

impl Server {
    pub(crate) fn new(
        routes: Routes,
        upstream: Upstream,
        limits: ServeLimits,
        events: broadcast::Sender<NodeEvent>,
        call_ids: Arc<AtomicU64>,
    ) -> Self {
        let permits = Arc::new(Semaphore::new(limits.max_concurrent_calls.max(1)));
        Self {
            inner: Arc::new(Inner {
                routes,
                upstream,
                limits,
                events,
                permits,
                tracker: TaskTracker::new(),
                stop_accepting: Notify::new(),
                call_ids,
            }),
        }
    }

    /// What the connection handler calls when the inbound queue is full.
    pub(crate) fn refuser(&self) -> Refuser {
        let write_timeout = self.inner.limits.response_write_timeout;
        Arc::new(move |inbound: InboundStream| {
            let Ok(rt) = tokio::runtime::Handle::try_current() else {
                tracing::warn!(peer = %inbound.peer, "no runtime to refuse a stream on; resetting it");
                return;
            };
            rt.spawn(async move {
                let mut stream = inbound.stream;
                let text = v1_text::error("node overloaded: inbound queue is full; retry later");
                let _ = tokio::time::timeout(write_timeout, async {
                    let _ = stream.write_all(text.as_bytes()).await;
                    let _ = stream.close().await;
                })
                .await;
            });
        })
    }

    pub(crate) async fn accept_loop(self, mut inbound: mpsc::Receiver<InboundStream>) {
        loop {
            tokio::select! {
                next = inbound.recv() => match next {
                    Some(stream) => {
                        let this = self.clone();
                        self.inner.tracker.spawn(async move { this.serve(stream).await });
                    }
                    None => break,
                },
                _ = self.inner.stop_accepting.notified() => break,
            }
        }
        // Dropping the receiver makes the connection handlers refuse new streams.
    }

    /// Stops accepting and waits up to `grace` for calls in flight. Returns
    /// whether they all finished.
    pub(crate) async fn drain(&self, grace: Duration) -> bool {
        self.inner.stop_accepting.notify_one();
        self.inner.tracker.close();
        tokio::time::timeout(grace, self.inner.tracker.wait())
            .await
            .is_ok()
    }

    fn emit(&self, event: NodeEvent) {
        let _ = self.inner.events.send(event);
    }

    async fn serve(self, inbound: InboundStream) {
        let InboundStream {
            peer,
            mut stream,
            protocol,
        } = inbound;
        tracing::trace!(%peer, %protocol, "inbound stream");
        if protocol.as_ref() == wire::PROTOCOL_ROUTES {
            self.list_routes(&mut stream).await;
            return;
        }
        let limits = &self.inner.limits;
        let Ok(_permit) = self.inner.permits.clone().try_acquire_owned() else {
            let text = v1_text::error(&format!(
                "node overloaded: {} calls in flight; retry later",
                limits.max_concurrent_calls
            ));
            tracing::warn!(%peer, "refusing call: {text}");
            self.finish(&mut stream, text.as_bytes()).await;
            return;
        };

        let read = tokio::time::timeout(
            limits.request_read_timeout,
            wire::read_request(&mut stream, limits.max_request_bytes),
        )
        .await;
        let req = match read {
            Ok(Ok(req)) => req,
            Ok(Err(WireError::Empty)) => {
                tracing::debug!(%peer, "stream closed before a request arrived");
                let _ = stream.close().await;
                return;
            }
            Ok(Err(e)) => {
                tracing::warn!(%peer, "bad request: {e}");
                self.finish(&mut stream, v1_text::error(&e.to_string()).as_bytes())
                    .await;
                return;
            }
            Err(_) => {
                let msg = format!(
                    "request not received within {:?}",
                    limits.request_read_timeout
                );
                tracing::warn!(%peer, "{msg}");
                self.finish(&mut stream, v1_text::error(&msg).as_bytes())
                    .await;
                return;
            }
        };

        let id = CallId(self.inner.call_ids.fetch_add(1, Ordering::Relaxed));
        let started = Instant::now();
        self.emit(NodeEvent::ServeStarted {
            id,
            peer,
            route: req.route.clone(),
            method: req.method_or_default().to_string(),
            stream: req.is_stream(),
        });
        let (outcome, bytes) = self.respond_v1(&mut stream, &req).await;
        let _ = tokio::time::timeout(limits.response_write_timeout, stream.close()).await;
        let elapsed = started.elapsed();
        tracing::info!(%peer, route = %req.route, stream = req.is_stream(), ?outcome, bytes, ?elapsed, "served");
        self.emit(NodeEvent::ServeFinished {
            id,
            outcome,
            bytes,
            elapsed,
        });
    }

    /// Answers a route listing: names and stream flags, never URLs.
    async fn list_routes<S: AsyncWrite + Unpin>(&self, stream: &mut S) {
        let list = wire::RouteList {
            routes: self
                .inner
                .routes
                .current()
                .iter()
                .map(|(name, r)| wire::RouteInfo {
                    name: name.clone(),
                    stream: r.stream,
                })
                .collect(),
        };
        self.finish(stream, &wire::encode_length_prefixed(&list))
            .await;
    }

    /// Writes `bytes` and closes, bounded by the write timeout.
    async fn finish<S: AsyncWrite + Unpin>(&self, stream: &mut S, bytes: &[u8]) {
        let _ = tokio::time::timeout(self.inner.limits.response_write_timeout, async {
            let _ = stream.write_all(bytes).await;
            let _ = stream.flush().await;
            let _ = stream.close().await;
        })
        .await;
    }

    async fn write<S: AsyncWrite + Unpin>(
        &self,
        stream: &mut S,
        bytes: &[u8],
    ) -> Result<(), String> {
        tokio::time::timeout(self.inner.limits.response_write_timeout, async {
            stream.write_all(bytes).await?;
            stream.flush().await
        })
        .await
        .map_err(|_| "caller stopped reading".to_string())?
        .map_err(|e| e.to_string())
    }

    async fn respond_v1<S: AsyncWrite + Unpin>(
        &self,
        stream: &mut S,
        req: &wire::ApiRequest,
    ) -> (ServeOutcome, u64) {
        let Some(route) = self.inner.routes.get(&req.route) else {
            let outcome = match self
                .write(stream, v1_text::ROUTE_NOT_FOUND.as_bytes())
                .await
            {
                Ok(()) => ServeOutcome::RouteNotFound,
                Err(error) => ServeOutcome::CallerGone { error },
            };
            return (outcome, 0);
        };
        if req.is_stream() && !route.stream {
            let text = v1_text::stream_not_supported(&req.route);
            let outcome = match self.write(stream, text.as_bytes()).await {
                Ok(()) => ServeOutcome::StreamNotSupported,
                Err(error) => ServeOutcome::CallerGone { error },
            };
            return (outcome, 0);
        }
        let upstream = &self.inner.upstream;
        let config = upstream.config();
        if !req.is_stream() {
            let deadline = tokio::time::Instant::now() + config.unary_timeout;
            let result = match upstream.send(&route, req, config.unary_timeout).await {
                Ok(resp) => {
                    let status = resp.status;
                    resp.collect(deadline).await.map(|body| (status, body))
                }
                Err(e) => Err(e),
            };
            match result {
                // One write, so a Python caller's single read sees it whole.
                Ok((status, body)) => match self.write(stream, &body).await {
                    Ok(()) => (ServeOutcome::Ok { status }, body.len() as u64),
                    Err(error) => (ServeOutcome::CallerGone { error }, 0),
                },
                Err(e) => self.write_failure(stream, e, 0).await,
            }
        } else {
            let resp = match upstream.send(&route, req, config.stream_idle_timeout).await {
                Ok(resp) => resp,
                Err(e) => return self.write_failure(stream, e, 0).await,
            };
            let status = resp.status;
            let mut chunks = Box::pin(resp.chunks());
            let mut sent = 0u64;
            let mut buf = BytesMut::new();
            loop {
                let first = match chunks.next().await {
                    None => return (ServeOutcome::Ok { status }, sent),
                    Some(Ok(chunk)) => chunk,
                    Some(Err(e)) => return self.write_failure(stream, e, sent).await,
                };
                // Coalesce whatever else is ready now; never wait for more.
                let mut pending_err = None;
                let mut ended = false;
                buf.clear();
                buf.extend_from_slice(&first);
                while buf.len() < MAX_COALESCED_BYTES {
                    match chunks.next().now_or_never() {
                        Some(Some(Ok(chunk))) => buf.extend_from_slice(&chunk),
                        Some(Some(Err(e))) => {
                            pending_err = Some(e);
                            break;
                        }
                        Some(None) => {
                            ended = true;
                            break;
                        }
                        None => break,
                    }
                }
                if let Err(error) = self.write(stream, &buf).await {
                    return (ServeOutcome::CallerGone { error }, sent);
                }
                sent += buf.len() as u64;
                if let Some(e) = pending_err {
                    return self.write_failure(stream, e, sent).await;
                }
                if ended {
                    return (ServeOutcome::Ok { status }, sent);
                }
            }
        }
    }

    async fn write_failure<S: AsyncWrite + Unpin>(
        &self,
        stream: &mut S,
        err: UpstreamError,
        sent: u64,
    ) -> (ServeOutcome, u64) {
        let error = err.to_string();
        tracing::warn!("forwarding failed: {error}");
        match self.write(stream, v1_text::error(&error).as_bytes()).await {
            Ok(()) => (ServeOutcome::Failed { error }, sent),
            Err(gone) => (ServeOutcome::CallerGone { error: gone }, sent),
        }
    }
}

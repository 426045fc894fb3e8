//! The serving half: one task per inbound stream, started on the
//! connection's task, check the route's policy, forward to the backend, answer in the caller's protocol
//! (1.0.0 raw bytes or 2.0.0 frames).
//!
//! ```text
//! stream ─read request (≤ max_request_bytes, ≤ request_read_timeout)─▶ policy checks
//!    ├─ refused: 1.0.0 text / 2.0.0 Error frame
//!    └─ Upstream::send ─▶ Responder (unary: one write; stream: coalesced writes)
//!         raced against the caller's read side: EOF (2.0.0) or reset = cancel
//! ```
//!
//! Homes: `limits` (ServeLimits, the per-peer counter), `read_ahead`
//! (streamed bodies batched), `responder` (writing either protocol,
//! refusals), `answer` (policy checks and forwarding); this file dispatches
//! inbound streams, reads requests within the reading budget and takes the
//! call slots.

mod limits;
mod read_ahead;
pub use read_ahead::{DEFAULT_READ_AHEAD_BYTES, DEFAULT_READ_AHEAD_BYTES_PER_CALL};
mod answer;

pub use limits::{
    ServeLimits, DEFAULT_MAX_CALLS_PER_PEER, DEFAULT_MAX_CONCURRENT_CALLS,
    DEFAULT_MAX_REQUEST_HEADERS, DEFAULT_REQUEST_READ_TIMEOUT, DEFAULT_RESPONSE_WRITE_TIMEOUT,
};

use crate::wire::v1::v1_text;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::PeerId;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use crate::logs::{Throttle, Untrusted};
use crate::protocol::admission::{read_request_within, ReadFailure, Reading};
use crate::protocol::codec::write::{Refusal, Responder};
use crate::protocol::events::{ApiEvent, CallId, ServeOutcome};
use crate::protocol::metrics::NodeMetrics;
use crate::routes::Routes;
use crate::streams::behaviour::{Dispatch, InboundStream};
use crate::upstream::Upstream;
use crate::wire::frame::Code;
use crate::wire::{self, WireError};
use limits::PerPeer;

struct Inner {
    read_ahead: read_ahead::ReadAheadBudget,
    routes: Routes,
    upstream: Upstream,
    limits: ServeLimits,
    events: crate::protocol::events::Events,
    permits: Arc<Semaphore>,
    per_peer: PerPeer,
    reading: Reading,
    /// Refusal lines are throttled: a peer must not be able to flood the log.
    log_throttle: Throttle,
    tracker: TaskTracker,
    accepting: AtomicBool,
    /// Inbound streams being answered now, and how many may be.
    live_streams: AtomicUsize,
    max_live_streams: usize,
    call_ids: Arc<AtomicU64>,
    metrics: Option<Arc<NodeMetrics>>,
    log_span: tracing::Span,
    taps: Arc<crate::protocol::tap::Taps>,
}

/// Counts one live inbound stream until dropped.
struct LiveStream(Arc<Inner>);

impl Drop for LiveStream {
    fn drop(&mut self) {
        self.0.live_streams.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Clone)]
pub(crate) struct Server {
    inner: Arc<Inner>,
}

/// Where a server reports what it serves: events, call ids it shares
/// with the node, metrics and the log span.
pub(crate) struct Reports {
    pub(crate) events: crate::protocol::events::Events,
    pub(crate) call_ids: Arc<AtomicU64>,
    pub(crate) metrics: Option<Arc<NodeMetrics>>,
    pub(crate) log_span: tracing::Span,
    /// Where served bodies go when an operator taps them.
    pub(crate) taps: Arc<crate::protocol::tap::Taps>,
}

impl Server {
    pub(crate) fn new(
        routes: Routes,
        upstream: Upstream,
        limits: ServeLimits,
        queue_depth: usize,
        reports: Reports,
    ) -> Self {
        let Reports {
            events,
            call_ids,
            metrics,
            log_span,
            taps,
        } = reports;
        let max_live_streams = limits
            .max_concurrent_calls
            .saturating_add(queue_depth.max(1));
        let permits = Arc::new(Semaphore::new(limits.max_concurrent_calls.max(1)));
        // Never fewer places for streams sending their request than calls
        // they may become: an honest burst within the call limits must not
        // evict itself (measured: 1,000 streams of one peer with the call
        // limits raised to 2,000 and a reading budget of 64 per peer: 192
        // completed).
        let mut reading_limits = limits.reading.clone();
        reading_limits.per_peer = reading_limits.per_peer.max(limits.max_calls_per_peer);
        reading_limits.per_ip = reading_limits.per_ip.max(limits.max_calls_per_peer);
        reading_limits.total = reading_limits.total.max(limits.max_concurrent_calls);
        let reading = Reading::new(reading_limits);
        let read_ahead = read_ahead::ReadAheadBudget::new(
            limits.read_ahead_bytes_per_call,
            limits.read_ahead_bytes,
        );
        Self {
            inner: Arc::new(Inner {
                read_ahead,
                routes,
                upstream,
                limits,
                events,
                permits,
                per_peer: PerPeer::default(),
                reading,
                log_throttle: Throttle::default(),
                tracker: TaskTracker::new(),
                accepting: AtomicBool::new(true),
                live_streams: AtomicUsize::new(0),
                max_live_streams,
                call_ids,
                metrics,
                log_span,
                taps,
            }),
        }
    }

    /// What the connection handlers call with each negotiated inbound
    /// stream. Serving starts on a task of its own right away: no queue and
    /// no accept task between the connection and the call.
    pub(crate) fn dispatcher(&self) -> Dispatch {
        let this = self.clone();
        Arc::new(move |inbound| this.dispatch(inbound))
    }

    fn dispatch(&self, inbound: InboundStream) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(peer = %inbound.peer, "no runtime to serve a stream on; resetting it");
            return;
        };
        let inner = &self.inner;
        if !inner.accepting.load(Ordering::Acquire) {
            // Overloaded, so 1.0.0 callers read it as "retry later" too.
            self.refuse_stream(
                &rt,
                inbound,
                v1_text::overloaded("shutting down, not taking new calls; retry later"),
            );
            return;
        }
        if inner.live_streams.fetch_add(1, Ordering::Relaxed) >= inner.max_live_streams {
            inner.live_streams.fetch_sub(1, Ordering::Relaxed);
            if let Some(suppressed) = inner.log_throttle.allow("inbound-queue-full") {
                tracing::warn!(peer = %inbound.peer, suppressed, "inbound queue full: refusing stream");
            }
            self.refuse_stream(
                &rt,
                inbound,
                v1_text::overloaded("inbound queue is full; retry later"),
            );
            return;
        }
        let live = LiveStream(inner.clone());
        let this = self.clone();
        let serve = async move {
            this.serve(inbound).await;
            drop(live);
        };
        let span = inner.log_span.clone();
        inner
            .tracker
            .spawn_on(tracing::Instrument::instrument(serve, span), &rt);
    }

    /// Answers "overloaded" and closes, on a task of its own.
    fn refuse_stream(&self, rt: &tokio::runtime::Handle, inbound: InboundStream, why: String) {
        let write_timeout = self.inner.limits.response_write_timeout;
        let metrics = self.inner.metrics.clone();
        rt.spawn(async move {
            let v2 = inbound.protocol.as_ref() == wire::PROTOCOL_V2;
            let mut responder = Responder {
                io: inbound.stream,
                v2,
                write_timeout,
                body_bytes: 0,
                timing: Default::default(),
                metrics,
            };
            let _ = responder
                .refuse(&Refusal::new(Code::Overloaded, "", why))
                .await;
            let _ = tokio::time::timeout(write_timeout, responder.io.close()).await;
        });
    }

    /// Stops accepting and waits up to `grace` for calls in flight. Returns
    /// whether they all finished.
    pub(crate) async fn drain(&self, grace: Duration) -> bool {
        self.inner.accepting.store(false, Ordering::Release);
        self.inner.tracker.close();
        tokio::time::timeout(grace, self.inner.tracker.wait())
            .await
            .is_ok()
    }

    fn emit(&self, event: ApiEvent) {
        self.inner.events.send(event);
    }

    async fn serve(self, inbound: InboundStream) {
        let InboundStream {
            peer,
            remote_ip,
            mut stream,
            protocol,
        } = inbound;
        tracing::trace!(%peer, %protocol, "inbound stream");
        if protocol.as_ref() == wire::PROTOCOL_ROUTES {
            self.list_routes(peer, &mut stream).await;
            return;
        }
        let limits = &self.inner.limits;
        let v2 = protocol.as_ref() == wire::PROTOCOL_V2;
        let (reader, writer) = stream.split();
        let mut reader = reader;
        let mut out = Responder {
            io: writer,
            v2,
            write_timeout: limits.response_write_timeout,
            body_bytes: 0,
            timing: Default::default(),
            metrics: self.inner.metrics.clone(),
        };
        let accepted = Instant::now();

        // Until its whole request is in, a stream holds a place in the
        // reading budget, never a call slot.
        let ticket = self.inner.reading.admit(peer, remote_ip);
        if ticket.evictions > 0 {
            tracing::debug!(%peer, evicted = ticket.evictions, "reading budget full: dropped the oldest silent streams");
        }
        let first_byte_timeout = self.inner.reading.limits().first_byte_timeout;
        let read = {
            let read = read_request_within(
                &mut reader,
                first_byte_timeout,
                limits.request_read_timeout,
                limits.max_request_bytes,
                &ticket.speaking,
            );
            // The read first: a stream evicted after its bytes arrived is
            // still served.
            tokio::select! {
                biased;
                read = read => Some(read),
                () = ticket.evicted.cancelled() => None,
            }
        };
        drop(ticket);
        let req = match read {
            Some(Ok(req)) => req,
            None => {
                let _ = out
                    .refuse(&Refusal::new(
                        Code::Overloaded,
                        "",
                        v1_text::overloaded(
                            "too many streams waiting for their request; send it right after opening the stream",
                        ),
                    ))
                    .await;
                self.close(&mut out).await;
                return;
            }
            Some(Err(ReadFailure::Wire(WireError::Empty))) => {
                tracing::debug!(%peer, "stream closed before a request arrived");
                self.close(&mut out).await;
                return;
            }
            Some(Err(ReadFailure::Wire(e))) => {
                tracing::debug!(%peer, "bad request: {e}");
                let code = match e {
                    WireError::TooLarge { .. } => Code::TooLarge,
                    _ => Code::BadRequest,
                };
                let _ = out.refuse(&Refusal::new(code, "", e.to_string())).await;
                self.close(&mut out).await;
                return;
            }
            Some(Err(ReadFailure::TimedOut(msg))) => {
                tracing::debug!(%peer, "{msg}");
                let _ = out.refuse(&Refusal::new(Code::BadRequest, "", msg)).await;
                self.close(&mut out).await;
                return;
            }
        };

        // The request is complete: now it may take a call slot.
        out.timing.read_us = micros(accepted.elapsed());
        let queued = Instant::now();
        let permit = self.inner.permits.clone().try_acquire_owned();
        let slot = self
            .inner
            .per_peer
            .try_take(peer, limits.max_calls_per_peer.max(1));
        let refusal = match (&permit, &slot) {
            (Err(_), _) => Some(v1_text::overloaded(&format!(
                "{} calls in flight; retry later",
                limits.max_concurrent_calls
            ))),
            (_, None) => Some(v1_text::overloaded(&format!(
                "{} calls in flight from your peer; retry later",
                limits.max_calls_per_peer
            ))),
            _ => None,
        };
        if let Some(message) = refusal {
            if let Some(suppressed) = self.inner.log_throttle.allow("overloaded") {
                tracing::warn!(%peer, suppressed, "refusing call: {message}");
            }
            let _ = out
                .refuse(&Refusal::new(Code::Overloaded, "", message))
                .await;
            self.close(&mut out).await;
            return;
        }

        out.timing.queue_us = micros(queued.elapsed());
        let id = CallId(self.inner.call_ids.fetch_add(1, Ordering::Relaxed));
        let started = Instant::now();
        self.emit(ApiEvent::ServeStarted {
            id,
            peer,
            // Peer text: escaped and capped for the console as for the log.
            route: crate::logs::untrusted(&req.route),
            method: crate::logs::untrusted(req.method_or_default()),
            stream: req.is_stream(),
        });
        if let Some(m) = &self.inner.metrics {
            m.serve_started();
        }
        // The backend request lives only as long as the caller wants it.
        let outcome = {
            let respond = std::pin::pin!(self.respond(&mut out, peer, &req, id));
            let gone = std::pin::pin!(caller_gone(&mut reader, v2));
            match futures::future::select(respond, gone).await {
                futures::future::Either::Left((outcome, _)) => outcome,
                futures::future::Either::Right(((), _)) => ServeOutcome::CallerGone {
                    error: "caller cancelled".into(),
                },
            }
        };
        self.close(&mut out).await;
        let bytes = out.body_bytes;
        let elapsed = started.elapsed();
        tracing::info!(%peer, route = %Untrusted(&req.route), v2, stream = req.is_stream(), %outcome, bytes, ?elapsed, "served");
        drop((permit, slot));
        let first_byte = (out.timing.backend_head_us > 0)
            .then(|| Duration::from_micros(out.timing.backend_head_us));
        if let Some(m) = &self.inner.metrics {
            let known = self.inner.routes.current().contains_key(&req.route);
            m.serve_finished(&req.route, known, v2, &outcome, bytes, elapsed, first_byte);
        }
        self.emit(ApiEvent::ServeFinished {
            id,
            outcome,
            bytes,
            elapsed,
            backend_first_byte: first_byte,
        });
    }

    async fn close<W: AsyncWrite + Unpin>(&self, out: &mut Responder<W>) {
        let _ =
            tokio::time::timeout(self.inner.limits.response_write_timeout, out.io.close()).await;
    }

    /// Answers a route listing: names and stream flags, never URLs.
    /// Only the routes this peer may call: a route's allow/deny lists hide
    /// it from the peers they refuse.
    async fn list_routes<S: AsyncWrite + Unpin>(&self, peer: PeerId, stream: &mut S) {
        let list = wire::RouteList {
            routes: self
                .inner
                .routes
                .current()
                .iter()
                .filter(|(_, r)| r.policy.admits(&peer))
                .map(|(name, r)| wire::RouteInfo {
                    name: name.clone(),
                    stream: r.stream,
                })
                .collect(),
        };
        let _ = tokio::time::timeout(self.inner.limits.response_write_timeout, async {
            let _ = stream.write_all(&wire::encode_length_prefixed(&list)).await;
            let _ = stream.close().await;
        })
        .await;
    }
}

/// Microseconds of `d`, saturating.
/// Resolves when the caller gives up: a reset, or (2.0.0) closing its side.
async fn caller_gone<R: AsyncRead + Unpin>(mut io: R, v2: bool) {
    let mut buf = [0u8; 64];
    loop {
        match io.read(&mut buf).await {
            // A 1.0.0 caller may half-close after its request; that is no cancel.
            Ok(0) if !v2 => return futures::future::pending().await,
            Ok(_) if !v2 => continue,
            // 2.0.0: the caller keeps its side open until it has the end.
            Ok(_) | Err(_) => return,
        }
    }
}

pub(super) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

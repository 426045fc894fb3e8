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

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::PeerId;
use tokio::sync::{broadcast, Semaphore};
use tokio_util::task::TaskTracker;

use super::admission::{read_request_within, ReadFailure, Reading, ReadingLimits};
use super::api::{Dispatch, InboundStream};
use super::events::{CallId, NodeEvent, ServeOutcome};
use crate::logs::{Throttle, Untrusted, UntrustedDetail};
use crate::routes::Routes;
use crate::upstream::{Upstream, UpstreamError};
use crate::wire::frame::{
    encode_data, encode_data_header, encode_frame, ApiResponseFrame, Code, MAX_DATA_FRAME_BYTES,
};
use crate::wire::{self, v1_text, WireError};

/// Default most calls served at once; past it new calls are refused at once.
pub const DEFAULT_MAX_CONCURRENT_CALLS: usize = 256;
/// Default most calls served at once for one peer.
pub const DEFAULT_MAX_CALLS_PER_PEER: usize = 64;
/// Default time a caller has to send its whole request.
pub const DEFAULT_REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time one write to a caller may block (a caller that stops reading).
pub const DEFAULT_RESPONSE_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default most headers a request may carry.
pub const DEFAULT_MAX_REQUEST_HEADERS: usize = 128;
/// Most bytes of ready stream chunks joined into one write.
const MAX_COALESCED_BYTES: usize = 64 * 1024;
/// Chunks at least this large are written as they are; smaller ones are
/// copied together first, so many tokens make one yamux frame.
const GATHER_COPY_BELOW: usize = 4096;
/// Backend chunks read ahead of the caller. hyper hands a response body over
/// one chunk at a time, so a writer that read the body itself would send one
/// frame per chunk; reading ahead on a task of its own lets chunks pile up
/// while a write is under way and go out together. Bounded so a slow caller
/// still slows the backend (at most this many chunks are held per call).
const READ_AHEAD_CHUNKS: usize = 64;

/// A streamed backend body read ahead on its own task (see
/// [`READ_AHEAD_CHUNKS`]); dropping it stops the reading and the backend request.
struct ReadAhead {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, UpstreamError>>,
    _task: tokio_util::task::AbortOnDropHandle<()>,
}

impl ReadAhead {
    fn spawn(
        chunks: impl futures::Stream<Item = Result<Bytes, UpstreamError>> + Send + 'static,
    ) -> Self {
        let (tx, rx) = tokio::sync::mpsc::channel(READ_AHEAD_CHUNKS);
        let task = tokio::spawn(async move {
            let mut chunks = std::pin::pin!(chunks);
            while let Some(chunk) = chunks.next().await {
                let failed = chunk.is_err();
                if tx.send(chunk).await.is_err() || failed {
                    break;
                }
            }
        });
        Self {
            rx,
            _task: tokio_util::task::AbortOnDropHandle::new(task),
        }
    }

    /// Fills `batch` (emptied first) with the next chunk and whatever else is
    /// ready, up to about `max_bytes`, and says what follows the batch.
    /// Waits only for the first chunk, never for more.
    async fn next_batch(&mut self, batch: &mut Vec<Bytes>, max_bytes: usize) -> AfterBatch {
        batch.clear();
        let mut size = match self.rx.recv().await {
            None => return AfterBatch::End,
            Some(Err(e)) => return AfterBatch::Failed(e),
            Some(Ok(chunk)) => {
                let n = chunk.len();
                batch.push(chunk);
                n
            }
        };
        let mut yielded = false;
        while size < max_bytes {
            if !yielded && self.rx.is_empty() {
                // Let the tasks that are runnable now (the read-ahead and
                // hyper's connection, which hand chunks over one at a time)
                // run once before the write. No timer and no waiting for
                // data: a chunk is held for at most one pass of the
                // scheduler, and a slow backend's tokens go out as they
                // come. Measured: 310,000 -> 1,080,000 small chunks/s, time
                // to first byte unchanged.
                yielded = true;
                tokio::task::yield_now().await;
            }
            match self.rx.try_recv() {
                Ok(Ok(chunk)) => {
                    size += chunk.len();
                    batch.push(chunk);
                }
                Ok(Err(e)) => return AfterBatch::Failed(e),
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => {
                    return AfterBatch::End
                }
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => break,
            }
        }
        AfterBatch::More
    }
}

/// What follows a batch of read-ahead chunks (which may be empty).
enum AfterBatch {
    More,
    End,
    Failed(UpstreamError),
}

/// Limits on the serving side.
#[derive(Clone, Debug)]
pub struct ServeLimits {
    pub max_request_bytes: usize,
    pub max_concurrent_calls: usize,
    pub max_calls_per_peer: usize,
    pub max_request_headers: usize,
    pub request_read_timeout: Duration,
    pub response_write_timeout: Duration,
    /// The budget of streams still reading their request (no call slot yet).
    pub reading: ReadingLimits,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            max_request_bytes: wire::DEFAULT_MAX_REQUEST_BYTES,
            max_concurrent_calls: DEFAULT_MAX_CONCURRENT_CALLS,
            max_calls_per_peer: DEFAULT_MAX_CALLS_PER_PEER,
            max_request_headers: DEFAULT_MAX_REQUEST_HEADERS,
            request_read_timeout: DEFAULT_REQUEST_READ_TIMEOUT,
            response_write_timeout: DEFAULT_RESPONSE_WRITE_TIMEOUT,
            reading: ReadingLimits::default(),
        }
    }
}

/// Why a call was not forwarded, as both protocols say it.
#[derive(Debug)]
struct Refusal {
    code: Code,
    /// What the caller is told.
    message: String,
    route: String,
    /// The full story for our own log and events (may name the backend).
    detail: Option<String>,
}

impl Refusal {
    fn new(code: Code, route: &str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            route: route.to_string(),
            detail: None,
        }
    }

    /// What our own log and console show.
    fn detail(&self) -> &str {
        self.detail.as_deref().unwrap_or(&self.message)
    }

    /// The 1.0.0 in-band text.
    fn v1_text(&self) -> String {
        match self.code {
            Code::RouteNotFound => v1_text::ROUTE_NOT_FOUND.to_string(),
            Code::StreamNotSupported => v1_text::stream_not_supported(&self.route),
            Code::Forbidden => v1_text::FORBIDDEN.to_string(),
            _ => v1_text::error(&self.message),
        }
    }

    fn outcome(&self) -> ServeOutcome {
        match self.code {
            Code::RouteNotFound => ServeOutcome::RouteNotFound,
            Code::StreamNotSupported => ServeOutcome::StreamNotSupported,
            Code::UpstreamFailed
            | Code::UpstreamTimeout
            | Code::UpstreamUnavailable
            | Code::Internal => ServeOutcome::Failed {
                error: format!("{}: {}", self.code, self.detail()),
            },
            _ => ServeOutcome::Refused {
                reason: format!("{}: {}", self.code, self.detail()),
            },
        }
    }
}

fn upstream_refusal(route: &str, e: &UpstreamError) -> Refusal {
    let code = match e {
        UpstreamError::BadMethod(_) => Code::MethodNotAllowed,
        UpstreamError::BadHeader(_) => Code::BadRequest,
        UpstreamError::BadUrl { .. } => Code::Internal,
        UpstreamError::Unavailable { .. } => Code::UpstreamUnavailable,
        UpstreamError::Timeout { .. } => Code::UpstreamTimeout,
        UpstreamError::Failed { .. } => Code::UpstreamFailed,
        UpstreamError::TooLarge { .. } => Code::TooLarge,
    };
    Refusal {
        detail: Some(e.to_string()),
        ..Refusal::new(code, route, e.public_message())
    }
}

/// Writes a response in the caller's protocol.
struct Responder<W> {
    io: W,
    v2: bool,
    write_timeout: Duration,
    body_bytes: u64,
}

impl<W: AsyncWrite + Unpin> Responder<W> {
    async fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        let io = &mut self.io;
        tokio::time::timeout(self.write_timeout, async {
            io.write_all(bytes).await?;
            io.flush().await
        })
        .await
        .map_err(|_| "caller stopped reading".to_string())?
        .map_err(|e| e.to_string())
    }

    async fn refuse(&mut self, refusal: &Refusal) -> Result<(), String> {
        if self.v2 {
            let mut buf = BytesMut::new();
            encode_frame(
                &ApiResponseFrame::error(refusal.code, &refusal.message),
                &mut buf,
            );
            self.write(&buf).await
        } else {
            self.write(refusal.v1_text().as_bytes()).await
        }
    }

    /// A whole response in one write (a Python caller reads it with one read).
    async fn unary(
        &mut self,
        status: u16,
        headers: HashMap<String, String>,
        body: Bytes,
    ) -> Result<(), String> {
        self.body_bytes = body.len() as u64;
        if self.v2 {
            let mut buf = BytesMut::with_capacity(body.len() + 256);
            encode_frame(&ApiResponseFrame::head(status, headers), &mut buf);
            encode_data(&body, &mut buf);
            encode_frame(&ApiResponseFrame::end(body.len() as u64), &mut buf);
            self.write(&buf).await
        } else {
            self.write(&body).await
        }
    }

    async fn head(&mut self, status: u16, headers: HashMap<String, String>) -> Result<(), String> {
        if self.v2 {
            let mut buf = BytesMut::new();
            encode_frame(&ApiResponseFrame::head(status, headers), &mut buf);
            self.write(&buf).await?;
        }
        Ok(())
    }

    /// Sends chunks that were ready together: in 2.0.0 as few data frames
    /// as the frame limit allows. Small chunks are copied together, large
    /// ones written without a copy.
    async fn data(&mut self, chunks: &[Bytes]) -> Result<(), String> {
        // No piece larger than a data frame may carry.
        let pieces = chunks.iter().flat_map(|c| {
            (0..c.len())
                .step_by(MAX_DATA_FRAME_BYTES)
                .map(move |at| c.slice(at..(at + MAX_DATA_FRAME_BYTES).min(c.len())))
        });
        let mut frames: Vec<(usize, Vec<Bytes>)> = Vec::new();
        for piece in pieces {
            match frames.last_mut() {
                Some((len, parts)) if *len + piece.len() <= MAX_DATA_FRAME_BYTES => {
                    *len += piece.len();
                    parts.push(piece);
                }
                _ => frames.push((piece.len(), vec![piece])),
            }
        }
        let v2 = self.v2;
        let io = &mut self.io;
        let mut sent = 0u64;
        let written = tokio::time::timeout(self.write_timeout, async {
            let mut staged = BytesMut::new();
            for (len, parts) in &frames {
                if v2 {
                    encode_data_header(*len, &mut staged);
                }
                for part in parts {
                    if part.len() < GATHER_COPY_BELOW {
                        staged.extend_from_slice(part);
                        continue;
                    }
                    if !staged.is_empty() {
                        io.write_all(&staged).await?;
                        staged.clear();
                    }
                    io.write_all(part).await?;
                }
                sent += *len as u64;
            }
            if !staged.is_empty() {
                io.write_all(&staged).await?;
            }
            io.flush().await
        })
        .await;
        self.body_bytes += sent;
        written
            .map_err(|_| "caller stopped reading".to_string())?
            .map_err(|e| e.to_string())
    }

    async fn end(&mut self) -> Result<(), String> {
        if self.v2 {
            let mut buf = BytesMut::new();
            encode_frame(&ApiResponseFrame::end(self.body_bytes), &mut buf);
            self.write(&buf).await?;
        }
        Ok(())
    }
}

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

/// Counts calls per peer; the guard gives the slot back.
#[derive(Default)]
struct PerPeer {
    counts: Mutex<HashMap<PeerId, usize>>,
}

struct PeerSlot<'a> {
    per_peer: &'a PerPeer,
    peer: PeerId,
}

impl PerPeer {
    fn try_take(&self, peer: PeerId, max: usize) -> Option<PeerSlot<'_>> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(peer).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(PeerSlot {
            per_peer: self,
            peer,
        })
    }
}

impl Drop for PeerSlot<'_> {
    fn drop(&mut self) {
        let mut counts = self
            .per_peer
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.peer);
            }
        }
    }
}

struct Inner {
    routes: Routes,
    upstream: Upstream,
    limits: ServeLimits,
    events: broadcast::Sender<NodeEvent>,
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

impl Server {
    pub(crate) fn new(
        routes: Routes,
        upstream: Upstream,
        limits: ServeLimits,
        queue_depth: usize,
        events: broadcast::Sender<NodeEvent>,
        call_ids: Arc<AtomicU64>,
    ) -> Self {
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
        Self {
            inner: Arc::new(Inner {
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
            self.refuse_stream(&rt, inbound, "node shutting down: not taking new calls");
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
                "node overloaded: inbound queue is full; retry later",
            );
            return;
        }
        let live = LiveStream(inner.clone());
        let this = self.clone();
        inner.tracker.spawn_on(
            async move {
                this.serve(inbound).await;
                drop(live);
            },
            &rt,
        );
    }

    /// Answers "overloaded" and closes, on a task of its own.
    fn refuse_stream(
        &self,
        rt: &tokio::runtime::Handle,
        inbound: InboundStream,
        why: &'static str,
    ) {
        let write_timeout = self.inner.limits.response_write_timeout;
        rt.spawn(async move {
            let v2 = inbound.protocol.as_ref() == wire::PROTOCOL_V2;
            let mut responder = Responder {
                io: inbound.stream,
                v2,
                write_timeout,
                body_bytes: 0,
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

    fn emit(&self, event: NodeEvent) {
        let _ = self.inner.events.send(event);
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
        };

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
                        "node overloaded: too many streams waiting for their request; send it right after opening the stream",
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
        let permit = self.inner.permits.clone().try_acquire_owned();
        let slot = self
            .inner
            .per_peer
            .try_take(peer, limits.max_calls_per_peer.max(1));
        let refusal = match (&permit, &slot) {
            (Err(_), _) => Some(format!(
                "node overloaded: {} calls in flight; retry later",
                limits.max_concurrent_calls
            )),
            (_, None) => Some(format!(
                "node overloaded: {} calls in flight from your peer; retry later",
                limits.max_calls_per_peer
            )),
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

        let id = CallId(self.inner.call_ids.fetch_add(1, Ordering::Relaxed));
        let started = Instant::now();
        self.emit(NodeEvent::ServeStarted {
            id,
            peer,
            // Peer text: escaped and capped for the console as for the log.
            route: crate::logs::untrusted(&req.route),
            method: crate::logs::untrusted(req.method_or_default()),
            stream: req.is_stream(),
        });
        // The backend request lives only as long as the caller wants it.
        let outcome = {
            let respond = std::pin::pin!(self.respond(&mut out, peer, &req));
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
        tracing::info!(%peer, route = %Untrusted(&req.route), v2, stream = req.is_stream(), ?outcome, bytes, ?elapsed, "served");
        drop((permit, slot));
        self.emit(NodeEvent::ServeFinished {
            id,
            outcome,
            bytes,
            elapsed,
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

    /// Checks the route's policy, forwards, and answers.
    async fn respond<W: AsyncWrite + Unpin>(
        &self,
        out: &mut Responder<W>,
        peer: PeerId,
        req: &wire::ApiRequest,
    ) -> ServeOutcome {
        let name = req.route.as_str();
        let method = req.method_or_default();
        let max_headers = self.inner.limits.max_request_headers;
        let checked = match self.inner.routes.get(name) {
            _ if req.headers.len() > max_headers => Err(Refusal::new(
                Code::BadRequest,
                name,
                format!(
                    "{} headers exceed the limit of {max_headers}",
                    req.headers.len()
                ),
            )),
            None => Err(Refusal::new(
                Code::RouteNotFound,
                name,
                format!("no route named '{}'", Untrusted(name)),
            )),
            Some(route) if !route.policy.admits(&peer) => Err(Refusal::new(
                Code::Forbidden,
                name,
                format!("peer {peer} may not call route '{}'", Untrusted(name)),
            )),
            Some(route) if !route.policy.allows_method(method) => Err(Refusal::new(
                Code::MethodNotAllowed,
                name,
                format!(
                    "method {} is not allowed on route '{name}' (allowed: {})",
                    Untrusted(method),
                    route.policy.methods.clone().unwrap_or_default().join(", ")
                ),
            )),
            Some(route) if req.is_stream() && !route.stream => Err(Refusal::new(
                Code::StreamNotSupported,
                name,
                format!("route '{}' does not stream", Untrusted(name)),
            )),
            Some(route)
                if route
                    .policy
                    .max_body_bytes
                    .is_some_and(|m| req.body.len() > m) =>
            {
                Err(Refusal::new(
                    Code::TooLarge,
                    name,
                    format!(
                        "request body of {} bytes exceeds the limit of {} bytes of route '{name}'",
                        req.body.len(),
                        route.policy.max_body_bytes.unwrap_or_default()
                    ),
                ))
            }
            Some(route) => Ok(route),
        };
        let route = match checked {
            Ok(route) => route,
            Err(refusal) => return self.refused(out, refusal).await,
        };
        let config = self.inner.upstream.config();
        // The caller's deadline (2.0.0) can only shorten ours.
        let cap = |d: Duration| match req.timeout_ms {
            0 => d,
            ms => d.min(Duration::from_millis(u64::from(ms))),
        };
        if !req.is_stream() {
            let timeout = cap(route.policy.timeout.unwrap_or(config.unary_timeout));
            let deadline = tokio::time::Instant::now() + timeout;
            let result = match self.inner.upstream.send(&route, req, timeout).await {
                Ok(resp) => {
                    let status = resp.status;
                    let headers = crate::upstream::header_map(&resp.headers);
                    resp.collect(deadline)
                        .await
                        .map(|body| (status, headers, body))
                }
                Err(e) => Err(e),
            };
            match result {
                Ok((status, headers, body)) => match out.unary(status, headers, body).await {
                    Ok(()) => ServeOutcome::Ok { status },
                    Err(error) => ServeOutcome::CallerGone { error },
                },
                Err(e) => self.refused(out, upstream_refusal(name, &e)).await,
            }
        } else {
            let idle = cap(route.policy.timeout.unwrap_or(config.stream_idle_timeout));
            let resp = match self.inner.upstream.send(&route, req, idle).await {
                Ok(resp) => resp,
                Err(e) => return self.refused(out, upstream_refusal(name, &e)).await,
            };
            let status = resp.status;
            if let Err(error) = out
                .head(status, crate::upstream::header_map(&resp.headers))
                .await
            {
                return ServeOutcome::CallerGone { error };
            }
            let mut chunks = ReadAhead::spawn(resp.chunks());
            let mut batch = Vec::new();
            loop {
                let after = chunks.next_batch(&mut batch, MAX_COALESCED_BYTES).await;
                if !batch.is_empty() {
                    if let Err(error) = out.data(&batch).await {
                        return ServeOutcome::CallerGone { error };
                    }
                }
                match after {
                    AfterBatch::More => {}
                    AfterBatch::End => break,
                    AfterBatch::Failed(e) => {
                        return self.refused(out, upstream_refusal(name, &e)).await
                    }
                }
            }
            match out.end().await {
                Ok(()) => ServeOutcome::Ok { status },
                Err(error) => ServeOutcome::CallerGone { error },
            }
        }
    }

    async fn refused<W: AsyncWrite + Unpin>(
        &self,
        out: &mut Responder<W>,
        refusal: Refusal,
    ) -> ServeOutcome {
        if let Some(suppressed) = self.inner.log_throttle.allow("refused") {
            tracing::warn!(route = %Untrusted(&refusal.route), code = %refusal.code, suppressed, "{}", UntrustedDetail(refusal.detail()));
        }
        match out.refuse(&refusal).await {
            Ok(()) => refusal.outcome(),
            Err(error) => ServeOutcome::CallerGone { error },
        }
    }
}

//! One request measured as an inference client sees it: time to the first
//! byte and the first token, the gaps between tokens, the end; and whether
//! it succeeded, which means its body or stream ended properly (a 2.0.0 end
//! frame, a 1.0.0 body without an error text, an HTTP status below 400).

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use libp2p::Multiaddr;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::event_stream::{self, Framer};
use crate::node::{CallError, CallRequest, NodeHandle};
use crate::wire::v1::{classify_v1_body, V1Detector, V1Ending};

/// Most inter-token gaps kept per request.
pub const MAX_GAPS_PER_REQUEST: usize = 10_000;
/// Most body bytes kept per request for comparing peers' answers.
pub const KEPT_BODY_BYTES: usize = 64 * 1024;

/// One request's outcome and timings (whole, as it crosses to a console;
/// scripts read [`Sample::json`]).
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct Sample {
    /// The peer's multiaddr.
    pub peer: String,
    /// None on success; else the error class (see [`class_of`]).
    pub error: Option<String>,
    /// The error's text, for the operator.
    pub detail: Option<String>,
    pub status: Option<u16>,
    pub e2e: Duration,
    pub ttfb: Option<Duration>,
    pub ttft: Option<Duration>,
    /// Gaps between tokens, in order.
    pub itl: Vec<Duration>,
    pub tokens: u64,
    /// The backend reported the count itself (else: counted from events).
    pub tokens_reported: bool,
    pub bytes: u64,
    /// sha256 of the whole body, hex (successes only).
    pub body_sha256: Option<String>,
    /// The body's first bytes, for a diff between peers.
    pub body_head: Bytes,
}

/// A sample as scripts read it (`--json`): times in seconds, without the
/// gaps between tokens or the body's head.
#[derive(Serialize)]
pub struct SampleJson<'a> {
    peer: &'a str,
    error: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: &'a Option<String>,
    status: Option<u16>,
    #[serde(with = "secs")]
    e2e: Duration,
    #[serde(with = "opt_secs")]
    ttfb: Option<Duration>,
    #[serde(with = "opt_secs")]
    ttft: Option<Duration>,
    tokens: u64,
    tokens_reported: bool,
    bytes: u64,
    body_sha256: &'a Option<String>,
}

mod secs {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

mod opt_secs {
    pub fn serialize<S: serde::Serializer>(
        d: &Option<std::time::Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_f64(d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }
}

impl Sample {
    pub(crate) fn new(peer: &str) -> Self {
        Self {
            peer: peer.to_string(),
            error: None,
            detail: None,
            status: None,
            e2e: Duration::ZERO,
            ttfb: None,
            ttft: None,
            itl: Vec::new(),
            tokens: 0,
            tokens_reported: false,
            bytes: 0,
            body_sha256: None,
            body_head: Bytes::new(),
        }
    }

    /// As scripts read it.
    pub fn json(&self) -> SampleJson<'_> {
        SampleJson {
            peer: &self.peer,
            error: &self.error,
            detail: &self.detail,
            status: self.status,
            e2e: self.e2e,
            ttfb: self.ttfb,
            ttft: self.ttft,
            tokens: self.tokens,
            tokens_reported: self.tokens_reported,
            bytes: self.bytes,
            body_sha256: &self.body_sha256,
        }
    }

    pub fn ok(&self) -> bool {
        self.error.is_none()
    }

    /// Time per output token after the first (vLLM's TPOT).
    pub fn tpot(&self) -> Option<Duration> {
        let ttft = self.ttft?;
        (self.tokens > 1).then(|| (self.e2e.saturating_sub(ttft)) / (self.tokens - 1) as u32)
    }

    /// Tokens per second after the first token.
    pub fn tokens_per_sec(&self) -> Option<f64> {
        let ttft = self.ttft?;
        (self.tokens > 1 && self.e2e > ttft)
            .then(|| (self.tokens - 1) as f64 / (self.e2e - ttft).as_secs_f64())
    }

    /// The mean gap between tokens.
    pub fn mean_itl(&self) -> Option<Duration> {
        (!self.itl.is_empty()).then(|| self.itl.iter().sum::<Duration>() / self.itl.len() as u32)
    }

    fn fail(mut self, class: &str, detail: impl Into<String>, start: Instant) -> Self {
        self.error = Some(class.to_string());
        self.detail = Some(detail.into());
        self.e2e = start.elapsed();
        self.body_sha256 = None;
        self
    }
}

/// The class of a failed call, stable for scripts and tables.
pub fn class_of(e: &CallError) -> &'static str {
    e.class()
}

/// Follows tokens in a response's events.
struct Tokens {
    start: Instant,
    framer: Framer,
    events: Vec<event_stream::Event>,
    last: Option<Instant>,
    reported: Option<u64>,
}

impl Tokens {
    fn new(start: Instant) -> Self {
        Self {
            start,
            framer: Framer::default(),
            events: Vec::new(),
            last: None,
            reported: None,
        }
    }

    fn push(&mut self, chunk: &[u8], at: Instant, s: &mut Sample) {
        self.framer.push(chunk, &mut self.events);
        self.take(at, s);
    }

    fn finish(&mut self, at: Instant, s: &mut Sample) {
        self.framer.finish(&mut self.events);
        self.take(at, s);
        if let Some(n) = self.reported {
            s.tokens = n;
            s.tokens_reported = true;
        }
    }

    fn take(&mut self, at: Instant, s: &mut Sample) {
        for ev in self.events.drain(..) {
            if ev.done {
                continue;
            }
            let Ok(value) = serde_json::from_str::<serde_json::Value>(&ev.data) else {
                continue;
            };
            if let Some(n) = event_stream::reported_usage(&value).completion_tokens {
                self.reported = Some(n);
            }
            if event_stream::token_text(&value, None).is_some_and(|t| !t.is_empty()) {
                s.tokens += 1;
                s.ttft
                    .get_or_insert(at.saturating_duration_since(self.start));
                if let Some(last) = self.last {
                    if s.itl.len() < MAX_GAPS_PER_REQUEST {
                        s.itl.push(at.saturating_duration_since(last));
                    }
                }
                self.last = Some(at);
            }
        }
    }
}

/// A response's bytes as they arrive: when the first came, how many,
/// their hash, the first [`KEPT_BODY_BYTES`] and the tokens in them. The
/// one recorder for calls through the hop and straight to a backend.
/// What a call in flight has done so far, for a live view.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CallSoFar {
    pub ttfb: Option<Duration>,
    pub ttft: Option<Duration>,
    pub tokens: u64,
    pub bytes: u64,
    pub elapsed: Duration,
}

/// Told of a call's progress as its chunks arrive (at most every
/// [`LIVE_EVERY`] per call).
pub type LiveObserver = Box<dyn FnMut(CallSoFar) + Send>;

/// How often a live observer hears of one call at most.
pub const LIVE_EVERY: Duration = Duration::from_millis(50);

pub(crate) struct Recorder {
    start: Instant,
    live: Option<(LiveObserver, Instant)>,
    sample: Sample,
    /// None: the body is only counted (a load run compares no bodies, and
    /// hashing them cost it 3-5% of its calls/s on the loopback hop).
    hash: Option<Sha256>,
    head: Vec<u8>,
    /// Most body bytes kept in `head`.
    head_cap: usize,
    tokens: Tokens,
}

impl Recorder {
    pub(crate) fn new(label: &str, start: Instant) -> Self {
        Self {
            start,
            live: None,
            sample: Sample::new(label),
            hash: Some(Sha256::new()),
            head: Vec::new(),
            head_cap: KEPT_BODY_BYTES,
            tokens: Tokens::new(start),
        }
    }

    /// Counts the body without hashing it, keeping only what a 1.0.0
    /// error text needs.
    pub(crate) fn counting_only(mut self) -> Self {
        self.hash = None;
        self.head_cap = crate::wire::v1::MAX_V1_TRAILER_BYTES;
        self
    }

    pub(crate) fn status(&mut self, status: Option<u16>) {
        self.sample.status = status;
    }

    fn keep(&mut self, bytes: &[u8]) {
        self.sample.bytes += bytes.len() as u64;
        if let Some(hash) = self.hash.as_mut() {
            hash.update(bytes);
        }
        let room = self.head_cap.saturating_sub(self.head.len());
        self.head.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// Tells `observer` of the call's progress as chunks arrive.
    pub(crate) fn observed(mut self, observer: LiveObserver) -> Self {
        self.live = Some((observer, self.start));
        self
    }

    /// One chunk of a stream, arrived at `at`.
    pub(crate) fn chunk(&mut self, bytes: &[u8], at: Instant) {
        self.sample
            .ttfb
            .get_or_insert(at.saturating_duration_since(self.start));
        self.keep(bytes);
        self.tokens.push(bytes, at, &mut self.sample);
        let first = self.sample.bytes == bytes.len() as u64;
        if let Some((observer, last)) = self.live.as_mut() {
            if first || at.saturating_duration_since(*last) >= LIVE_EVERY {
                *last = at;
                observer(CallSoFar {
                    ttfb: self.sample.ttfb,
                    ttft: self.sample.ttft,
                    tokens: self.sample.tokens,
                    bytes: self.sample.bytes,
                    elapsed: at.saturating_duration_since(self.start),
                });
            }
        }
    }

    /// The end of a stream.
    pub(crate) fn stream_ended(&mut self) {
        self.tokens.finish(Instant::now(), &mut self.sample);
    }

    /// A whole body, its head having come `ttfb` after the start.
    pub(crate) fn whole(&mut self, body: &[u8], ttfb: Duration) {
        let at = Instant::now();
        self.sample.ttfb = Some(ttfb);
        self.keep(body);
        // Token counts only where a body can carry them (JSON or events).
        if body.iter().take(64).any(|b| *b == b'{') {
            self.tokens.push(body, at, &mut self.sample);
            self.tokens.finish(at, &mut self.sample);
        }
    }

    /// The body kept so far.
    #[cfg(test)]
    pub(crate) fn head(&self) -> &[u8] {
        &self.head
    }

    pub(crate) fn fail(self, class: &str, detail: impl Into<String>) -> Sample {
        self.sample.fail(class, detail, self.start)
    }

    /// The request ended: a failure if its status says so.
    pub(crate) fn end(self) -> Sample {
        let mut s = self.sample;
        s.e2e = self.start.elapsed();
        if let Some(status) = s.status.filter(|st| *st >= 400) {
            let class = if status >= 500 {
                "http_5xx"
            } else {
                "http_4xx"
            };
            return s.fail(class, format!("HTTP {status}"), self.start);
        }
        if let Some(hash) = self.hash {
            s.body_sha256 = Some(hex::encode(hash.finalize()));
            s.body_head = Bytes::from(self.head);
        }
        s
    }
}

/// Makes one call and measures it.
pub async fn measure(
    handle: &NodeHandle,
    addr: &Multiaddr,
    req: CallRequest,
    stream: bool,
) -> Sample {
    measure_as(handle, addr, &addr.to_string(), req, stream).await
}

/// [`measure`], with the peer's address already as text (a load run
/// formats each target once, not once per request).
pub async fn measure_as(
    handle: &NodeHandle,
    addr: &Multiaddr,
    label: &str,
    req: CallRequest,
    stream: bool,
) -> Sample {
    record(
        handle,
        addr,
        Recorder::new(label, Instant::now()),
        req,
        stream,
    )
    .await
}

/// [`measure`], telling `observer` of the call's progress as it goes.
pub async fn measure_observed(
    handle: &NodeHandle,
    addr: &Multiaddr,
    req: CallRequest,
    stream: bool,
    observer: LiveObserver,
) -> Sample {
    let r = Recorder::new(&addr.to_string(), Instant::now()).observed(observer);
    record(handle, addr, r, req, stream).await
}

/// [`measure_as`] without hashing or keeping the body (no
/// `body_sha256`): what a load run needs, at less cost per request.
pub async fn measure_counting(
    handle: &NodeHandle,
    addr: &Multiaddr,
    label: &str,
    req: CallRequest,
    stream: bool,
) -> Sample {
    let r = Recorder::new(label, Instant::now()).counting_only();
    record(handle, addr, r, req, stream).await
}

async fn record(
    handle: &NodeHandle,
    addr: &Multiaddr,
    mut r: Recorder,
    req: CallRequest,
    stream: bool,
) -> Sample {
    if stream {
        let (h, mut chunks) = match handle.stream_full(addr, req).await {
            Ok(ok) => ok,
            Err(e) => return r.fail(class_of(&e), e.to_string()),
        };
        r.status(h.status);
        let v1 = h.status.is_none();
        let mut detector = V1Detector::default();
        while let Some(chunk) = chunks.next().await {
            match chunk {
                Ok(bytes) => {
                    r.chunk(&bytes, Instant::now());
                    if v1 {
                        let _ = detector.push(&bytes);
                    }
                }
                Err(e) => return r.fail(class_of(&e), e.to_string()),
            }
        }
        r.stream_ended();
        if v1 {
            if let (_, V1Ending::Answered(e) | V1Ending::FailedMidway(e)) = detector.finish() {
                return r.fail("v1_error", e.to_string());
            }
        }
    } else {
        let resp = match handle.call_full(addr, req).await {
            Ok(resp) => resp,
            Err(e) => return r.fail(class_of(&e), e.to_string()),
        };
        r.status(resp.head.status);
        r.whole(&resp.body, resp.head.timeline.head);
        if resp.head.status.is_none() {
            if let Some(e) = classify_v1_body(&resp.body) {
                return r.fail("v1_error", e.to_string());
            }
        }
    }
    r.end()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counting_only_hashes_nothing_yet_still_reads_a_1_0_0_error_text() {
        let text = b"Error processing request: backend down";
        let mut r = Recorder::new("p", Instant::now()).counting_only();
        r.chunk(text, Instant::now());
        assert!(classify_v1_body(r.head()).is_some());
        let s = r.end();
        assert_eq!((s.bytes, s.body_sha256), (text.len() as u64, None));
        assert!(s.body_head.is_empty());

        let mut r = Recorder::new("p", Instant::now());
        r.chunk(b"abc", Instant::now());
        let s = r.end();
        let want = hex::encode(Sha256::digest(b"abc"));
        assert_eq!(s.body_sha256.as_deref(), Some(want.as_str()));
        assert_eq!(&s.body_head[..], b"abc");
    }
}

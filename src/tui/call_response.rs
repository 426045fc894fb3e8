//! One call's response as the console keeps it: a capped raw tail, events
//! re-framed across chunks, assembled token text, and stream metrics.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::event_stream::{self, Framer, ReportedUsage};

/// Default cap on the raw bytes kept per call (older bytes are dropped, with a marker).
pub const DEFAULT_OUTPUT_CAP_BYTES: usize = 64 * 1024 * 1024;
/// Most events kept per call for the Events view.
const MAX_EVENTS: usize = 200_000;
/// A gap between events longer than this is marked as a stall.
pub const STALL_THRESHOLD: Duration = Duration::from_secs(1);
/// Window for the live tokens/s figure.
const RATE_WINDOW: Duration = Duration::from_secs(2);
/// Most inter-token gaps kept for percentiles.
const MAX_GAPS: usize = 100_000;

#[derive(Clone, Debug)]
pub struct EventRow {
    pub at: Duration,
    pub gap: Duration,
    pub data: String,
    pub stall: bool,
}

#[derive(Debug)]
pub struct Metrics {
    pub start: Instant,
    pub ttfb: Option<Duration>,
    pub ttft: Option<Duration>,
    pub tokens: u64,
    pub reported: ReportedUsage,
    last_token: Option<Instant>,
    gaps: Vec<Duration>,
    window: VecDeque<Instant>,
    pub end: Option<Instant>,
    /// When the last bytes came (how long a call has been silent).
    pub last_bytes: Option<Instant>,
}

impl Metrics {
    fn new(start: Instant) -> Self {
        Self {
            start,
            ttfb: None,
            ttft: None,
            tokens: 0,
            reported: ReportedUsage::default(),
            last_token: None,
            gaps: Vec::new(),
            window: VecDeque::new(),
            end: None,
            last_bytes: None,
        }
    }

    fn on_token(&mut self, at: Instant) {
        self.tokens += 1;
        if self.ttft.is_none() {
            self.ttft = Some(at.saturating_duration_since(self.start));
        }
        if let Some(last) = self.last_token {
            if self.gaps.len() < MAX_GAPS {
                self.gaps.push(at.saturating_duration_since(last));
            }
        }
        self.last_token = Some(at);
        self.window.push_back(at);
        while self
            .window
            .front()
            .is_some_and(|t| at.saturating_duration_since(*t) > RATE_WINDOW)
        {
            self.window.pop_front();
        }
    }

    /// Token count: the backend's own when it reports one.
    pub fn token_count(&self) -> (u64, bool) {
        match self.reported.completion_tokens {
            Some(n) => (n, true),
            None => (self.tokens, false),
        }
    }

    /// Tokens/s over the last two seconds (live) or over the whole stream.
    pub fn rate_window(&self, now: Instant) -> Option<f64> {
        let first = self.window.front()?;
        let span = now
            .saturating_duration_since(*first)
            .as_secs_f64()
            .max(0.05);
        if self.end.is_some() {
            return None;
        }
        Some(self.window.len() as f64 / span)
    }

    pub fn rate_overall(&self) -> Option<f64> {
        if let (Some(n), Some(secs)) = (self.reported.completion_tokens, self.reported.eval_seconds)
        {
            if secs > 0.0 {
                return Some(n as f64 / secs);
            }
        }
        let ttft = self.ttft?;
        let last = self.last_token?;
        let span = last
            .saturating_duration_since(self.start + ttft)
            .as_secs_f64();
        let (n, _) = self.token_count();
        if span <= 0.0 || n < 2 {
            return None;
        }
        Some((n - 1) as f64 / span)
    }

    pub fn gap_percentile(&self, p: f64) -> Option<Duration> {
        if self.gaps.is_empty() {
            return None;
        }
        // A selection, not a sort: this runs twice a frame on up to
        // MAX_GAPS gaps (a sort of 100,000 took most of a 10 ms frame).
        let mut gaps = self.gaps.clone();
        let idx = (((gaps.len() - 1) as f64 * p).round() as usize).min(gaps.len() - 1);
        let (_, nth, _) = gaps.select_nth_unstable(idx);
        Some(*nth)
    }
}

#[derive(Debug)]
pub struct Output {
    pub raw: Vec<u8>,
    /// Bytes dropped from the front to stay under the cap.
    pub dropped: u64,
    cap: usize,
    framer: Framer,
    pub events: Vec<EventRow>,
    pub events_dropped: u64,
    /// Bytes of event data kept (capped like the raw tail).
    events_bytes: usize,
    pub text: String,
    /// Bytes of token text dropped from the front to stay under the cap.
    pub text_dropped: u64,
    pub metrics: Metrics,
    last_event: Option<Instant>,
    pub token_path: Option<String>,
    /// The body was let go to keep the console within its memory budget
    /// (see `calls::MAX_KEPT_OUTPUT_BYTES`); the figures stay.
    pub released: bool,
}

impl Output {
    pub fn new(start: Instant, cap: usize) -> Self {
        Self {
            raw: Vec::new(),
            dropped: 0,
            cap: cap.max(1024),
            framer: Framer::default(),
            events: Vec::new(),
            events_dropped: 0,
            events_bytes: 0,
            text: String::new(),
            text_dropped: 0,
            metrics: Metrics::new(start),
            last_event: None,
            token_path: None,
            released: false,
        }
    }

    /// Bytes of body this output holds (raw, event data and token text).
    pub fn kept_bytes(&self) -> usize {
        self.raw.len() + self.events_bytes + self.text.len()
    }

    /// Lets the body go and keeps the figures.
    pub fn release(&mut self) {
        self.dropped += self.raw.len() as u64;
        self.events_dropped += self.events.len() as u64;
        self.text_dropped += self.text.len() as u64;
        self.raw = Vec::new();
        self.events = Vec::new();
        self.events_bytes = 0;
        self.text = String::new();
        self.released = true;
    }

    pub fn push(&mut self, chunk: &[u8], at: Instant) {
        if self.metrics.ttfb.is_none() {
            self.metrics.ttfb = Some(at.saturating_duration_since(self.metrics.start));
        }
        self.metrics.last_bytes = Some(at);
        self.raw.extend_from_slice(chunk);
        if self.raw.len() > self.cap {
            // Drop a quarter at once so trimming is rare.
            let cut = self.raw.len() - self.cap + self.cap / 4;
            self.raw.drain(..cut);
            self.dropped += cut as u64;
        }
        let mut events = Vec::new();
        self.framer.push(chunk, &mut events);
        self.on_events(events, at);
    }

    pub fn finish(&mut self, at: Instant) {
        let mut events = Vec::new();
        self.framer.finish(&mut events);
        self.on_events(events, at);
        self.metrics.end = Some(at);
    }

    fn on_events(&mut self, events: Vec<event_stream::Event>, at: Instant) {
        for ev in events {
            let gap = self
                .last_event
                .map(|l| at.saturating_duration_since(l))
                .unwrap_or_default();
            self.last_event = Some(at);
            if !ev.done {
                if let Ok(value) = serde_json::from_str::<serde_json::Value>(&ev.data) {
                    if let Some(tok) = event_stream::token_text(&value, self.token_path.as_deref())
                    {
                        if !tok.is_empty() {
                            self.text.push_str(&tok);
                            self.trim_text();
                            self.metrics.on_token(at);
                        }
                    }
                    let usage = event_stream::reported_usage(&value);
                    if usage.completion_tokens.is_some() {
                        self.metrics.reported = usage;
                    }
                }
            }
            self.events_bytes += ev.data.len();
            if self.events.len() >= MAX_EVENTS || self.events_bytes > self.cap {
                // Drop a quarter (by count, or by bytes) at once so trimming is rare.
                let mut cut = if self.events.len() >= MAX_EVENTS {
                    MAX_EVENTS / 4
                } else {
                    0
                };
                let mut freed: usize = self.events[..cut].iter().map(|e| e.data.len()).sum();
                while cut < self.events.len() && self.events_bytes - freed > self.cap * 3 / 4 {
                    freed += self.events[cut].data.len();
                    cut += 1;
                }
                self.events.drain(..cut);
                self.events_dropped += cut as u64;
                self.events_bytes -= freed;
            }
            self.events.push(EventRow {
                at: at.saturating_duration_since(self.metrics.start),
                gap,
                stall: gap > STALL_THRESHOLD && !self.events.is_empty(),
                data: ev.data,
            });
        }
    }

    /// Keeps the token text under the cap, dropping a quarter from the front.
    fn trim_text(&mut self) {
        if self.text.len() > self.cap {
            let mut cut = self.text.len() - self.cap + self.cap / 4;
            while !self.text.is_char_boundary(cut) {
                cut += 1;
            }
            self.text.drain(..cut);
            self.text_dropped += cut as u64;
        }
    }

    /// Sets where the token text is taken from and re-reads the kept
    /// events with it (token counts and timings stay as first measured).
    pub fn set_token_path(&mut self, path: Option<String>) {
        self.token_path = path;
        self.text.clear();
        self.text_dropped = 0;
        for i in 0..self.events.len() {
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(&self.events[i].data) {
                if let Some(tok) = event_stream::token_text(&value, self.token_path.as_deref()) {
                    self.text.push_str(&tok);
                    self.trim_text();
                }
            }
        }
    }

    /// Whether the body is (or ends with) one of the 1.0.0 error texts.
    pub fn v1_error(&self) -> Option<String> {
        self.v1_error_text().map(|e| e.to_string())
    }

    /// The 1.0.0 error text the body is or ends with, read as a whole
    /// body when it was all kept, else by the one trailer rule (as the CLI
    /// and load runs read it).
    pub fn v1_error_text(&self) -> Option<crate::wire::v1::V1ErrorText> {
        if self.dropped == 0 {
            if let Some(e) = crate::node::classify_v1_body(&self.raw) {
                return Some(e);
            }
        }
        crate::wire::v1::trailer_of(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_assembled_across_chunks_and_counted() {
        let t0 = Instant::now();
        let mut out = Output::new(t0, 1 << 20);
        out.push(
            b"data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\ndata: {\"choi",
            t0 + Duration::from_millis(100),
        );
        out.push(
            b"ces\":[{\"delta\":{\"content\":\"lo\"}}]}\n\ndata: [DONE]\n\n",
            t0 + Duration::from_millis(150),
        );
        out.finish(t0 + Duration::from_millis(160));
        assert_eq!(out.text, "Hello");
        assert_eq!(out.metrics.token_count(), (2, false));
        assert_eq!(out.events.len(), 3);
        assert_eq!(out.metrics.ttfb, Some(Duration::from_millis(100)));
        assert_eq!(
            out.metrics.gap_percentile(0.5),
            Some(Duration::from_millis(50))
        );
    }

    #[test]
    fn a_user_json_path_re_reads_the_kept_events() {
        let t0 = Instant::now();
        let mut out = Output::new(t0, 1 << 20);
        out.push(
            b"{\"out\":{\"piece\":\"a\"}}\n{\"out\":{\"piece\":\"b\"}}\n",
            t0,
        );
        assert_eq!(out.text, "");
        out.set_token_path(Some("out.piece".into()));
        assert_eq!(out.text, "ab");
    }

    #[test]
    fn raw_tail_is_capped_with_a_count_of_what_was_dropped() {
        let t0 = Instant::now();
        let mut out = Output::new(t0, 4096);
        for _ in 0..100 {
            out.push(&[b'x'; 1000], t0);
        }
        assert!(out.raw.len() <= 4096);
        assert_eq!(out.dropped + out.raw.len() as u64, 100_000);
    }

    #[test]
    fn v1_error_texts_are_recognised() {
        let t0 = Instant::now();
        let mut out = Output::new(t0, 4096);
        out.push(b"Route not found", t0);
        assert_eq!(out.v1_error().as_deref(), Some("Route not found"));
        let mut out = Output::new(t0, 4096);
        out.push(b"data: a\n\n", t0);
        out.push(b"Error processing request: ", t0);
        assert!(out.v1_error().is_some());
    }

    #[test]
    fn token_text_and_events_are_capped_in_bytes_with_a_count() {
        let start = Instant::now();
        let mut out = Output::new(start, 4096);
        let token = "y".repeat(100);
        let mut sent = 0u64;
        for _ in 0..1000 {
            let ev =
                format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\"{token}\"}}}}]}}\n\n");
            out.push(ev.as_bytes(), start);
            sent += token.len() as u64;
        }
        assert!(out.text.len() <= 4096, "text {} bytes", out.text.len());
        assert_eq!(out.text_dropped + out.text.len() as u64, sent);
        let kept: usize = out.events.iter().map(|e| e.data.len()).sum();
        assert!(kept <= 4096, "events hold {kept} bytes");
        assert_eq!(out.events_dropped + out.events.len() as u64, 1000);
    }
}

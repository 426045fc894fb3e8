//! Where a call's time went: the caller's timeline joined with the timings
//! the serving node sends (2.0.0). Network is what is left of the caller's
//! wait for the head once the node's own time (from the whole request to
//! its head) is taken out: the request's and the head's ways over the hop,
//! plus anything neither side measured. The node's read time is shown
//! beside it, not added: it starts when the node accepted the stream,
//! which is before the caller learns the stream is open.

use std::time::Duration;

use super::types::ResponseHead;
use crate::wire::frame::ServerTiming;

/// One call's time, split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Breakdown {
    /// Dial, or nothing for a reused connection.
    pub connect: Duration,
    /// Opening the stream and agreeing on the protocol.
    pub open: Duration,
    /// The hop both ways (the caller's wait minus the node's own time).
    pub network: Duration,
    /// The serving node reading the request after it accepted the stream
    /// (overlaps `open` and `network`; not part of the sum).
    pub read: Duration,
    /// The serving node taking a call slot.
    pub queue: Duration,
    /// The backend's response head (its time to first byte).
    pub backend_head: Duration,
    /// The backend's body after its head.
    pub backend_body: Duration,
    /// The caller's time from the head to the end (streams; unary bodies
    /// come with their head).
    pub after_head: Duration,
    /// The caller's whole call.
    pub total: Duration,
    /// The node's timings said more time than the caller waited (clocks
    /// differ in resolution; a large value means they are not to be trusted).
    pub overlap: Duration,
}

impl Breakdown {
    /// Splits a call: its head, the node's final timings (a stream's end
    /// frame; a unary head already has them) and the caller's total.
    pub fn of(
        head: &ResponseHead,
        end: Option<ServerTiming>,
        total: Duration,
        stream: bool,
    ) -> Option<Breakdown> {
        let server = end.or(head.server_timing)?;
        let t = head.timeline;
        let us = Duration::from_micros;
        // A unary head leaves the node after the whole body.
        let node_before_head = if stream {
            server.until_head()
        } else {
            server.until_head() + us(server.backend_body_us)
        };
        let waited = t.head.saturating_sub(t.opened);
        Some(Breakdown {
            connect: t.connected,
            open: t.opened.saturating_sub(t.connected),
            network: waited.saturating_sub(node_before_head),
            read: us(server.read_us),
            queue: us(server.queue_us),
            backend_head: us(server.backend_head_us),
            backend_body: us(server.backend_body_us),
            after_head: total.saturating_sub(t.head),
            total,
            overlap: node_before_head.saturating_sub(waited),
        })
    }

    /// The parts in order; they add up to `total` (less any `overlap`).
    /// A stream's backend body is inside `after head`; a unary one before
    /// the head.
    pub fn parts(&self, stream: bool) -> Vec<(&'static str, Duration)> {
        let mut parts = vec![
            ("connect", self.connect),
            ("open stream", self.open),
            ("network", self.network),
            ("node queue", self.queue),
            ("backend head", self.backend_head),
        ];
        if stream {
            parts.push(("after head", self.after_head));
        } else {
            parts.push(("backend body", self.backend_body));
            parts.push(("after head", self.after_head));
        }
        parts
    }

    /// The parts as the caller lived them: for a stream the backend's body
    /// is inside `after_head`, for a unary call inside the wait for the head.
    pub fn sum(&self, stream: bool) -> Duration {
        self.parts(stream).iter().map(|(_, d)| *d).sum()
    }

    /// One short line: "net 0.4ms · backend 402ms + 5.9s" (the backend's
    /// head, then its body), with the dial and the queue when they count.
    pub fn line(&self, fmt: impl Fn(Duration) -> String) -> String {
        let ms = Duration::from_millis(1);
        let mut s = String::new();
        if self.connect >= ms {
            s.push_str(&format!("dial {} · ", fmt(self.connect)));
        }
        s.push_str(&format!("net {} · ", fmt(self.network + self.open)));
        if self.queue >= ms {
            s.push_str(&format!("queue {} · ", fmt(self.queue)));
        }
        s.push_str(&format!(
            "backend {} + {}",
            fmt(self.backend_head),
            fmt(self.backend_body)
        ));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::call::types::{ApiVersion, Timeline};

    fn head(timing: Option<ServerTiming>) -> ResponseHead {
        ResponseHead {
            version: ApiVersion::V2,
            status: Some(200),
            headers: Default::default(),
            server_timing: timing,
            timeline: Timeline {
                connected: Duration::from_millis(2),
                opened: Duration::from_millis(3),
                written: Some(Duration::from_millis(3)),
                head: Duration::from_millis(110),
            },
        }
    }

    #[test]
    fn a_stream_splits_into_parts_that_add_up() {
        let t = ServerTiming {
            read_us: 500,
            queue_us: 0,
            backend_head_us: 100_000,
            backend_body_us: 0,
        };
        let end = ServerTiming {
            backend_body_us: 880_000,
            ..t
        };
        let total = Duration::from_millis(1_000);
        let b = Breakdown::of(&head(Some(t)), Some(end), total, true).unwrap();
        assert_eq!(b.network, Duration::from_micros(7_000));
        assert_eq!(b.after_head, Duration::from_millis(890));
        assert_eq!(b.sum(true), total);
        assert_eq!(b.overlap, Duration::ZERO);
        assert!(Breakdown::of(&head(None), None, total, true).is_none());
    }

    #[test]
    fn a_unary_call_counts_the_body_before_the_head() {
        let t = ServerTiming {
            read_us: 100,
            queue_us: 0,
            backend_head_us: 60_000,
            backend_body_us: 40_000,
        };
        let total = Duration::from_millis(111);
        let b = Breakdown::of(&head(Some(t)), None, total, false).unwrap();
        assert_eq!(b.network, Duration::from_micros(7_000));
        assert_eq!(b.sum(false), total);
        assert_eq!(
            b.line(|d| format!("{d:?}")),
            "dial 2ms · net 8ms · backend 60ms + 40ms"
        );
    }
}

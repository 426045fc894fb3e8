//! Everything about 1.0.0's in-band error texts, in one place: the texts a
//! server writes, recognising them in a body or at the end of a stream, and
//! what each means (the node, the CLI and the console all ask here).
//!
//! In 1.0.0 an error is indistinguishable from a body that says the same:
//! only whole bodies (and a short trailer at the end of a stream) are read
//! as errors, and only on 1.0.0.

/// The texts, as the Python nodes write them (and `Forbidden`, ours).
pub mod v1_text {
    pub const ROUTE_NOT_FOUND: &str = "Route not found";
    pub const STREAM_NOT_SUPPORTED_PREFIX: &str = "Route does not support streaming: ";
    pub const ERROR_PREFIX: &str = "Error processing request: ";
    /// peerapi's answer to a caller a route's policy refuses.
    pub const FORBIDDEN: &str = "Forbidden";

    /// `Route does not support streaming: <route>`.
    pub fn stream_not_supported(route: &str) -> String {
        format!("{STREAM_NOT_SUPPORTED_PREFIX}{route}")
    }

    /// `Error processing request: <message>`.
    pub fn error(message: &str) -> String {
        format!("{ERROR_PREFIX}{message}")
    }

    // peerapi's own refusals, after `Error processing request: `: written
    // only through the functions below and told apart by these words.
    pub const OVERLOADED: &str = "node overloaded";
    pub const NOT_ALLOWED: &str = "is not allowed";
    pub const EXCEEDS_LIMIT: &str = "exceeds the limit";

    /// `node overloaded: <detail>`.
    pub fn overloaded(detail: &str) -> String {
        format!("{OVERLOADED}: {detail}")
    }

    /// `method <m> is not allowed on route '<r>' (allowed: <list>)`.
    pub fn method_not_allowed(
        method: impl std::fmt::Display,
        route: &str,
        allowed: &str,
    ) -> String {
        format!("method {method} {NOT_ALLOWED} on route '{route}' (allowed: {allowed})")
    }

    /// `<what> exceeds the limit of <limit>`.
    pub fn exceeds_limit(what: impl std::fmt::Display, limit: impl std::fmt::Display) -> String {
        format!("{what} {EXCEEDS_LIMIT} of {limit}")
    }
}

/// An in-band 1.0.0 error text, recognised in a response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum V1ErrorText {
    RouteNotFound,
    StreamNotSupported(String),
    Forbidden,
    Processing(String),
}

impl std::fmt::Display for V1ErrorText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::RouteNotFound => write!(f, "{}", v1_text::ROUTE_NOT_FOUND),
            Self::StreamNotSupported(route) => {
                write!(f, "{}", v1_text::stream_not_supported(route))
            }
            Self::Forbidden => write!(f, "{}", v1_text::FORBIDDEN),
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
    } else if text == v1_text::FORBIDDEN {
        Some(V1ErrorText::Forbidden)
    } else if let Some(route) = text.strip_prefix(v1_text::STREAM_NOT_SUPPORTED_PREFIX) {
        Some(V1ErrorText::StreamNotSupported(route.to_string()))
    } else {
        text.strip_prefix(v1_text::ERROR_PREFIX)
            .map(|m| V1ErrorText::Processing(m.to_string()))
    }
}

/// Longest 1.0.0 error text recognised at the end of a stream; a longer
/// tail that starts like one is body text.
pub const MAX_V1_TRAILER_BYTES: usize = 4096;

/// Finds the error text a 1.0.0 server appends to a stream that failed
/// mid-way (`Error processing request: ...`, then close), holding back only
/// the bytes that could be its start.
#[derive(Default)]
pub struct V1StreamTail {
    held: Vec<u8>,
}

impl V1StreamTail {
    /// Takes a chunk; returns what can be passed on as body now.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.held.extend_from_slice(chunk);
        let prefix = v1_text::ERROR_PREFIX.as_bytes();
        let mut keep_from = self.held.len();
        // The earliest start of the prefix whose tail is still short enough
        // to be a trailer; a partial prefix at the very end counts too.
        for start in (0..self.held.len()).rev() {
            let rest = &self.held[start..];
            let n = rest.len().min(prefix.len());
            if rest[..n] == prefix[..n] && rest.len() <= MAX_V1_TRAILER_BYTES + prefix.len() {
                keep_from = start;
            }
            if self.held.len() - start > MAX_V1_TRAILER_BYTES + prefix.len() {
                break;
            }
        }
        let rest = self.held.split_off(keep_from);
        std::mem::replace(&mut self.held, rest)
    }

    /// At the end of the stream: the body still held back, and the error the
    /// stream ended with, if it did.
    pub fn finish(self) -> (Vec<u8>, Option<V1ErrorText>) {
        let prefix = v1_text::ERROR_PREFIX.as_bytes();
        if self.held.starts_with(prefix) {
            let message = String::from_utf8_lossy(&self.held[prefix.len()..]).into_owned();
            (Vec::new(), Some(V1ErrorText::Processing(message)))
        } else {
            (self.held, None)
        }
    }
}

/// The error a 1.0.0 body ends with, if it does: the trailer rule of
/// [`V1StreamTail`] over a body already held whole.
pub fn trailer_of(body: &[u8]) -> Option<V1ErrorText> {
    let mut tail = V1StreamTail::default();
    tail.push(body);
    tail.finish().1
}

/// Whether `head` could still be, or starts with, one of the whole-body
/// 1.0.0 error texts.
fn could_be_error_text(head: &[u8]) -> bool {
    [
        v1_text::ROUTE_NOT_FOUND,
        v1_text::STREAM_NOT_SUPPORTED_PREFIX,
        v1_text::ERROR_PREFIX,
        v1_text::FORBIDDEN,
    ]
    .iter()
    .any(|t| {
        let t = t.as_bytes();
        let n = head.len().min(t.len());
        head[..n] == t[..n]
    })
}

/// The one reader of a streamed 1.0.0 body's in-band errors (the CLI, the
/// console and load runs use it): a whole-body error text at the start,
/// held back until it can be told from a body, and the trailer a stream
/// that failed mid-way ends with.
#[derive(Default)]
pub struct V1Detector {
    head: Vec<u8>,
    decided: bool,
    tail: V1StreamTail,
}

/// How a 1.0.0 stream ended, as [`V1Detector::finish`] reads it.
#[derive(Debug, PartialEq, Eq)]
pub enum V1Ending {
    /// A body, whole.
    Body,
    /// The peer answered with an error instead of a body.
    Answered(V1ErrorText),
    /// The body broke off with an error text after some of it.
    FailedMidway(V1ErrorText),
}

impl V1Detector {
    /// Takes a chunk; returns what can be passed on as body now.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        if self.decided {
            return self.tail.push(chunk);
        }
        self.head.extend_from_slice(chunk);
        let bound = MAX_V1_TRAILER_BYTES + v1_text::ERROR_PREFIX.len();
        if could_be_error_text(&self.head) && self.head.len() <= bound {
            return Vec::new();
        }
        self.decided = true;
        let head = std::mem::take(&mut self.head);
        self.tail.push(&head)
    }

    /// At the end of the stream: the body still held back, and how it ended.
    pub fn finish(self) -> (Vec<u8>, V1Ending) {
        if !self.decided {
            return match classify_v1_body(&self.head) {
                Some(e) => (Vec::new(), V1Ending::Answered(e)),
                None => (self.head, V1Ending::Body),
            };
        }
        match self.tail.finish() {
            (rest, Some(e)) => (rest, V1Ending::FailedMidway(e)),
            (rest, None) => (rest, V1Ending::Body),
        }
    }
}

impl V1ErrorText {
    /// What the text means (see [`crate::wire::failure`]): the Python
    /// nodes put everything else after `Error processing request: `, so
    /// peerapi's own refusals are told apart by the words it writes there.
    pub fn failure(&self) -> crate::wire::Failure {
        use crate::wire::Failure;
        match self {
            V1ErrorText::RouteNotFound => Failure::RouteNotFound,
            V1ErrorText::StreamNotSupported(_) => Failure::StreamNotSupported,
            V1ErrorText::Forbidden => Failure::Forbidden,
            V1ErrorText::Processing(m) => Failure::of_v1_processing(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect(chunks: &[&[u8]]) -> (Vec<u8>, V1Ending) {
        let mut d = V1Detector::default();
        let mut body = Vec::new();
        for c in chunks {
            body.extend(d.push(c));
        }
        let (rest, ending) = d.finish();
        body.extend(rest);
        (body, ending)
    }

    #[test]
    fn the_detector_tells_answers_failures_and_bodies_apart() {
        let (body, ending) = detect(&[b"Route not", b" found"]);
        assert_eq!(
            (body.as_slice(), ending),
            (&b""[..], V1Ending::Answered(V1ErrorText::RouteNotFound))
        );
        let (body, ending) = detect(&[b"data: 1\n\n", b"Error processing request: boom"]);
        assert_eq!(body, b"data: 1\n\n");
        assert_eq!(
            ending,
            V1Ending::FailedMidway(V1ErrorText::Processing("boom".into()))
        );
        let (body, ending) = detect(&[b"Route", b" 66 is open"]);
        assert_eq!(
            (body.as_slice(), ending),
            (&b"Route 66 is open"[..], V1Ending::Body)
        );
        assert_eq!(
            trailer_of(b"abc Error processing request: x"),
            Some(V1ErrorText::Processing("x".into()))
        );
    }

    fn run(chunks: &[&[u8]]) -> (Vec<u8>, Option<V1ErrorText>) {
        let mut tail = V1StreamTail::default();
        let mut body = Vec::new();
        for c in chunks {
            body.extend(tail.push(c));
        }
        let (rest, err) = tail.finish();
        body.extend(rest);
        (body, err)
    }

    #[test]
    fn a_trailing_error_text_is_split_from_the_body() {
        let (body, err) = run(&[
            b"data: 1\n\n",
            b"data: 2\n\nError proc",
            b"essing request: backend timed out",
        ]);
        assert_eq!(body, b"data: 1\n\ndata: 2\n\n");
        assert_eq!(
            err,
            Some(V1ErrorText::Processing("backend timed out".into()))
        );
    }

    #[test]
    fn body_text_that_only_looks_like_it_passes_through() {
        let long = format!(
            "Error processing request: {}",
            "x".repeat(MAX_V1_TRAILER_BYTES * 2)
        );
        let (body, err) = run(&[b"a", long.as_bytes(), b"b"]);
        assert_eq!(body, [b"a", long.as_bytes(), b"b"].concat());
        assert_eq!(err, None);
        let (body, err) = run(&[b"Error pro", b"cessed fine"]);
        assert_eq!(body, b"Error processed fine");
        assert_eq!(err, None);
    }

    #[test]
    fn each_text_has_its_class() {
        use crate::wire::Failure;
        let class = |body: &str| classify_v1_body(body.as_bytes()).map(|e| e.failure());
        assert_eq!(class("Route not found"), Some(Failure::RouteNotFound));
        assert_eq!(
            class("Route does not support streaming: x"),
            Some(Failure::StreamNotSupported)
        );
        assert_eq!(class("Forbidden"), Some(Failure::Forbidden));
        assert_eq!(
            class("Error processing request: node overloaded: 256 calls in flight; retry later"),
            Some(Failure::Overloaded)
        );
        assert_eq!(
            class("Error processing request: method DELETE is not allowed on route 'x' (allowed: GET)"),
            Some(Failure::MethodNotAllowed)
        );
        assert_eq!(
            class("Error processing request: the request body exceed the limit of 1 MiB"),
            Some(Failure::RequestTooLarge),
            "an older node's words"
        );
        assert_eq!(
            class("Error processing request: backend unavailable: connection refused"),
            Some(Failure::BackendFailed)
        );
        assert_eq!(
            class("Error processing request: "),
            Some(Failure::BackendFailed),
            "the Python nodes' timeout text is empty"
        );
        assert_eq!(class("{\"status\":\"ok\"}"), None);
    }
}

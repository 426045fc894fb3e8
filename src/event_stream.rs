//! Re-framing of streamed bodies into events: SSE (`data:` lines, events
//! separated by a blank line, `\n` or `\r\n`) or NDJSON (one JSON value per
//! line). Chunk boundaries are the transport's, so an event may be split
//! across chunks or many may share one; the framer buffers partial lines.
//! Also: pulling the token text out of the common inference response shapes.

use serde_json::Value;

/// Longest partial line held while waiting for its end; a longer one is
/// emitted as it is so memory stays bounded.
pub const MAX_PENDING_LINE_BYTES: usize = 1024 * 1024;
/// Most bytes of data kept for one event; the rest is counted and marked.
pub const MAX_EVENT_DATA_BYTES: usize = 4 * 1024 * 1024;

/// What the body looks like, decided from its first line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Unknown,
    Sse,
    Ndjson,
}

/// One complete event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The event's data (SSE data lines joined with `\n`, or the NDJSON line).
    pub data: String,
    /// The SSE `event:` name, if any.
    pub name: Option<String>,
    /// `data: [DONE]`, the OpenAI end marker.
    pub done: bool,
}

/// Incremental framer: push chunks, get whole events.
#[derive(Debug)]
pub struct Framer {
    format: Format,
    line: Vec<u8>,
    data: Vec<String>,
    /// Bytes in `data`, and what was dropped past [`MAX_EVENT_DATA_BYTES`].
    data_bytes: usize,
    data_dropped: usize,
    name: Option<String>,
}

impl Default for Framer {
    fn default() -> Self {
        Self {
            format: Format::Unknown,
            line: Vec::new(),
            data: Vec::new(),
            data_bytes: 0,
            data_dropped: 0,
            name: None,
        }
    }
}

impl Framer {
    pub fn format(&self) -> Format {
        self.format
    }

    /// Feeds one chunk; complete events are appended to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<Event>) {
        let mut rest = chunk;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            self.line.extend_from_slice(&rest[..pos]);
            rest = &rest[pos + 1..];
            let mut line = std::mem::take(&mut self.line);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            self.on_line(&line, out);
        }
        self.line.extend_from_slice(rest);
        if self.line.len() > MAX_PENDING_LINE_BYTES {
            let line = std::mem::take(&mut self.line);
            self.on_line(&line, out);
        }
    }

    /// Flushes what is left at the end of the body.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.on_line(&line, out);
        }
        self.dispatch(out);
    }

    fn on_line(&mut self, line: &[u8], out: &mut Vec<Event>) {
        let text = String::from_utf8_lossy(line);
        if self.format == Format::Unknown {
            if text.trim().is_empty() {
                return;
            }
            let sse = text.starts_with("data:")
                || text.starts_with("event:")
                || text.starts_with("id:")
                || text.starts_with("retry:")
                || text.starts_with(':');
            self.format = if sse { Format::Sse } else { Format::Ndjson };
        }
        match self.format {
            Format::Ndjson => {
                if !text.trim().is_empty() {
                    out.push(Event {
                        data: text.into_owned(),
                        name: None,
                        done: false,
                    });
                }
            }
            _ => {
                if text.is_empty() {
                    self.dispatch(out);
                } else if let Some(v) = text.strip_prefix("data:") {
                    let v = v.strip_prefix(' ').unwrap_or(v);
                    // One event is capped: a peer that never ends its event
                    // must not grow it without bound.
                    if self.data_bytes + v.len() <= MAX_EVENT_DATA_BYTES {
                        self.data_bytes += v.len();
                        self.data.push(v.to_string());
                    } else {
                        self.data_dropped += v.len();
                    }
                } else if let Some(v) = text.strip_prefix("event:") {
                    self.name = Some(v.trim().to_string());
                }
                // Comments, id: and retry: carry nothing to show.
            }
        }
    }

    fn dispatch(&mut self, out: &mut Vec<Event>) {
        if self.data.is_empty() {
            self.name = None;
            return;
        }
        let mut data = self.data.join("\n");
        self.data.clear();
        self.data_bytes = 0;
        if self.data_dropped > 0 {
            data.push_str(&format!(
                "…[event cut: {} more bytes dropped]",
                std::mem::take(&mut self.data_dropped)
            ));
        }
        out.push(Event {
            done: data.trim() == "[DONE]",
            data,
            name: self.name.take(),
        });
    }
}

/// Token counts a backend reported itself.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ReportedUsage {
    pub completion_tokens: Option<u64>,
    /// Generation time the backend reported (Ollama `eval_duration`).
    pub eval_seconds: Option<f64>,
}

/// Follows a dotted path such as `choices.0.delta.content`.
pub fn json_path<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .filter(|p| !p.is_empty())
        .try_fold(value, |v, key| match v {
            Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
            Value::Object(map) => map.get(key),
            _ => None,
        })
}

/// The token text of one event, from the common inference shapes (OpenAI
/// chat and completions, Hugging Face TGI, Ollama, a plain `token` or `text`)
/// or from `path` when given.
pub fn token_text(value: &Value, path: Option<&str>) -> Option<String> {
    let as_text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        _ => None,
    };
    if let Some(path) = path {
        return json_path(value, path).and_then(as_text);
    }
    const PATHS: [&str; 7] = [
        "choices.0.delta.content",
        "choices.0.text",
        "token.text",
        "response",
        "message.content",
        "token",
        "text",
    ];
    PATHS
        .iter()
        .find_map(|p| json_path(value, p).and_then(as_text))
}

/// Usage figures in an event, if the backend reports them.
pub fn reported_usage(value: &Value) -> ReportedUsage {
    let mut usage = ReportedUsage::default();
    if let Some(n) = json_path(value, "usage.completion_tokens").and_then(Value::as_u64) {
        usage.completion_tokens = Some(n);
    }
    if let Some(n) = value.get("eval_count").and_then(Value::as_u64) {
        usage.completion_tokens = Some(n);
    }
    if let Some(ns) = value.get("eval_duration").and_then(Value::as_u64) {
        usage.eval_seconds = Some(ns as f64 / 1e9);
    }
    if let Some(n) = json_path(value, "details.generated_tokens").and_then(Value::as_u64) {
        usage.completion_tokens = Some(n);
    }
    usage
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame_all(chunks: &[&[u8]]) -> Vec<Event> {
        let mut f = Framer::default();
        let mut out = Vec::new();
        for c in chunks {
            f.push(c, &mut out);
        }
        f.finish(&mut out);
        out
    }

    #[test]
    fn sse_events_split_across_chunks_and_crlf() {
        let out = frame_all(&[
            b"data: {\"a\"",
            b":1}\r\n\r\nda",
            b"ta: x\n\ndata: [DONE]\n\n",
        ]);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].data, "{\"a\":1}");
        assert_eq!(out[1].data, "x");
        assert!(out[2].done);
    }

    #[test]
    fn ndjson_lines() {
        let out = frame_all(&[b"{\"response\":\"a\"}\n{\"resp", b"onse\":\"b\"}\n"]);
        assert_eq!(out.len(), 2);
        let v: Value = serde_json::from_str(&out[1].data).unwrap();
        assert_eq!(token_text(&v, None).as_deref(), Some("b"));
    }

    #[test]
    fn token_shapes() {
        let cases = [
            (r#"{"choices":[{"delta":{"content":"hi"}}]}"#, "hi"),
            (r#"{"choices":[{"text":"yo"}]}"#, "yo"),
            (r#"{"token":{"text":"tg"}}"#, "tg"),
            (r#"{"message":{"content":"ol"}}"#, "ol"),
            (r#"{"token":"pt"}"#, "pt"),
            (r#"{"text":"tx"}"#, "tx"),
        ];
        for (json, want) in cases {
            let v: Value = serde_json::from_str(json).unwrap();
            assert_eq!(token_text(&v, None).as_deref(), Some(want), "{json}");
        }
        let v: Value = serde_json::from_str(r#"{"out":[{"t":"custom"}]}"#).unwrap();
        assert_eq!(token_text(&v, Some("out.0.t")).as_deref(), Some("custom"));
        let v: Value = serde_json::from_str(r#"{"usage":{"completion_tokens":7}}"#).unwrap();
        assert_eq!(reported_usage(&v).completion_tokens, Some(7));
    }

    proptest! {
        #[test]
        fn any_split_gives_the_same_events(cut in proptest::collection::vec(0usize..200, 0..8)) {
            let body = b"data: one\n\ndata: two\r\n\r\nevent: x\ndata: three\ndata: four\n\ndata: [DONE]\n\n";
            let whole = frame_all(&[body]);
            let mut cuts: Vec<usize> = cut.into_iter().map(|c| c % body.len()).collect();
            cuts.sort();
            let mut pieces = Vec::new();
            let mut last = 0;
            for c in cuts { pieces.push(&body[last..c]); last = c; }
            pieces.push(&body[last..]);
            prop_assert_eq!(frame_all(&pieces), whole);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = frame_all(&[&bytes]);
        }
    }

    #[test]
    fn an_event_that_never_ends_is_capped() {
        let mut f = Framer::default();
        let mut out = Vec::new();
        let line = format!("data: {}\n", "z".repeat(64 * 1024));
        for _ in 0..100 {
            f.push(line.as_bytes(), &mut out);
        }
        assert!(out.is_empty());
        f.push(b"\n", &mut out);
        assert_eq!(out.len(), 1);
        assert!(out[0].data.len() < MAX_EVENT_DATA_BYTES + 1024);
        assert!(out[0].data.ends_with("more bytes dropped]"), "marked");
    }
}

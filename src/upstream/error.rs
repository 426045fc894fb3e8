//! Why forwarding failed: the full story for our own log, and the safe
//! class and reason a caller may be told.

use std::time::Duration;

/// Why forwarding failed. The `Display` text is the full detail for our own
/// log (it names the backend); what a caller may see is
/// [`UpstreamError::public_message`].
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("invalid HTTP method {0:?}")]
    BadMethod(String),
    #[error("invalid header {0:?}")]
    BadHeader(String),
    #[error("invalid backend URL {url:?}: {message}")]
    BadUrl { url: String, message: String },
    #[error("backend {url} is unavailable: {message}")]
    Unavailable {
        url: String,
        message: String,
        reason: &'static str,
    },
    #[error("backend {url} timed out after {after:?}")]
    Timeout { url: String, after: Duration },
    #[error("backend {url} failed: {message}")]
    Failed {
        url: String,
        message: String,
        reason: &'static str,
    },
    #[error("backend response exceeds the limit of {limit} bytes")]
    TooLarge { limit: usize },
}

impl UpstreamError {
    /// What a caller is told: the error class and a safe reason. Never the
    /// backend's scheme, host, port, path or query (URLs carry credentials),
    /// nor the HTTP client's error chain; those stay in our own log.
    pub fn public_message(&self) -> String {
        match self {
            UpstreamError::BadMethod(_) => "invalid HTTP method".into(),
            // The name may come from the route's own headers: not the caller's business.
            UpstreamError::BadHeader(_) => "invalid request header".into(),
            UpstreamError::BadUrl { .. } => "backend misconfigured: invalid route URL".into(),
            UpstreamError::Unavailable { reason, .. } => format!("backend unavailable: {reason}"),
            UpstreamError::Timeout { after, .. } => {
                format!("backend timed out after {after:?}")
            }
            UpstreamError::Failed { reason, .. } => format!("backend failed: {reason}"),
            UpstreamError::TooLarge { limit } => {
                format!("backend response exceeds the limit of {limit} bytes")
            }
        }
    }
}

/// A reason for a failed backend request that is safe to tell a caller: the
/// kind of the underlying I/O error where there is one, else reqwest's class.
pub(super) fn safe_reason(e: &reqwest::Error) -> &'static str {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            match io.kind() {
                ConnectionRefused => return "connection refused",
                ConnectionReset => return "connection reset",
                ConnectionAborted => return "connection aborted",
                TimedOut => return "connect timed out",
                HostUnreachable | NetworkUnreachable => return "host unreachable",
                AddrNotAvailable => return "address not available",
                UnexpectedEof => return "connection closed early",
                _ => {}
            }
        }
        source = s.source();
    }
    let chain = error_chain(e).to_ascii_lowercase();
    if chain.contains("dns error") || chain.contains("failed to lookup") {
        "name resolution failed"
    } else if chain.contains("certificate") || chain.contains("tls") {
        "TLS handshake failed"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() {
        "response body interrupted"
    } else if e.is_decode() {
        "invalid response body"
    } else if e.is_request() {
        "request failed"
    } else {
        "HTTP error"
    }
}

/// `connect_timeout` is the configured one: reqwest reports its own timeout
/// only while connecting (the call's deadline is ours, outside reqwest).
pub(super) fn classify(url: &str, e: reqwest::Error, connect_timeout: Duration) -> UpstreamError {
    let message = error_chain(&e);
    let reason = safe_reason(&e);
    if e.is_timeout() {
        UpstreamError::Timeout {
            url: url.to_string(),
            after: connect_timeout,
        }
    } else if e.is_connect() {
        UpstreamError::Unavailable {
            url: url.to_string(),
            message,
            reason,
        }
    } else {
        UpstreamError::Failed {
            url: url.to_string(),
            message,
            reason,
        }
    }
}

/// reqwest's top-level message is vague ("error sending request"); the cause
/// chain says what actually happened (e.g. "Connection refused").
pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        source = s.source();
    }
    msg
}

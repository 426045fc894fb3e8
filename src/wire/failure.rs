//! One vocabulary for what went wrong with a call: each failure class with
//! its 2.0.0 wire code, its 1.0.0 text, the exit code `peerapi call` ends
//! with, its label in metrics, load runs and `--json`, and the console's
//! wording. Every layer asks this table; none keeps its own.

use serde::{Deserialize, Serialize};

use super::frame::Code;

/// What went wrong with a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Failure {
    // Found by the caller, before or instead of an answer.
    BadAddress,
    Dial,
    Unsupported,
    Stream,
    Timeout,
    ResponseTooLarge,
    OversizeRequest,
    Truncated,
    BadFrame,
    // Answered by the serving node (a wire code each).
    RouteNotFound,
    StreamNotSupported,
    MethodNotAllowed,
    Forbidden,
    BadRequest,
    RequestTooLarge,
    BackendUnavailable,
    BackendTimeout,
    BackendFailed,
    Overloaded,
    Internal,
}

/// How a failure reads in a 1.0.0 answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum V1Form {
    /// Found by the caller: nothing is written.
    NotWritten,
    /// Exactly this text (`Route not found`, `Forbidden`).
    Exact(&'static str),
    /// `Route does not support streaming: <route>`.
    NamesTheRoute,
    /// `Error processing request: <message>`; the words listed are what
    /// tells this class apart there (none: anything else in that form).
    Processing(Option<&'static str>),
}

/// One line of the table.
#[derive(Clone, Copy, Debug)]
pub struct Row {
    pub failure: Failure,
    pub code: Option<Code>,
    pub v1: V1Form,
    pub exit_code: u8,
    /// In metrics, load runs and `--json`.
    pub label: &'static str,
    /// In the console.
    pub wording: &'static str,
}

use super::v1::v1_text;
use Failure as F;

const fn row(
    failure: Failure,
    code: Option<Code>,
    v1: V1Form,
    exit_code: u8,
    label: &'static str,
    wording: &'static str,
) -> Row {
    Row {
        failure,
        code,
        v1,
        exit_code,
        label,
        wording,
    }
}

/// The table. Exit codes as `peerapi call --help` lists them: 3 bad
/// address, 4 dial, 5 protocol, 6 timeout, 7 refused, 8 stream, 9 response
/// too large, 10 forbidden, 11 overloaded, 12 backend failed.
#[rustfmt::skip]
pub const TABLE: [Row; 20] = [
    //  class                    wire code                           1.0.0 text                                         exit label                   console wording
    row(F::BadAddress,           None,                               V1Form::NotWritten,                                3,   "bad_address",          "bad address"),
    row(F::Dial,                 None,                               V1Form::NotWritten,                                4,   "dial",                 "could not connect"),
    row(F::Unsupported,          None,                               V1Form::NotWritten,                                5,   "unsupported",          "protocol not spoken"),
    row(F::Stream,               None,                               V1Form::NotWritten,                                8,   "stream",               "stream broke"),
    row(F::Timeout,              None,                               V1Form::NotWritten,                                6,   "timeout",              "timed out"),
    row(F::ResponseTooLarge,     None,                               V1Form::NotWritten,                                9,   "too_large",            "response too large"),
    row(F::OversizeRequest,      None,                               V1Form::NotWritten,                                7,   "oversize_request",     "request too large for a 1.0.0 peer"),
    row(F::Truncated,            None,                               V1Form::NotWritten,                                8,   "truncated",            "response cut short"),
    row(F::BadFrame,             None,                               V1Form::NotWritten,                                8,   "bad_frame",            "broken framing"),
    row(F::RouteNotFound,        Some(Code::RouteNotFound),          V1Form::Exact(v1_text::ROUTE_NOT_FOUND),           7,   "route_not_found",      "route not found"),
    row(F::StreamNotSupported,   Some(Code::StreamNotSupported),     V1Form::NamesTheRoute,                             7,   "stream_not_supported", "route does not stream"),
    row(F::MethodNotAllowed,     Some(Code::MethodNotAllowed),       V1Form::Processing(Some(v1_text::NOT_ALLOWED)),    7,   "method_not_allowed",   "method not allowed"),
    row(F::Forbidden,            Some(Code::Forbidden),              V1Form::Exact(v1_text::FORBIDDEN),                 10,  "forbidden",            "forbidden"),
    row(F::BadRequest,           Some(Code::BadRequest),             V1Form::Processing(None),                          7,   "bad_request",          "bad request"),
    row(F::RequestTooLarge,      Some(Code::TooLarge),               V1Form::Processing(Some(v1_text::EXCEEDS_LIMIT)),  7,   "request_too_large",    "request too large"),
    row(F::BackendUnavailable,   Some(Code::UpstreamUnavailable),    V1Form::Processing(None),                          12,  "backend_unavailable",  "backend unreachable"),
    row(F::BackendTimeout,       Some(Code::UpstreamTimeout),        V1Form::Processing(None),                          12,  "backend_timeout",      "backend timed out"),
    row(F::BackendFailed,        Some(Code::UpstreamFailed),         V1Form::Processing(None),                          12,  "backend_failed",       "backend failed"),
    row(F::Overloaded,           Some(Code::Overloaded),             V1Form::Processing(Some(v1_text::OVERLOADED)),     11,  "overloaded",           "node overloaded"),
    row(F::Internal,             Some(Code::Internal),               V1Form::Processing(None),                          12,  "internal",             "internal error"),
];

impl Failure {
    pub fn row(self) -> &'static Row {
        // The table lists the classes in declaration order (a unit test
        // holds it to that).
        &TABLE[self as usize]
    }

    /// The class a 2.0.0 error code names.
    pub fn of_code(code: Code) -> Failure {
        TABLE
            .iter()
            .find(|r| r.code == Some(code))
            .map_or(Failure::Internal, |r| r.failure)
    }

    pub fn code(self) -> Option<Code> {
        self.row().code
    }

    pub fn exit_code(self) -> u8 {
        self.row().exit_code
    }

    pub fn label(self) -> &'static str {
        self.row().label
    }

    pub fn wording(self) -> &'static str {
        self.row().wording
    }

    /// The serving node's backend is at fault (not the caller's request).
    pub fn is_backend(self) -> bool {
        matches!(
            self,
            F::BackendUnavailable | F::BackendTimeout | F::BackendFailed | F::Internal
        )
    }

    /// What a 1.0.0 server writes for this class: `route` for the
    /// streaming refusal, `message` after `Error processing request: `.
    pub fn v1_text(self, route: &str, message: &str) -> String {
        match self.row().v1 {
            V1Form::Exact(text) => text.to_string(),
            V1Form::NamesTheRoute => v1_text::stream_not_supported(route),
            V1Form::Processing(_) | V1Form::NotWritten => v1_text::error(message),
        }
    }

    /// The class of what follows `Error processing request: ` in a 1.0.0
    /// answer: peerapi's own refusals by their words, the rest the backend's.
    pub fn of_v1_processing(message: &str) -> Failure {
        // "exceed the limit": the header limit's words before 0.1.x nodes
        // wrote them through `exceeds_limit`.
        if message.contains("exceed the limit") {
            return F::RequestTooLarge;
        }
        TABLE
            .iter()
            .find(|r| match r.v1 {
                // The overload words open the message; the others sit inside.
                V1Form::Processing(Some(words)) if r.failure == F::Overloaded => {
                    message.starts_with(words)
                }
                V1Form::Processing(Some(words)) => message.contains(words),
                _ => false,
            })
            .map_or(F::BackendFailed, |r| r.failure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_declaration_order_and_each_code_has_one_class() {
        for (i, row) in TABLE.iter().enumerate() {
            assert_eq!(row.failure as usize, i, "{:?}", row.failure);
        }
        for code in (0..=10).filter_map(|n| Code::try_from(n).ok()) {
            let class = Failure::of_code(code);
            assert_eq!(class.code(), Some(code));
        }
        let mut labels: Vec<_> = TABLE.iter().map(|r| r.label).collect();
        labels.sort();
        labels.dedup();
        assert_eq!(labels.len(), TABLE.len(), "labels are distinct");
    }

    #[test]
    fn each_class_a_server_writes_in_1_0_0_is_read_back_as_itself() {
        for row in TABLE.iter().filter(|r| r.code.is_some()) {
            let message = match row.failure {
                F::Overloaded => v1_text::overloaded("256 calls in flight"),
                F::MethodNotAllowed => v1_text::method_not_allowed("DELETE", "r", "GET"),
                F::RequestTooLarge => v1_text::exceeds_limit("the body", "1 MiB"),
                _ => "anything".to_string(),
            };
            let text = row.failure.v1_text("r", &message);
            let read = match super::super::v1::classify_v1_body(text.as_bytes()) {
                Some(t) => t.failure(),
                None => panic!("{text:?} is not read as an error"),
            };
            // 1.0.0 cannot tell the backend's classes apart.
            let expected = if row.failure.is_backend() || row.failure == F::BadRequest {
                F::BackendFailed
            } else {
                row.failure
            };
            assert_eq!(read, expected, "{text:?}");
        }
    }
}

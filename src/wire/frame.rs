//! `/peerapi/api/2.0.0` response frames: head, data, end, or error, each
//! varint-length-prefixed.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};

/// Largest body chunk carried by one data frame.
pub const MAX_DATA_FRAME_BYTES: usize = 1024 * 1024;
/// Default cap on one received frame (a full data frame plus its envelope).
pub const DEFAULT_MAX_FRAME_BYTES: usize = MAX_DATA_FRAME_BYTES + 64 * 1024;

/// Typed failures of a 2.0.0 call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum Code {
    Internal = 0,
    RouteNotFound = 1,
    StreamNotSupported = 2,
    MethodNotAllowed = 3,
    Forbidden = 4,
    BadRequest = 5,
    TooLarge = 6,
    UpstreamUnavailable = 7,
    UpstreamTimeout = 8,
    UpstreamFailed = 9,
    Overloaded = 10,
}

impl Code {
    pub fn name(self) -> &'static str {
        match self {
            Code::Internal => "INTERNAL",
            Code::RouteNotFound => "ROUTE_NOT_FOUND",
            Code::StreamNotSupported => "STREAM_NOT_SUPPORTED",
            Code::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Code::Forbidden => "FORBIDDEN",
            Code::BadRequest => "BAD_REQUEST",
            Code::TooLarge => "TOO_LARGE",
            Code::UpstreamUnavailable => "UPSTREAM_UNAVAILABLE",
            Code::UpstreamTimeout => "UPSTREAM_TIMEOUT",
            Code::UpstreamFailed => "UPSTREAM_FAILED",
            Code::Overloaded => "OVERLOADED",
        }
    }

    /// Unknown numbers (a newer peer) read as INTERNAL.
    pub fn from_wire(v: i32) -> Code {
        Code::try_from(v).unwrap_or(Code::Internal)
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Head {
    #[prost(uint32, tag = "1")]
    pub status: u32,
    #[prost(map = "string, string", tag = "2")]
    pub headers: HashMap<String, String>,
    /// The serving node's timings up to the head (optional: older peers
    /// neither send nor read it).
    #[prost(message, optional, tag = "3")]
    pub timing: Option<ServerTiming>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct End {
    #[prost(uint64, tag = "1")]
    pub body_bytes: u64,
    /// The serving node's timings for the whole call (optional).
    #[prost(message, optional, tag = "2")]
    pub timing: Option<ServerTiming>,
}

/// Where the serving node's time went, in microseconds: reading the
/// request after the stream opened, taking a call slot, the backend's
/// response head, and its body after the head.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message, serde::Serialize, serde::Deserialize)]
pub struct ServerTiming {
    #[prost(uint64, tag = "1")]
    pub read_us: u64,
    #[prost(uint64, tag = "2")]
    pub queue_us: u64,
    #[prost(uint64, tag = "3")]
    pub backend_head_us: u64,
    #[prost(uint64, tag = "4")]
    pub backend_body_us: u64,
}

impl ServerTiming {
    /// The node's own time from the whole request to its head: queue and
    /// backend head. (Reading overlaps the caller's own steps: a stream is
    /// accepted before the caller knows it is open.)
    pub fn until_head(&self) -> std::time::Duration {
        std::time::Duration::from_micros(self.queue_us.saturating_add(self.backend_head_us))
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ErrorFrame {
    #[prost(enumeration = "Code", tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Kind {
    #[prost(message, tag = "1")]
    Head(Head),
    #[prost(bytes = "bytes", tag = "2")]
    Data(Bytes),
    #[prost(message, tag = "3")]
    End(End),
    #[prost(message, tag = "4")]
    Error(ErrorFrame),
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ApiResponseFrame {
    #[prost(oneof = "Kind", tags = "1, 2, 3, 4")]
    pub kind: Option<Kind>,
}

impl ApiResponseFrame {
    pub fn head(status: u16, headers: HashMap<String, String>) -> Self {
        Self::head_timed(status, headers, None)
    }

    pub fn head_timed(
        status: u16,
        headers: HashMap<String, String>,
        timing: Option<ServerTiming>,
    ) -> Self {
        Self {
            kind: Some(Kind::Head(Head {
                status: u32::from(status),
                headers,
                timing,
            })),
        }
    }

    pub fn data(bytes: Bytes) -> Self {
        Self {
            kind: Some(Kind::Data(bytes)),
        }
    }

    pub fn end(body_bytes: u64) -> Self {
        Self::end_timed(body_bytes, None)
    }

    pub fn end_timed(body_bytes: u64, timing: Option<ServerTiming>) -> Self {
        Self {
            kind: Some(Kind::End(End { body_bytes, timing })),
        }
    }

    pub fn error(code: Code, message: impl Into<String>) -> Self {
        Self {
            kind: Some(Kind::Error(ErrorFrame {
                code: code as i32,
                message: message.into(),
            })),
        }
    }
}

/// Appends `frame`, length-prefixed, to `buf`.
pub fn encode_frame(frame: &ApiResponseFrame, buf: &mut BytesMut) {
    use prost::Message;
    let len = frame.encoded_len();
    buf.reserve(len + super::MAX_VARINT_BYTES);
    super::encode_varint(len as u64, buf);
    frame
        .encode(buf)
        .expect("buffer was reserved for the encoded length");
}

/// Appends the header of a data frame carrying `len` body bytes: exactly
/// what [`encode_frame`] writes for [`ApiResponseFrame::data`] up to the
/// bytes themselves, so a writer can send large chunks without copying them.
pub fn encode_data_header(len: usize, buf: &mut BytesMut) {
    use bytes::BufMut;
    // Field 2 (`data`), wire type 2 (length-delimited).
    const DATA_KEY: u8 = (2 << 3) | 2;
    let message_len = 1 + prost::encoding::encoded_len_varint(len as u64) + len;
    super::encode_varint(message_len as u64, buf);
    buf.put_u8(DATA_KEY);
    super::encode_varint(len as u64, buf);
}

/// Appends `body` as data frames of at most [`MAX_DATA_FRAME_BYTES`].
pub fn encode_data(body: &Bytes, buf: &mut BytesMut) {
    let mut offset = 0;
    while offset < body.len() {
        let end = (offset + MAX_DATA_FRAME_BYTES).min(body.len());
        encode_frame(&ApiResponseFrame::data(body.slice(offset..end)), buf);
        offset = end;
    }
}

#[cfg(test)]
mod header_tests {
    use super::*;

    #[test]
    fn data_header_plus_bytes_is_the_encoded_frame() {
        for len in [0usize, 1, 5, 127, 128, 300, 16_383, 16_384, 1 << 20] {
            let body = Bytes::from(vec![7u8; len]);
            let mut whole = BytesMut::new();
            encode_frame(&ApiResponseFrame::data(body.clone()), &mut whole);
            let mut gathered = BytesMut::new();
            encode_data_header(len, &mut gathered);
            gathered.extend_from_slice(&body);
            assert_eq!(gathered, whole, "length {len}");
        }
    }
}

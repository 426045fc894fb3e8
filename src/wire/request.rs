//! `api_protocol.pb.ApiProtocolMessage`, hand-derived with prost (no protoc needed).

use std::collections::HashMap;

use bytes::Bytes;

/// Whether the caller wants the whole body or chunks as they arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ResponseType {
    Unary = 0,
    Stream = 1,
}

/// The request a caller writes once, varint-prefixed, at the start of a stream.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ApiRequest {
    /// Key into the serving node's route table.
    #[prost(string, tag = "1")]
    pub route: String,
    /// HTTP method, e.g. "GET", "POST". Empty means GET.
    #[prost(string, tag = "2")]
    pub method: String,
    /// Forwarded as HTTP headers.
    #[prost(map = "string, string", tag = "3")]
    pub headers: HashMap<String, String>,
    /// Forwarded as the HTTP body (empty = none).
    #[prost(bytes = "bytes", tag = "4")]
    pub body: Bytes,
    #[prost(enumeration = "ResponseType", tag = "5")]
    pub response_type: i32,
    /// 2.0.0 only: the caller's deadline in ms (0 = server default). 1.0.0
    /// servers ignore unknown fields.
    #[prost(uint32, tag = "6")]
    pub timeout_ms: u32,
}

impl ApiRequest {
    /// Whether the caller asked for a streamed response. Unknown values are
    /// treated as unary, as proto3 enums decode them.
    pub fn is_stream(&self) -> bool {
        self.response_type == ResponseType::Stream as i32
    }

    /// The method, defaulting to GET when empty.
    pub fn method_or_default(&self) -> &str {
        if self.method.is_empty() {
            "GET"
        } else {
            &self.method
        }
    }
}

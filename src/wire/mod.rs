//! Bytes on the wire: the request message, the unsigned-varint length prefix,
//! and the 1.0.0 response texts. Everything here is generic over
//! `AsyncRead`/`AsyncWrite`, so it is tested without a swarm.

pub mod failure;
pub mod frame;
mod listing;
mod request;
mod varint;

pub use failure::Failure;
pub use listing::{RouteInfo, RouteList};
pub use request::{ApiRequest, ResponseType};
pub use varint::{encode_varint, MAX_VARINT_BYTES};

use bytes::{Bytes, BytesMut};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use prost::Message;

/// Protocol id of the compatibility protocol spoken by the Python subnet nodes.
pub const PROTOCOL_V1: &str = "/subnet/api_protocol/1.0.0";

/// Protocol id of our framed protocol: status, headers, typed errors, an
/// explicit end, cancellation.
pub const PROTOCOL_V2: &str = "/peerapi/api/2.0.0";

/// Protocol id of the route listing: names and stream flags, never URLs.
pub const PROTOCOL_ROUTES: &str = "/peerapi/routes/1.0.0";

/// Largest route listing a caller accepts.
pub const MAX_ROUTE_LIST_BYTES: usize = 1024 * 1024;

/// Default cap on a request message (varint-declared length).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// The 1.0.0 in-band error texts, exactly as the Python nodes send them.
pub mod v1;
pub use v1::v1_text;

/// What can go wrong reading or writing a message.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("stream closed before a request arrived")]
    Empty,
    #[error("stream closed inside a message (read {got} of {expected} bytes)")]
    Truncated { got: usize, expected: usize },
    #[error(
        "length prefix is not a valid unsigned varint (over {MAX_VARINT_BYTES} bytes or overflow)"
    )]
    BadVarint,
    #[error("message of {declared} bytes exceeds the limit of {limit} bytes")]
    TooLarge { declared: u64, limit: usize },
    #[error("invalid protobuf message: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Encodes `msg` as `varint(len) || msg` in one buffer, so it goes out in a
/// single write (a Python server reads the request with a single read).
pub fn encode_length_prefixed<M: Message>(msg: &M) -> Bytes {
    let len = msg.encoded_len();
    let mut buf = BytesMut::with_capacity(len + MAX_VARINT_BYTES);
    encode_varint(len as u64, &mut buf);
    // Encoding into a buffer with enough capacity cannot fail.
    msg.encode(&mut buf)
        .expect("buffer was reserved for the encoded length");
    buf.freeze()
}

/// `varint(len) || payload` in one buffer (the framing of the subnet's
/// JSON request-response protocols too).
pub fn encode_bytes_prefixed(payload: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(payload.len() + MAX_VARINT_BYTES);
    encode_varint(payload.len() as u64, &mut buf);
    buf.extend_from_slice(payload);
    buf.freeze()
}

/// Reads one varint length prefix. `Ok(None)` means a clean EOF before any byte.
pub async fn read_varint<R: AsyncRead + Unpin>(io: &mut R) -> Result<Option<u64>, WireError> {
    let mut decoder = varint::Decoder::default();
    let mut byte = [0u8; 1];
    loop {
        let n = io.read(&mut byte).await?;
        if n == 0 {
            return if decoder.is_empty() {
                Ok(None)
            } else {
                Err(WireError::Truncated {
                    got: decoder.len(),
                    expected: decoder.len() + 1,
                })
            };
        }
        match decoder.push(byte[0]) {
            varint::Step::More => {}
            varint::Step::Done(v) => return Ok(Some(v)),
            varint::Step::Invalid => return Err(WireError::BadVarint),
        }
    }
}

/// What a length-prefixed read reserves before any payload has arrived.
const INITIAL_READ_BUFFER: usize = 16 * 1024;

/// Reads one length-prefixed payload of at most `limit` bytes.
pub async fn read_length_prefixed<R: AsyncRead + Unpin>(
    io: &mut R,
    limit: usize,
) -> Result<Bytes, WireError> {
    let declared = read_varint(io).await?.ok_or(WireError::Empty)?;
    if declared > limit as u64 {
        return Err(WireError::TooLarge { declared, limit });
    }
    let expected = declared as usize;
    // The buffer grows with the bytes that arrive, not with the declared
    // length: silent streams declaring the cap each reserve nothing.
    let mut buf = Vec::with_capacity(expected.min(INITIAL_READ_BUFFER));
    io.take(declared).read_to_end(&mut buf).await?;
    if buf.len() < expected {
        return Err(WireError::Truncated {
            got: buf.len(),
            expected,
        });
    }
    Ok(Bytes::from(buf))
}

/// Reads one 2.0.0 response frame. `Ok(None)` is a clean EOF between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(
    io: &mut R,
    limit: usize,
) -> Result<Option<frame::ApiResponseFrame>, WireError> {
    match read_length_prefixed(io, limit).await {
        Ok(payload) => Ok(Some(frame::ApiResponseFrame::decode(payload)?)),
        Err(WireError::Empty) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads and decodes one request with a size cap.
pub async fn read_request<R: AsyncRead + Unpin>(
    io: &mut R,
    limit: usize,
) -> Result<ApiRequest, WireError> {
    let payload = read_length_prefixed(io, limit).await?;
    Ok(ApiRequest::decode(payload)?)
}

/// Writes one request as a single write and flushes it.
pub async fn write_request<W: AsyncWrite + Unpin>(
    io: &mut W,
    req: &ApiRequest,
) -> Result<(), WireError> {
    io.write_all(&encode_length_prefixed(req)).await?;
    io.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests;

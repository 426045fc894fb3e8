//! The response codec of the calling side: the request written once, 2.0.0
//! frames read up to the head and then frame by frame, 1.0.0 bytes read
//! whole or as they arrive.

use bytes::Bytes;
use libp2p::PeerId;

use crate::protocol::call::types::{ApiVersion, CallError, ResponseHead};
use crate::wire::frame::{self, Code};
use crate::wire::{self, ApiRequest};

/// Most bytes one read of a 1.0.0 stream takes.
const V1_READ_BYTES: usize = 64 * 1024;

/// A whole 1.0.0 response: every byte up to the close, at most `limit`.
pub(in crate::protocol) async fn read_v1_whole<R: futures::AsyncRead + Unpin>(
    io: &mut R,
    peer: PeerId,
    limit: usize,
) -> Result<Bytes, CallError> {
    use futures::AsyncReadExt;
    let mut body = Vec::new();
    io.take((limit as u64).saturating_add(1))
        .read_to_end(&mut body)
        .await
        .map_err(|e| CallError::Stream {
            peer,
            message: e.to_string(),
        })?;
    if body.len() > limit {
        return Err(CallError::TooLarge { limit });
    }
    Ok(Bytes::from(body))
}

/// The next bytes of a 1.0.0 stream as they arrived (`None`: closed),
/// waiting at most `idle` for them.
pub(in crate::protocol) async fn read_v1_chunk<R: futures::AsyncRead + Unpin>(
    io: &mut R,
    peer: PeerId,
    idle: std::time::Duration,
) -> Result<Option<Bytes>, CallError> {
    use futures::AsyncReadExt;
    let mut buf = bytes::BytesMut::zeroed(V1_READ_BYTES);
    match tokio::time::timeout(idle, io.read(&mut buf)).await {
        Ok(Ok(0)) => Ok(None),
        Ok(Ok(n)) => {
            buf.truncate(n);
            Ok(Some(buf.freeze()))
        }
        Ok(Err(e)) => Err(CallError::Stream {
            peer,
            message: e.to_string(),
        }),
        Err(_) => Err(CallError::Timeout { after: idle }),
    }
}

/// 1.0.0 requests carry fields 1-5 only, byte for byte as the Python
/// callers send them: the deadline (field 6) is ours, in 2.0.0.
pub(in crate::protocol) fn for_version(req: &mut ApiRequest, version: ApiVersion) {
    if version == ApiVersion::V1 {
        req.timeout_ms = 0;
    }
}

pub(in crate::protocol) fn frame_error(peer: PeerId, e: wire::WireError) -> CallError {
    match e {
        wire::WireError::Io(e) => CallError::Stream {
            peer,
            message: e.to_string(),
        },
        other => CallError::BadFrame(other.to_string()),
    }
}

/// Reads 2.0.0 frames up to and including the head (or an error frame).
pub(in crate::protocol) async fn read_head<R: futures::AsyncRead + Unpin>(
    io: &mut R,
    peer: PeerId,
    max_frame: usize,
) -> Result<ResponseHead, CallError> {
    match wire::read_frame(io, max_frame)
        .await
        .map_err(|e| frame_error(peer, e))?
    {
        None => Err(CallError::Truncated { received: 0 }),
        Some(f) => match f.kind {
            Some(frame::Kind::Head(h)) => Ok(ResponseHead {
                version: ApiVersion::V2,
                status: u16::try_from(h.status).ok(),
                headers: h.headers,
                server_timing: h.timing,
                timeline: Default::default(),
            }),
            Some(frame::Kind::Error(e)) => Err(CallError::Remote {
                code: Code::from_wire(e.code),
                message: e.message,
            }),
            _ => Err(CallError::BadFrame(
                "the first frame was neither head nor error".into(),
            )),
        },
    }
}

/// What one body frame of 2.0.0 means to the reader.
pub(in crate::protocol) enum BodyFrame {
    Data(Bytes),
    /// With the serving node's final timings, when it sends them.
    End(Option<frame::ServerTiming>),
}

pub(in crate::protocol) async fn read_body_frame<R: futures::AsyncRead + Unpin>(
    io: &mut R,
    peer: PeerId,
    max_frame: usize,
    received: u64,
) -> Result<BodyFrame, CallError> {
    match wire::read_frame(io, max_frame)
        .await
        .map_err(|e| frame_error(peer, e))?
    {
        None => Err(CallError::Truncated { received }),
        Some(f) => match f.kind {
            Some(frame::Kind::Data(d)) => Ok(BodyFrame::Data(d)),
            Some(frame::Kind::End(end)) if end.body_bytes == received => {
                Ok(BodyFrame::End(end.timing))
            }
            Some(frame::Kind::End(end)) => Err(CallError::BadFrame(format!(
                "end frame says {} body bytes, {received} arrived",
                end.body_bytes
            ))),
            Some(frame::Kind::Error(e)) => Err(CallError::Remote {
                code: Code::from_wire(e.code),
                message: e.message,
            }),
            Some(frame::Kind::Head(_)) | None => {
                Err(CallError::BadFrame("unexpected frame in the body".into()))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use bytes::BytesMut;

    use super::*;
    use crate::wire::frame::{encode_frame, ApiResponseFrame};

    fn frames(list: &[ApiResponseFrame]) -> Vec<u8> {
        let mut buf = BytesMut::new();
        for f in list {
            encode_frame(f, &mut buf);
        }
        buf.to_vec()
    }

    /// Reads a whole 2.0.0 response from `bytes`.
    fn read_all(bytes: Vec<u8>) -> Result<(ResponseHead, Vec<u8>), CallError> {
        futures::executor::block_on(async {
            let peer = PeerId::random();
            let mut io = futures::io::Cursor::new(bytes);
            let head = read_head(&mut io, peer, 1 << 20).await?;
            let mut body = Vec::new();
            while let BodyFrame::Data(d) =
                read_body_frame(&mut io, peer, 1 << 20, body.len() as u64).await?
            {
                body.extend_from_slice(&d);
            }
            Ok((head, body))
        })
    }

    #[test]
    fn a_whole_response_reads_back() {
        let mut headers = HashMap::new();
        headers.insert("x".to_string(), "y".to_string());
        let bytes = frames(&[
            ApiResponseFrame::head(201, headers),
            ApiResponseFrame::data(Bytes::from_static(b"ab")),
            ApiResponseFrame::data(Bytes::from_static(b"c")),
            ApiResponseFrame::end(3),
        ]);
        let (head, body) = read_all(bytes).unwrap();
        assert_eq!(head.status, Some(201));
        assert_eq!(head.headers["x"], "y");
        assert_eq!(body, b"abc");
    }

    #[test]
    fn every_cut_of_a_response_is_a_truncation_never_a_success() {
        let bytes = frames(&[
            ApiResponseFrame::head(200, HashMap::new()),
            ApiResponseFrame::data(Bytes::from_static(b"hello")),
            ApiResponseFrame::end(5),
        ]);
        for cut in 0..bytes.len() {
            let got = read_all(bytes[..cut].to_vec());
            assert!(got.is_err(), "a response cut at {cut} read as complete");
        }
    }

    #[test]
    fn errors_and_lies_are_told_apart() {
        let err = read_all(frames(&[ApiResponseFrame::error(
            Code::RouteNotFound,
            "no route",
        )]))
        .unwrap_err();
        assert!(
            matches!(
                err,
                CallError::Remote {
                    code: Code::RouteNotFound,
                    ..
                }
            ),
            "{err}"
        );
        let lie = read_all(frames(&[
            ApiResponseFrame::head(200, HashMap::new()),
            ApiResponseFrame::data(Bytes::from_static(b"hi")),
            ApiResponseFrame::end(7),
        ]))
        .unwrap_err();
        assert!(matches!(lie, CallError::BadFrame(_)), "{lie}");
        let body_first =
            read_all(frames(&[ApiResponseFrame::data(Bytes::from_static(b"x"))])).unwrap_err();
        assert!(matches!(body_first, CallError::BadFrame(_)), "{body_first}");
    }
}

#[cfg(test)]
mod v1_tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_whole_1_0_0_response_is_every_byte_up_to_its_limit() {
        let peer = PeerId::random();
        let mut io = futures::io::Cursor::new(b"hello".to_vec());
        let body = read_v1_whole(&mut io, peer, 5).await.unwrap();
        assert_eq!(&body[..], b"hello");
        let mut io = futures::io::Cursor::new(b"hello!".to_vec());
        let err = read_v1_whole(&mut io, peer, 5).await.unwrap_err();
        assert!(matches!(err, CallError::TooLarge { limit: 5 }), "{err}");
    }

    #[tokio::test]
    async fn a_1_0_0_stream_is_read_as_it_comes_until_it_closes() {
        let peer = PeerId::random();
        let mut io = futures::io::Cursor::new(b"data: a\n\n".to_vec());
        let idle = Duration::from_secs(5);
        let first = read_v1_chunk(&mut io, peer, idle).await.unwrap();
        assert_eq!(first.as_deref(), Some(&b"data: a\n\n"[..]));
        assert_eq!(read_v1_chunk(&mut io, peer, idle).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_silent_1_0_0_stream_times_out_after_its_idle_limit() {
        let peer = PeerId::random();
        let (_keep, mut silent) = tokio::io::duplex(64);
        let mut silent = tokio_util::compat::TokioAsyncReadCompatExt::compat(&mut silent);
        let idle = Duration::from_millis(20);
        let err = read_v1_chunk(&mut silent, peer, idle).await.unwrap_err();
        assert!(matches!(err, CallError::Timeout { .. }), "{err}");
    }
}

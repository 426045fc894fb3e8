//! The response codec of the calling side: the request written once, 2.0.0
//! frames read up to the head and then frame by frame.

use bytes::Bytes;
use libp2p::PeerId;

use super::types::{ApiVersion, CallError, ResponseHead};
use crate::wire::frame::{self, Code};
use crate::wire::{self, ApiRequest};

/// 1.0.0 requests carry fields 1-5 only, byte for byte as the Python
/// callers send them: the deadline (field 6) is ours, in 2.0.0.
pub(super) fn for_version(req: &mut ApiRequest, version: ApiVersion) {
    if version == ApiVersion::V1 {
        req.timeout_ms = 0;
    }
}

pub(super) fn frame_error(peer: PeerId, e: wire::WireError) -> CallError {
    match e {
        wire::WireError::Io(e) => CallError::Stream {
            peer,
            message: e.to_string(),
        },
        other => CallError::BadFrame(other.to_string()),
    }
}

/// Reads 2.0.0 frames up to and including the head (or an error frame).
pub(super) async fn read_head<R: futures::AsyncRead + Unpin>(
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
pub(super) enum BodyFrame {
    Data(Bytes),
    /// With the serving node's final timings, when it sends them.
    End(Option<frame::ServerTiming>),
}

pub(super) async fn read_body_frame<R: futures::AsyncRead + Unpin>(
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

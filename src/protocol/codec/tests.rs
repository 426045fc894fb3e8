//! Both halves of the codec against each other: what the serving side
//! writes, the calling side reads back as it was meant, in both versions.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use libp2p::PeerId;

use super::read::{read_body_frame, read_head, read_v1_whole, BodyFrame};
use super::write::{Refusal, Responder};
use crate::protocol::call::types::CallError;
use crate::wire::frame::{Code, ServerTiming, DEFAULT_MAX_FRAME_BYTES, MAX_DATA_FRAME_BYTES};
use crate::wire::v1::{classify_v1_body, v1_text};
use crate::wire::Failure;

fn responder(v2: bool) -> Responder<Vec<u8>> {
    Responder {
        io: Vec::new(),
        v2,
        write_timeout: Duration::from_secs(5),
        body_bytes: 0,
        timing: ServerTiming {
            read_us: 11,
            queue_us: 22,
            backend_head_us: 33,
            backend_body_us: 44,
        },
        metrics: None,
    }
}

/// Reads a whole 2.0.0 answer: its head, its body, and the end's timing.
async fn read_v2(
    bytes: &[u8],
) -> Result<
    (
        crate::protocol::call::types::ResponseHead,
        Vec<u8>,
        Option<ServerTiming>,
    ),
    CallError,
> {
    let mut io = bytes;
    let peer = PeerId::random();
    let head = read_head(&mut io, peer, DEFAULT_MAX_FRAME_BYTES).await?;
    let mut body = Vec::new();
    loop {
        match read_body_frame(&mut io, peer, DEFAULT_MAX_FRAME_BYTES, body.len() as u64).await? {
            BodyFrame::Data(d) => body.extend_from_slice(&d),
            BodyFrame::End(timing) => return Ok((head, body, timing)),
        }
    }
}

#[tokio::test]
async fn a_unary_answer_in_2_0_0_reads_back_with_its_status_headers_body_and_timing() {
    let mut out = responder(true);
    let headers = HashMap::from([("content-type".to_string(), "application/json".to_string())]);
    out.unary(201, headers.clone(), Bytes::from_static(b"{\"ok\":true}"))
        .await
        .unwrap();
    let (head, body, timing) = read_v2(&out.io).await.unwrap();
    assert_eq!(head.status, Some(201));
    assert_eq!(head.headers, headers);
    assert_eq!(head.server_timing.map(|t| t.backend_head_us), Some(33));
    assert_eq!(body, b"{\"ok\":true}");
    assert_eq!(timing.map(|t| t.backend_body_us), Some(44));
}

#[tokio::test]
async fn a_stream_of_small_and_oversized_chunks_reads_back_byte_for_byte() {
    let mut out = responder(true);
    out.head(200, HashMap::new()).await.unwrap();
    let tokens: Vec<Bytes> = (0..300).map(|i| Bytes::from(format!("tok{i} "))).collect();
    out.data(&tokens).await.unwrap();
    // Larger than one data frame may carry: split on the way out.
    let big = Bytes::from(vec![7u8; MAX_DATA_FRAME_BYTES * 2 + 5]);
    out.data(std::slice::from_ref(&big)).await.unwrap();
    out.end().await.unwrap();

    let (head, body, timing) = read_v2(&out.io).await.unwrap();
    let mut expected: Vec<u8> = tokens.iter().flat_map(|t| t.to_vec()).collect();
    expected.extend_from_slice(&big);
    assert_eq!(head.status, Some(200));
    assert_eq!(body.len(), expected.len());
    assert!(body == expected, "the body came back changed");
    assert!(timing.is_some());
}

#[tokio::test]
async fn a_refusal_in_2_0_0_reads_back_as_the_remote_error_with_its_code() {
    let mut out = responder(true);
    out.refuse(&Refusal::new(
        Code::RouteNotFound,
        "chat",
        "no route named chat",
    ))
    .await
    .unwrap();
    match read_v2(&out.io).await {
        Err(CallError::Remote { code, message }) => {
            assert_eq!(code, Code::RouteNotFound);
            assert_eq!(message, "no route named chat");
        }
        other => panic!("expected a remote error, got {other:?}"),
    }
}

#[tokio::test]
async fn an_end_that_disagrees_with_the_bytes_sent_is_a_bad_frame() {
    let mut out = responder(true);
    out.head(200, HashMap::new()).await.unwrap();
    out.data(&[Bytes::from_static(b"abc")]).await.unwrap();
    out.body_bytes = 99; // as if bytes had been lost on the way
    out.end().await.unwrap();
    assert!(matches!(
        read_v2(&out.io).await,
        Err(CallError::BadFrame(_))
    ));
}

#[tokio::test]
async fn a_1_0_0_answer_is_the_raw_body_and_a_refusal_is_its_one_text() {
    let peer = PeerId::random();
    let mut out = responder(false);
    out.unary(200, HashMap::new(), Bytes::from_static(b"plain body"))
        .await
        .unwrap();
    let body = read_v1_whole(&mut out.io.as_slice(), peer, 1024)
        .await
        .unwrap();
    assert_eq!(&body[..], b"plain body");
    assert!(classify_v1_body(&body).is_none());

    // Every refusal a server writes in 1.0.0 is read back as its own class
    // by the one detector, except the backend's, which 1.0.0 cannot tell apart.
    // The serving side words its own refusals through `v1_text`.
    for (code, failure, message) in [
        (Code::RouteNotFound, Failure::RouteNotFound, String::new()),
        (
            Code::StreamNotSupported,
            Failure::StreamNotSupported,
            String::new(),
        ),
        (
            Code::Overloaded,
            Failure::Overloaded,
            v1_text::overloaded("4 calls in flight"),
        ),
        (
            Code::MethodNotAllowed,
            Failure::MethodNotAllowed,
            v1_text::method_not_allowed("PUT", "chat", "POST"),
        ),
        (
            Code::TooLarge,
            Failure::RequestTooLarge,
            v1_text::exceeds_limit("the request", "1 MiB"),
        ),
    ] {
        let mut out = responder(false);
        out.refuse(&Refusal::new(code, "chat", message))
            .await
            .unwrap();
        let body = read_v1_whole(&mut out.io.as_slice(), peer, 1024)
            .await
            .unwrap();
        let read = classify_v1_body(&body).map(|t| t.failure());
        assert_eq!(read, Some(failure), "{code:?} came back as {read:?}");
    }
}

#[tokio::test]
async fn a_1_0_0_answer_over_the_limit_is_refused_not_cut() {
    let mut out = responder(false);
    out.unary(200, HashMap::new(), Bytes::from(vec![1u8; 2048]))
        .await
        .unwrap();
    let read = read_v1_whole(&mut out.io.as_slice(), PeerId::random(), 1024).await;
    assert!(matches!(read, Err(CallError::TooLarge { limit: 1024 })));
}

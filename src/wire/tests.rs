use super::*;
use futures::io::Cursor;
use proptest::prelude::*;

fn sample() -> ApiRequest {
    ApiRequest {
        route: "inference".into(),
        method: "POST".into(),
        headers: [("content-type".to_string(), "application/json".to_string())].into(),
        body: Bytes::from_static(b"{\"prompt\":\"hi\"}"),
        response_type: ResponseType::Stream as i32,
        timeout_ms: 0,
    }
}

#[tokio::test]
async fn request_round_trips() {
    let bytes = encode_length_prefixed(&sample());
    let got = read_request(&mut Cursor::new(bytes.to_vec()), 1024)
        .await
        .unwrap();
    assert_eq!(got, sample());
}

#[test]
fn matches_python_encoding_of_a_minimal_request() {
    // route="health", method="GET", unary: fields 1 and 2 only.
    let req = ApiRequest {
        route: "health".into(),
        method: "GET".into(),
        ..Default::default()
    };
    let bytes = encode_length_prefixed(&req);
    assert_eq!(&bytes[..], b"\x0d\x0a\x06health\x12\x03GET");
}

#[tokio::test]
async fn oversize_prefix_is_refused_before_reading_body() {
    let mut buf = Vec::new();
    encode_varint(1 << 30, &mut buf);
    let err = read_request(&mut Cursor::new(buf), 1024).await.unwrap_err();
    assert!(matches!(err, WireError::TooLarge { declared, .. } if declared == 1 << 30));
}

#[tokio::test]
async fn eleven_byte_varint_is_invalid() {
    let buf = vec![0xffu8; 11];
    let err = read_request(&mut Cursor::new(buf), usize::MAX)
        .await
        .unwrap_err();
    assert!(matches!(err, WireError::BadVarint));
}

#[tokio::test]
async fn empty_and_truncated_inputs_are_distinct_errors() {
    let err = read_request(&mut Cursor::new(Vec::new()), 1024)
        .await
        .unwrap_err();
    assert!(matches!(err, WireError::Empty));
    let err = read_request(&mut Cursor::new(vec![0x80]), 1024)
        .await
        .unwrap_err();
    assert!(matches!(err, WireError::Truncated { .. }));
    let err = read_request(&mut Cursor::new(vec![10, 1, 2]), 1024)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        WireError::Truncated {
            got: 2,
            expected: 10
        }
    ));
}

fn arb_frame() -> impl Strategy<Value = frame::ApiResponseFrame> {
    use frame::*;
    prop_oneof![
        (
            any::<u16>(),
            proptest::collection::hash_map(".{0,8}", ".{0,8}", 0..4)
        )
            .prop_map(|(s, h)| ApiResponseFrame::head(s, h)),
        proptest::collection::vec(any::<u8>(), 0..300)
            .prop_map(|b| ApiResponseFrame::data(b.into())),
        any::<u64>().prop_map(ApiResponseFrame::end),
        (0i32..11, ".{0,20}").prop_map(|(c, m)| ApiResponseFrame::error(Code::from_wire(c), m)),
    ]
}

proptest! {
    #[test]
    fn any_frame_sequence_round_trips(frames in proptest::collection::vec(arb_frame(), 0..12), cut in any::<usize>()) {
        let mut buf = bytes::BytesMut::new();
        for f in &frames {
            frame::encode_frame(f, &mut buf);
        }
        // Fed in two pieces split anywhere, the decoder sees the same frames.
        let bytes = buf.freeze();
        let cut = if bytes.is_empty() { 0 } else { cut % bytes.len() };
        let reader = futures::io::AsyncReadExt::chain(Cursor::new(bytes[..cut].to_vec()), Cursor::new(bytes[cut..].to_vec()));
        let mut reader = Box::pin(reader);
        let mut got = Vec::new();
        futures::executor::block_on(async {
            while let Some(f) = read_frame(&mut reader, frame::DEFAULT_MAX_FRAME_BYTES).await.unwrap() {
                got.push(f);
            }
        });
        prop_assert_eq!(got, frames);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_frame_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        futures::executor::block_on(async {
            let mut r = Cursor::new(bytes);
            while let Ok(Some(_)) = read_frame(&mut r, 4096).await {}
        });
    }

    #[test]
    fn varint_round_trips(v in any::<u64>()) {
        let mut buf = Vec::new();
        encode_varint(v, &mut buf);
        let got = futures::executor::block_on(read_varint(&mut Cursor::new(buf))).unwrap();
        prop_assert_eq!(got, Some(v));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = futures::executor::block_on(read_request(&mut Cursor::new(bytes), 4096));
    }

    #[test]
    fn requests_round_trip(route in ".{0,40}", method in "[A-Z]{0,8}", body in proptest::collection::vec(any::<u8>(), 0..256), stream in any::<bool>()) {
        let req = ApiRequest { route, method, body: body.into(), response_type: stream as i32, ..Default::default() };
        let bytes = encode_length_prefixed(&req);
        let got = futures::executor::block_on(read_request(&mut Cursor::new(bytes.to_vec()), 1 << 20)).unwrap();
        prop_assert_eq!(got, req);
    }
}

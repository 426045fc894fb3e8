//! Criterion benchmarks of the pure parts on the hot path: the request
//! codec, the 2.0.0 frame codec and the SSE re-framer.
//! Run: cargo bench --bench codec

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use peerapi::event_stream::Framer;
use peerapi::wire::frame::{encode_data, encode_frame, ApiResponseFrame};
use peerapi::wire::{encode_length_prefixed, read_frame, read_request, ApiRequest};

fn request(c: &mut Criterion) {
    let req = ApiRequest {
        route: "inference".into(),
        method: "POST".into(),
        headers: [("content-type".to_string(), "application/json".to_string())].into(),
        body: bytes::Bytes::from(vec![b'x'; 512]),
        response_type: 1,
        timeout_ms: 0,
    };
    let encoded = encode_length_prefixed(&req);
    c.bench_function("request encode (512 B body)", |b| {
        b.iter(|| black_box(encode_length_prefixed(black_box(&req))))
    });
    c.bench_function("request decode (512 B body)", |b| {
        b.iter(|| {
            let mut cur = futures::io::Cursor::new(&encoded[..]);
            black_box(futures::executor::block_on(read_request(&mut cur, 1 << 20)).unwrap())
        })
    });
}

fn frames(c: &mut Criterion) {
    let chunk = bytes::Bytes::from(vec![b'y'; 64]);
    let mut buf = BytesMut::new();
    for _ in 0..1000 {
        encode_data(&chunk, &mut buf);
    }
    encode_frame(&ApiResponseFrame::end(64_000), &mut buf);
    let bytes = buf.freeze();
    let mut g = c.benchmark_group("frames");
    g.throughput(Throughput::Elements(1001));
    g.bench_function("encode 1,000 small data frames", |b| {
        b.iter(|| {
            let mut out = BytesMut::with_capacity(80_000);
            for _ in 0..1000 {
                encode_data(black_box(&chunk), &mut out);
            }
            black_box(out)
        })
    });
    g.bench_function("decode 1,000 small data frames", |b| {
        b.iter(|| {
            let mut cur = futures::io::Cursor::new(&bytes[..]);
            futures::executor::block_on(async {
                let mut n = 0;
                while let Ok(Some(f)) = read_frame(&mut cur, 1 << 20).await {
                    n += black_box(f).kind.is_some() as usize;
                }
                n
            })
        })
    });
    g.finish();
}

fn sse(c: &mut Criterion) {
    let mut body = Vec::new();
    for i in 0..10_000 {
        body.extend_from_slice(
            format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\" t{i}\"}}}}]}}\n\n")
                .as_bytes(),
        );
    }
    let mut g = c.benchmark_group("sse");
    g.throughput(Throughput::Elements(10_000));
    for split in [7usize, 4096] {
        g.bench_function(
            format!("re-frame 10,000 events in {split}-byte reads"),
            |b| {
                b.iter(|| {
                    let mut f = Framer::default();
                    let mut out = Vec::with_capacity(10_000);
                    for piece in body.chunks(split) {
                        f.push(black_box(piece), &mut out);
                    }
                    f.finish(&mut out);
                    black_box(out.len())
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, request, frames, sse);
criterion_main!(benches);

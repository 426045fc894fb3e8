//! The bench backend: a loopback HTTP server as fast as axum gets, so what
//! a measurement sees is the hop and not the backend.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Query;
use axum::response::Response;
use axum::routing::{any, get};
use axum::Router;

#[derive(serde::Deserialize)]
struct Count {
    n: usize,
}

/// The body of the backend's `/small`: every unary sample is compared with it.
pub const SMALL_BODY: &str =
    r#"{"id":"cmpl-1","object":"text_completion","choices":[{"text":"ok","index":0}]}"#;
/// Events of the backend's `/paced` stream.
pub const PACED_EVENTS: usize = 40;

/// A loopback backend as fast as axum gets: small JSON, echo, SSE tokens as
/// separate chunks, a large blob, and paced tokens for the memory test.
pub async fn start_backend() -> std::io::Result<SocketAddr> {
    let small = || async { ([("content-type", "application/json")], SMALL_BODY) };
    let app = Router::new()
        .route("/small", any(small))
        .route("/echo", any(|b: Bytes| async move { b }))
        .route(
            "/tokens",
            get(|Query(Count { n }): Query<Count>| async move {
                let s = futures::stream::iter((0..n).map(|i| {
                    Ok::<_, std::io::Error>(Bytes::from(format!(
                        "data: {{\"token\":\"t{i}\"}}\n\n"
                    )))
                }));
                Response::builder()
                    .header("content-type", "text/event-stream")
                    .body(Body::from_stream(s))
                    .unwrap_or_default()
            }),
        )
        .route(
            "/blob",
            get(|Query(Count { n }): Query<Count>| async move {
                let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
                let chunks = n.div_ceil(chunk.len());
                let s = futures::stream::iter(
                    (0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
                );
                Body::from_stream(s)
            }),
        )
        .route(
            "/first",
            // One event at once, the end a little later: the time to the
            // first byte is the path's, not the backend's buffering.
            get(|| async {
                let s = futures::stream::unfold(0u32, |i| async move {
                    match i {
                        0 => Some((
                            Ok::<_, std::io::Error>(Bytes::from_static(
                                b"data: {\"token\":\"t0\"}\n\n",
                            )),
                            1,
                        )),
                        1 => {
                            tokio::time::sleep(Duration::from_millis(2)).await;
                            Some((Ok(Bytes::from_static(b"data: [DONE]\n\n")), 2))
                        }
                        _ => None,
                    }
                });
                Response::builder()
                    .header("content-type", "text/event-stream")
                    .body(Body::from_stream(s))
                    .unwrap_or_default()
            }),
        )
        .route(
            "/paced",
            get(|| async {
                let s = futures::stream::unfold(0usize, |i| async move {
                    if i >= PACED_EVENTS {
                        return None;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Some((
                        Ok::<_, std::io::Error>(Bytes::from(format!(
                            "data: {{\"token\":\"t{i}\"}}\n\n"
                        ))),
                        i + 1,
                    ))
                });
                Body::from_stream(s)
            }),
        )
        .layer(axum::extract::DefaultBodyLimit::disable());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        // Like a production server: small writes (a head, then each token)
        // go out at once, not held back by Nagle's algorithm.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}

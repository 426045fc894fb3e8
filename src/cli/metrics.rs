//! `--metrics-listen`: the node's metrics as Prometheus text on
//! `GET /metrics`, for a monitoring stack to scrape.

use std::net::SocketAddr;
use std::sync::Arc;

use peerapi::gate::{Admitted, Gate, GateLimits};
use peerapi::node::metrics::NodeMetrics;

/// The port alone means loopback: metrics say who calls what, so they are
/// not offered to the network unless an address says so.
pub(crate) fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let t = text.trim();
    if let Ok(port) = t.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    t.parse().map_err(|_| {
        format!(
            "--metrics-listen {t:?}: write a port (9464, on loopback) or IP:PORT (0.0.0.0:9464)"
        )
    })
}

/// OpenMetrics text, which Prometheus reads.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Binds `addr` and serves `metrics` until the process ends, within
/// `limits`: each connection gets one request (no keep-alive: a scrape
/// every 15 s does not need one, and an idle kept-alive connection is a
/// held slot), its head within the deadline.
pub(crate) async fn serve(
    addr: SocketAddr,
    metrics: Arc<NodeMetrics>,
    limits: GateLimits,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        anyhow::anyhow!("cannot serve metrics on {addr}: {e} (is the port in use?)")
    })?;
    let bound = listener.local_addr()?;
    let gate = Gate::new(limits);
    tokio::spawn(async move {
        loop {
            let (tcp, _, admitted) = gate
                .accept(&listener, |peer, why| {
                    tracing::debug!(%peer, ?why, "metrics connection refused");
                })
                .await;
            tokio::spawn(serve_one(tcp, admitted, metrics.clone()));
        }
    });
    tracing::info!(%bound, "metrics on http://{bound}/metrics");
    Ok(bound)
}

async fn serve_one(tcp: tokio::net::TcpStream, admitted: Admitted, metrics: Arc<NodeMetrics>) {
    use hyper::service::service_fn;
    let limit = admitted.head_timeout();
    let service = service_fn(|req: hyper::Request<hyper::body::Incoming>| {
        admitted.active();
        let response = if req.uri().path() == "/metrics" {
            hyper::Response::builder()
                .header(hyper::header::CONTENT_TYPE, CONTENT_TYPE)
                .body(axum::body::Body::from(metrics.encode()))
        } else {
            hyper::Response::builder()
                .status(404)
                .body(axum::body::Body::from("GET /metrics\n"))
        };
        async move { response }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limit)
        .keep_alive(false)
        .serve_connection(hyper_util::rt::TokioIo::new(tcp), service);
    tokio::select! {
        _ = conn => {}
        _ = admitted.evicted() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_alone_is_loopback() {
        assert_eq!(
            parse_listen("9464").unwrap(),
            "127.0.0.1:9464".parse().unwrap()
        );
        assert_eq!(
            parse_listen("0.0.0.0:9").unwrap(),
            "0.0.0.0:9".parse().unwrap()
        );
        assert!(parse_listen("localhost").unwrap_err().contains("IP:PORT"));
    }
}

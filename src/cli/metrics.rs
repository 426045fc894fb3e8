//! `--metrics-listen`: the node's metrics as Prometheus text on
//! `GET /metrics`, for a monitoring stack to scrape.

use std::net::SocketAddr;
use std::sync::Arc;

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

/// Binds `addr` and serves `metrics` until the process ends.
pub(crate) async fn serve(
    addr: SocketAddr,
    metrics: Arc<NodeMetrics>,
) -> anyhow::Result<SocketAddr> {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        anyhow::anyhow!("cannot serve metrics on {addr}: {e} (is the port in use?)")
    })?;
    let bound = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let text = metrics.encode();
            async move { ([(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)], text) }
        }),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!("metrics endpoint stopped: {e}");
        }
    });
    tracing::info!(%bound, "metrics on http://{bound}/metrics");
    Ok(bound)
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

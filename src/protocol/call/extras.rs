//! The rest of the client: its options and peers, raw streams for tools,
//! the route listing, and the Python-shaped `call_remote`/`stream_remote`.

use std::collections::HashMap;
use std::future::Future;

use bytes::Bytes;
use futures::AsyncWriteExt;
use libp2p::PeerId;

use super::{connected, ApiClient, CallError, CallOptions, CallRequest, CallStream};
use crate::wire;

impl ApiClient {
    /// What this client's calls are bounded by.
    pub fn options(&self) -> &CallOptions {
        &self.options
    }

    /// Records the protocols identify reported for `peer`, so that calls
    /// propose the one it speaks alone (one round trip less). Without it,
    /// calls still work: every proposal waits for its answer.
    pub fn set_peer_protocols(&self, peer: PeerId, protocols: Vec<String>) {
        self.connections.set_protocols(peer, protocols);
    }

    /// Whether a connection to `peer` is open.
    pub fn is_connected(&self, peer: &PeerId) -> bool {
        self.connections.is_connected(peer)
    }

    /// The call's metrics record, when the node keeps metrics.
    pub(super) fn record(&self, route: &str) -> Option<crate::protocol::metrics::CallRecord> {
        let metrics = self.metrics.clone()?;
        Some(crate::protocol::metrics::CallRecord::start(metrics, route))
    }

    /// Opens a raw stream on `protocol` to a connected `peer`, for tools
    /// and tests that speak the bytes themselves.
    pub async fn open_raw(
        &self,
        peer: PeerId,
        protocol: &'static str,
    ) -> Result<crate::streams::outbound::OutboundStream, CallError> {
        self.open(peer, vec![protocol]).await.map(|(s, _)| s)
    }

    /// Asks a connected peer for its route names and stream flags
    /// (`/peerapi/routes/1.0.0`; Python nodes do not serve it).
    pub async fn list_routes(&self, peer: PeerId) -> Result<Vec<wire::RouteInfo>, CallError> {
        self.list_routes_after(peer, connected()).await
    }

    pub(crate) async fn list_routes_after(
        &self,
        peer: PeerId,
        connect: impl Future<Output = Result<(), CallError>>,
    ) -> Result<Vec<wire::RouteInfo>, CallError> {
        let timeout = self.options.timeout;
        tokio::time::timeout(timeout, async {
            connect.await?;
            let (mut stream, _) = self.open(peer, vec![wire::PROTOCOL_ROUTES]).await?;
            let _ = stream.close().await;
            let payload = wire::read_length_prefixed(&mut stream, wire::MAX_ROUTE_LIST_BYTES)
                .await
                .map_err(|e| CallError::Stream {
                    peer,
                    message: e.to_string(),
                })?;
            let list = <wire::RouteList as prost::Message>::decode(payload).map_err(|e| {
                CallError::Stream {
                    peer,
                    message: format!("invalid route listing: {e}"),
                }
            })?;
            Ok(list.routes)
        })
        .await
        .unwrap_or(Err(CallError::Timeout { after: timeout }))
    }

    /// Mirrors the Python `call_remote(peer, route, method, headers, body)`.
    pub async fn call_remote(
        &self,
        peer: PeerId,
        route: &str,
        method: &str,
        headers: HashMap<String, String>,
        body: impl Into<Bytes>,
    ) -> Result<Bytes, CallError> {
        let req = CallRequest::from_parts(route, method, headers, body);
        self.call(peer, req).await.map(|r| r.body)
    }

    /// Mirrors the Python `stream_remote(peer, route, method, headers, body)`.
    pub async fn stream_remote(
        &self,
        peer: PeerId,
        route: &str,
        method: &str,
        headers: HashMap<String, String>,
        body: impl Into<Bytes>,
    ) -> Result<CallStream, CallError> {
        let req = CallRequest::from_parts(route, method, headers, body);
        self.stream(peer, req).await.map(|(_, s)| s)
    }
}

//! `/peerapi/routes/1.0.0`: a peer's route names and stream flags (never URLs).

/// One route as listed to other peers.
#[derive(Clone, PartialEq, Eq, prost::Message, serde::Serialize, serde::Deserialize)]
pub struct RouteInfo {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(bool, tag = "2")]
    pub stream: bool,
}

/// The whole listing, written once by the server.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RouteList {
    #[prost(message, repeated, tag = "1")]
    pub routes: Vec<RouteInfo>,
}

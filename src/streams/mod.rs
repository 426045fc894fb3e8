//! A generic rust-libp2p behaviour for protocols that run one exchange per
//! stream: inbound streams of the chosen protocols go to a dispatcher,
//! outbound ones are opened on connected peers, and protocols are proposed
//! only to peers whose identify confirmed them. The API protocol and DAG
//! sync are both built on it; it knows neither.

pub mod behaviour;
pub mod ip_limit;
pub(crate) mod lazy;
pub mod outbound;

//! Control of a running node: the one interface a console (or a script)
//! has to a node. A client says hello, gets a snapshot of the node and
//! then its changes in order, and sends requests that the node carries
//! out itself (calls with its identity, route edits on its file, runs in
//! its process), each answered in parts and a last word, each cancellable.
//!
//! `message` is the vocabulary (owned, serialisable values), `service`
//! the node's side of one client, `work` what each request does, and
//! `link` the client's side. The console's own node is reached through
//! the same messages in process.

#[cfg(unix)]
pub mod client;
pub mod endpoint;
pub mod frame;
pub mod link;
pub mod message;
pub mod service;
#[cfg(unix)]
pub mod socket;
pub mod stats;
mod work;

pub use link::{Answer, LinkError, NodeLink, Pending, Updates};
pub use message::{
    CallSpec, FromNode, NodeInfo, Part, Reply, Request, RequestId, Role, RoutesSnapshot, Snapshot,
    SubnetStats, ToNode, Update, CONTROL_VERSION,
};
pub use stats::NodeStats;

#[cfg(test)]
mod tests;

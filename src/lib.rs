//! peerapi: a libp2p node, operator console and CLI for the subnet API protocol.
//!
//! Layout:
//! - [`wire`]: request message, varint framing, 2.0.0 frames, `v1` (every 1.0.0 text) (no I/O beyond AsyncRead/Write).
//! - [`routes`]: the route table (immutable, swapped whole), its JSON file, the watcher.
//! - [`upstream`]: the one HTTP forwarder (reqwest).
//! - [`fsutil`]: atomic file writes that keep mode and owner and never clobber.
//! - [`logs`]: peer text escaped and capped in logs, throttled refusals, capped log files.
//! - [`keys`]: libp2p protobuf key files, py-libp2p's 32-byte seeds included.
//! - [`protocol`]: `ApiProtocol`, the protocol as one behaviour for any rust-libp2p swarm (server and client).
//! - [`node`]: the swarm task, its handle and events, serving (`serve/`), calling (`call/`), admission and limits.
//! - `demo` (feature `demo`): the demo backend used by `peerapi demo` and the tests.
//! - `testkit` (feature `test-util`): the bench backend and node processes tests and benches share.
//! - `tui` (feature `console`): the operator console. `cli`: the binary's commands.
//!
//! ```text
//!  caller ─/subnet/api_protocol/1.0.0─▶ node ─route table─▶ upstream ─HTTP─▶ backend
//! ```

#[cfg(feature = "demo")]
pub mod demo;
pub mod fsutil;
pub mod keys;
pub mod logs;
pub mod node;
pub mod protocol;
pub mod routes;
pub mod sse;
pub mod upstream;
pub mod wire;

#[cfg(feature = "test-util")]
pub mod testkit;

#[cfg(feature = "console")]
pub mod tui;

pub use node::{
    CallError, CallOptions, CallRequest, CallStream, Node, NodeConfig, NodeError, NodeEvent,
    NodeHandle, PeerInfo,
};
pub use routes::{Route, RouteTable, Routes};

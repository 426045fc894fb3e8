//! peerapi: a libp2p node, operator console and CLI for the subnet API protocol.
//!
//! Layout, one line per module:
//! - [`wire`]: request message, varint framing, 2.0.0 frames, route listing, `v1` (every 1.0.0 text); no I/O beyond AsyncRead/Write.
//! - [`routes`]: the route table (immutable, swapped whole), its JSON file and safe edits, the watcher, `policy` (who may call what).
//! - [`upstream`]: the one HTTP forwarder (reqwest); `error`: full detail for our log, safe text for callers.
//! - [`event_stream`]: streamed bodies re-framed into SSE/NDJSON events, token text pulled out of inference shapes.
//! - [`fsutil`]: atomic file writes that keep mode and owner and never clobber.
//! - [`gate`]: admission for the side listeners (metrics, telemetry): caps, head deadline, silent ones evicted first.
//! - [`logs`]: peer text escaped and capped in logs, throttled refusals, capped log files.
//! - [`keys`]: libp2p protobuf key files, py-libp2p's 32-byte seeds included.
//! - [`streams`]: the generic stream behaviour (one exchange per stream, proposals only where identify confirmed them) that the protocol and DAG sync share.
//! - [`protocol`]: `ApiProtocol`, the protocol as one behaviour for any rust-libp2p swarm: serving (`serve/`), calling (`call/`), admission, taps, metrics and its events. Depends on `wire`, `routes`, `upstream` and `streams` only.
//! - [`subnet`]: what template nodes expect of a peer (DAG sync) and the DAG we hold, verified.
//! - [`load`]: load runs and fan-out measured as inference clients measure them (TTFT, ITL, TPOT, goodput).
//! - [`node`]: our whole node, built on `protocol`: the swarm task, its handle and events, the subnet behaviours, replication, evictions.
//! - `demo` (feature `demo`): the demo backend used by `peerapi demo` and the tests.
//! - `testkit` (feature `test-util`): the bench backend and node processes tests and benches share.
//! - `tui` (feature `console`): the operator console. `cli` (the binary, feature `cli`): one file per subcommand.
//!
//! Tasks, and what flows between them:
//!
//! ```text
//!  NodeHandle ──Command──▶ swarm task (event_loop) ──NodeEvent──▶ subscribers (console, CLI)
//!      │ call/stream                 │ connections
//!      ▼                             ▼
//!  ApiClient ──opens stream──▶ streams::Handler (connection task) ──inbound stream──▶ serve: task per call
//!                                                               ──▶ upstream ──HTTP──▶ backend
//!  route file ──notify──▶ watcher task ──swap──▶ route table (read by serve)
//! ```

/// Shell lines of `peerapi call` and curl, for the console's clipboard and
/// `--from-curl`; not part of the core library.
#[cfg(any(feature = "console", feature = "cli"))]
pub mod cmdline;
pub mod control;
#[cfg(feature = "demo")]
pub mod demo;
pub mod event_stream;
#[cfg(all(unix, any(feature = "console", feature = "cli")))]
pub mod fleet;
pub mod fsutil;
pub mod gate;
#[cfg(feature = "health")]
pub mod health;
pub mod keys;
pub mod load;
pub mod log_lines;
pub mod logs;
pub mod node;
pub mod protocol;
pub mod routes;
pub mod streams;
pub mod subnet;
pub mod upstream;
pub mod wire;

#[cfg(feature = "test-util")]
pub mod testkit;

#[cfg(feature = "console")]
pub mod tui;

pub use node::{
    ApiClient, CallError, CallOptions, CallRequest, CallStream, Node, NodeConfig, NodeError,
    NodeEvent, NodeHandle, PeerInfo,
};
pub use protocol::{events::ApiEvent, ApiProtocol, ApiProtocolConfig};
pub use routes::{Route, RouteTable, Routes};

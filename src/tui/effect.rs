//! What the app must do for an update: the state itself does no I/O, and
//! `runner.rs` carries each effect out.

use std::path::PathBuf;

use super::action::LocalId;
use super::history::Entry;
use crate::load::LoadPlan;
use crate::routes::Route;

pub use crate::control::CallSpec;

#[derive(Debug, Clone)]
pub enum Effect {
    /// Start the call; its bytes come back as `CallBytes`/`CallEnded`.
    Send { id: LocalId, spec: CallSpec },
    /// Abort a call's task.
    Cancel(LocalId),
    /// Dial a multiaddr.
    Dial(String),
    /// Close every connection to a peer.
    Disconnect(libp2p::PeerId),
    /// Add or replace a route in the route file.
    UpsertRoute {
        name: String,
        url: String,
        stream: bool,
    },
    /// Remove a route from the route file.
    RemoveRoute(String),
    /// Write a call's output (and what follows) to a file.
    Save { id: LocalId, path: PathBuf },
    /// Put text on the clipboard (OSC 52).
    Copy(String),
    /// Ask a peer for its route listing.
    FetchRoutes(String),
    /// Append a sent call to the history file.
    RecordHistory(Entry),
    /// The same request to these peers at once (results as `FanOutDone`).
    FanOut { spec: CallSpec, peers: Vec<String> },
    /// A load run on the spec's target (progress as `LoadProgress`).
    Load { spec: CallSpec, plan: LoadPlan },
    /// The spec's request straight to this node's backend for the route
    /// and through the hop, in turns (results as `HopVsDirectDone`).
    HopVsDirect {
        spec: CallSpec,
        route: Box<Route>,
        rounds: usize,
    },
    /// Tap a served call: its body shows in its output as it is sent.
    TapServed {
        local: LocalId,
        call: crate::node::CallId,
    },
    /// Stop the load run or comparison, if one runs.
    StopLoad,
    /// Link to this context's node and show it instead (attached consoles).
    SwitchContext(String),
    /// Poll for the health report every few seconds (true), or stop.
    WatchHealth(bool),
    /// Ask the node for its health report once (answer: `HealthAction::Report`).
    FetchHealth,
    /// Leave the console.
    Quit,
}

impl Effect {
    /// Whether carrying it out calls, dials, disconnects or edits routes:
    /// what a read-only console never does.
    pub fn changes_something(&self) -> bool {
        matches!(
            self,
            Effect::Send { .. }
                | Effect::Dial(_)
                | Effect::Disconnect(_)
                | Effect::UpsertRoute { .. }
                | Effect::RemoveRoute(_)
                | Effect::FanOut { .. }
                | Effect::Load { .. }
                | Effect::HopVsDirect { .. }
                | Effect::TapServed { .. }
        )
    }
}

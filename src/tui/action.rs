//! Every intent the console acts on: keys, mouse and node events all become
//! actions, and only `State::update` changes state.

use std::time::Instant;

use bytes::Bytes;
use ratatui::crossterm::event::KeyEvent;

use crate::node::NodeEvent;

/// The panes, in Tab order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pane {
    Peers,
    Routes,
    Calls,
    Output,
    Composer,
    Log,
}

impl Pane {
    pub const ALL: [Pane; 6] = [
        Pane::Peers,
        Pane::Routes,
        Pane::Calls,
        Pane::Output,
        Pane::Composer,
        Pane::Log,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Pane::Peers => "Peers",
            Pane::Routes => "Routes",
            Pane::Calls => "Calls",
            Pane::Output => "Output",
            Pane::Composer => "Composer",
            Pane::Log => "Log",
        }
    }
}

/// A local call number in the console (outgoing and served calls share it).
pub type LocalId = u64;

#[derive(Clone, Debug)]
pub enum Action {
    Quit,
    ForceQuit,
    FocusNext,
    FocusPrev,
    Focus(Pane),
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Back,
    ToggleHelp,
    /// Enter on the focused pane: edit a field, open a call, show a peer.
    Activate,
    // Composer
    Send,
    ToggleStream,
    HistoryPrev,
    HistoryNext,
    EditKey(KeyEvent),
    NextField,
    // Calls
    CancelCall,
    RerunCall,
    // Peers
    StartDial,
    DisconnectPeer,
    CopyPeerToComposer,
    // Routes
    AddRoute,
    EditRoute,
    DeleteRoute,
    // Output
    CycleView,
    ToggleFollow,
    TogglePause,
    ToggleWrap,
    StartSearch,
    SetTokenPath,
    ToggleHeaders,
    SearchNext,
    SearchPrev,
    SaveOutput,
    CopyOutput,
    // Log
    CycleLogLevel,
    /// Answer to a yes/no question.
    Confirm(bool),
    // From the outside world
    Node(NodeEvent),
    /// The response head: protocol, and (2.0.0) status and headers.
    CallHead {
        id: LocalId,
        head: crate::node::ResponseHead,
    },
    CallBytes {
        id: LocalId,
        bytes: Bytes,
        at: Instant,
    },
    CallEnded {
        id: LocalId,
        error: Option<String>,
        at: Instant,
    },
    Log(String, tracing::Level),
    Notice(String),
    Peers(Vec<crate::node::PeerInfo>),
    Listening(Vec<String>),
    /// A peer's route listing (or why it could not be had).
    RemoteRoutes {
        target: String,
        routes: Result<Vec<crate::wire::RouteInfo>, String>,
    },
    MouseClick {
        column: u16,
        row: u16,
    },
    Scroll {
        column: u16,
        row: u16,
        down: bool,
    },
}

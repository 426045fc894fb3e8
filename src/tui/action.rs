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
    /// Quit, asking first while calls are in flight.
    Quit,
    /// Quit now (SIGTERM).
    ForceQuit,
    /// Focus the next pane in Tab order.
    FocusNext,
    /// Focus the previous pane.
    FocusPrev,
    /// Focus this pane (number keys, mouse).
    Focus(Pane),
    /// Move the focused pane's selection or scroll up one line.
    Up,
    /// Down one line.
    Down,
    /// Up ten lines.
    PageUp,
    /// Down ten lines.
    PageDown,
    /// To the first line.
    Top,
    /// To the last line (Output: follow again).
    Bottom,
    /// Esc outside a text field: close help, clear the search or the warning.
    Back,
    /// Show or hide the help overlay.
    ToggleHelp,
    /// Sort the Peers pane by its next column.
    SortPeers,
    /// Ask for the Peers pane's filter.
    FilterPeers,
    /// Scroll the help overlay by this many lines.
    HelpScroll(isize),
    /// Show or hide the Subnet view (roster, gossip, DAG, evictions).
    ToggleSubnet,
    /// Show or hide the Events view (telemetry from template nodes).
    ToggleEvents,
    /// The Health view: what the node's prober found (`--health`).
    Health(HealthAction),
    /// Fan-out and load runs, and their view.
    Runs(RunsAction),
    /// Gossip mesh per topic and the DAG held per namespace, refreshed.
    SubnetStats {
        mesh: Vec<(String, Vec<libp2p::PeerId>)>,
        dag: Vec<(String, crate::subnet::Summary)>,
    },
    /// Events view: filter on the next node seen (then all again).
    EventsNextNode,
    /// Events view: filter on the next event kind seen (then all again).
    EventsNextKind,
    /// Enter on the focused pane: edit a field, open a call, show a peer.
    Activate,
    /// Send the composer's call (a repeated send overrides a warning).
    Send,
    /// Switch the composer between unary and stream.
    ToggleStream,
    /// Fill the composer with an older sent call.
    HistoryPrev,
    /// Fill the composer with a newer sent call.
    HistoryNext,
    /// A key typed into the composer field being edited.
    EditKey(KeyEvent),
    /// Text pasted into the composer field being edited or the prompt.
    Paste(String),
    /// The next composer field.
    NextField,
    /// The previous composer field.
    PrevField,
    /// Leave the composer's edit mode.
    StopEditing,
    /// A key typed into the open prompt.
    PromptKey(KeyEvent),
    /// Enter in the open prompt.
    PromptSubmit,
    /// Esc in the open prompt.
    PromptCancel,
    /// Cancel the selected outgoing call.
    CancelCall,
    /// Send the selected call again.
    RerunCall,
    /// Open the dial prompt.
    StartDial,
    /// Disconnect the selected peer.
    DisconnectPeer,
    /// Put the selected peer's address into the composer.
    CopyPeerToComposer,
    /// Open the add-route prompt.
    AddRoute,
    /// Open the edit prompt on the selected route.
    EditRoute,
    /// Ask before deleting the selected route.
    DeleteRoute,
    /// Output as raw bytes, events or token text.
    CycleView,
    /// Follow the tail of the output, or stop.
    ToggleFollow,
    /// Freeze the output view at what it has now, or unfreeze.
    TogglePause,
    /// Wrap long output lines, or not.
    ToggleWrap,
    /// Open the search prompt.
    StartSearch,
    /// Open the token JSON path prompt.
    SetTokenPath,
    /// Show the response head above the body, or not.
    ToggleHeaders,
    /// The next search match (older).
    SearchNext,
    /// The previous search match (newer).
    SearchPrev,
    /// Open the save-output prompt.
    SaveOutput,
    /// Copy the output to the clipboard.
    CopyOutput,
    /// Give the focused pane the whole screen, or take it back.
    ToggleZoom,
    /// Mark the selected call as the one bodies are diffed against.
    MarkDiffBase,
    /// Show the selected body as a diff against the marked call's.
    ToggleBodyDiff,
    /// Ask for the Output pane's jq filter.
    SetJqFilter,
    /// The selected call or the composer as a `peerapi` command line.
    CopyCommand,
    /// The Log pane's level: error, warn, info, debug.
    CycleLogLevel,
    /// Answer to a yes/no question.
    Confirm(bool),
    /// An event of our node (served calls, route reloads).
    Node(NodeEvent),
    /// The node's number for one of our calls, sent as it starts.
    CallNumbered {
        id: LocalId,
        node_call: crate::node::CallId,
    },
    /// The console fell behind its node: this many updates were skipped
    /// (a fresh snapshot follows).
    NodeEventsMissed(u64),
    /// The response head: protocol, and (2.0.0) status and headers.
    CallHead {
        id: LocalId,
        head: crate::node::ResponseHead,
    },
    /// Bytes of a call's response, as they arrived.
    CallBytes {
        id: LocalId,
        bytes: Bytes,
        at: Instant,
    },
    /// A call ended (with the error, if it failed).
    CallEnded {
        id: LocalId,
        error: Option<String>,
        /// The error's class, when the node named it.
        failure: Option<crate::wire::Failure>,
        at: Instant,
        /// The serving node's final timings (2.0.0 streams send them at the end).
        server_timing: Option<crate::wire::frame::ServerTiming>,
    },
    /// A log line for the Log pane.
    Log(String, tracing::Level),
    /// A short message in the status bar.
    Notice(String),
    /// The connected peers, refreshed.
    Peers(Vec<crate::node::PeerInfo>),
    /// Our listen addresses.
    Listening(Vec<String>),
    /// Show the selected served call's body as the node sends it (a tap).
    TapCall,
    /// An attached console's node went away (it keeps what it showed).
    NodeGone,
    /// ... and is back, through this link (its snapshot follows).
    Relinked(crate::control::NodeLink),
    /// The node's route table and file, as it has them now.
    Routes(Box<crate::control::RoutesSnapshot>),
    /// A peer's route listing (or why it could not be had).
    RemoteRoutes {
        target: String,
        routes: Result<Vec<crate::wire::RouteInfo>, String>,
    },
    /// The command line and the context picker.
    Command(CommandAction),
    /// Another context's node is linked: the console shows it from now on.
    Switched(crate::tui::reached::Switched),
    /// A mouse click: focus the pane under it.
    MouseClick { column: u16, row: u16 },
    /// The mouse wheel over a pane.
    Scroll { column: u16, row: u16, down: bool },
}

/// The command line (`:`) and the context picker.
#[derive(Debug, Clone)]
pub enum CommandAction {
    Open,
    PickContext,
}

/// Everything the Health view reacts to.
#[derive(Debug, Clone)]
pub enum HealthAction {
    /// Show or hide it (polling the node while shown).
    Toggle,
    /// Time to ask the node again (while shown).
    Poll,
    /// The node's answer (None: it does not probe).
    Report(Box<Option<crate::health::Latest>>),
    Up,
    Down,
    NextSort,
    /// Show the selected node's history, or back to the table.
    Detail,
    /// Ask for the filter (`/`).
    OpenFilter,
}

/// Everything the runs view reacts to.
#[derive(Debug, Clone)]
pub enum RunsAction {
    /// Send the composer's request to every peer that serves the API.
    StartFanOut,
    /// Ask how to load the composer's target (then `StartLoad`).
    AskLoad,
    /// Load the composer's target with its request.
    StartLoad(crate::load::LoadPlan),
    /// The composer's request through the hop and straight to our backend.
    StartHopVsDirect,
    HopVsDirectRound(usize),
    HopVsDirectDone(Box<crate::load::HopVsDirect>),
    /// One peer's call moved on (index into the fan-out's peers).
    FanOutRow(usize, crate::load::fanout::RowUpdate),
    FanOutDone(Vec<crate::load::PeerResult>),
    LoadProgress(crate::load::Progress),
    LoadDone(Box<crate::load::Summary>),
    NextSort,
    ToggleDiff,
    /// Compare bodies against the selected peer's from now on (again: the
    /// majority's).
    MarkReference,
    Up,
    Down,
    /// Close the view (and stop a load that is still running).
    Close,
}

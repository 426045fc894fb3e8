//! Key bindings as data: `resolve(key, context) -> Action`. The help overlay
//! and the footer are generated from the same table.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::action::{Action, CommandAction, Pane, RunsAction};

/// Where a binding applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Global,
    In(Pane),
}

pub struct Binding {
    pub scope: Scope,
    pub keys: &'static [(KeyCode, KeyModifiers)],
    pub label: &'static str,
    pub help: &'static str,
    pub action: fn() -> Action,
}

const NONE: KeyModifiers = KeyModifiers::NONE;
const CTRL: KeyModifiers = KeyModifiers::CONTROL;
const SHIFT: KeyModifiers = KeyModifiers::SHIFT;

macro_rules! b {
    ($scope:expr, [$($k:expr),+], $label:expr, $help:expr, $action:expr) => {
        Binding { scope: $scope, keys: &[$($k),+], label: $label, help: $help, action: || $action }
    };
}

use KeyCode::*;
use Scope::{Global, In};

/// Every binding, in the order the help overlay lists them.
pub static BINDINGS: &[Binding] = &[
    b!(Global, [(Tab, NONE)], "Tab", "next pane", Action::FocusNext),
    b!(
        Global,
        [(BackTab, SHIFT), (BackTab, NONE)],
        "S-Tab",
        "previous pane",
        Action::FocusPrev
    ),
    b!(
        Global,
        [(Char('?'), NONE), (Char('?'), SHIFT)],
        "?",
        "help",
        Action::ToggleHelp
    ),
    b!(
        Global,
        [(Char('S'), SHIFT), (Char('S'), NONE)],
        "S",
        "subnet view",
        Action::ToggleSubnet
    ),
    b!(
        Global,
        [(Char('H'), SHIFT), (Char('H'), NONE)],
        "H",
        "health view (--health)",
        Action::Health(crate::tui::action::HealthAction::Toggle)
    ),
    b!(
        Global,
        [(Char('E'), SHIFT), (Char('E'), NONE)],
        "E",
        "events view (telemetry)",
        Action::ToggleEvents
    ),
    b!(
        Global,
        [(Char('z'), NONE)],
        "z",
        "zoom pane",
        Action::ToggleZoom
    ),
    b!(
        Global,
        [(Char(':'), NONE), (Char(':'), SHIFT)],
        ":",
        "command (:ctx NAME)",
        Action::Command(CommandAction::Open)
    ),
    b!(
        Global,
        [(Char('C'), SHIFT), (Char('C'), NONE)],
        "C",
        "switch context",
        Action::Command(CommandAction::PickContext)
    ),
    b!(Global, [(Char('q'), NONE)], "q", "quit", Action::Quit),
    b!(Global, [(Char('c'), CTRL)], "C-c", "quit", Action::Quit),
    b!(
        Global,
        [(Up, NONE), (Char('k'), NONE)],
        "↑/k",
        "up",
        Action::Up
    ),
    b!(
        Global,
        [(Down, NONE), (Char('j'), NONE)],
        "↓/j",
        "down",
        Action::Down
    ),
    b!(Global, [(PageUp, NONE)], "PgUp", "page up", Action::PageUp),
    b!(
        Global,
        [(PageDown, NONE)],
        "PgDn",
        "page down",
        Action::PageDown
    ),
    b!(
        Global,
        [(Home, NONE), (Char('g'), NONE)],
        "g",
        "top",
        Action::Top
    ),
    b!(
        Global,
        [(End, NONE), (Char('G'), SHIFT), (Char('G'), NONE)],
        "G",
        "bottom",
        Action::Bottom
    ),
    b!(Global, [(Esc, NONE)], "Esc", "back", Action::Back),
    b!(
        Global,
        [(Char('1'), NONE)],
        "1-6",
        "jump to pane",
        Action::Focus(Pane::Peers)
    ),
    b!(
        Global,
        [(Char('2'), NONE)],
        "",
        "",
        Action::Focus(Pane::Routes)
    ),
    b!(
        Global,
        [(Char('3'), NONE)],
        "",
        "",
        Action::Focus(Pane::Calls)
    ),
    b!(
        Global,
        [(Char('4'), NONE)],
        "",
        "",
        Action::Focus(Pane::Output)
    ),
    b!(
        Global,
        [(Char('5'), NONE)],
        "",
        "",
        Action::Focus(Pane::Composer)
    ),
    b!(
        Global,
        [(Char('6'), NONE)],
        "",
        "",
        Action::Focus(Pane::Log)
    ),
    b!(
        In(Pane::Peers),
        [(Char('d'), NONE)],
        "d",
        "dial a multiaddr",
        Action::StartDial
    ),
    b!(
        In(Pane::Peers),
        [(Char('x'), NONE)],
        "x",
        "disconnect peer",
        Action::DisconnectPeer
    ),
    b!(
        In(Pane::Peers),
        [(Char('c'), NONE), (Enter, NONE)],
        "c/Enter",
        "use peer in composer",
        Action::CopyPeerToComposer
    ),
    b!(
        In(Pane::Peers),
        [(Char('s'), NONE)],
        "s",
        "sort (up/id/agent/rtt/protocol)",
        Action::SortPeers
    ),
    b!(
        In(Pane::Peers),
        [(Char('/'), NONE)],
        "/",
        "filter",
        Action::FilterPeers
    ),
    b!(
        In(Pane::Routes),
        [(Char('a'), NONE)],
        "a",
        "add route",
        Action::AddRoute
    ),
    b!(
        In(Pane::Routes),
        [(Char('e'), NONE), (Enter, NONE)],
        "e/Enter",
        "edit route",
        Action::EditRoute
    ),
    b!(
        In(Pane::Routes),
        [(Char('d'), NONE), (Delete, NONE)],
        "d/Del",
        "delete route",
        Action::DeleteRoute
    ),
    b!(
        In(Pane::Calls),
        [(Enter, NONE)],
        "Enter",
        "show output",
        Action::Activate
    ),
    b!(
        In(Pane::Calls),
        [(Char('c'), NONE)],
        "c",
        "cancel call",
        Action::CancelCall
    ),
    b!(
        In(Pane::Calls),
        [(Char('r'), NONE)],
        "r",
        "re-run call",
        Action::RerunCall
    ),
    b!(
        In(Pane::Calls),
        [(Char('m'), NONE)],
        "m",
        "mark for diff",
        Action::MarkDiffBase
    ),
    b!(
        In(Pane::Calls),
        [(Char('t'), NONE)],
        "t",
        "tap a served call's body",
        Action::TapCall
    ),
    b!(
        In(Pane::Calls),
        [(Char('y'), NONE)],
        "y",
        "copy as command line",
        Action::CopyCommand
    ),
    b!(
        In(Pane::Output),
        [(Char('v'), NONE)],
        "v",
        "view raw/events/text",
        Action::CycleView
    ),
    b!(
        In(Pane::Output),
        [(Char('f'), NONE)],
        "f",
        "follow tail",
        Action::ToggleFollow
    ),
    b!(
        In(Pane::Output),
        [(Char('p'), NONE), (Char(' '), NONE)],
        "p",
        "pause view",
        Action::TogglePause
    ),
    b!(
        In(Pane::Output),
        [(Char('w'), NONE)],
        "w",
        "wrap",
        Action::ToggleWrap
    ),
    b!(
        In(Pane::Output),
        [(Char('/'), NONE)],
        "/",
        "search",
        Action::StartSearch
    ),
    b!(
        In(Pane::Output),
        [(Char('n'), NONE)],
        "n/N",
        "next/prev match",
        Action::SearchNext
    ),
    b!(
        In(Pane::Output),
        [(Char('N'), SHIFT), (Char('N'), NONE)],
        "",
        "",
        Action::SearchPrev
    ),
    b!(
        In(Pane::Output),
        [(Char('s'), NONE)],
        "s",
        "save to file",
        Action::SaveOutput
    ),
    b!(
        In(Pane::Output),
        [(Char('y'), NONE)],
        "y",
        "copy (OSC 52)",
        Action::CopyOutput
    ),
    b!(
        In(Pane::Output),
        [(Char('d'), NONE)],
        "d",
        "diff with marked call",
        Action::ToggleBodyDiff
    ),
    b!(
        In(Pane::Output),
        [(Char('|'), NONE), (Char('|'), SHIFT)],
        "|",
        "jq filter",
        Action::SetJqFilter
    ),
    b!(
        In(Pane::Output),
        [(Char('t'), NONE)],
        "t",
        "token JSON path",
        Action::SetTokenPath
    ),
    b!(
        In(Pane::Output),
        [(Char('h'), NONE)],
        "h",
        "response headers",
        Action::ToggleHeaders
    ),
    b!(
        In(Pane::Composer),
        [(Enter, NONE), (Char('e'), NONE), (Char('i'), NONE)],
        "Enter",
        "edit field",
        Action::Activate
    ),
    b!(
        In(Pane::Composer),
        [(Char('s'), NONE), (Char('s'), CTRL)],
        "s",
        "send",
        Action::Send
    ),
    b!(
        In(Pane::Composer),
        [(Char('F'), SHIFT), (Char('F'), NONE)],
        "F",
        "fan-out to all API peers",
        Action::Runs(RunsAction::StartFanOut)
    ),
    b!(
        In(Pane::Composer),
        [(Char('L'), SHIFT), (Char('L'), NONE)],
        "L",
        "load run (asks how)",
        Action::Runs(RunsAction::AskLoad)
    ),
    b!(
        In(Pane::Composer),
        [(Char('D'), SHIFT), (Char('D'), NONE)],
        "D",
        "hop vs direct",
        Action::Runs(RunsAction::StartHopVsDirect)
    ),
    b!(
        In(Pane::Composer),
        [(Char('y'), NONE)],
        "y",
        "copy as command line",
        Action::CopyCommand
    ),
    b!(
        In(Pane::Composer),
        [(Char('m'), NONE)],
        "m",
        "unary/stream",
        Action::ToggleStream
    ),
    b!(
        In(Pane::Composer),
        [(Char('p'), CTRL), (Char('['), NONE)],
        "[/C-p",
        "older sent call",
        Action::HistoryPrev
    ),
    b!(
        In(Pane::Composer),
        [(Char('n'), CTRL), (Char(']'), NONE)],
        "]/C-n",
        "newer sent call",
        Action::HistoryNext
    ),
    b!(
        In(Pane::Log),
        [(Char('l'), NONE)],
        "l",
        "level filter",
        Action::CycleLogLevel
    ),
];

/// Keys while a text field is being edited: everything else is typed.
pub static EDITING: &[(&str, &str)] = &[
    ("Esc", "stop editing"),
    ("Tab", "next field"),
    ("C-s", "send"),
    ("Enter", "new line (headers, body) / next field"),
];

/// The action for `key` in `pane`, pane bindings first.
pub fn resolve(key: &KeyEvent, pane: Pane) -> Option<Action> {
    BINDINGS
        .iter()
        .filter(|b| b.scope == Scope::In(pane))
        .chain(BINDINGS.iter().filter(|b| b.scope == Scope::Global))
        .find(|b| b.keys.contains(&(key.code, key.modifiers)))
        .map(|b| (b.action)())
}

/// The short hints shown in the footer for `pane`.
pub fn footer_hints(pane: Pane) -> Vec<(&'static str, &'static str)> {
    let mut hints: Vec<_> = BINDINGS
        .iter()
        .filter(|b| b.scope == Scope::In(pane) && !b.label.is_empty())
        .map(|b| (b.label, b.help))
        .collect();
    hints.extend([("Tab", "pane"), ("?", "help"), ("q", "quit")]);
    hints
}

#[cfg(test)]
#[path = "keymap_test.rs"]
mod tests;

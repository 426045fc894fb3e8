//! The state as code outside `state/` meets it. Writes: what the console
//! (`tui/app.rs`) tells it about its node link, the terminal and the clock;
//! everything else changes through `State::update`. Reads: for benches and
//! tests that drive a console from outside the crate (views, inside it,
//! read the fields).

use std::time::{Instant, SystemTime};

use ratatui::layout::Rect;

use super::{Attached, Field, State};
use crate::control::Role;
use crate::tui::history::Entry;

/// Who this console is to its node, as the node's hello says.
pub struct LinkInfo {
    pub peer_id: String,
    pub client: String,
    pub telemetry: Option<String>,
}

impl State {
    /// A new link's identity (the first, or after re-attaching).
    pub(in crate::tui) fn linked(&mut self, info: LinkInfo) {
        self.calls.me = Some(info.client);
        self.me = info.peer_id;
        self.telemetry_addr = info.telemetry;
    }

    /// Attached to a node in another process (None: the node is ours).
    pub(in crate::tui) fn set_attached(&mut self, attached: Option<Attached>) {
        self.attached = attached;
    }

    /// Back on the node after it went away, with the role it gave us now.
    pub(in crate::tui) fn relinked(&mut self, info: LinkInfo, role: Role) {
        self.linked(info);
        if let Some(a) = &mut self.attached {
            a.gone = false;
            a.role = role;
        }
    }

    /// The node went away: what it showed stays; calls of other clients
    /// whose end was not seen are ended as such.
    pub(in crate::tui) fn node_gone(&mut self) {
        if let Some(a) = &mut self.attached {
            a.gone = true;
        }
        self.calls.lost_track_of_others(self.now);
    }

    /// The composer opened on a call given on the command line.
    pub fn prefill(&mut self, entry: &Entry) {
        self.composer.fill(entry);
        self.composer.field = Field::Body;
    }

    /// The composer's history, as read from the data directory.
    pub(in crate::tui) fn set_history(&mut self, history: Vec<Entry>) {
        self.composer.history = history;
    }

    pub(in crate::tui) fn set_read_only(&mut self, on: bool) {
        self.read_only = on;
    }

    pub(in crate::tui) fn set_user_keys(&mut self, keys: crate::tui::user_keys::UserKeys) {
        self.user_keys = keys;
    }

    /// The clock before an update (the state never reads it itself).
    pub(in crate::tui) fn tick(&mut self, now: Instant) {
        self.now = now;
    }

    /// The screen and both clocks before a frame.
    pub fn before_frame(&mut self, screen: Rect, now: Instant, wall: SystemTime) {
        self.screen = screen;
        self.now = now;
        self.wall = wall;
    }

    /// Bytes the selected call keeps for Output.
    pub fn selected_output_bytes(&self) -> usize {
        self.calls.selected().map_or(0, |c| c.output.raw.len())
    }

    /// How Output shows the selected call.
    pub fn output_mode(&self) -> super::OutputMode {
        self.output.mode
    }

    /// How far the help scrolls, which only a drawn frame knows.
    pub(in crate::tui) fn after_frame(&mut self, help_scroll_max: usize) {
        self.help_scroll_max = help_scroll_max;
    }
}

/// Reads.
impl State {
    pub fn calls(&self) -> &super::Calls {
        &self.calls
    }

    pub fn peers(&self) -> &super::PeersView {
        &self.peers
    }

    pub fn routes(&self) -> &super::RoutesView {
        &self.routes
    }

    /// Our node's peer id.
    pub fn me(&self) -> &str {
        &self.me
    }

    pub fn focus(&self) -> crate::tui::action::Pane {
        self.focus
    }

    /// The operator asked to leave.
    pub fn quitting(&self) -> bool {
        self.quit
    }
}

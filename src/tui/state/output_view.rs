//! How the Output pane shows the selected call: view mode, follow, scroll,
//! pause, wrap, search and the response head.

use super::calls::CallView;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputMode {
    Raw,
    Events,
    Text,
}

pub struct OutputView {
    pub mode: OutputMode,
    pub follow: bool,
    /// Lines scrolled up from the tail when not following.
    pub scroll: usize,
    pub wrap: bool,
    /// While paused the view shows the first (raw bytes, events, text bytes) it had.
    pub paused: Option<(usize, usize, usize)>,
    pub search: Option<String>,
    /// Index of the current match, counted from the end.
    pub search_hit: usize,
    /// Show the response head (protocol, status, headers) above the body.
    pub show_headers: bool,
    /// Show each event (or the whole body) through this jq filter (`|`).
    pub jq: Option<crate::tui::jq::JqFilter>,
    /// Show the selected call's body as a diff against the marked call's (`d`).
    pub diff: bool,
}

impl OutputView {
    pub fn new() -> Self {
        Self {
            mode: OutputMode::Text,
            follow: true,
            scroll: 0,
            wrap: true,
            paused: None,
            search: None,
            search_hit: 0,
            show_headers: false,
            jq: None,
            diff: false,
        }
    }

    /// Another call was selected: show its tail.
    pub fn reset(&mut self) {
        self.scroll = 0;
        self.follow = true;
        self.paused = None;
    }

    /// Scrolls by `delta` lines (negative: up, which stops following).
    pub fn scroll_by(&mut self, delta: isize) {
        if delta < 0 {
            self.follow = false;
            self.scroll = self.scroll.saturating_add(delta.unsigned_abs());
        } else {
            self.scroll = self.scroll.saturating_sub(delta as usize);
            if self.scroll == 0 {
                self.follow = true;
            }
        }
    }

    pub fn to_bottom(&mut self) {
        self.follow = true;
        self.scroll = 0;
    }

    pub fn cycle_mode(&mut self) {
        self.mode = match self.mode {
            OutputMode::Raw => OutputMode::Events,
            OutputMode::Events => OutputMode::Text,
            OutputMode::Text => OutputMode::Raw,
        };
        self.scroll = 0;
    }

    pub fn toggle_follow(&mut self) {
        self.follow = !self.follow;
        if self.follow {
            self.scroll = 0;
            self.paused = None;
        }
    }

    /// Freezes the view at what `call` has now, or unfreezes it.
    pub fn toggle_pause(&mut self, call: Option<&CallView>) {
        self.paused = match (&self.paused, call) {
            (None, Some(c)) => Some((
                c.output.raw.len(),
                c.output.events.len(),
                c.output.text.len(),
            )),
            _ => None,
        };
    }

    pub fn set_search(&mut self, text: String) {
        self.search = (!text.is_empty()).then_some(text);
        self.search_hit = 0;
        self.follow = false;
    }

    /// What Copy takes from `call` in this mode.
    pub fn copy_text(&self, call: &CallView) -> String {
        match self.mode {
            OutputMode::Text => call.output.text.clone(),
            _ => String::from_utf8_lossy(&call.output.raw).into_owned(),
        }
    }
}

impl Default for OutputView {
    fn default() -> Self {
        Self::new()
    }
}

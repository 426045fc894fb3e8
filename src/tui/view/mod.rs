//! Drawing: one file per screen region. Views only read the state.

mod calls;
mod composer;
mod footer;
mod help;
mod log;
mod output;
mod peers;
mod routes;
mod status;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, BorderType, Borders};
use ratatui::Frame;

use super::action::Pane;
use super::state::State;

/// Colours, or none at all when NO_COLOR is set.
#[derive(Clone, Copy)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    pub fn from_env() -> Self {
        Self {
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }
    pub fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }
    pub fn accent(&self) -> Style {
        self.fg(Color::Cyan)
    }
    pub fn dim(&self) -> Style {
        if self.color {
            Style::default().fg(Color::DarkGray)
        } else {
            Style::default().add_modifier(Modifier::DIM)
        }
    }
    pub fn ok(&self) -> Style {
        self.fg(Color::Green)
    }
    pub fn warn(&self) -> Style {
        self.fg(Color::Yellow)
    }
    pub fn err(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }
    pub fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
}

/// Where each region goes on a screen of `area`.
pub struct Regions {
    pub status: Rect,
    pub peers: Rect,
    pub routes: Rect,
    pub calls: Rect,
    pub output: Rect,
    pub composer: Rect,
    pub log: Rect,
    pub footer: Rect,
}

pub fn regions(area: Rect) -> Regions {
    let log_h = if area.height >= 30 { 6 } else { 4 };
    let [status, main, log, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(8),
        Constraint::Length(log_h),
        Constraint::Length(1),
    ])
    .areas(area);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(main);
    let [peers, routes, calls] = Layout::vertical([
        Constraint::Percentage(28),
        Constraint::Percentage(30),
        Constraint::Percentage(42),
    ])
    .areas(left);
    let composer_h = if main.height >= 24 { 11 } else { 9 };
    let [output, composer] =
        Layout::vertical([Constraint::Min(4), Constraint::Length(composer_h)]).areas(right);
    Regions {
        status,
        peers,
        routes,
        calls,
        output,
        composer,
        log,
        footer,
    }
}

/// The pane under a screen position (for mouse clicks and wheel).
pub fn pane_at(state: &State, column: u16, row: u16) -> Option<Pane> {
    let r = regions(state.screen);
    let pos = ratatui::layout::Position { x: column, y: row };
    [
        (r.peers, Pane::Peers),
        (r.routes, Pane::Routes),
        (r.calls, Pane::Calls),
        (r.output, Pane::Output),
        (r.composer, Pane::Composer),
        (r.log, Pane::Log),
    ]
    .into_iter()
    .find(|(rect, _)| rect.contains(pos))
    .map(|(_, p)| p)
}

/// A pane's frame, highlighted when focused.
pub fn pane_block<'a>(state: &State, theme: &Theme, pane: Pane, title: String) -> Block<'a> {
    let focused = state.focus == pane;
    let n = Pane::ALL.iter().position(|p| *p == pane).unwrap_or(0) + 1;
    Block::default()
        .borders(Borders::ALL)
        .border_type(if focused {
            BorderType::Thick
        } else {
            BorderType::Plain
        })
        .border_style(if focused { theme.accent() } else { theme.dim() })
        .title(format!(" {n} {title} "))
}

pub fn draw(frame: &mut Frame, state: &State, theme: &Theme) {
    let area = frame.area();
    let r = regions(area);
    status::draw(frame, r.status, state, theme);
    peers::draw(frame, r.peers, state, theme);
    routes::draw(frame, r.routes, state, theme);
    calls::draw(frame, r.calls, state, theme);
    output::draw(frame, r.output, state, theme);
    composer::draw(frame, r.composer, state, theme);
    log::draw(frame, r.log, state, theme);
    footer::draw(frame, r.footer, state, theme);
    if state.prompt.is_some() || state.question.is_some() {
        help::draw_prompt(frame, area, state, theme);
    }
    if state.help {
        help::draw(frame, area, theme);
    }
}

/// Formats a duration compactly: 850µs, 12.3ms, 4.2s, 3m10s.
pub fn fmt_dur(d: std::time::Duration) -> String {
    let us = d.as_micros();
    if us < 1000 {
        format!("{us}µs")
    } else if us < 1_000_000 {
        format!("{:.1}ms", us as f64 / 1000.0)
    } else if d.as_secs() < 120 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

pub fn fmt_bytes(n: u64) -> String {
    if n < 1024 {
        format!("{n}B")
    } else if n < 1024 * 1024 {
        format!("{:.1}K", n as f64 / 1024.0)
    } else if n < 1024 * 1024 * 1024 {
        format!("{:.1}M", n as f64 / (1024.0 * 1024.0))
    } else {
        format!("{:.2}G", n as f64 / (1024.0 * 1024.0 * 1024.0))
    }
}

/// `12D3KooW…abcdef`: enough to tell peers apart.
pub fn short_peer(id: &str) -> String {
    if id.len() <= 16 {
        id.to_string()
    } else {
        format!("{}…{}", &id[..8], &id[id.len() - 6..])
    }
}

#[cfg(test)]
#[path = "snapshots_test.rs"]
mod snapshots_test;

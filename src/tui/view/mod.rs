//! Drawing: one file per screen region. Views only read the state.

mod calls;
mod composer;
mod events;
mod footer;
mod health;
pub(super) mod help;
mod hop_direct;
mod log;
mod output;
mod peers;
mod routes;
mod runs;
mod status;
mod subnet;

use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, BorderType, Borders};
use ratatui::Frame;

use super::action::Pane;
use super::layout::regions;
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
    let r = regions(area, state.zoomed());
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
    if state.events.show {
        events::draw(frame, area, state, theme);
    }
    runs::draw(frame, area, state, theme);
    if state.subnet.show {
        subnet::draw(frame, area, state, theme);
    }
    if state.health.show {
        health::draw(frame, area, state, theme);
    }
    if state.help {
        help::draw(frame, area, state, theme);
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

/// `…abcdef`: the last characters of an address's peer id, for tables.
pub fn short(addr: &str) -> String {
    let id = addr.rsplit('/').next().unwrap_or(addr);
    let n = id.chars().count();
    format!(
        "…{}",
        id.chars().skip(n.saturating_sub(6)).collect::<String>()
    )
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
#[path = "snapshots_health_test.rs"]
mod snapshots_health_test;
#[cfg(test)]
#[path = "snapshots_modes_test.rs"]
mod snapshots_modes_test;
#[cfg(test)]
#[path = "snapshots_test.rs"]
mod snapshots_test;

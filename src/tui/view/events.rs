//! The Events view, over the whole screen: telemetry from template nodes,
//! newest first, with whether each signature holds.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Row, Table};
use ratatui::Frame;

use super::help::centered;
use super::{short_peer, Theme};
use crate::tui::state::{node_of, State};

/// `HH:MM:SS` (UTC) of a sender's timestamp in seconds.
fn clock(ts: Option<f64>) -> String {
    match ts {
        Some(t) if t.is_finite() && t >= 0.0 => {
            let s = (t as u64) % 86_400;
            format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
        }
        _ => "--:--:--".into(),
    }
}

pub fn draw(frame: &mut Frame, area: Rect, state: &State, theme: &Theme) {
    let rect = centered(area, area.width, area.height);
    frame.render_widget(Clear, rect);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" Events (telemetry) — n node, k kind, E or Esc to close ");
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let v = &state.events;
    let [summary, table] =
        Layout::vertical([Constraint::Length(2), Constraint::Min(3)]).areas(inner);
    let filter = |f: &Option<String>| f.clone().unwrap_or_else(|| "all".into());
    let lines = vec![
        Line::from(vec![
            Span::styled("received ", theme.dim()),
            Span::raw(format!("{} verified, ", v.verified)),
            Span::styled(
                format!("{} NOT verified", v.unverified),
                if v.unverified > 0 {
                    theme.err()
                } else {
                    theme.dim()
                },
            ),
            Span::styled(
                if v.dropped > 0 {
                    format!(" ({} oldest dropped)", v.dropped)
                } else {
                    String::new()
                },
                theme.dim(),
            ),
        ]),
        Line::from(vec![
            Span::styled("node ", theme.dim()),
            Span::raw(filter(&v.node_filter)),
            Span::styled("  kind ", theme.dim()),
            Span::raw(filter(&v.kind_filter)),
        ]),
    ];
    frame.render_widget(Paragraph::new(lines), summary);

    let rows: Vec<Row> = v
        .shown()
        .take(table.height as usize)
        .map(|ev| {
            let (mark, style) = if ev.verified {
                ("✓", theme.ok())
            } else {
                ("✗", theme.err())
            };
            let detail = match &ev.error {
                Some(e) => e.clone(),
                None => ev.data.to_string(),
            };
            Row::new(vec![
                clock(ev.timestamp),
                mark.to_string(),
                node_of(ev),
                short_peer(ev.peer_id.as_deref().unwrap_or("?")),
                ev.event.clone().unwrap_or_else(|| "?".into()),
                detail,
            ])
            .style(style)
        })
        .collect();
    let empty = rows.is_empty();
    let widget = Table::new(
        rows,
        [
            Constraint::Length(8),
            Constraint::Length(1),
            Constraint::Length(5),
            Constraint::Length(16),
            Constraint::Length(16),
            Constraint::Min(10),
        ],
    )
    .header(Row::new(["time", "", "node", "peer", "event", "data"]).style(theme.accent()))
    .block(Block::default().borders(Borders::TOP));
    frame.render_widget(widget, table);
    if empty {
        let [_, hint] = Layout::vertical([Constraint::Length(2), Constraint::Min(1)]).areas(table);
        let text = match state.telemetry_addr.as_deref() {
            Some(addr) => format!("no events yet: start nodes with --telemetry_url ws://{addr}"),
            None => "telemetry is off: start peerapi with --telemetry-listen IP:PORT".into(),
        };
        frame.render_widget(Paragraph::new(text).style(theme.dim()), hint);
    }
}

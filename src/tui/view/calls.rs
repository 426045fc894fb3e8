use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Paragraph, Row, Table, TableState};
use ratatui::Frame;

use super::{fmt_bytes, fmt_dur, pane_block, short_peer, Theme};
use crate::tui::action::Pane;
use crate::tui::state::{CallState, State};

pub fn draw(frame: &mut Frame, area: Rect, state: &State, theme: &Theme) {
    let block = pane_block(
        state,
        theme,
        Pane::Calls,
        format!("Calls ({} in flight)", state.in_flight()),
    );
    if state.calls.list.is_empty() {
        frame.render_widget(
            Paragraph::new("no calls yet — compose one and press s")
                .style(theme.dim())
                .block(block),
            area,
        );
        return;
    }
    let now = state.now;
    // Narrow screens keep the columns that matter most.
    let wide = area.width >= 64;
    let rows = state.calls.list.iter().map(|c| {
        let dir = if c.outgoing { "→" } else { "←" };
        let style = match c.state {
            CallState::Failed => theme.err(),
            CallState::Cancelled => theme.warn(),
            CallState::Done => theme.ok(),
            _ => theme.accent(),
        };
        let dur = c
            .duration
            .unwrap_or_else(|| now.saturating_duration_since(c.started));
        let rate = if c.stream {
            c.output
                .metrics
                .rate_window(now)
                .or(c.output.metrics.rate_overall())
                .map(|r| format!("{r:.1}t/s"))
                .unwrap_or_default()
        } else {
            String::new()
        };
        // A finished 2.0.0 call shows its HTTP status; the rest their state.
        let state_text = match (c.state, c.status) {
            (crate::tui::state::CallState::Done, Some(s)) => format!("done {s}"),
            (state, _) if c.status.is_some() && state.in_flight() => {
                format!("{} {}", state.label(), c.status.unwrap_or_default())
            }
            (state, _) => state.label().to_string(),
        };
        let cells = vec![
            format!("{dir}{}", c.id),
            c.route.clone(),
            if c.stream {
                "strm".into()
            } else {
                c.method.clone()
            },
            state_text,
            fmt_bytes(c.bytes),
            fmt_dur(dur),
            rate,
            short_peer(&c.peer),
        ];
        Row::new(pick(cells, wide)).style(style)
    });
    let widths = if wide {
        vec![
            Constraint::Length(4),
            Constraint::Length(10),
            Constraint::Length(5),
            Constraint::Length(10),
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Length(8),
            Constraint::Min(6),
        ]
    } else {
        // #, ROUTE, STATE, TIME, RATE in 34 columns.
        vec![
            Constraint::Length(3),
            Constraint::Length(7),
            Constraint::Length(8),
            Constraint::Length(7),
            Constraint::Min(5),
        ]
    };
    let header = [
        "#", "ROUTE", "KIND", "STATE", "BYTES", "TIME", "RATE", "PEER",
    ];
    let table = Table::new(rows, widths)
        .header(Row::new(pick(header.to_vec(), wide)).style(theme.dim()))
        .row_highlight_style(theme.selected())
        .block(block);
    let mut ts = TableState::default().with_selected(Some(state.calls.sel));
    frame.render_stateful_widget(table, area, &mut ts);
}

/// All columns when wide; otherwise #, ROUTE, STATE, TIME, RATE.
fn pick<T>(cols: Vec<T>, wide: bool) -> Vec<T> {
    if wide {
        return cols;
    }
    cols.into_iter()
        .enumerate()
        .filter(|(i, _)| matches!(i, 0 | 1 | 3 | 5 | 6))
        .map(|(_, c)| c)
        .collect()
}

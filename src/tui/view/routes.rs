use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Paragraph, Row, Table, TableState};
use ratatui::Frame;

use super::{pane_block, Theme};
use crate::tui::action::Pane;
use crate::tui::state::State;

pub fn draw(frame: &mut Frame, area: Rect, state: &State, theme: &Theme) {
    let table_now = state.routes.table.current();
    let file = state.routes.table.file_state();
    let block = pane_block(
        state,
        theme,
        Pane::Routes,
        format!("Routes ({})", table_now.len()),
    );
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut banner = Vec::new();
    if let Some(err) = &file.last_error {
        // The status bar already says the last good table is kept.
        let short = err.trim_end_matches("; the last good table stays in force");
        banner.push(Paragraph::new(format!("⚠ {short}")).style(theme.err()));
    } else if let Some((when, what)) = &state.routes.change {
        let ago = state
            .wall
            .duration_since(*when)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        banner.push(Paragraph::new(format!("reloaded {ago}s ago: {what}")).style(theme.ok()));
    } else if let Some(p) = &file.path {
        // The tail of the path is what tells files apart; the status bar
        // and the log have the whole path.
        let parts: Vec<_> = p.components().rev().take(2).collect();
        let tail: std::path::PathBuf = parts.into_iter().rev().collect();
        banner.push(Paragraph::new(format!("file …/{}", tail.display())).style(theme.dim()));
    } else {
        banner.push(Paragraph::new("no route file (start with --routes FILE)").style(theme.dim()));
    }
    // An error gets room to say where the file is wrong.
    let banner_h = if file.last_error.is_some() { 2 } else { 1 };
    let [top, rest] =
        ratatui::layout::Layout::vertical([Constraint::Length(banner_h), Constraint::Min(0)])
            .areas(inner);
    for b in banner {
        frame.render_widget(b.wrap(ratatui::widgets::Wrap { trim: true }), top);
    }
    if table_now.is_empty() {
        frame.render_widget(
            Paragraph::new("no routes — a to add one").style(theme.dim()),
            rest,
        );
        return;
    }
    let rows = table_now.iter().map(|(name, r)| {
        Row::new(vec![
            name.clone(),
            if r.stream {
                "stream".into()
            } else {
                "unary".into()
            },
            r.url.clone(),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(12),
            Constraint::Length(6),
            Constraint::Min(10),
        ],
    )
    .row_highlight_style(theme.selected());
    let mut ts = TableState::default()
        .with_selected((state.focus == Pane::Routes).then_some(state.routes.sel));
    frame.render_stateful_widget(table, rest, &mut ts);
}

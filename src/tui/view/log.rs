use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::{pane_block, Theme};
use crate::tui::action::Pane;
use crate::tui::state::State;

pub fn draw(frame: &mut Frame, area: Rect, state: &State, theme: &Theme) {
    let title = format!("Log (≥{})", state.log.level);
    let block = pane_block(state, theme, Pane::Log, title);
    let height = block.inner(area).height as usize;
    let lines: Vec<&(tracing::Level, String)> = state
        .log
        .lines
        .iter()
        .filter(|(l, _)| *l <= state.log.level)
        .collect();
    let end = lines.len().saturating_sub(state.log.scroll);
    let start = end.saturating_sub(height);
    let shown: Vec<Line> = lines[start..end]
        .iter()
        .map(|(level, text)| {
            let style = match *level {
                tracing::Level::ERROR => theme.err(),
                tracing::Level::WARN => theme.warn(),
                tracing::Level::INFO => ratatui::style::Style::default(),
                _ => theme.dim(),
            };
            Line::styled(format!("{:5} {text}", level.as_str()), style)
        })
        .collect();
    frame.render_widget(Paragraph::new(shown).block(block), area);
}

use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use super::Theme;
use crate::tui::keymap::{Scope, BINDINGS, EDITING};
use crate::tui::state::{Question, State};

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [v] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [h] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(v);
    h
}

pub fn draw(frame: &mut Frame, area: Rect, theme: &Theme) {
    let mut lines = Vec::new();
    let mut scope = None;
    for b in BINDINGS.iter().filter(|b| !b.label.is_empty()) {
        if scope != Some(b.scope) {
            scope = Some(b.scope);
            let name = match b.scope {
                Scope::Global => "Everywhere".to_string(),
                Scope::In(p) => p.title().to_string(),
            };
            lines.push(Line::styled(name, theme.accent()));
        }
        lines.push(Line::from(vec![
            Span::styled(format!("  {:<9}", b.label), theme.ok()),
            Span::raw(b.help),
        ]));
    }
    lines.push(Line::styled("Editing a field", theme.accent()));
    for (k, h) in EDITING {
        lines.push(Line::from(vec![
            Span::styled(format!("  {k:<9}"), theme.ok()),
            Span::raw(*h),
        ]));
    }
    lines.push(Line::styled(
        "Mouse: click a pane to focus it, wheel to scroll",
        theme.dim(),
    ));
    // Two columns when the screen is short.
    let rect = centered(area, 76, area.height.saturating_sub(2));
    frame.render_widget(Clear, rect);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" Help — ? or Esc to close ");
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let per_col = inner.height as usize;
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(inner);
    let split = per_col.min(lines.len());
    let rest: Vec<Line> = lines.split_off(split);
    frame.render_widget(Paragraph::new(lines), left);
    frame.render_widget(Paragraph::new(rest), right);
}

pub fn draw_prompt(frame: &mut Frame, area: Rect, state: &State, theme: &Theme) {
    if let Some(q) = &state.question {
        let text = match q {
            Question::Quit => format!(
                "{} calls are in flight. Quit anyway? (y/n)",
                state.in_flight()
            ),
            Question::DeleteRoute(name) => {
                format!("Delete route '{name}' from the route file? (y/n)")
            }
        };
        let rect = centered(area, (text.len() as u16 + 4).min(area.width), 3);
        frame.render_widget(Clear, rect);
        frame.render_widget(
            Paragraph::new(text)
                .style(theme.warn())
                .block(Block::default().borders(Borders::ALL)),
            rect,
        );
        return;
    }
    if let Some(p) = &state.prompt {
        let rect = centered(area, 72, if p.error.is_some() { 4 } else { 3 });
        frame.render_widget(Clear, rect);
        let block = Block::default()
            .borders(Borders::ALL)
            .title(format!(" {} ", p.title))
            .border_style(theme.accent());
        let inner = block.inner(rect);
        frame.render_widget(block, rect);
        let [input, err] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
        frame.render_widget(&p.input, input);
        if let Some(e) = &p.error {
            frame.render_widget(Paragraph::new(e.as_str()).style(theme.err()), err);
        }
    }
}

use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use super::Theme;
use crate::tui::keymap::{Scope, BINDINGS, EDITING};
use crate::tui::state::{Question, State};

pub(super) fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [v] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [h] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(v);
    h
}

/// The help's box on a screen of `area`, its lines, and how far they scroll.
fn laid_out(area: Rect, state: &State, theme: &Theme) -> (Rect, Vec<Line<'static>>, usize) {
    let rect = centered(area, 78, area.height);
    let width = rect.width.saturating_sub(4).max(10) as usize;
    let lines = help_lines(state, width, theme);
    let visible = rect.height.saturating_sub(2) as usize;
    let max_scroll = lines.len().saturating_sub(visible);
    (rect, lines, max_scroll)
}

/// How far the help scrolls on a screen of `area`: the console tells the
/// state after each frame (a view only reads state).
pub fn max_scroll(area: Rect, state: &State, theme: &Theme) -> usize {
    laid_out(area, state, theme).2
}

pub fn draw(frame: &mut Frame, area: Rect, state: &State, theme: &Theme) {
    let (rect, lines, max_scroll) = laid_out(area, state, theme);
    frame.render_widget(Clear, rect);
    let scroll = state.help_scroll.min(max_scroll);
    let mut block = Block::default()
        .borders(Borders::ALL)
        .title(" Help — ? or Esc to close ");
    // Say there is more, and where, rather than cutting it silently.
    if max_scroll > 0 {
        let where_ = match (scroll > 0, scroll < max_scroll) {
            (true, true) => "↑↓ more",
            (false, _) => "↓ more",
            (true, false) => "↑ more",
        };
        block = block.title_bottom(
            Line::from(format!(
                " {where_} · j/k PgUp/PgDn g/G · line {} of {} ",
                scroll + 1,
                lines.len()
            ))
            .right_aligned(),
        );
    }
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    frame.render_widget(Paragraph::new(lines).scroll((scroll as u16, 0)), inner);
}

/// Every line of the help, wrapped to `width`.
fn help_lines(state: &State, width: usize, theme: &Theme) -> Vec<Line<'static>> {
    // One compact paragraph per scope, so every binding fits on 80x24.
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    // The operator's own keys first: they win over the defaults below.
    let own = &state.user_keys.keys;
    if !own.is_empty() {
        let items = own.iter().map(|k| format!("{} {}", k.key, k.help()));
        sections.push(("Yours".into(), items.collect()));
    }
    for b in BINDINGS.iter().filter(|b| !b.label.is_empty()) {
        let name = match b.scope {
            Scope::Global => "Everywhere".to_string(),
            Scope::In(p) => p.title().to_string(),
        };
        match sections.last_mut() {
            Some((n, items)) if *n == name => items.push(format!("{} {}", b.label, b.help)),
            _ => sections.push((name, vec![format!("{} {}", b.label, b.help)])),
        }
    }
    sections.push((
        "Editing".into(),
        EDITING.iter().map(|(k, h)| format!("{k} {h}")).collect(),
    ));
    sections.push((
        "Mouse".into(),
        vec!["click focuses a pane, wheel scrolls".into()],
    ));
    let mut lines = Vec::new();
    for (name, items) in sections {
        let text = items.join(" · ");
        let mut first = true;
        for piece in super::output::wrap(&text, width.saturating_sub(12)) {
            let label = if first {
                format!("{name:<11} ")
            } else {
                " ".repeat(12)
            };
            first = false;
            lines.push(Line::from(vec![
                Span::styled(label, theme.accent()),
                Span::raw(piece),
            ]));
        }
    }
    lines
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
        let under = p.error.as_ref().map(|e| (e, theme.err()));
        let under = under.or(p.hint.as_ref().map(|h| (h, theme.dim())));
        let rect = centered(area, 72, if under.is_some() { 4 } else { 3 });
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
        if let Some((text, style)) = under {
            frame.render_widget(Paragraph::new(text.as_str()).style(style), err);
        }
    }
}

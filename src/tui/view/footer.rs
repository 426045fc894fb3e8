use std::time::Duration;

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;

use super::Theme;
use crate::tui::keymap;
use crate::tui::state::State;

/// How long a notice replaces the key hints.
const NOTICE_FOR: Duration = Duration::from_secs(4);

pub fn draw(frame: &mut Frame, area: Rect, state: &State, theme: &Theme) {
    if let Some((text, at)) = &state.notice {
        if state.now.saturating_duration_since(*at) < NOTICE_FOR {
            draw_notice(frame, area, text, theme);
            return;
        }
    }
    let hints: Vec<(&str, &str)> = if state.prompt.is_some() {
        vec![("Enter", "ok"), ("Esc", "cancel")]
    } else if state.question.is_some() {
        vec![("y", "yes"), ("n/Esc", "no")]
    } else if state.composer.editing && state.focus == crate::tui::action::Pane::Composer {
        keymap::EDITING.to_vec()
    } else {
        keymap::footer_hints(state.focus)
    };
    let mut spans = vec![Span::raw(" ")];
    for (k, h) in hints {
        spans.push(Span::styled(k.to_string(), theme.accent()));
        spans.push(Span::raw(format!(" {h}  ")));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// A notice on the footer line; a longer one (a copied command line) grows
/// upwards over the panes, so it is read whole and can be selected with the
/// mouse, for as long as it shows.
fn draw_notice(frame: &mut Frame, area: Rect, text: &str, theme: &Theme) {
    let width = area.width.saturating_sub(1).max(10) as usize;
    let mut lines = super::output::wrap(text, width);
    let room = (frame.area().height / 2).max(1) as usize;
    if lines.len() > room {
        lines.truncate(room);
        if let Some(last) = lines.last_mut() {
            last.push('…');
        }
    }
    let height = lines.len() as u16;
    let rect = Rect {
        y: (area.y + 1).saturating_sub(height),
        height,
        ..area
    };
    frame.render_widget(Clear, rect);
    let lines: Vec<Line> = lines
        .into_iter()
        .map(|l| Line::styled(format!(" {l}"), theme.ok()))
        .collect();
    frame.render_widget(Paragraph::new(lines), rect);
}

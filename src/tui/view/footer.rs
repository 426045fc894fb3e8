use std::time::Duration;

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::Theme;
use crate::tui::keymap;
use crate::tui::state::State;

/// How long a notice replaces the key hints.
const NOTICE_FOR: Duration = Duration::from_secs(4);

pub fn draw(frame: &mut Frame, area: Rect, state: &State, theme: &Theme) {
    if let Some((text, at)) = &state.notice {
        if state.now.saturating_duration_since(*at) < NOTICE_FOR {
            frame.render_widget(
                Paragraph::new(Line::styled(format!(" {text}"), theme.ok())),
                area,
            );
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

//! Terminal events to actions: who owns the keyboard right now (a question,
//! the help overlay, a prompt, the composer while editing, or the keymap).
//! The state never sees a raw key except as text for a field.

use ratatui::crossterm::event::{
    Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEventKind,
};

use super::action::RunsAction;
use super::action::{Action, Pane};
use super::keymap;
use super::state::{Field, RunsView, State};

/// The action a terminal event means in the current state, if any.
pub fn action_for(state: &State, ev: Event) -> Option<Action> {
    match ev {
        Event::Key(key) if key.kind != KeyEventKind::Release => key_action(state, key),
        Event::Mouse(m) => match m.kind {
            MouseEventKind::Down(_) => Some(Action::MouseClick {
                column: m.column,
                row: m.row,
            }),
            MouseEventKind::ScrollDown | MouseEventKind::ScrollUp if state.help => Some(
                Action::HelpScroll(if m.kind == MouseEventKind::ScrollDown {
                    3
                } else {
                    -3
                }),
            ),
            MouseEventKind::ScrollDown | MouseEventKind::ScrollUp => Some(Action::Scroll {
                column: m.column,
                row: m.row,
                down: m.kind == MouseEventKind::ScrollDown,
            }),
            _ => None,
        },
        Event::Paste(text) => Some(Action::Paste(text)),
        _ => None,
    }
}

fn key_action(state: &State, key: KeyEvent) -> Option<Action> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if key.code == KeyCode::Char('c') && ctrl && state.prompt.is_none() {
        return Some(Action::Quit);
    }
    if state.question.is_some() {
        return match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => Some(Action::Confirm(true)),
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => Some(Action::Confirm(false)),
            _ => None,
        };
    }
    if state.help {
        return match key.code {
            KeyCode::Esc | KeyCode::Char('?') | KeyCode::Char('q') => Some(Action::ToggleHelp),
            KeyCode::Down | KeyCode::Char('j') => Some(Action::HelpScroll(1)),
            KeyCode::Up | KeyCode::Char('k') => Some(Action::HelpScroll(-1)),
            KeyCode::PageDown | KeyCode::Char(' ') => Some(Action::HelpScroll(10)),
            KeyCode::PageUp => Some(Action::HelpScroll(-10)),
            KeyCode::Home | KeyCode::Char('g') => Some(Action::HelpScroll(-(u16::MAX as isize))),
            KeyCode::End | KeyCode::Char('G') => Some(Action::HelpScroll(u16::MAX as isize)),
            _ => None,
        };
    }
    if state.health.show && state.prompt.is_none() {
        use crate::tui::action::HealthAction as H;
        return Some(Action::Health(match key.code {
            KeyCode::Esc if state.health.detail => H::Detail,
            KeyCode::Esc | KeyCode::Char('H') | KeyCode::Char('q') => H::Toggle,
            KeyCode::Enter => H::Detail,
            KeyCode::Char('s') => H::NextSort,
            KeyCode::Char('/') => H::OpenFilter,
            KeyCode::Up | KeyCode::Char('k') => H::Up,
            KeyCode::Down | KeyCode::Char('j') => H::Down,
            _ => return None,
        }));
    }
    if state.subnet.show && state.prompt.is_none() {
        return matches!(
            key.code,
            KeyCode::Esc | KeyCode::Char('S') | KeyCode::Char('q')
        )
        .then_some(Action::ToggleSubnet);
    }
    if !matches!(state.runs, RunsView::Hidden) && state.prompt.is_none() {
        return Some(Action::Runs(match key.code {
            KeyCode::Esc | KeyCode::Char('q') => RunsAction::Close,
            KeyCode::Char('s') => RunsAction::NextSort,
            KeyCode::Char('d') => RunsAction::ToggleDiff,
            KeyCode::Char('r') => RunsAction::MarkReference,
            KeyCode::Up | KeyCode::Char('k') => RunsAction::Up,
            KeyCode::Down | KeyCode::Char('j') => RunsAction::Down,
            _ => return None,
        }));
    }
    if state.events.show && state.prompt.is_none() {
        return match key.code {
            KeyCode::Esc | KeyCode::Char('E') | KeyCode::Char('q') => Some(Action::ToggleEvents),
            KeyCode::Char('n') => Some(Action::EventsNextNode),
            KeyCode::Char('k') => Some(Action::EventsNextKind),
            _ => None,
        };
    }
    if state.prompt.is_some() {
        return Some(match key.code {
            KeyCode::Esc => Action::PromptCancel,
            KeyCode::Enter => Action::PromptSubmit,
            _ => Action::PromptKey(key),
        });
    }
    if state.focus == Pane::Composer && state.composer.editing {
        return Some(match key.code {
            KeyCode::Esc => Action::StopEditing,
            KeyCode::Tab => Action::NextField,
            KeyCode::BackTab => Action::PrevField,
            KeyCode::Char('s') if ctrl => Action::Send,
            // Enter moves on in one-line fields; Headers and Body take newlines.
            KeyCode::Enter if !matches!(state.composer.field, Field::Headers | Field::Body) => {
                Action::NextField
            }
            _ => Action::EditKey(key),
        });
    }
    if let Some(own) = state.user_keys.resolve(&key, state.focus) {
        return own;
    }
    keymap::resolve(&key, state.focus)
}

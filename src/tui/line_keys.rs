//! The line-editing keys people's shells taught them, for every one-line
//! input of the console (prompts, the composer's fields). ratatui-textarea
//! binds Ctrl-U to undo, so the shell's "clear the line" did nothing and a
//! new load plan was appended to the offered one.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui_textarea::{CursorMove, TextArea};

/// Applies `key` to `input` as a shell's line editor would: Ctrl-U deletes
/// to the start of the line, Ctrl-W the word before the cursor, Ctrl-K to
/// the end, Ctrl-A and Ctrl-E go to the start and the end. Other keys go
/// to the text area's own bindings.
pub fn apply(input: &mut TextArea<'static>, key: KeyEvent) {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    match key.code {
        KeyCode::Char('u') if ctrl => {
            input.delete_line_by_head();
        }
        KeyCode::Char('w') if ctrl => {
            input.delete_word();
        }
        KeyCode::Char('k') if ctrl => {
            input.delete_line_by_end();
        }
        KeyCode::Char('a') if ctrl => input.move_cursor(CursorMove::Head),
        KeyCode::Char('e') if ctrl => input.move_cursor(CursorMove::End),
        _ => {
            input.input(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctrl(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    fn typed(input: &mut TextArea<'static>, text: &str) {
        for c in text.chars() {
            apply(input, KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
        }
    }

    #[test]
    fn ctrl_u_clears_an_offered_plan_before_a_new_one() {
        let mut input = TextArea::from(vec!["c=8 n=200".to_string()]);
        input.move_cursor(CursorMove::End);
        apply(&mut input, ctrl('u'));
        typed(&mut input, "c=4 n=24");
        assert_eq!(input.lines(), ["c=4 n=24"]);
    }

    #[test]
    fn ctrl_w_a_and_e_edit_as_a_shell_does() {
        let mut input = TextArea::from(vec!["GET health".to_string()]);
        input.move_cursor(CursorMove::End);
        apply(&mut input, ctrl('w'));
        assert_eq!(input.lines(), ["GET "]);
        apply(&mut input, ctrl('a'));
        typed(&mut input, "x");
        apply(&mut input, ctrl('e'));
        typed(&mut input, "y");
        assert_eq!(input.lines(), ["xGET y"]);
        apply(&mut input, ctrl('a'));
        apply(&mut input, ctrl('k'));
        assert_eq!(input.lines(), [""]);
    }
}

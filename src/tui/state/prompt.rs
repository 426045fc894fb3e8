//! One-line prompts (dial, route edits, search, paths) and yes/no questions.

use ratatui_textarea::TextArea;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PromptKind {
    Dial,
    AddRoute,
    EditRoute(String),
    Search,
    SavePath,
    TokenPath,
}

pub struct Prompt {
    pub kind: PromptKind,
    pub title: String,
    pub input: TextArea<'static>,
    pub error: Option<String>,
}

impl Prompt {
    pub fn new(kind: PromptKind, title: &str, initial: &str) -> Self {
        let mut input = TextArea::from(vec![initial.to_string()]);
        input.move_cursor(ratatui_textarea::CursorMove::End);
        Self {
            kind,
            title: title.to_string(),
            input,
            error: None,
        }
    }

    /// The typed text on one line, trimmed.
    pub fn text(&self) -> String {
        self.input.lines().join(" ").trim().to_string()
    }

    /// The same prompt again, saying what was wrong.
    pub fn with_error(self, error: String) -> Self {
        Self {
            error: Some(error),
            ..self
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Question {
    Quit,
    DeleteRoute(String),
}

/// A route as typed in the add/edit prompt: `NAME URL [stream|unary]`.
#[derive(Debug, PartialEq, Eq)]
pub struct RouteLine {
    pub name: String,
    pub url: String,
    pub stream: bool,
}

pub fn parse_route_line(text: &str) -> Result<RouteLine, String> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let stream = match parts.get(2).copied() {
        None | Some("unary") | Some("false") | Some("no") => false,
        Some("stream") | Some("true") | Some("yes") => true,
        Some(other) => {
            return Err(format!(
                "third word must be 'stream' or 'unary', not {other:?}"
            ))
        }
    };
    match parts.as_slice() {
        [name, url, ..] if url.starts_with("http://") || url.starts_with("https://") => {
            Ok(RouteLine {
                name: name.to_string(),
                url: url.to_string(),
                stream,
            })
        }
        _ => Err("write: NAME URL [stream|unary], URL starting with http:// or https://".into()),
    }
}

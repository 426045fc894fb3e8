//! The composer: five text fields, the unary/stream switch, validation into
//! a call, and the history of sent calls it can step through.

use ratatui::crossterm::event::KeyEvent;
use ratatui_textarea::TextArea;

use crate::node::CallRequest;
use crate::tui::effect::CallSpec;
use crate::tui::history::Entry;

/// The composer's fields, in Tab order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Peer,
    Route,
    Method,
    Headers,
    Body,
}

impl Field {
    pub const ALL: [Field; 5] = [
        Field::Peer,
        Field::Route,
        Field::Method,
        Field::Headers,
        Field::Body,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Field::Peer => "Peer",
            Field::Route => "Route",
            Field::Method => "Method",
            Field::Headers => "Headers",
            Field::Body => "Body",
        }
    }

    fn placeholder(self) -> &'static str {
        match self {
            Field::Peer => "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooW…",
            Field::Route => "route name",
            Field::Method => "",
            Field::Headers => "Name: value (one per line)",
            Field::Body => "request body",
        }
    }

    /// The next field, wrapping around.
    pub fn next(self) -> Self {
        Self::ALL[(self as usize + 1) % Self::ALL.len()]
    }

    /// The previous field, wrapping around.
    pub fn prev(self) -> Self {
        Self::ALL[(self as usize + Self::ALL.len() - 1) % Self::ALL.len()]
    }

    /// One step towards `delta`'s sign, stopping at either end.
    pub fn step(self, delta: isize) -> Self {
        let i = (self as isize + delta.signum()).clamp(0, Self::ALL.len() as isize - 1);
        Self::ALL[i as usize]
    }
}

pub struct Composer {
    fields: [TextArea<'static>; 5],
    pub field: Field,
    pub editing: bool,
    pub stream: bool,
    pub warning: Option<String>,
    /// A warned-about send repeated is sent anyway.
    pub armed: bool,
    /// Sent calls, oldest first, and where the composer is in them.
    pub history: Vec<Entry>,
    pub history_pos: Option<usize>,
}

impl Composer {
    pub fn new() -> Self {
        let mut fields: [TextArea<'static>; 5] = Default::default();
        for f in Field::ALL {
            fields[f as usize].set_placeholder_text(f.placeholder());
        }
        fields[Field::Method as usize].insert_str("GET");
        Self {
            fields,
            field: Field::Peer,
            editing: false,
            stream: false,
            warning: None,
            armed: false,
            history: Vec::new(),
            history_pos: None,
        }
    }

    /// A field's text area, as drawn.
    pub fn area(&self, field: Field) -> &TextArea<'static> {
        &self.fields[field as usize]
    }

    pub fn text(&self, field: Field) -> String {
        self.fields[field as usize].lines().join("\n")
    }

    pub fn set(&mut self, field: Field, text: &str) {
        let mut area = if text.is_empty() {
            TextArea::default()
        } else {
            TextArea::from(text.lines().map(str::to_string).collect::<Vec<_>>())
        };
        area.set_placeholder_text(field.placeholder());
        area.move_cursor(ratatui_textarea::CursorMove::Bottom);
        area.move_cursor(ratatui_textarea::CursorMove::End);
        self.fields[field as usize] = area;
    }

    /// A key typed into the current field; any edit disarms a warning.
    pub fn type_key(&mut self, key: KeyEvent) {
        crate::tui::line_keys::apply(&mut self.fields[self.field as usize], key);
        self.warning = None;
        self.armed = false;
    }

    /// Pasted text into the current field.
    pub fn paste(&mut self, text: String) {
        self.fields[self.field as usize].insert_str(text);
    }

    /// What the form holds, as a history entry.
    pub fn entry(&self) -> Entry {
        Entry {
            target: self.text(Field::Peer).trim().to_string(),
            route: self.text(Field::Route).trim().to_string(),
            method: self.text(Field::Method).trim().to_string(),
            headers: self.text(Field::Headers),
            body: self.text(Field::Body),
            stream: self.stream,
        }
    }

    /// Fills the form from an entry (history, or the demo's first call).
    pub fn fill(&mut self, e: &Entry) {
        self.set(Field::Peer, &e.target);
        self.set(Field::Route, &e.route);
        self.set(Field::Method, &e.method);
        self.set(Field::Headers, &e.headers);
        self.set(Field::Body, &e.body);
        self.stream = e.stream;
    }

    /// Steps through the history (`back`: older); returns "k/n", or None
    /// when nothing has been sent yet.
    pub fn history_step(&mut self, back: bool) -> Option<String> {
        let last = self.history.len().checked_sub(1)?;
        let pos = match (self.history_pos, back) {
            (None, _) => last,
            (Some(p), true) => p.saturating_sub(1),
            (Some(p), false) => (p + 1).min(last),
        };
        self.history_pos = Some(pos);
        let e = self.history[pos].clone();
        self.fill(&e);
        Some(format!("{}/{}", pos + 1, self.history.len()))
    }

    /// Records a sent call (once, if it repeats the last) and leaves the
    /// history position.
    pub fn record_sent(&mut self) -> Entry {
        let entry = self.entry();
        if self.history.last() != Some(&entry) {
            self.history.push(entry.clone());
        }
        self.history_pos = None;
        self.warning = None;
        self.armed = false;
        self.editing = false;
        entry
    }

    /// Builds the call, or says what is wrong with the form. The second
    /// value is a warning that a repeated send overrides.
    pub fn build(&self) -> Result<(CallSpec, Option<String>), String> {
        let target = self.text(Field::Peer).trim().to_string();
        crate::node::parse_peer_addr(&target).map_err(|e| e.to_string())?;
        let route = self.text(Field::Route).trim().to_string();
        if route.is_empty() {
            return Err("route is empty".into());
        }
        let method = self.text(Field::Method).trim().to_uppercase();
        let method = if method.is_empty() {
            "GET".into()
        } else {
            method
        };
        if !method.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(format!("method {method:?} is not an HTTP method"));
        }
        let mut request = CallRequest::new(route).method(method);
        let mut claims_json = false;
        for (i, line) in self.text(Field::Headers).lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let (name, value) = crate::node::parse_header_line(line)
                .map_err(|why| format!("header line {} {why}", i + 1))?;
            if name.eq_ignore_ascii_case("content-type") && value.contains("json") {
                claims_json = true;
            }
            request = request.header(name, value);
        }
        let body = self.text(Field::Body);
        let mut warning = None;
        if claims_json && !body.trim().is_empty() {
            if let Err(e) = serde_json::from_str::<serde_json::Value>(&body) {
                warning = Some(format!(
                    "body claims JSON but does not parse (line {}, column {}): send again to send anyway",
                    e.line(),
                    e.column()
                ));
            }
        }
        request = request.body(body.into_bytes());
        Ok((
            CallSpec {
                target,
                request,
                stream: self.stream,
            },
            warning,
        ))
    }
}

impl Default for Composer {
    fn default() -> Self {
        Self::new()
    }
}

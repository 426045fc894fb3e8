//! The clipboard both ways: a call's output or its command line out (OSC
//! 52), and pasted text in, where a `curl` line fills the composer.

use super::{Field, Pane, State};
use crate::tui::effect::Effect;

impl State {
    /// `m` in Calls: the selected call becomes the diff's base (again: none).
    pub(super) fn mark_diff_base(&mut self) {
        let Some(id) = self.selected_call().map(|c| c.id) else {
            return;
        };
        if self.calls.diff_base == Some(id) {
            self.calls.diff_base = None;
            self.notice(format!("call #{id} unmarked"));
        } else {
            self.calls.diff_base = Some(id);
            self.notice(format!(
                "call #{id} marked: select another call and press d in Output to diff them"
            ));
        }
    }

    /// `d` in Output: the selected body against the marked call's.
    pub(super) fn toggle_diff(&mut self) {
        if self.calls.diff_base().is_none() {
            self.output.diff = false;
            self.notice("d: mark a call to compare with first (m in Calls)");
            return;
        }
        self.output.diff = !self.output.diff;
    }

    pub(super) fn copy_output(&mut self) -> Vec<Effect> {
        let Some(c) = self.selected_call() else {
            return vec![];
        };
        let text = self.output.copy_text(c);
        self.notice(format!(
            "copied {} bytes to the clipboard (OSC 52)",
            text.len()
        ));
        vec![Effect::Copy(text)]
    }

    /// `y`: the selected call (Calls) or the composer as the `peerapi`
    /// command line that repeats it.
    pub(super) fn copy_command(&mut self) -> Vec<Effect> {
        let spec = if self.focus == Pane::Calls {
            match self.selected_call() {
                Some(c) if c.spec.is_some() => c.spec.clone(),
                Some(_) => {
                    self.notice("y: a peer's call to us has no command line; select one of ours");
                    return vec![];
                }
                None => None,
            }
        } else {
            match self.composer.build() {
                Ok((spec, _)) => Some(spec),
                Err(e) => {
                    self.notice(format!("y: {e}"));
                    return vec![];
                }
            }
        };
        let Some(spec) = spec else {
            return vec![];
        };
        match crate::cmdline::to_command(&spec.target, &spec.request, spec.stream) {
            Ok(line) => {
                self.notice(format!("copied: {line}"));
                vec![Effect::Copy(line)]
            }
            Err(e) => {
                self.notice(format!("cannot copy as a command line: {e}"));
                vec![]
            }
        }
    }

    pub(super) fn paste(&mut self, text: String) {
        if let Some(p) = &mut self.prompt {
            p.input.insert_str(text.replace('\n', " "));
        } else if self.focus == Pane::Composer && text.trim_start().starts_with("curl ") {
            self.paste_curl(&text);
        } else if self.focus == Pane::Composer && self.composer.editing {
            self.composer.paste(text);
        }
    }

    /// A `curl` line pasted into the composer: its method, headers and
    /// body, and the route of ours whose backend URL it names.
    fn paste_curl(&mut self, text: &str) {
        let curl = match crate::cmdline::from_curl(text) {
            Ok(c) => c,
            Err(e) => {
                self.notice(format!("curl paste: {e}"));
                return;
            }
        };
        self.composer.editing = false;
        self.composer.set(Field::Method, &curl.method);
        self.composer.set(Field::Headers, &curl.header_lines());
        self.composer.set(Field::Body, &curl.body);
        let table = self.routes.table.current();
        let path = curl.path().unwrap_or("/");
        let path_only = path.split('?').next().unwrap_or(path);
        let ours = table.iter().find(|(_, r)| {
            r.urls.iter().any(|u| {
                u.ends_with(path) || u.split('?').next().is_some_and(|u| u.ends_with(path_only))
            })
        });
        let route = match ours {
            Some((name, r)) if path_only != "/" => {
                self.composer.set(Field::Route, name);
                self.composer.stream = curl.stream || r.stream;
                format!("route {name} (its backend URL ends in {path_only})")
            }
            _ => {
                self.composer.stream = curl.stream;
                format!("route unchanged: none of ours forwards to {path_only}")
            }
        };
        let ignored = if curl.ignored.is_empty() {
            String::new()
        } else {
            format!("; ignored {}", curl.ignored.join(" "))
        };
        self.notice(format!(
            "from curl: {}, {} headers, {}-byte body; {route}{ignored}",
            curl.method,
            curl.headers.len(),
            curl.body.len()
        ));
    }
}

//! Keys of one's own: `keys.json` in the config directory binds keys to the
//! console's actions, per pane, over the defaults. An action is named by
//! its text in the `?` help; `null` unbinds a key in that pane:
//!
//! ```json
//! { "global": { "Z": "zoom pane" }, "output": { "J": "jq filter", "|": null } }
//! ```

use std::path::{Path, PathBuf};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::action::{Action, Pane};
use super::keymap::{Binding, Scope, BINDINGS};

/// The keymap file's name in the config directory.
pub const KEYS_FILE: &str = "keys.json";

/// Where the keymap file is looked for: `$XDG_CONFIG_HOME/peerapi/keys.json`
/// or `~/.config/peerapi/keys.json`.
pub fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("peerapi").join(KEYS_FILE))
}

/// One key of one's own.
#[derive(Clone)]
pub struct UserKey {
    pub scope: Scope,
    pub key: String,
    code: KeyCode,
    mods: KeyModifiers,
    /// The binding it runs; None: the key does nothing here.
    binding: Option<&'static Binding>,
}

impl UserKey {
    /// What the key does, as the help says it.
    pub fn help(&self) -> &'static str {
        self.binding.map_or("(unbound)", |b| b.help)
    }
}

/// The keys a keymap file sets.
#[derive(Clone, Default)]
pub struct UserKeys {
    pub keys: Vec<UserKey>,
}

fn scope_named(name: &str) -> Option<Scope> {
    Some(match name {
        "global" => Scope::Global,
        "peers" => Scope::In(Pane::Peers),
        "routes" => Scope::In(Pane::Routes),
        "calls" => Scope::In(Pane::Calls),
        "output" => Scope::In(Pane::Output),
        "composer" => Scope::In(Pane::Composer),
        "log" => Scope::In(Pane::Log),
        _ => return None,
    })
}

/// `z`, `Z`, `C-x`, `Enter`, `Esc`, `Tab`, `F5`, `|`.
fn parse_key(text: &str) -> Option<(KeyCode, KeyModifiers)> {
    let (mods, rest) = match text.strip_prefix("C-") {
        Some(rest) if !rest.is_empty() => (KeyModifiers::CONTROL, rest),
        _ => (KeyModifiers::NONE, text),
    };
    let code = match rest {
        "Enter" => KeyCode::Enter,
        "Esc" => KeyCode::Esc,
        "Tab" => KeyCode::Tab,
        "Backspace" => KeyCode::Backspace,
        "Delete" => KeyCode::Delete,
        "Up" => KeyCode::Up,
        "Down" => KeyCode::Down,
        "PgUp" => KeyCode::PageUp,
        "PgDn" => KeyCode::PageDown,
        f if f.len() > 1 && f.starts_with('F') => KeyCode::F(f[1..].parse().ok()?),
        c => {
            let mut chars = c.chars();
            let ch = chars.next()?;
            if chars.next().is_some() {
                return None;
            }
            KeyCode::Char(ch)
        }
    };
    Some((code, mods))
}

/// Line and column (from 1) of the first `"needle"` in `text`.
fn position_of(text: &str, needle: &str) -> (usize, usize) {
    let quoted = format!("\"{needle}\"");
    let Some(at) = text.find(&quoted) else {
        return (1, 1);
    };
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.chars().rev().take_while(|c| *c != '\n').count() + 1;
    (line, column)
}

impl std::fmt::Debug for UserKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<(&str, &str)> = self
            .keys
            .iter()
            .map(|k| (k.key.as_str(), k.help()))
            .collect();
        f.debug_struct("UserKeys").field("keys", &keys).finish()
    }
}

impl UserKeys {
    /// Reads a keymap; an error names the file, line and column and what
    /// to write instead.
    pub fn parse(text: &str, file: &Path) -> Result<Self, String> {
        let at = |needle: &str, what: String| {
            let (line, column) = position_of(text, needle);
            format!("{}:{line}:{column}: {what}", file.display())
        };
        let doc: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)
            .map_err(|e| format!("{}:{}:{}: {e}", file.display(), e.line(), e.column()))?;
        let mut keys = Vec::new();
        for (pane, entries) in &doc {
            let scope = scope_named(pane).ok_or_else(|| {
                at(pane, format!("{pane:?} is not a pane: global, peers, routes, calls, output, composer or log"))
            })?;
            let entries = entries.as_object().ok_or_else(|| {
                at(
                    pane,
                    format!("{pane:?} must map keys to actions, e.g. {{\"Z\": \"zoom pane\"}}"),
                )
            })?;
            for (key, action) in entries {
                let (code, mods) = parse_key(key).ok_or_else(|| {
                    at(key, format!("{key:?} is not a key: a character, C-x, Enter, Esc, Tab, F5, Up, PgDn …"))
                })?;
                let binding = match action {
                    serde_json::Value::Null => None,
                    serde_json::Value::String(name) => Some(
                        BINDINGS
                            .iter()
                            .find(|b| {
                                b.help == name && (b.scope == scope || b.scope == Scope::Global)
                            })
                            .ok_or_else(|| {
                                at(name, format!("{name:?} is no action of {pane}: use an action's text from the ? help"))
                            })?,
                    ),
                    _ => return Err(at(key, format!("{key:?}: write an action's text, or null to unbind"))),
                };
                keys.push(UserKey {
                    scope,
                    key: key.clone(),
                    code,
                    mods,
                    binding,
                });
            }
        }
        Ok(Self { keys })
    }

    /// Reads `path`; a missing file is no keymap.
    pub fn load(path: &Path) -> Result<Self, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// What the file says `key` does in `pane`: Some(None) when it unbinds
    /// it, None when the file says nothing of it (the defaults decide).
    pub fn resolve(&self, key: &KeyEvent, pane: Pane) -> Option<Option<Action>> {
        // Shift is part of an upper-case letter, not a modifier to match.
        let mods = key.modifiers - KeyModifiers::SHIFT;
        let hit = |scope: Scope| {
            self.keys
                .iter()
                .find(|k| k.scope == scope && k.code == key.code && k.mods == mods)
        };
        hit(Scope::In(pane))
            .or_else(|| hit(Scope::Global))
            .map(|k| k.binding.map(|b| (b.action)()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, mods)
    }

    #[test]
    fn a_keymap_binds_and_unbinds_per_pane() {
        let text = r#"{
  "global": { "Z": "zoom pane" },
  "output": { "J": "jq filter", "|": null, "C-d": "diff with marked call" }
}"#;
        let k = UserKeys::parse(text, Path::new("keys.json")).unwrap();
        let shift_z = key(KeyCode::Char('Z'), KeyModifiers::SHIFT);
        assert!(matches!(
            k.resolve(&shift_z, Pane::Calls),
            Some(Some(Action::ToggleZoom))
        ));
        let j = key(KeyCode::Char('J'), KeyModifiers::SHIFT);
        assert!(matches!(
            k.resolve(&j, Pane::Output),
            Some(Some(Action::SetJqFilter))
        ));
        assert!(k.resolve(&j, Pane::Calls).is_none(), "only in output");
        let pipe = key(KeyCode::Char('|'), KeyModifiers::NONE);
        assert!(
            matches!(k.resolve(&pipe, Pane::Output), Some(None)),
            "unbound"
        );
        let ctrl_d = key(KeyCode::Char('d'), KeyModifiers::CONTROL);
        assert!(matches!(
            k.resolve(&ctrl_d, Pane::Output),
            Some(Some(Action::ToggleBodyDiff))
        ));
    }

    #[test]
    fn a_bad_keymap_says_where_and_what_to_write() {
        let file = Path::new("/home/op/.config/peerapi/keys.json");
        for (text, says) in [
            ("{ \"output\": { \"J\": \"jq filter\" ", "keys.json:1:"),
            (
                "{\n  \"outptu\": {}\n}",
                "keys.json:2:3: \"outptu\" is not a pane",
            ),
            (
                "{\n \"calls\": {\n  \"xy\": \"re-run call\"\n }\n}",
                "keys.json:3:3: \"xy\" is not a key",
            ),
            (
                "{\"calls\": {\"x\": \"fly\"}}",
                "\"fly\" is no action of calls",
            ),
            ("{\"calls\": {\"x\": 3}}", "or null to unbind"),
            ("{\"calls\": [\"x\"]}", "must map keys to actions"),
        ] {
            let e = UserKeys::parse(text, file).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
        // A missing file is no keymap; an unreadable one is an error.
        let dir = tempfile::tempdir().unwrap();
        assert!(UserKeys::load(&dir.path().join("none.json"))
            .unwrap()
            .keys
            .is_empty());
        assert!(UserKeys::load(dir.path()).is_err());
    }
}

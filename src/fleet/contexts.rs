//! `contexts.toml`: a name for each node an operator runs, how to reach it,
//! and labels to filter by. One table per context:
//!
//! ```toml
//! [validator-eu]
//! target = "ssh://ops@10.0.0.7/validator"   # or "unix:/run/peerapi/validator.sock"
//! labels = { subnet = 3, role = "validator", region = "eu" }
//! read_only = true
//! color = "green"
//! ```
//!
//! Each table is read on its own, so a mistake in one (even a syntax
//! error) costs only that context; the error names file:line:column.
//! Edits (`peerapi context add|remove`) touch only their own table and keep
//! the rest of the file, comments included, byte for byte.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::control::client::Target;
use crate::fsutil::{self, Expect};

/// Mode of a contexts file peerapi creates (it names hosts and users).
pub const CONTEXTS_FILE_MODE: u32 = 0o600;

/// One node an operator runs.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Context {
    pub name: String,
    /// `unix:/path/to.sock` or `ssh://[user@]host[:port][/name]`.
    pub target: String,
    pub labels: BTreeMap<String, String>,
    /// Watch only: calls, edits and fleet actions are refused.
    pub read_only: bool,
    /// The name's colour in the fleet view: a colour name (`green`,
    /// `lightblue`…) or `#rrggbb`.
    pub color: Option<String>,
}

impl Context {
    /// How to reach the node.
    pub fn reach(&self) -> Result<Target, String> {
        parse_target(&self.target)
    }

    /// Whether every `key=value` of `labels` is among this context's
    /// (the name counts as the label `name`).
    pub fn has_label(&self, key: &str, value: &str) -> bool {
        (key == "name" && self.name == value) || self.labels.get(key).is_some_and(|v| v == value)
    }
}

/// `unix:` paths and `ssh://` targets; a bare path is taken as a socket.
pub fn parse_target(text: &str) -> Result<Target, String> {
    if let Some(path) = text.strip_prefix("unix:") {
        if path.is_empty() {
            return Err("`unix:` needs a socket path after it".into());
        }
        return Ok(Target::Socket(PathBuf::from(path)));
    }
    if text.starts_with("ssh://") || text.starts_with('/') {
        return Target::parse(Some(text));
    }
    Err(format!(
        "{text:?} is not a target: write unix:/path/to/node.sock or ssh://[user@]host[:port][/name]"
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContext {
    target: String,
    #[serde(default)]
    labels: BTreeMap<String, toml::Value>,
    #[serde(default)]
    read_only: bool,
    #[serde(default)]
    color: Option<String>,
}

/// The contexts that read well, and where the others went wrong.
#[derive(Debug, Default)]
pub struct Loaded {
    pub contexts: Vec<Context>,
    /// `file:line:column: what`, one per table that was left out.
    pub errors: Vec<String>,
}

/// Where contexts live: `$XDG_CONFIG_HOME/peerapi/contexts.toml`, else
/// `~/.config/peerapi/contexts.toml` (`PEERAPI_CONTEXTS` overrides both).
pub fn default_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PEERAPI_CONTEXTS").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("peerapi").join("contexts.toml"))
}

/// One table of the file: its first line (from 0) and its text.
struct Section<'a> {
    first_line: usize,
    text: &'a str,
}

/// Splits the file at each `[table]` header line.
fn sections(text: &str) -> (Vec<Section<'_>>, &str) {
    let mut starts = Vec::new();
    let mut offset = 0;
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let t = line.trim_start();
        if t.starts_with('[') && !t.starts_with("[[") {
            starts.push((n, offset));
        }
        offset += line.len();
    }
    let preamble = &text[..starts.first().map_or(text.len(), |s| s.1)];
    let sections = starts
        .iter()
        .enumerate()
        .map(|(i, &(line, at))| {
            let end = starts.get(i + 1).map_or(text.len(), |s| s.1);
            Section {
                first_line: line,
                text: &text[at..end],
            }
        })
        .collect();
    (sections, preamble)
}

fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count();
    let column = before.chars().rev().take_while(|c| *c != '\n').count() + 1;
    (line, column)
}

/// Reads contexts from `text` (`file` only names it in errors).
pub fn parse(text: &str, file: &Path) -> Loaded {
    let mut loaded = Loaded::default();
    let (sections, preamble) = sections(text);
    let strays = preamble
        .lines()
        .position(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    if let Some(line) = strays {
        loaded.errors.push(format!(
            "{}:{}:1: a setting outside any [context] table: start each context with [its-name]",
            file.display(),
            line + 1
        ));
    }
    for section in sections {
        let parsed: Result<BTreeMap<String, RawContext>, toml::de::Error> =
            toml::from_str(section.text);
        let raw = match parsed {
            Ok(map) => map,
            Err(e) => {
                let (line, column) = line_col(section.text, e.span().map_or(0, |s| s.start));
                let what = e.message().trim().to_string();
                loaded.errors.push(format!(
                    "{}:{}:{column}: {what}",
                    file.display(),
                    section.first_line + line + 1
                ));
                continue;
            }
        };
        for (name, raw) in raw {
            let at = format!("{}:{}:1", file.display(), section.first_line + 1);
            if loaded.contexts.iter().any(|c| c.name == name) {
                loaded.errors.push(format!(
                    "{at}: context {name:?} is named twice; the first one is used"
                ));
                continue;
            }
            if let Err(e) = parse_target(&raw.target) {
                loaded.errors.push(format!("{at}: context {name:?}: {e}"));
                continue;
            }
            let labels = raw
                .labels
                .into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        toml::Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (k, v)
                })
                .collect();
            loaded.contexts.push(Context {
                name,
                target: raw.target,
                labels,
                read_only: raw.read_only,
                color: raw.color,
            });
        }
    }
    loaded
}

/// Reads the file; a missing file has no contexts and no errors.
pub fn load(path: &Path) -> Result<Loaded, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(parse(&text, path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Loaded::default()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

/// The table `context` is written as.
pub fn render(context: &Context) -> String {
    let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
    let mut out = format!("[{}]\ntarget = {}\n", context.name, quote(&context.target));
    if !context.labels.is_empty() {
        let labels: Vec<String> = context
            .labels
            .iter()
            .map(|(k, v)| {
                let key = if is_plain_name(k) {
                    k.clone()
                } else {
                    quote(k)
                };
                format!("{key} = {}", quote(v))
            })
            .collect();
        out.push_str(&format!("labels = {{ {} }}\n", labels.join(", ")));
    }
    if context.read_only {
        out.push_str("read_only = true\n");
    }
    if let Some(c) = &context.color {
        out.push_str(&format!("color = {}\n", quote(c)));
    }
    out
}

/// Adds `context` at the end of the file (created 0600 if missing);
/// refuses a name already there rather than replace it.
pub fn add(path: &Path, context: &Context) -> Result<(), String> {
    if !is_plain_name(&context.name) {
        return Err(format!(
            "{:?} is not a context name: use letters, digits, '-', '_' and '.'",
            context.name
        ));
    }
    parse_target(&context.target)?;
    let old = match std::fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let text = String::from_utf8_lossy(old.as_deref().unwrap_or_default()).into_owned();
    if parse(&text, path)
        .contexts
        .iter()
        .any(|c| c.name == context.name)
    {
        return Err(format!(
            "context {:?} is already in {}: remove it first to replace it",
            context.name,
            path.display()
        ));
    }
    let mut new = text.clone();
    if !new.is_empty() && !new.ends_with('\n') {
        new.push('\n');
    }
    if !new.is_empty() {
        new.push('\n');
    }
    new.push_str(&render(context));
    match old {
        None => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            fsutil::create_atomically(path, new.as_bytes(), CONTEXTS_FILE_MODE)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))
        }
        Some(bytes) => fsutil::replace_atomically(path, new.as_bytes(), &Expect::Content(bytes))
            .map_err(|e| format!("cannot write {}: {e}", path.display())),
    }
}

/// Removes the table named `name`, keeping every other byte of the file.
pub fn remove(path: &Path, name: &str) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (sections, preamble) = sections(&text);
    let mut kept = preamble.to_string();
    let mut found = false;
    for s in &sections {
        let names: Option<BTreeMap<String, toml::Value>> = toml::from_str(s.text).ok();
        let header = s.text.lines().next().unwrap_or_default().trim();
        let this = names.is_some_and(|n| n.contains_key(name))
            || header.trim_start_matches('[').trim_end_matches(']').trim() == name;
        if this && !found {
            found = true;
        } else {
            kept.push_str(s.text);
        }
    }
    if !found {
        return Err(format!("no context {name:?} in {}", path.display()));
    }
    fsutil::replace_atomically(path, kept.as_bytes(), &Expect::Content(bytes))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# my nodes\n\
[alpha]\n\
target = \"unix:/run/peerapi/alpha.sock\"\n\
labels = { subnet = 3, role = \"validator\" }\n\
\n\
[broken]\n\
target = \"unix:/x.sock\"\n\
labels = { subnet = 3\n\
\n\
[typo]\n\
tagret = \"unix:/y.sock\"\n\
\n\
[far]\n\
target = \"ssh://ops@10.0.0.7:2222/validator\"\n\
read_only = true\n\
color = \"green\"\n";

    #[test]
    fn a_bad_table_costs_only_itself_and_says_where() {
        let loaded = parse(FILE, Path::new("contexts.toml"));
        let names: Vec<&str> = loaded.contexts.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["alpha", "far"]);
        assert_eq!(loaded.contexts[0].labels["subnet"], "3");
        assert!(loaded.contexts[1].read_only);
        assert_eq!(loaded.errors.len(), 2, "{:?}", loaded.errors);
        assert!(
            loaded.errors[0].starts_with("contexts.toml:8:"),
            "{}",
            loaded.errors[0]
        );
        assert!(
            loaded.errors[1].starts_with("contexts.toml:11:1:"),
            "{}",
            loaded.errors[1]
        );
        assert!(loaded.errors[1].contains("tagret"), "{}", loaded.errors[1]);
        assert!(matches!(
            loaded.contexts[1].reach(),
            Ok(Target::Ssh {
                port: Some(2222),
                ..
            })
        ));
    }

    #[test]
    fn stray_settings_and_bad_targets_are_named() {
        let text = "target = \"unix:/a\"\n[x]\ntarget = \"http://host\"\n";
        let loaded = parse(text, Path::new("c.toml"));
        assert!(loaded.contexts.is_empty());
        assert!(loaded.errors[0].starts_with("c.toml:1:1: a setting outside"));
        assert!(
            loaded.errors[1].contains("is not a target"),
            "{}",
            loaded.errors[1]
        );
    }

    #[test]
    fn add_and_remove_touch_only_their_own_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peerapi").join("contexts.toml");
        let ctx = |name: &str| Context {
            name: name.into(),
            target: format!("unix:/run/{name}.sock"),
            labels: BTreeMap::from([("subnet".into(), "3".into()), ("a b".into(), "x\"y".into())]),
            read_only: false,
            color: None,
        };
        add(&path, &ctx("one")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // The operator's own comments stay where they are.
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("# keep me\n");
        std::fs::write(&path, &text).unwrap();
        add(&path, &ctx("two")).unwrap();
        assert!(add(&path, &ctx("two")).unwrap_err().contains("already"));
        let loaded = load(&path).unwrap();
        assert_eq!(loaded.contexts, vec![ctx("one"), ctx("two")]);
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        remove(&path, "two").unwrap();
        let after = std::fs::read_to_string(&path).unwrap();
        assert_eq!(after, text.clone() + "\n", "only the table went");
        assert!(remove(&path, "two").unwrap_err().contains("no context"));
        assert!(add(&path, &ctx("bad name")).is_err());
    }
}

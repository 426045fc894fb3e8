//! The route file: the same JSON the Python nodes read, plus safe edits that
//! keep unknown keys and land atomically (temporary file + rename).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{Route, RouteTable};

/// Why a route file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RouteFileError {
    #[error("cannot read route file {}: {message}", path.display())]
    Read { path: PathBuf, message: String },
    #[error("invalid JSON at line {line}, column {column}: {message}; the last good table stays in force")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("route file must hold a JSON object of route names, found {found}")]
    NotAnObject { found: &'static str },
    #[error("cannot write route file {}: {message}", path.display())]
    Write { path: PathBuf, message: String },
}

/// A parsed file: the valid routes, and one warning per skipped entry.
#[derive(Debug, Default)]
pub struct ParseOutcome {
    pub table: RouteTable,
    pub warnings: Vec<String>,
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn parse_json(text: &str) -> Result<Map<String, Value>, RouteFileError> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        // serde_json appends " at line L column C"; we say it first.
        let message = e.to_string();
        let message = match message.rfind(" at line ") {
            Some(i) => message[..i].to_string(),
            None => message,
        };
        RouteFileError::Json {
            line: e.line(),
            column: e.column(),
            message,
        }
    })?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(RouteFileError::NotAnObject {
            found: kind_of(&other),
        }),
    }
}

fn parse_entry(name: &str, value: &Value) -> Result<Route, String> {
    let (url, stream) = match value {
        Value::String(url) => (url.as_str(), false),
        Value::Object(obj) => {
            let url = match obj.get("url") {
                Some(Value::String(u)) => u.as_str(),
                Some(other) => {
                    return Err(format!(
                        "route '{name}': \"url\" must be a string, found {}",
                        kind_of(other)
                    ))
                }
                None => return Err(format!("route '{name}': missing \"url\"")),
            };
            let stream = match obj.get("stream") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(other) => {
                    return Err(format!(
                        "route '{name}': \"stream\" must be true or false, found {}",
                        kind_of(other)
                    ))
                }
            };
            (url, stream)
        }
        other => {
            return Err(format!(
                "route '{name}': expected a URL string or an object with \"url\", found {}",
                kind_of(other)
            ))
        }
    };
    if url.trim().is_empty() {
        return Err(format!("route '{name}': \"url\" must not be empty"));
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!(
            "route '{name}': url {url:?} must start with http:// or https://"
        ));
    }
    Ok(Route::new(url, stream))
}

/// Parses route-file text. A JSON error or a non-object is fatal; a bad entry
/// is skipped with a warning.
pub fn parse_routes(text: &str) -> Result<ParseOutcome, RouteFileError> {
    let map = parse_json(text)?;
    let mut outcome = ParseOutcome::default();
    for (name, value) in &map {
        match parse_entry(name, value) {
            Ok(route) => {
                outcome.table.insert(name.clone(), route);
            }
            Err(warning) => outcome.warnings.push(warning),
        }
    }
    Ok(outcome)
}

fn read_for_edit(path: &Path) -> Result<Map<String, Value>, RouteFileError> {
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => Ok(Map::new()),
        Ok(text) => parse_json(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
        Err(e) => Err(RouteFileError::Read {
            path: path.to_path_buf(),
            message: e.to_string(),
        }),
    }
}

/// Writes `bytes` to `path` atomically: a sibling temporary file, fsync, rename.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "routes.json".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn write_map(path: &Path, map: Map<String, Value>) -> Result<(), RouteFileError> {
    let mut text =
        serde_json::to_string_pretty(&Value::Object(map)).map_err(|e| RouteFileError::Write {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    text.push('\n');
    write_atomically(path, text.as_bytes()).map_err(|e| RouteFileError::Write {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Adds or changes one route in the file, keeping every other key (and any
/// unknown fields of this route) as they are.
pub fn upsert_route_in_file(
    path: &Path,
    name: &str,
    url: &str,
    stream: bool,
) -> Result<(), RouteFileError> {
    let mut map = read_for_edit(path)?;
    match map.get_mut(name) {
        Some(Value::Object(obj)) => {
            obj.insert("url".into(), Value::String(url.into()));
            obj.insert("stream".into(), Value::Bool(stream));
        }
        // A new route, or a legacy string entry turned into an object in place.
        _ => {
            map.insert(
                name.to_string(),
                serde_json::json!({ "url": url, "stream": stream }),
            );
        }
    }
    write_map(path, map)
}

/// Removes one route from the file; other keys are kept.
pub fn remove_route_in_file(path: &Path, name: &str) -> Result<bool, RouteFileError> {
    let mut map = read_for_edit(path)?;
    let removed = map.shift_remove(name).is_some();
    if removed {
        write_map(path, map)?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_and_legacy_shorthand() {
        let out = parse_routes(
            r#"{
              "health": {"url": "http://127.0.0.1:8000/health", "stream": false},
              "inference": {"url": "http://127.0.0.1:8000/v1/inference", "stream": true},
              "legacy": "http://127.0.0.1:8000/old",
              "defaulted": {"url": "http://127.0.0.1:8000/d"}
            }"#,
        )
        .unwrap();
        assert!(out.warnings.is_empty());
        assert_eq!(out.table.len(), 4);
        assert!(out.table["inference"].stream);
        assert!(!out.table["legacy"].stream);
        assert!(!out.table["defaulted"].stream);
    }

    #[test]
    fn bad_entries_are_reported_not_fatal() {
        let out = parse_routes(
            r#"{"ok": "http://x/ok", "empty": {"url": ""}, "num": 3, "nourl": {"stream": true}, "s": {"url": "http://x", "stream": "yes"}}"#,
        )
        .unwrap();
        assert_eq!(out.table.len(), 1);
        assert_eq!(out.warnings.len(), 4, "{:?}", out.warnings);
    }

    #[test]
    fn json_errors_carry_line_and_column() {
        let err = parse_routes("{\n \"a\": ,\n}").unwrap_err();
        match err {
            RouteFileError::Json { line, column, .. } => {
                assert_eq!(line, 2);
                assert_eq!(column, 7);
            }
            other => panic!("unexpected {other}"),
        }
        assert!(matches!(
            parse_routes("[1]").unwrap_err(),
            RouteFileError::NotAnObject { .. }
        ));
    }

    #[test]
    fn edits_keep_unknown_keys_and_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        std::fs::write(
            &path,
            r#"{"b": {"url": "http://x/b", "note": "keep me"}, "a": "http://x/a"}"#,
        )
        .unwrap();
        upsert_route_in_file(&path, "b", "http://y/b", true).unwrap();
        upsert_route_in_file(&path, "c", "http://y/c", false).unwrap();
        assert!(remove_route_in_file(&path, "a").unwrap());
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, vec!["b", "c"]);
        assert_eq!(v["b"]["note"], "keep me");
        assert_eq!(v["b"]["url"], "http://y/b");
        assert_eq!(v["b"]["stream"], true);
    }
}

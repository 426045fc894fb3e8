//! The route file: the same JSON the Python nodes read, plus safe edits that
//! keep unknown keys and land atomically (temporary file + rename).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{Route, RoutePolicy, RouteTable};

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

fn check_url(name: &str, url: &str) -> Result<(), String> {
    if url.trim().is_empty() {
        return Err(format!("route '{name}': \"url\" must not be empty"));
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!(
            "route '{name}': url {url:?} must start with http:// or https://"
        ));
    }
    Ok(())
}

fn string_list(name: &str, key: &str, v: &Value) -> Result<Vec<String>, String> {
    let err = || format!("route '{name}': \"{key}\" must be an array of strings");
    v.as_array()
        .ok_or_else(err)?
        .iter()
        .map(|x| x.as_str().map(str::to_string).ok_or_else(err))
        .collect()
}

fn peer_list(name: &str, key: &str, v: &Value) -> Result<Vec<libp2p::PeerId>, String> {
    string_list(name, key, v)?
        .iter()
        .map(|p| {
            p.parse()
                .map_err(|_| format!("route '{name}': {key} holds {p:?}, which is not a peer id"))
        })
        .collect()
}

fn parse_policy(name: &str, obj: &Map<String, Value>) -> Result<RoutePolicy, String> {
    let mut policy = RoutePolicy::default();
    if let Some(v) = obj.get("methods") {
        policy.methods = Some(
            string_list(name, "methods", v)?
                .into_iter()
                .map(|m| m.to_ascii_uppercase())
                .collect(),
        );
    }
    if let Some(v) = obj.get("timeout_ms") {
        let ms = v
            .as_u64()
            .filter(|ms| *ms > 0)
            .ok_or_else(|| format!("route '{name}': \"timeout_ms\" must be a positive integer"))?;
        policy.timeout = Some(std::time::Duration::from_millis(ms));
    }
    if let Some(v) = obj.get("max_body_bytes") {
        let n = v.as_u64().ok_or_else(|| {
            format!("route '{name}': \"max_body_bytes\" must be a non-negative integer")
        })?;
        policy.max_body_bytes = Some(usize::try_from(n).unwrap_or(usize::MAX));
    }
    if let Some(v) = obj.get("headers") {
        let map = v.as_object().ok_or_else(|| {
            format!("route '{name}': \"headers\" must be an object of header names to values")
        })?;
        for (k, v) in map {
            let v = v
                .as_str()
                .ok_or_else(|| format!("route '{name}': header {k:?} must have a string value"))?;
            policy.headers.push((k.clone(), v.to_string()));
        }
    }
    if let Some(v) = obj.get("allow_peers") {
        policy.allow_peers = Some(peer_list(name, "allow_peers", v)?);
    }
    if let Some(v) = obj.get("deny_peers") {
        policy.deny_peers = peer_list(name, "deny_peers", v)?;
    }
    Ok(policy)
}

fn parse_entry(name: &str, value: &Value) -> Result<Route, String> {
    match value {
        Value::String(url) => {
            check_url(name, url)?;
            Ok(Route::new(url, false))
        }
        Value::Object(obj) => {
            let mut urls = Vec::new();
            match obj.get("url") {
                Some(Value::String(u)) => urls.push(u.clone()),
                Some(other) => {
                    return Err(format!(
                        "route '{name}': \"url\" must be a string, found {}",
                        kind_of(other)
                    ))
                }
                None => {}
            }
            if let Some(v) = obj.get("urls") {
                for u in string_list(name, "urls", v)? {
                    if !urls.contains(&u) {
                        urls.push(u);
                    }
                }
            }
            if urls.is_empty() {
                return Err(format!("route '{name}': missing \"url\""));
            }
            for u in &urls {
                check_url(name, u)?;
            }
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
            let mut route = Route::with_urls(urls, stream);
            route.policy = parse_policy(name, obj)?;
            Ok(route)
        }
        other => Err(format!(
            "route '{name}': expected a URL string or an object with \"url\", found {}",
            kind_of(other)
        )),
    }
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
    fn policies_parse_and_bad_ones_are_reported() {
        let peer = libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id();
        let text = format!(
            r#"{{"multi": {{"urls": ["http://a/x", "http://b/x"], "stream": true, "methods": ["post"],
                 "timeout_ms": 1500, "max_body_bytes": 10, "headers": {{"authorization": "Bearer k"}},
                 "allow_peers": ["{peer}"], "deny_peers": []}},
                "badpeer": {{"url": "http://a/y", "deny_peers": ["nope"]}},
                "badtimeout": {{"url": "http://a/y", "timeout_ms": -1}}}}"#
        );
        let out = parse_routes(&text).unwrap();
        let r = &out.table["multi"];
        assert_eq!(r.urls, vec!["http://a/x", "http://b/x"]);
        assert_eq!(r.url, "http://a/x");
        assert!(r.policy.allows_method("POST") && !r.policy.allows_method("GET"));
        assert_eq!(
            r.policy.timeout,
            Some(std::time::Duration::from_millis(1500))
        );
        assert_eq!(r.policy.max_body_bytes, Some(10));
        assert!(r.policy.admits(&peer));
        let other = libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id();
        assert!(!r.policy.admits(&other));
        assert_eq!(out.warnings.len(), 2, "{:?}", out.warnings);
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

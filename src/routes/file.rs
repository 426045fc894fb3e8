//! The route file: the same JSON the Python nodes read, plus safe edits that
//! keep unknown keys and land atomically (temporary file + rename).

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{Route, RoutePolicy, RouteTable};
use crate::fsutil::{replace_atomically, Expect, WriteError};

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
        policy.peers.allow = Some(peer_list(name, "allow_peers", v)?);
    }
    if let Some(v) = obj.get("deny_peers") {
        policy.peers.deny = peer_list(name, "deny_peers", v)?;
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

/// A stable fingerprint of a route file's bytes (FNV-1a; not a security hash).
pub fn fingerprint(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The file's table for editing, and what the file must still hold when
/// the edit is written.
fn read_for_edit(
    path: &Path,
    seen: Option<u64>,
) -> Result<(Map<String, Value>, Expect), RouteFileError> {
    let (map, expect) = match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let map = if text.trim().is_empty() {
                Map::new()
            } else {
                parse_json(&text)?
            };
            (map, Expect::Content(bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Map::new(), Expect::Absent),
        Err(e) => {
            return Err(RouteFileError::Read {
                path: path.to_path_buf(),
                message: e.to_string(),
            })
        }
    };
    // The editor saw another version of the file than the one on disk now.
    let on_disk = match &expect {
        Expect::Content(bytes) => Some(fingerprint(bytes)),
        _ => None,
    };
    if seen.is_some() && seen != on_disk {
        return Err(RouteFileError::Write {
            path: path.to_path_buf(),
            message: WriteError::Changed.to_string(),
        });
    }
    Ok((map, expect))
}

fn write_map(path: &Path, map: Map<String, Value>, expect: &Expect) -> Result<(), RouteFileError> {
    let mut text =
        serde_json::to_string_pretty(&Value::Object(map)).map_err(|e| RouteFileError::Write {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    text.push('\n');
    crate::fsutil::clean_stale_temps(path);
    replace_atomically(path, text.as_bytes(), expect).map_err(|e| RouteFileError::Write {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Adds or changes one route in the file, keeping every other key (and any
/// unknown fields of this route) as they are. `seen` is the fingerprint of
/// the file as the editor showed it ([`super::FileState::version`]): the
/// edit is refused if the file changed since.
pub fn upsert_route_in_file(
    path: &Path,
    name: &str,
    url: &str,
    stream: bool,
    seen: Option<u64>,
) -> Result<(), RouteFileError> {
    let (mut map, expect) = read_for_edit(path, seen)?;
    match map.get_mut(name) {
        Some(Value::Object(obj)) => {
            obj.insert("url".into(), Value::String(url.into()));
            obj.insert("stream".into(), Value::Bool(stream));
            // A new URL replaces the backend set: old backends must not
            // stay in rotation.
            obj.shift_remove("urls");
        }
        // A new route, or a legacy string entry turned into an object in place.
        _ => {
            map.insert(
                name.to_string(),
                serde_json::json!({ "url": url, "stream": stream }),
            );
        }
    }
    write_map(path, map, &expect)
}

/// Removes one route from the file; other keys are kept. `seen` as for
/// [`upsert_route_in_file`].
pub fn remove_route_in_file(
    path: &Path,
    name: &str,
    seen: Option<u64>,
) -> Result<bool, RouteFileError> {
    let (mut map, expect) = read_for_edit(path, seen)?;
    let removed = map.shift_remove(name).is_some();
    if removed {
        write_map(path, map, &expect)?;
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
        upsert_route_in_file(&path, "b", "http://y/b", true, None).unwrap();
        upsert_route_in_file(&path, "c", "http://y/c", false, None).unwrap();
        assert!(remove_route_in_file(&path, "a", None).unwrap());
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, vec!["b", "c"]);
        assert_eq!(v["b"]["note"], "keep me");
        assert_eq!(v["b"]["url"], "http://y/b");
        assert_eq!(v["b"]["stream"], true);
    }

    #[test]
    fn an_edit_is_refused_when_the_file_changed_since_the_editor_read_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("routes.json");
        std::fs::write(&path, r#"{"a": "http://x/a"}"#).unwrap();
        let seen = fingerprint(&std::fs::read(&path).unwrap());
        // Someone else edits the file after the console showed it.
        std::fs::write(&path, r#"{"a": "http://theirs/a"}"#).unwrap();
        let err = upsert_route_in_file(&path, "b", "http://y/b", false, Some(seen)).unwrap_err();
        assert!(err.to_string().contains("changed on disk"), "{err}");
        let err = remove_route_in_file(&path, "a", Some(seen)).unwrap_err();
        assert!(err.to_string().contains("changed on disk"), "{err}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            r#"{"a": "http://theirs/a"}"#,
            "their edit stands"
        );
        let now = fingerprint(&std::fs::read(&path).unwrap());
        upsert_route_in_file(&path, "b", "http://y/b", false, Some(now)).unwrap();
    }

    #[test]
    fn a_new_url_drops_the_old_backend_set() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("routes.json");
        std::fs::write(
            &path,
            r#"{"a": {"url": "http://old1/a", "urls": ["http://old1/a", "http://old2/a"], "stream": false}}"#,
        )
        .unwrap();
        upsert_route_in_file(&path, "a", "http://new/a", false, None).unwrap();
        let table = parse_routes(&std::fs::read_to_string(&path).unwrap())
            .unwrap()
            .table;
        assert_eq!(table["a"].urls, vec!["http://new/a".to_string()]);
    }
}

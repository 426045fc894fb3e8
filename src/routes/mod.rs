//! The route table: which route name maps to which HTTP backend.
//!
//! A table is immutable and swapped whole ([`Routes::current`] hands out an
//! `Arc`), so a call in flight keeps the table it started with while a reload
//! installs the next one.

mod file;
pub mod policy;
mod watch;

pub use file::{
    fingerprint, parse_routes, remove_route_in_file, upsert_route_in_file, ParseOutcome,
    RouteFileError,
};
pub use policy::{PeerFilter, Refusal, RoutePolicy};
pub use watch::{reload, RouteReload, RouteWatcher, RELOAD_DEBOUNCE};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

/// One route: where its requests go and whether it may stream.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Route {
    /// The first backend (what a route file's `url` says).
    pub url: String,
    /// Every backend, used round-robin with failover; `urls[0] == url`.
    pub urls: Vec<String>,
    pub stream: bool,
    pub policy: RoutePolicy,
}

impl Route {
    pub fn new(url: impl Into<String>, stream: bool) -> Self {
        let url = url.into();
        Self {
            urls: vec![url.clone()],
            url,
            stream,
            policy: RoutePolicy::default(),
        }
    }

    /// A route over several backends.
    pub fn with_urls(urls: Vec<String>, stream: bool) -> Self {
        let mut route = Self::new(urls.first().cloned().unwrap_or_default(), stream);
        route.urls = urls;
        route
    }
}

/// An immutable snapshot of the routes in force.
pub type RouteTable = BTreeMap<String, Route>;

/// What a reload changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RouteDiff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

impl RouteDiff {
    pub fn between(old: &RouteTable, new: &RouteTable) -> Self {
        let mut diff = RouteDiff::default();
        for (name, route) in new {
            match old.get(name) {
                None => diff.added.push(name.clone()),
                Some(prev) if prev != route => diff.changed.push(name.clone()),
                Some(_) => {}
            }
        }
        diff.removed = old
            .keys()
            .filter(|k| !new.contains_key(*k))
            .cloned()
            .collect();
        diff
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

impl std::fmt::Display for RouteDiff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_empty() {
            return write!(f, "no change");
        }
        let mut parts = Vec::new();
        if !self.added.is_empty() {
            parts.push(format!("added {}", self.added.join(", ")));
        }
        if !self.removed.is_empty() {
            parts.push(format!("removed {}", self.removed.join(", ")));
        }
        if !self.changed.is_empty() {
            parts.push(format!("changed {}", self.changed.join(", ")));
        }
        write!(f, "{}", parts.join("; "))
    }
}

/// The state of the route file as last seen.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct FileState {
    pub path: Option<PathBuf>,
    pub last_reload: Option<SystemTime>,
    /// Why the last read was refused, if it was; the previous table stays in force.
    pub last_error: Option<String>,
    /// Entries that were skipped on the last good read.
    pub warnings: Vec<String>,
    /// Fingerprint of the bytes of the last good read: an edit based on
    /// what was shown is refused when the file no longer holds them.
    pub version: Option<u64>,
}

struct Inner {
    memory: RouteTable,
    file: RouteTable,
    merged: Arc<RouteTable>,
    file_state: FileState,
}

/// The live route table: an in-memory table (for library users) and an
/// optional file whose keys win over it.
#[derive(Clone)]
pub struct Routes {
    inner: Arc<RwLock<Inner>>,
}

impl Default for Routes {
    fn default() -> Self {
        Self::new(RouteTable::new())
    }
}

impl Routes {
    /// A table made only of in-memory routes.
    pub fn new(memory: RouteTable) -> Self {
        let merged = Arc::new(memory.clone());
        Self {
            inner: Arc::new(RwLock::new(Inner {
                memory,
                file: RouteTable::new(),
                merged,
                file_state: FileState::default(),
            })),
        }
    }

    /// The table in force now.
    pub fn current(&self) -> Arc<RouteTable> {
        self.read().merged.clone()
    }

    /// Looks one route up in the table in force now.
    pub fn get(&self, name: &str) -> Option<Route> {
        self.read().merged.get(name).cloned()
    }

    pub fn file_state(&self) -> FileState {
        self.read().file_state.clone()
    }

    /// Replaces the in-memory fallback table.
    pub fn set_memory(&self, memory: RouteTable) -> RouteDiff {
        let mut inner = self.write();
        inner.memory = memory;
        Self::remerge(&mut inner)
    }

    /// Reads `path` and installs its table. On error the previous table stays
    /// in force and the error is recorded and returned.
    pub fn load_file(&self, path: &Path) -> Result<(RouteDiff, Vec<String>), RouteFileError> {
        let mut version = None;
        let outcome = std::fs::read_to_string(path)
            .map_err(|e| RouteFileError::Read {
                path: path.to_path_buf(),
                message: e.to_string(),
            })
            .and_then(|text| {
                version = Some(file::fingerprint(text.as_bytes()));
                parse_routes(&text)
            });
        let mut inner = self.write();
        inner.file_state.path = Some(path.to_path_buf());
        match outcome {
            Ok(outcome) => {
                inner.file = outcome.table;
                inner.file_state.last_reload = Some(SystemTime::now());
                inner.file_state.last_error = None;
                inner.file_state.warnings = outcome.warnings.clone();
                inner.file_state.version = version;
                Ok((Self::remerge(&mut inner), outcome.warnings))
            }
            Err(err) => {
                inner.file_state.last_error = Some(err.to_string());
                Err(err)
            }
        }
    }

    /// Records that the file is gone; the last good table stays in force.
    pub(crate) fn note_file_missing(&self, path: &Path) -> RouteFileError {
        let err = RouteFileError::Read {
            path: path.to_path_buf(),
            message: "file was removed; keeping the last good table".into(),
        };
        self.write().file_state.last_error = Some(err.to_string());
        err
    }

    fn remerge(inner: &mut Inner) -> RouteDiff {
        let mut merged = inner.memory.clone();
        merged.extend(inner.file.iter().map(|(k, v)| (k.clone(), v.clone())));
        let diff = RouteDiff::between(&inner.merged, &merged);
        inner.merged = Arc::new(merged);
        diff
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        // A poisoned lock only means a writer panicked mid-update of plain data;
        // the table it guards is still a valid value.
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_wins_over_memory_for_its_keys() {
        let routes = Routes::new(
            [
                ("a".to_string(), Route::new("http://m/a", false)),
                ("b".to_string(), Route::new("http://m/b", false)),
            ]
            .into(),
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("routes.json");
        std::fs::write(
            &path,
            r#"{"b": "http://f/b", "c": {"url": "http://f/c", "stream": true}}"#,
        )
        .unwrap();
        let (diff, _) = routes.load_file(&path).unwrap();
        assert_eq!(diff.added, vec!["c"]);
        assert_eq!(diff.changed, vec!["b"]);
        assert_eq!(routes.get("a").unwrap().url, "http://m/a");
        assert_eq!(routes.get("b").unwrap().url, "http://f/b");
        assert!(routes.get("c").unwrap().stream);
    }

    #[test]
    fn invalid_file_keeps_last_good_table() {
        let routes = Routes::default();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("routes.json");
        std::fs::write(&path, r#"{"a": "http://x/a"}"#).unwrap();
        routes.load_file(&path).unwrap();
        std::fs::write(&path, "{\n  \"a\": ").unwrap();
        let err = routes.load_file(&path).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        assert_eq!(routes.get("a").unwrap().url, "http://x/a");
        assert!(routes.file_state().last_error.is_some());
    }
}

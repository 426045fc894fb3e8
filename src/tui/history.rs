//! Sent calls kept across runs: one JSON object per line, appended with a
//! single write. A line torn by a crash is skipped when read back.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Entries loaded at start; the file itself keeps everything.
pub const MAX_LOADED: usize = 500;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub target: String,
    pub route: String,
    pub method: String,
    pub headers: String,
    pub body: String,
    pub stream: bool,
}

pub fn path_in(dir: &Path) -> PathBuf {
    dir.join("history.jsonl")
}

/// The newest entries, oldest first.
pub fn load(path: &Path) -> Vec<Entry> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut entries: Vec<Entry> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    if entries.len() > MAX_LOADED {
        entries.drain(..entries.len() - MAX_LOADED);
    }
    entries
}

/// Appends one entry as one write of one line.
pub fn append(path: &Path, entry: &Entry) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut line = serde_json::to_string(entry).map_err(std::io::Error::other)?;
    line.push('\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(line.as_bytes())?;
    f.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_last_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_in(dir.path());
        let e = Entry {
            target: "/ip4/127.0.0.1/tcp/1/p2p/x".into(),
            route: "r".into(),
            method: "GET".into(),
            headers: String::new(),
            body: "{\"a\":\n1}".into(),
            stream: true,
        };
        append(&path, &e).unwrap();
        append(&path, &e).unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"{\"target\": \"torn").unwrap();
        assert_eq!(load(&path), vec![e.clone(), e]);
    }
}

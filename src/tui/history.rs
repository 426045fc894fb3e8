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

/// Appends one entry as one write of one line. The file is private (0600:
/// it holds headers and bodies), and a line torn by a crash is closed first
/// so that the new entry is not glued onto it.
pub fn append(path: &Path, entry: &Entry) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut line = serde_json::to_string(entry).map_err(std::io::Error::other)?;
    line.push('\n');
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true).read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Files written by older versions were 0644.
        if f.metadata()?.permissions().mode() & 0o077 != 0 {
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
    }
    if ends_torn(&mut f)? {
        line.insert(0, '\n');
    }
    f.write_all(line.as_bytes())?;
    f.sync_data()
}

/// Whether the file's last byte is not a newline (a crash tore its last line).
fn ends_torn(f: &mut std::fs::File) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    if f.metadata()?.len() == 0 {
        return Ok(false);
    }
    f.seek(SeekFrom::End(-1))?;
    let mut last = [0u8; 1];
    f.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
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
        assert_eq!(load(&path), vec![e.clone(), e.clone()]);
        // The next append starts a line of its own instead of joining the torn one.
        append(&path, &e).unwrap();
        assert_eq!(load(&path), vec![e.clone(), e.clone(), e]);
    }

    #[test]
    #[cfg(unix)]
    fn the_history_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = path_in(dir.path());
        std::fs::write(&path, "").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Entry {
            target: "t".into(),
            route: "r".into(),
            method: "GET".into(),
            headers: "authorization: secret".into(),
            body: String::new(),
            stream: false,
        };
        append(&path, &e).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let fresh = dir.path().join("new").join("history.jsonl");
        append(&fresh, &e).unwrap();
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}

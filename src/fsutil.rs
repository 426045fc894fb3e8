//! Files written whole or not at all, that keep their mode and owner, and
//! never silently replace what someone else wrote.
//!
//! Every write goes to a sibling temporary file (`.NAME.tmp-PID-NONCE`),
//! is fsynced, then renamed over the target (or hard-linked, where the
//! target must not exist), and the directory is fsynced so the rename itself
//! survives a crash. A writer killed midway leaves its temporary file;
//! [`clean_stale_temps`] removes those of dead processes.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Mode of a file created where none existed (it may hold credentials).
pub const NEW_FILE_MODE: u32 = 0o600;

/// What the target must hold for a replace to go ahead.
#[derive(Clone, Debug)]
pub enum Expect {
    /// Whatever is there.
    Any,
    /// Nothing: the file must not exist.
    Absent,
    /// Exactly these bytes (what the editor read).
    Content(Vec<u8>),
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("it changed on disk since it was read (someone else edited it); nothing was written: look at the file again and redo the edit")]
    Changed,
}

fn dir_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

fn temp_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    format!(".{name}.tmp-")
}

fn temp_path(path: &Path) -> PathBuf {
    let nonce: u32 = rand::random();
    dir_of(path).join(format!(
        "{}{}-{nonce:08x}",
        temp_prefix(path),
        std::process::id()
    ))
}

/// Writes `bytes` to a new temporary file beside `path` with `mode`, the
/// owner of `like` where we may set it, fsynced.
fn write_temp(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    like: Option<&std::fs::Metadata>,
) -> std::io::Result<PathBuf> {
    let tmp = temp_path(path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    let result = (|| {
        let mut f = options.open(&tmp)?;
        f.write_all(bytes)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            // The umask may have narrowed the mode at creation.
            f.set_permissions(std::fs::Permissions::from_mode(mode))?;
            if let Some(m) = like {
                // Only root may give a file away; others keep their own.
                let _ = std::os::unix::fs::fchown(&f, Some(m.uid()), Some(m.gid()));
            }
        }
        let _ = (mode, like);
        f.sync_all()
    })();
    match result {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn sync_dir(path: &Path) {
    // Makes the rename durable; not every platform can open a directory.
    if let Ok(d) = std::fs::File::open(dir_of(path)) {
        let _ = d.sync_all();
    }
}

fn mode_of(meta: &std::fs::Metadata) -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o7777
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        NEW_FILE_MODE
    }
}

/// Replaces `path` with `bytes` atomically, keeping the original's mode and
/// owner (a new file gets [`NEW_FILE_MODE`]), provided the file still holds
/// what `expect` says.
pub fn replace_atomically(path: &Path, bytes: &[u8], expect: &Expect) -> Result<(), WriteError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e.into()),
    };
    let mode = meta.as_ref().map(mode_of).unwrap_or(NEW_FILE_MODE);
    let tmp = write_temp(path, bytes, mode, meta.as_ref())?;
    // Checked as late as possible: right before the rename.
    let unchanged = match expect {
        Expect::Any => true,
        Expect::Absent => !path.exists(),
        Expect::Content(seen) => std::fs::read(path).is_ok_and(|now| &now == seen),
    };
    if !unchanged {
        let _ = std::fs::remove_file(&tmp);
        return Err(WriteError::Changed);
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.into());
    }
    sync_dir(path);
    Ok(())
}

/// Creates `path` with `bytes` and `mode` atomically; fails with
/// `AlreadyExists` rather than replace anything.
pub fn create_atomically(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let tmp = write_temp(path, bytes, mode, None)?;
    // A hard link fails where the target exists: no window to clobber it.
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    linked?;
    sync_dir(path);
    Ok(())
}

fn pid_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    #[cfg(target_os = "linux")]
    {
        Path::new(&format!("/proc/{pid}")).exists()
    }
    #[cfg(not(target_os = "linux"))]
    {
        true
    }
}

/// Removes temporary files that writers of `path` left when killed (their
/// process is gone). Returns how many were removed.
pub fn clean_stale_temps(path: &Path) -> usize {
    let prefix = temp_prefix(path);
    let Ok(entries) = std::fs::read_dir(dir_of(path)) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| !pid_alive(p)) && std::fs::remove_file(entry.path()).is_ok() {
            tracing::info!(file = %entry.path().display(), "removed a temporary file left by a killed writer");
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(unix)]
    use std::os::unix::fs::PermissionsExt;

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    #[cfg(unix)]
    fn a_replace_keeps_the_mode_and_a_new_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("routes.json");
        replace_atomically(&path, b"{}", &Expect::Absent).unwrap();
        assert_eq!(mode(&path), NEW_FILE_MODE);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        replace_atomically(&path, b"{\"a\":1}", &Expect::Content(b"{}".to_vec())).unwrap();
        assert_eq!(mode(&path), 0o640);
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"a\":1}");
    }

    #[test]
    fn a_replace_refuses_when_the_file_changed_since_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("routes.json");
        std::fs::write(&path, b"theirs").unwrap();
        let err = replace_atomically(&path, b"ours", &Expect::Content(b"old".to_vec()));
        assert!(matches!(err, Err(WriteError::Changed)), "{err:?}");
        assert_eq!(std::fs::read(&path).unwrap(), b"theirs");
        assert!(matches!(
            replace_atomically(&path, b"ours", &Expect::Absent),
            Err(WriteError::Changed)
        ));
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn create_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        create_atomically(&path, b"one", 0o600).unwrap();
        let err = create_atomically(&path, b"two", 0o600).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
    }

    #[test]
    fn temps_of_dead_writers_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("routes.json");
        // pid 0 is never a writer's; ours is alive.
        let dead = dir.path().join(".routes.json.tmp-0-deadbeef");
        let live = dir
            .path()
            .join(format!(".routes.json.tmp-{}-0", std::process::id()));
        let other = dir.path().join(".other.json.tmp-0-0");
        for p in [&dead, &live, &other] {
            std::fs::write(p, b"x").unwrap();
        }
        assert_eq!(clean_stale_temps(&path), 1);
        assert!(!dead.exists() && live.exists() && other.exists());
    }
}

//! The history file itself: what a file must look like before we open it,
//! what refusing it says, and creating it private.

use std::path::{Path, PathBuf};

use super::schema::SCHEMA_VERSION;

/// Why a history file was not opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{path}: not a peerapi health history ({what}); it was left as it is: move it away or give another --health-db")]
    Foreign { path: PathBuf, what: String },
    #[error("{path}: the health history is damaged ({detail}); it was left as it is: move it away (or repair it with sqlite3's .recover) and start again")]
    Damaged { path: PathBuf, detail: String },
    #[error("{path}: written by a newer peerapi (schema {found}, this one knows {SCHEMA_VERSION}); upgrade peerapi or give another --health-db")]
    Newer { path: PathBuf, found: i64 },
    #[error("{path}: the health history of node {owner}; give this node a --health-db of its own")]
    Owner { path: PathBuf, owner: String },
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: String },
}

impl OpenError {
    /// Whether the start must stop (a file we must not touch), rather than
    /// go on without history (a directory we cannot write, a full disk).
    pub fn is_fatal(&self) -> bool {
        !matches!(self, OpenError::Io { .. })
    }
}

/// The first 16 bytes of an SQLite file.
pub(super) fn check_header(path: &Path) -> Result<(), OpenError> {
    use std::io::Read;
    let mut head = [0u8; 16];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head));
    match read {
        Ok(()) if &head == b"SQLite format 3\0" => Ok(()),
        Ok(()) => Err(OpenError::Foreign {
            path: path.to_path_buf(),
            what: "not an SQLite file".into(),
        }),
        // Cut short: damaged if what is there begins as SQLite does.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            let bytes = std::fs::read(path).unwrap_or_default();
            if b"SQLite format 3\0".starts_with(&bytes) {
                Err(OpenError::Damaged {
                    path: path.to_path_buf(),
                    detail: "shorter than an SQLite header".into(),
                })
            } else {
                Err(OpenError::Foreign {
                    path: path.to_path_buf(),
                    what: "not an SQLite file".into(),
                })
            }
        }
        Err(e) => Err(OpenError::Io {
            path: path.to_path_buf(),
            error: e.to_string(),
        }),
    }
}

pub(super) fn sql_error(path: &Path, e: rusqlite::Error) -> OpenError {
    use rusqlite::ErrorCode;
    let code = e.sqlite_error_code();
    match code {
        Some(ErrorCode::DatabaseCorrupt) | Some(ErrorCode::NotADatabase) => OpenError::Damaged {
            path: path.to_path_buf(),
            detail: e.to_string(),
        },
        _ => OpenError::Io {
            path: path.to_path_buf(),
            error: e.to_string(),
        },
    }
}

pub(super) fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        // An empty file left by an earlier try: ours to fill.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// The data directory, 0700 where it is created (one that exists keeps its mode).
pub(super) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

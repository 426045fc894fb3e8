//! Re-reads the route file when it changes. The parent directory is watched,
//! not the file, so editors that save by writing a temporary file and renaming
//! it over the original are followed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::{RouteDiff, RouteFileError, Routes};

/// How long the file must be quiet before it is re-read: an editor's save is
/// often several events (truncate, write, rename) within a few milliseconds.
pub const RELOAD_DEBOUNCE: Duration = Duration::from_millis(150);

/// The outcome of one re-read.
#[derive(Clone, Debug)]
pub enum RouteReload {
    Reloaded {
        diff: RouteDiff,
        routes: usize,
        warnings: Vec<String>,
    },
    Rejected {
        error: String,
    },
}

/// Keeps the OS watcher alive; dropping it stops watching.
pub struct RouteWatcher {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RouteWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RouteWatcher {
    /// Watches `path` and reloads `routes` on change, reporting each outcome
    /// through `report`. Must be called inside a tokio runtime.
    pub fn spawn(
        routes: Routes,
        path: &Path,
        debounce: Duration,
        report: impl Fn(RouteReload) + Send + 'static,
    ) -> Result<Self, RouteFileError> {
        let path = absolute(path);
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let file_name = path.file_name().map(|n| n.to_os_string());
        let (tx, mut rx) = mpsc::unbounded_channel::<()>();
        let watch_err = |e: notify::Error| RouteFileError::Read {
            path: path.clone(),
            message: format!("cannot watch for changes: {e}"),
        };
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(event) = res {
                let ours = event
                    .paths
                    .iter()
                    .any(|p| p.file_name().map(|n| n.to_os_string()) == file_name);
                if ours {
                    let _ = tx.send(());
                }
            }
        })
        .map_err(watch_err)?;
        watcher
            .watch(&dir, RecursiveMode::NonRecursive)
            .map_err(watch_err)?;

        let task = tokio::spawn(async move {
            // Editors and atomic saves often signal one save twice; a re-read
            // that changes nothing after a good one is not news.
            let mut last_was_good = true;
            while rx.recv().await.is_some() {
                // Wait until the burst is over.
                while let Ok(Some(())) = tokio::time::timeout(debounce, rx.recv()).await {}
                let outcome = if !path.exists() {
                    RouteReload::Rejected {
                        error: routes.note_file_missing(&path).to_string(),
                    }
                } else {
                    match routes.load_file(&path) {
                        Ok((diff, warnings)) => RouteReload::Reloaded {
                            diff,
                            routes: routes.current().len(),
                            warnings,
                        },
                        Err(e) => RouteReload::Rejected {
                            error: e.to_string(),
                        },
                    }
                };
                let quiet = matches!(&outcome, RouteReload::Reloaded { diff, warnings, .. }
                    if diff.is_empty() && warnings.is_empty() && last_was_good);
                last_was_good = matches!(outcome, RouteReload::Reloaded { .. });
                if !quiet {
                    report(outcome);
                }
            }
        });
        Ok(Self {
            _watcher: watcher,
            task,
        })
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

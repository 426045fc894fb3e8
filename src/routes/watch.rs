//! Re-reads the route file when it changes. The parent directory is watched,
//! not the file, so editors that save by writing a temporary file and renaming
//! it over the original are followed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};
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
    reads: Arc<AtomicU64>,
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
                let ours = changes_content(&event.kind)
                    && event
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

        let reads = Arc::new(AtomicU64::new(0));
        let counted = reads.clone();
        let task = tokio::spawn(async move {
            // Editors and atomic saves often signal one save twice; a re-read
            // that changes nothing after a good one is not news.
            let mut last_was_good = true;
            while rx.recv().await.is_some() {
                // Wait until the burst is over.
                while let Ok(Some(())) = tokio::time::timeout(debounce, rx.recv()).await {}
                if path.exists() {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
                let outcome = reload(&routes, &path);
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
            reads,
        })
    }

    /// Times the file was read since watching began.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }
}

/// Re-reads `path` into `routes`: what a change of the file does, and what
/// a control client's `ReloadRoutes` asks for. A rejected file keeps the
/// table in force.
pub fn reload(routes: &Routes, path: &Path) -> RouteReload {
    if !path.exists() {
        return RouteReload::Rejected {
            error: routes.note_file_missing(path).to_string(),
        };
    }
    match routes.load_file(path) {
        Ok((diff, warnings)) => RouteReload::Reloaded {
            diff,
            routes: routes.current().len(),
            warnings,
        },
        Err(e) => RouteReload::Rejected {
            error: e.to_string(),
        },
    }
}

/// Whether an event can have changed what the file holds. Opening and
/// reading are events too: acting on them, nodes that watch one file
/// re-read it for each other's reads, for ever (99 nodes sharing a route
/// file did so about once a second each).
fn changes_content(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Any | EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
    )
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn watchers_of_one_file_do_not_reload_for_each_others_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("routes.json");
        std::fs::write(&path, "{}").unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let watch = |tx: mpsc::UnboundedSender<()>| {
            RouteWatcher::spawn(Routes::default(), &path, RELOAD_DEBOUNCE, move |_| {
                let _ = tx.send(());
            })
            .unwrap()
        };
        let (a, b) = (watch(tx.clone()), watch(tx));
        std::fs::write(&path, r#"{"x": "http://127.0.0.1:9/x"}"#).unwrap();
        for _ in 0..2 {
            tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("both watchers report the change")
                .unwrap();
        }
        let before = (a.reads(), b.reads());
        // An observation window, not a synchronisation: with read events
        // acted on, each watcher re-read the file every debounce period.
        for _ in 0..3 {
            std::fs::read(&path).unwrap();
        }
        tokio::time::sleep(RELOAD_DEBOUNCE * 6).await;
        assert_eq!((a.reads(), b.reads()), before);
        assert!(before.0 >= 1 && before.1 >= 1, "{before:?}");
    }

    #[test]
    fn only_events_that_can_change_the_file_count() {
        use notify::event::{AccessKind, CreateKind, ModifyKind, RemoveKind};
        assert!(changes_content(&EventKind::Modify(ModifyKind::Any)));
        assert!(changes_content(&EventKind::Create(CreateKind::File)));
        assert!(changes_content(&EventKind::Remove(RemoveKind::File)));
        assert!(!changes_content(&EventKind::Access(AccessKind::Any)));
    }
}

//! The DAG held, kept in a file across restarts (`--dag-file`): the same
//! shape as the template nodes' vectors (`{"nodes": [{header, body}, ...]}`),
//! every node verified again when read, written atomically with the file's
//! mode kept, and never over a file someone else changed meanwhile.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use super::dag::verify;
use super::store::{DagStore, Ingest};
use crate::fsutil::{replace_atomically, Expect, WriteError};

/// Default time between two writes of a changed DAG.
pub const DEFAULT_DAG_SAVE_INTERVAL: Duration = Duration::from_secs(10);

/// What loading found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Loaded {
    pub kept: usize,
    /// Nodes that did not verify (or were refused for a limit): skipped.
    pub skipped: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum DagFileError {
    #[error("cannot read the DAG file {path}: {error}")]
    Read { path: PathBuf, error: String },
    #[error("the DAG file {path} is not a DAG file ({why}); move it away or fix it, it was left as it is")]
    Shape { path: PathBuf, why: String },
    #[error("the DAG file {path} is larger than {limit} bytes (--max-dag-bytes); move it away or raise the limit")]
    TooLarge { path: PathBuf, limit: usize },
}

/// Reads `path` into `store` (a missing file is an empty DAG). Returns
/// what was kept and the bytes read, to detect changes by others later.
pub fn load(path: &Path, store: &mut DagStore) -> Result<(Loaded, Option<Vec<u8>>), DagFileError> {
    let limit = store.limits().max_bytes.saturating_mul(2);
    let bytes = match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Loaded::default(), None)),
        Err(e) => {
            return Err(DagFileError::Read {
                path: path.into(),
                error: e.to_string(),
            })
        }
        Ok(m) if m.len() > limit as u64 => {
            return Err(DagFileError::TooLarge {
                path: path.into(),
                limit,
            })
        }
        Ok(_) => std::fs::read(path).map_err(|e| DagFileError::Read {
            path: path.into(),
            error: e.to_string(),
        })?,
    };
    let shape = |why: &str| DagFileError::Shape {
        path: path.into(),
        why: why.into(),
    };
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| shape(&format!("not JSON: {e}")))?;
    let nodes = v
        .get("nodes")
        .and_then(Value::as_array)
        .ok_or_else(|| shape("no \"nodes\" list"))?;
    let mut loaded = Loaded::default();
    for raw in nodes {
        match verify(raw).map(|n| store.ingest(n)) {
            Ok(Ingest::Accepted { .. } | Ingest::Orphan { .. }) => loaded.kept += 1,
            Ok(Ingest::Duplicate) => {}
            Ok(Ingest::Full(_)) | Err(_) => loaded.skipped += 1,
        }
    }
    Ok((loaded, Some(bytes)))
}

/// The file's bytes for what `store` holds (orphans are not kept: their
/// parents are fetched again).
pub fn encode(store: &DagStore) -> Vec<u8> {
    let nodes: Vec<Value> = store
        .namespaces()
        .iter()
        .flat_map(|ns| store.nodes(ns))
        .map(|n| n.json.clone())
        .collect();
    serde_json::to_vec(&json!({ "nodes": nodes })).unwrap_or_default()
}

/// Keeps `path` up to date with `store` until `stop` fires (then writes a
/// last time); `last` is what the file held when loaded. Stops writing
/// (and says so) if someone else changes the file.
pub async fn keep(
    path: PathBuf,
    store: Arc<Mutex<DagStore>>,
    mut last: Option<Vec<u8>>,
    every: Duration,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        let stopping = tokio::select! {
            _ = tick.tick() => false,
            _ = &mut stop => true,
        };
        if !save(&path, &store, &mut last).await || stopping {
            return;
        }
    }
}

/// Writes the DAG if it changed; false when writing must stop.
pub async fn save(path: &Path, store: &Mutex<DagStore>, last: &mut Option<Vec<u8>>) -> bool {
    let bytes = encode(&store.lock().unwrap_or_else(|e| e.into_inner()));
    if last.as_deref() == Some(&bytes[..]) {
        return true;
    }
    let expect = match last.take() {
        Some(before) => Expect::Content(before),
        None => Expect::Absent,
    };
    let (p, b) = (path.to_path_buf(), bytes.clone());
    let written = tokio::task::spawn_blocking(move || replace_atomically(&p, &b, &expect)).await;
    match written {
        Ok(Ok(())) => {
            *last = Some(bytes);
            true
        }
        Ok(Err(WriteError::Changed)) => {
            tracing::warn!(path = %path.display(), "the DAG file changed on disk (someone else wrote it); no longer writing it, so nothing of theirs is lost: restart to load it");
            false
        }
        Ok(Err(e)) => {
            tracing::warn!(path = %path.display(), "cannot write the DAG file: {e}; will try again");
            true
        }
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vectors() -> Vec<u8> {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/peer_state_dag.json"),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_dag_survives_a_restart_and_forgeries_in_the_file_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dag.json");
        let mut v: Value = serde_json::from_slice(&vectors()).unwrap();
        let mut forged = v["nodes"][0].clone();
        forged["body"]["payload"]["state"] = json!(0);
        v["nodes"].as_array_mut().unwrap().push(forged);
        std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();

        let mut store = DagStore::default();
        let (loaded, seen) = load(&path, &mut store).unwrap();
        assert_eq!(
            loaded,
            Loaded {
                kept: 12,
                skipped: 1
            }
        );
        let store = Mutex::new(store);
        let mut last = seen;
        assert!(save(&path, &store, &mut last).await);
        let mut again = DagStore::default();
        let (loaded, _) = load(&path, &mut again).unwrap();
        assert_eq!(
            loaded,
            Loaded {
                kept: 12,
                skipped: 0
            }
        );
        assert_eq!(
            again.summary("general-dag"),
            store.lock().unwrap().summary("general-dag")
        );
    }

    #[tokio::test]
    async fn a_file_changed_by_someone_else_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dag.json");
        let store = Mutex::new(DagStore::default());
        let mut last = None;
        assert!(save(&path, &store, &mut last).await, "created");
        {
            let mut s = store.lock().unwrap();
            let v: Value = serde_json::from_slice(&vectors()).unwrap();
            s.ingest(verify(&v["nodes"][0]).unwrap());
        }
        std::fs::write(&path, b"theirs").unwrap();
        assert!(!save(&path, &store, &mut last).await, "stops");
        assert_eq!(std::fs::read(&path).unwrap(), b"theirs");
    }

    #[test]
    fn a_file_that_is_not_a_dag_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dag.json");
        std::fs::write(&path, b"{\"routes\": {}}").unwrap();
        let err = load(&path, &mut DagStore::default()).unwrap_err();
        assert!(err.to_string().contains("move it away"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"routes\": {}}");
        let missing = dir.path().join("none.json");
        assert_eq!(
            load(&missing, &mut DagStore::default()).unwrap().0,
            Loaded::default()
        );
    }
}

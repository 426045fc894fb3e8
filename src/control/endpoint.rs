//! A node's endpoint record: who listens on which control socket. Written
//! (atomically) only once the socket listens, removed on exit; a record
//! whose process is gone is cleaned up by the next reader. Clients find
//! nodes by reading them.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What a node says of itself beside its socket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The node's name (`--name`), else its peer id.
    pub name: String,
    pub peer_id: String,
    pub pid: u32,
    pub version: String,
    pub socket: PathBuf,
    /// Seconds since the epoch when the node started.
    pub started: u64,
    pub listen: Vec<String>,
}

/// The record's file: removed when dropped.
pub struct EndpointRecord {
    path: PathBuf,
}

impl Drop for EndpointRecord {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Where the record of a socket goes: beside it, `.json` for `.sock`.
pub fn record_path(socket: &Path) -> PathBuf {
    socket.with_extension("json")
}

/// Writes `endpoint` beside its socket (mode 0600).
pub fn write(endpoint: &Endpoint) -> std::io::Result<EndpointRecord> {
    let path = record_path(&endpoint.socket);
    let bytes = serde_json::to_vec_pretty(endpoint).map_err(std::io::Error::other)?;
    // A record left by a node that died is replaced; one of a live node
    // would have stopped us at its socket already.
    crate::fsutil::replace_atomically(&path, &bytes, &crate::fsutil::Expect::Any)
        .map_err(std::io::Error::other)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(EndpointRecord { path })
}

fn alive(pid: u32) -> bool {
    #[cfg(target_os = "linux")]
    {
        Path::new(&format!("/proc/{pid}")).exists()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        true
    }
}

/// The live nodes recorded in `dir`; records of dead processes (and their
/// sockets) are removed on the way.
pub fn list(dir: &Path) -> Vec<Endpoint> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let Some(endpoint) = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Endpoint>(&b).ok())
        else {
            continue;
        };
        if alive(endpoint.pid) {
            found.push(endpoint);
        } else {
            tracing::info!(record = %path.display(), pid = endpoint.pid, "removing the record of a node that is gone");
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::remove_file(&endpoint.socket);
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

/// The one node `query` names (its name, or a prefix of its peer id), or
/// the only node when there is no query.
pub fn pick<'a>(nodes: &'a [Endpoint], query: Option<&str>) -> Result<&'a Endpoint, String> {
    let matching: Vec<&Endpoint> = match query {
        None => nodes.iter().collect(),
        Some(q) => {
            let exact: Vec<_> = nodes.iter().filter(|n| n.name == q).collect();
            if exact.is_empty() {
                nodes.iter().filter(|n| n.peer_id.starts_with(q)).collect()
            } else {
                exact
            }
        }
    };
    match matching.as_slice() {
        [one] => Ok(one),
        [] => Err(match query {
            Some(q) => format!("no running node is named {q:?} or has a peer id starting so"),
            None => "no running node".into(),
        }),
        many => Err(format!(
            "{} nodes match; name one:\n{}",
            many.len(),
            many.iter()
                .map(|n| format!("  {}  {}  pid {}", n.name, n.peer_id, n.pid))
                .collect::<Vec<_>>()
                .join("\n")
        )),
    }
}

/// A node's control socket and its endpoint record, kept while it runs.
pub struct Offered {
    socket: super::socket::ControlSocket,
    _record: EndpointRecord,
}

impl Offered {
    pub fn path(&self) -> &Path {
        self.socket.path()
    }
}

/// Listens for control clients of `handle`'s node as `options` say, then
/// writes its record under `name`.
#[cfg(unix)]
pub async fn offer(
    handle: &crate::node::NodeHandle,
    options: super::socket::ControlOptions,
    name: String,
) -> Result<Offered, String> {
    let socket = super::socket::listen(handle.clone(), options)
        .await
        .map_err(|e| e.to_string())?;
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let listen = handle.listen_addrs().await.unwrap_or_default();
    let record = write(&Endpoint {
        name,
        peer_id: handle.local_peer_id().to_string(),
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").into(),
        socket: socket.path().to_path_buf(),
        started,
        listen: listen.iter().map(|a| a.to_string()).collect(),
    })
    .map_err(|e| format!("cannot write the node's endpoint record: {e}"))?;
    Ok(Offered {
        socket,
        _record: record,
    })
}

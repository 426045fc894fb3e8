//! The node's control socket: a Unix socket in a private directory, never
//! a TCP port. The directory is made 0700 (and refused when someone else
//! owns it or it is open to others) before the socket is bound inside it,
//! so the socket is never reachable before its permissions are right; each
//! connection's peer credentials are checked as well.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

use super::frame::{self, DEFAULT_MAX_MESSAGE_BYTES};
use super::message::Role;
use super::service::{self, ClientLimits};
use crate::node::NodeHandle;

/// Control connections open at once by default.
pub const DEFAULT_MAX_CONTROL_CONNECTIONS: usize = 16;

/// How the node offers control.
#[derive(Clone, Debug)]
pub struct ControlOptions {
    /// The socket's path; its directory must be private.
    pub socket: PathBuf,
    /// Besides the node's own user and root, members of this group may connect.
    pub group: Option<u32>,
    /// The most a client may do, whatever it asks for.
    pub role: Role,
    pub max_connections: usize,
    pub max_message_bytes: usize,
    pub client: ClientLimits,
}

impl ControlOptions {
    pub fn at(socket: PathBuf) -> Self {
        Self {
            socket,
            group: None,
            role: Role::Full,
            max_connections: DEFAULT_MAX_CONTROL_CONNECTIONS,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            client: ClientLimits::default(),
        }
    }
}

/// Where nodes put their sockets by default: `$XDG_RUNTIME_DIR/peerapi`,
/// `/run/peerapi` for root, else a directory of the user's own in `/tmp`.
pub fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("peerapi");
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if uid == 0 {
        PathBuf::from("/run/peerapi")
    } else {
        std::env::temp_dir().join(format!("peerapi-{uid}"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("cannot create the control directory {dir}: {source}")]
    CreateDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("refusing the control directory {dir}: {why}; fix it (chmod 700, chown) or pick another with --control PATH")]
    UnsafeDir { dir: PathBuf, why: String },
    #[error("another node listens on {0} already: stop it, or give this one --control PATH")]
    InUse(PathBuf),
    #[error("cannot listen on {path}: {source}")]
    Bind {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot hand {path} to group {gid} (--control-group): {source}; the node's user must be a member of that group")]
    Group {
        path: PathBuf,
        gid: u32,
        source: std::io::Error,
    },
}

/// A group by name or number, as `--control-group` takes it.
pub fn group_id(name: &str) -> Result<u32, String> {
    if let Ok(gid) = name.parse::<u32>() {
        return Ok(gid);
    }
    let c_name = std::ffi::CString::new(name).map_err(|_| format!("no group named {name:?}"))?;
    let mut group: libc::group = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut found: *mut libc::group = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call, buf's length is passed,
    // and `found` is only read as null or not.
    let rc = unsafe {
        libc::getgrnam_r(
            c_name.as_ptr(),
            &mut group,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() {
        return Err(format!(
            "no group named {name:?} (see /etc/group, or give a gid)"
        ));
    }
    Ok(group.gr_gid)
}

/// Hands `path` to `gid` with `mode`: what a group admitted on the
/// control socket needs to reach it.
fn share_with_group(path: &Path, gid: u32, mode: u32) -> Result<(), ControlError> {
    let failed = |source| ControlError::Group {
        path: path.into(),
        gid,
        source,
    };
    std::os::unix::fs::chown(path, None, Some(gid)).map_err(failed)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(failed)
}

/// Makes `dir` (0700) unless it exists, and checks that it is ours alone
/// (or ours and `group`'s, when the operator admits a group).
pub fn private_dir(dir: &Path, group: Option<u32>) -> Result<(), ControlError> {
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => {}
        Err(source) => {
            return Err(ControlError::CreateDir {
                dir: dir.into(),
                source,
            })
        }
    }
    let unsafe_dir = |why: String| ControlError::UnsafeDir {
        dir: dir.into(),
        why,
    };
    let meta = std::fs::symlink_metadata(dir).map_err(|e| unsafe_dir(e.to_string()))?;
    if !meta.is_dir() {
        return Err(unsafe_dir("it is not a directory (a link?)".into()));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(unsafe_dir(format!(
            "it belongs to uid {}, not to this user (uid {me})",
            meta.uid()
        )));
    }
    let mode = meta.permissions().mode() & 0o777;
    let group_may = group.is_some_and(|g| g == meta.gid()) && mode & 0o020 == 0;
    if mode & 0o007 != 0 || (mode & 0o070 != 0 && !group_may) {
        return Err(unsafe_dir(format!("it is open to others (mode {mode:o})")));
    }
    Ok(())
}

/// A listening control socket; dropping it removes the socket file.
pub struct ControlSocket {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl ControlSocket {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Listens for control clients of `handle`'s node.
pub async fn listen(
    handle: NodeHandle,
    options: ControlOptions,
) -> Result<ControlSocket, ControlError> {
    let path = options.socket.clone();
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    private_dir(dir, options.group)?;
    // Checked first: an admitted group may reach the directory, no one else.
    if let Some(gid) = options.group {
        share_with_group(dir, gid, 0o750)?;
    }
    if path.exists() {
        // A socket nobody answers on was left by a node that died.
        if UnixStream::connect(&path).await.is_ok() {
            return Err(ControlError::InUse(path));
        }
        let _ = std::fs::remove_file(&path);
    }
    let listener = UnixListener::bind(&path).map_err(|source| ControlError::Bind {
        path: path.clone(),
        source,
    })?;
    // The directory already keeps others out; the socket says so too.
    match options.group {
        Some(gid) => share_with_group(&path, gid, 0o660)?,
        None => {
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
        }
    }
    let task = tokio::spawn(accept(listener, handle, options));
    Ok(ControlSocket { path, task })
}

/// Whether the process at the other end may control the node; if so, who
/// it is (its pid and uid), to label the calls it has the node make.
fn admitted(stream: &UnixStream, group: Option<u32>) -> Result<String, String> {
    let cred = stream
        .peer_cred()
        .map_err(|e| format!("no peer credentials: {e}"))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let (uid, gid) = (cred.uid(), cred.gid());
    if uid == me || uid == 0 || group.is_some_and(|g| g == gid) {
        Ok(super::service::client_label(&match cred.pid() {
            Some(pid) => format!("pid {pid} uid {uid}"),
            None => format!("uid {uid}"),
        }))
    } else {
        Err(format!("uid {uid} (gid {gid}) is not this node's user"))
    }
}

async fn accept(listener: UnixListener, handle: NodeHandle, options: ControlOptions) {
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!("control socket: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let client = match admitted(&stream, options.group) {
            Ok(who) => who,
            Err(why) => {
                tracing::warn!("control connection refused: {why}");
                continue;
            }
        };
        if open.load(Ordering::Relaxed) >= options.max_connections {
            tracing::warn!(
                limit = options.max_connections,
                "control connection refused: as many open as allowed (--max-control-connections)"
            );
            continue;
        }
        open.fetch_add(1, Ordering::Relaxed);
        let (handle, options, open) = (handle.clone(), options.clone(), open.clone());
        tokio::spawn(async move {
            serve_stream(stream, client, handle, &options).await;
            open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// One client on a byte stream, until either side is done.
pub async fn serve_stream<S>(
    stream: S,
    client: String,
    handle: NodeHandle,
    options: &ControlOptions,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (read, write) = tokio::io::split(stream);
    let limits = options.client;
    let (to_service, from_client) = mpsc::channel(64);
    let (to_client, from_service) = mpsc::channel(limits.queued_messages);
    let max = options.max_message_bytes;
    let writer = tokio::spawn(frame::write_messages(write, max, from_service));
    let reader = frame::read_messages(read, max, to_service);
    let mut service = tokio::spawn(service::serve_client(
        handle,
        client,
        options.role,
        from_client,
        to_client,
        limits,
    ));
    // The reader ends when the client hangs up or sends garbage; its
    // sender dropped, the service ends too and cancels the client's
    // requests. A service that ends first (no hello) drops the reader.
    tokio::select! {
        ended = reader => {
            if let frame::Ended::Garbage(why) = ended {
                tracing::warn!("control connection dropped: {why}");
            }
            let _ = service.await;
        }
        _ = &mut service => {}
    }
    let _ = writer.await;
}

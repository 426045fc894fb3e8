//! Reaching a node's control socket from another process: on this
//! machine, or through the user's own ssh (`ssh -T host peerapi ctl
//! dial-stdio`, as docker does), never a new network port.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

use super::endpoint::{self, Endpoint};
use super::frame::{self, DEFAULT_MAX_MESSAGE_BYTES};
use super::link::{NodeLink, Updates};
use super::message::Greeting;

/// Which node to reach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A socket path.
    Socket(PathBuf),
    /// A node on this machine by name or peer-id prefix (None: the only one).
    Local(Option<String>),
    /// `ssh://[user@]host[:port][/name]`.
    Ssh {
        destination: String,
        port: Option<u16>,
        name: Option<String>,
    },
}

impl Target {
    pub fn parse(text: Option<&str>) -> Result<Self, String> {
        let Some(text) = text.filter(|t| !t.is_empty()) else {
            return Ok(Target::Local(None));
        };
        if let Some(rest) = text.strip_prefix("ssh://") {
            let (host_part, name) = match rest.split_once('/') {
                Some((h, n)) if !n.is_empty() => (h, Some(n.to_string())),
                Some((h, _)) => (h, None),
                None => (rest, None),
            };
            let (destination, port) = match host_part.rsplit_once(':') {
                Some((h, p)) => {
                    let port = p
                        .parse::<u16>()
                        .map_err(|_| format!("{p:?} is not a port in {text:?}"))?;
                    (h.to_string(), Some(port))
                }
                None => (host_part.to_string(), None),
            };
            if destination.is_empty() || destination.starts_with('-') {
                return Err(format!(
                    "no host in {text:?}: ssh://[user@]host[:port][/name]"
                ));
            }
            return Ok(Target::Ssh {
                destination,
                port,
                name,
            });
        }
        if text.contains('/') || text.ends_with(".sock") {
            return Ok(Target::Socket(PathBuf::from(text)));
        }
        Ok(Target::Local(Some(text.to_string())))
    }
}

/// The node on this machine that `query` names, looked for in `dirs`.
pub fn find_local(dirs: &[PathBuf], query: Option<&str>) -> Result<Endpoint, String> {
    let nodes: Vec<Endpoint> = dirs.iter().flat_map(|d| endpoint::list(d)).collect();
    if nodes.is_empty() {
        let looked: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        return Err(format!(
            "no running node found: looked for endpoint records in {}. Start one with `peerapi node`, or give its socket path",
            looked.join(", ")
        ));
    }
    endpoint::pick(&nodes, query).cloned()
}

/// Where clients look for nodes: the default directory, and `/run/peerapi`
/// (a service's) when that is not it.
pub fn search_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![super::socket::default_dir()];
    let service = PathBuf::from("/run/peerapi");
    if !dirs.contains(&service) {
        dirs.push(service);
    }
    dirs
}

/// A link over any byte stream to a node's control service.
pub async fn over_stream<S>(
    stream: S,
    role: impl Into<Greeting>,
) -> Result<(NodeLink, Updates), String>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (read, write) = tokio::io::split(stream);
    let (to_node, to_write) = mpsc::channel(64);
    let (from_read, from_node) = mpsc::channel(super::service::DEFAULT_QUEUED_MESSAGES);
    let max = DEFAULT_MAX_MESSAGE_BYTES;
    tokio::spawn(frame::write_messages(write, max, to_write));
    tokio::spawn(async move {
        if let frame::Ended::Garbage(why) = frame::read_messages(read, max, from_read).await {
            tracing::warn!("the node's control connection broke: {why}");
        }
    });
    NodeLink::over(to_node, from_node, role)
        .await
        .map_err(|e| e.to_string())
}

/// Connects to a local socket.
pub async fn connect_socket(
    path: &Path,
    role: impl Into<Greeting>,
) -> Result<(NodeLink, Updates), String> {
    let stream = tokio::net::UnixStream::connect(path)
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", path.display()))?;
    over_stream(stream, role).await
}

/// A link to the node `target` names, however it is reached.
pub async fn connect(
    target: &Target,
    role: impl Into<Greeting>,
) -> Result<(NodeLink, Updates), String> {
    match target {
        Target::Socket(path) => connect_socket(path, role).await,
        Target::Local(query) => {
            let node = find_local(&search_dirs(), query.as_deref())?;
            connect_socket(&node.socket, role).await
        }
        Target::Ssh {
            destination,
            port,
            name,
        } => connect_ssh(destination, *port, name.as_deref(), role).await,
    }
}

/// What ssh said on its stderr, for when the connection fails.
pub type SshErrors = std::sync::Arc<std::sync::Mutex<String>>;

/// Runs `ssh -T [-p port] destination peerapi ctl dial-stdio [name]` and
/// links over its stdin and stdout; ssh's stderr is kept (never written
/// to a terminal the console owns) and logged.
pub async fn connect_ssh(
    destination: &str,
    port: Option<u16>,
    name: Option<&str>,
    role: impl Into<Greeting>,
) -> Result<(NodeLink, Updates), String> {
    let mut cmd = tokio::process::Command::new(
        std::env::var_os("PEERAPI_SSH").unwrap_or_else(|| "ssh".into()),
    );
    cmd.arg("-T");
    if let Some(p) = port {
        cmd.arg("-p").arg(p.to_string());
    }
    cmd.arg("--").arg(destination);
    let remote = std::env::var("PEERAPI_REMOTE_COMMAND").unwrap_or_else(|_| "peerapi".into());
    cmd.arg(remote).arg("ctl").arg("dial-stdio");
    if let Some(n) = name {
        cmd.arg(n);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run ssh: {e} (is the OpenSSH client installed?)"))?;
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err("ssh started without its pipes".into());
    };
    let said: SshErrors = Default::default();
    let keep = said.clone();
    tokio::spawn(async move {
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::warn!("ssh: {line}");
            let mut all = keep.lock().unwrap_or_else(|e| e.into_inner());
            // Bounded: the first lines say why.
            if all.len() < 4096 {
                all.push_str(&line);
                all.push('\n');
            }
        }
    });
    match over_stream(tokio::io::join(stdout, stdin), role).await {
        Ok((link, updates)) => {
            // ssh lives as long as the link: it ends when its stdin closes.
            tokio::spawn(async move {
                let _ = child.wait().await;
            });
            Ok((link, updates))
        }
        Err(e) => {
            // ssh's own words say more than a closed pipe.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), child.wait()).await;
            let said = said.lock().unwrap_or_else(|e| e.into_inner()).clone();
            Err(if said.trim().is_empty() {
                format!("no node answered through ssh to {destination}: {e}")
            } else {
                format!("ssh to {destination} failed: {}", said.trim())
            })
        }
    }
}

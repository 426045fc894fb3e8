//! What tests and benches share (feature `test-util`): the bench backend,
//! a `peerapi node` process started on a loopback port, its memory and
//! descriptors. Not part of the node: a library user never needs it.

mod backend;
pub mod link;
pub mod plain_tcp;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use libp2p::Multiaddr;

pub use backend::{start_backend, PACED_EVENTS, SMALL_BODY};

/// A directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh directory `peerapi-bench-<tag>` in the system's temporary one.
    pub fn new(tag: &str) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!("peerapi-bench-{tag}"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(Self(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes the bench backend's routes for `backend` to a fresh temporary
/// directory, and returns it with the route file's path.
pub fn bench_routes(backend: SocketAddr, tag: &str) -> Result<(TempDir, PathBuf), String> {
    let dir = std::env::temp_dir().join(format!("peerapi-bench-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let guard = TempDir(dir);
    let routes = guard.0.join("routes.json");
    let table = serde_json::json!({
        "small": { "url": format!("http://{backend}/small") },
        "echo": { "url": format!("http://{backend}/echo") },
        "tokens": { "url": format!("http://{backend}/tokens?n=1000000"), "stream": true },
        "tokens500": { "url": format!("http://{backend}/tokens?n=500"), "stream": true },
        "blob": { "url": format!("http://{backend}/blob?n={}", 256 * 1024 * 1024), "stream": true },
        "paced": { "url": format!("http://{backend}/paced"), "stream": true },
        "first": { "url": format!("http://{backend}/first"), "stream": true },
    });
    std::fs::write(&routes, table.to_string()).map_err(|e| e.to_string())?;
    Ok((guard, routes))
}

/// Call limits that let `streams` concurrent streams through.
pub fn call_limit(streams: usize) -> usize {
    (streams * 2).max(256)
}

/// Starts `exe node` on a loopback port with `routes`, more `flags` and
/// `envs`, and returns it with the full multiaddr it prints within `wait`.
pub fn spawn_node(
    exe: &Path,
    routes: &Path,
    flags: &[&str],
    envs: &[(&str, &str)],
    wait: Duration,
) -> Result<(std::process::Child, Multiaddr), String> {
    spawn_node_reporting(exe, routes, flags, envs, wait).map(|n| (n.child, n.addr))
}

/// A `peerapi node` process and what it said when it started.
pub struct SpawnedNode {
    pub child: std::process::Child,
    pub addr: Multiaddr,
    /// `http://…/metrics`, when it was started with `--metrics-listen`.
    pub metrics_url: Option<String>,
}

/// [`spawn_node`], also waiting for the metrics URL when `flags` ask for
/// metrics (it is printed after the addresses).
pub fn spawn_node_reporting(
    exe: &Path,
    routes: &Path,
    flags: &[&str],
    envs: &[(&str, &str)],
    wait: Duration,
) -> Result<SpawnedNode, String> {
    use std::io::BufRead;
    let wants_metrics = flags.contains(&"--metrics-listen");
    let mut child = std::process::Command::new(exe)
        .args(["node", "--listen", "/ip4/127.0.0.1/tcp/0", "--routes"])
        .arg(routes)
        .args(flags)
        .envs(envs.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    let Some(stdout) = child.stdout.take() else {
        let _ = child.kill();
        return Err("the node's stdout is not piped".into());
    };
    let (tx, rx) = std::sync::mpsc::channel();
    // Reads to the end, so the node never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            // `peerapi node` prints text, or JSON objects with --json.
            let json = serde_json::from_str::<serde_json::Value>(&line).ok();
            let field = |event: &str, key: &str| {
                json.as_ref()
                    .filter(|j| j["event"] == event)
                    .and_then(|j| j[key].as_str())
                    .map(str::to_string)
            };
            if let Some(a) = line
                .strip_prefix("listening on ")
                .map(str::to_string)
                .or(field("listening", "addr"))
            {
                let _ = tx.send((true, a));
            }
            if let Some(u) = line
                .strip_prefix("metrics on ")
                .map(str::to_string)
                .or(field("metrics", "url"))
            {
                let _ = tx.send((false, u));
            }
        }
    });
    let deadline = std::time::Instant::now() + wait;
    let (mut addr, mut metrics_url) = (None, None);
    while addr.is_none() || (wants_metrics && metrics_url.is_none()) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok((true, a)) if addr.is_none() => addr = Some(a),
            Ok((false, u)) => metrics_url = Some(u),
            Ok(_) => {}
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "the node did not print its address within {wait:?}"
                ));
            }
        }
    }
    match addr.unwrap_or_default().parse() {
        Ok(addr) => Ok(SpawnedNode {
            child,
            addr,
            metrics_url,
        }),
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(format!("bad address from the node: {e}"))
        }
    }
}

/// The serving node as a child process, killed on drop.
pub struct ServingNode {
    child: std::process::Child,
    pub addr: Multiaddr,
    _dir: TempDir,
}

impl Drop for ServingNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServingNode {
    /// Starts `exe node` serving the bench backend's routes, with call
    /// limits sized for `streams` concurrent streams, and `extra` flags.
    pub fn start(
        exe: &Path,
        backend: SocketAddr,
        streams: usize,
        extra: &[String],
    ) -> Result<Self, String> {
        let (dir, routes) = bench_routes(backend, "process")?;
        let limit = call_limit(streams).to_string();
        let mut flags = vec![
            "--max-concurrent-calls",
            &limit,
            "--max-calls-per-peer",
            &limit,
        ];
        flags.extend(extra.iter().map(String::as_str));
        // Quiet: an info line per served call would be part of what is measured.
        let (child, addr) = spawn_node(
            exe,
            &routes,
            &flags,
            &[("RUST_LOG", "error")],
            Duration::from_secs(20),
        )?;
        Ok(Self {
            child,
            addr,
            _dir: dir,
        })
    }

    /// Resident memory now.
    pub fn rss_mb(&self) -> Option<f64> {
        self.status_mb("VmRSS:")
    }

    /// Peak resident memory so far.
    pub fn peak_rss_mb(&self) -> Option<f64> {
        self.status_mb("VmHWM:")
    }

    /// Open file descriptors now.
    pub fn fds(&self) -> Option<usize> {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .ok()
            .map(|d| d.count())
    }

    fn status_mb(&self, key: &str) -> Option<f64> {
        proc_kb(&format!("/proc/{}/status", self.child.id()), key).map(|kb| kb / 1024.0)
    }
}

/// A `Key:   123 kB` line of a /proc file (`status`, `smaps_rollup`), in kB.
pub fn proc_kb(path: &str, key: &str) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

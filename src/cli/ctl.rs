//! `peerapi ctl` (scripts) and `peerapi attach` (the console) over a node
//! that already runs, through its control socket: on this machine, or
//! through the user's own ssh.

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use peerapi::control::client::{self, Target};
use peerapi::control::{Role, Update, Updates};

use super::ctl_follow::connect;
use super::say::fail;

#[derive(Args)]
pub(crate) struct TargetArg {
    /// The node: a socket path, a node's name, a peer-id prefix, or
    /// ssh://[user@]host[:port][/name]. Default: the one local node.
    #[arg(value_name = "TARGET")]
    target: Option<String>,
}

#[derive(Subcommand)]
pub(crate) enum CtlCmd {
    /// The node's identity, listen addresses, peers and routes, at a glance.
    Status {
        #[command(flatten)]
        target: TargetArg,
        #[arg(long)]
        json: bool,
    },
    /// The node's connected peers.
    Peers {
        #[command(flatten)]
        target: TargetArg,
        #[arg(long)]
        json: bool,
    },
    /// The node's route table; `routes set|remove` edit its route file.
    Routes(RoutesCtl),
    /// A call made by the node (its identity and connections); output and
    /// exit codes as `peerapi call`'s.
    Call(super::ctl_follow::CtlCallCmd),
    /// A streaming call made by the node, printed as it arrives.
    Stream(super::ctl_follow::CtlCallCmd),
    /// Follow the node's log lines (-f is implied).
    Log {
        #[command(flatten)]
        node: super::ctl_follow::NodeOpt,
        /// Accepted for habit: the log is always followed.
        #[arg(short = 'f', long)]
        follow: bool,
        #[arg(long)]
        json: bool,
    },
    /// Show the bodies the node serves (one route or one call) as its
    /// callers get them: explicit, bounded, never on by default.
    Tap(super::ctl_follow::CtlTapCmd),
    /// Follow the calls the node serves and makes, as they start and end.
    Calls {
        #[command(flatten)]
        node: super::ctl_follow::NodeOpt,
        #[arg(long)]
        json: bool,
    },
    /// The subnet's roster as the node knows it (from the peer states it holds).
    Roster {
        #[command(flatten)]
        target: TargetArg,
        #[arg(long)]
        json: bool,
    },
    /// The running nodes on this machine.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Join stdin and stdout to a local node's control socket (what
    /// `attach ssh://host` runs on the far side).
    DialStdio {
        /// A socket path, name or peer-id prefix (default: the one local node).
        #[arg(value_name = "NODE")]
        node: Option<String>,
    },
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct RoutesCtl {
    #[command(subcommand)]
    action: Option<RoutesAction>,
    #[command(flatten)]
    target: TargetArg,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum RoutesAction {
    /// Add or replace a route in the node's route file (atomically; the
    /// node reloads it).
    Set {
        #[command(flatten)]
        node: super::ctl_follow::NodeOpt,
        name: String,
        url: String,
        /// The route streams.
        #[arg(long)]
        stream: bool,
    },
    /// Remove a route from the node's route file.
    Remove {
        #[command(flatten)]
        node: super::ctl_follow::NodeOpt,
        name: String,
    },
}

#[derive(Args)]
pub(crate) struct AttachCmd {
    #[command(flatten)]
    target: TargetArg,
    /// The node a context of contexts.toml names (its target, its read-only).
    #[arg(long, value_name = "NAME", conflicts_with = "target")]
    context: Option<String>,
    #[command(flatten)]
    contexts: super::fleet::ContextsFile,
    /// Watch only: no calls, route edits, dials, disconnects or taps.
    #[arg(long)]
    read_only: bool,
}

/// The node's first snapshot (it follows the hello).
async fn snapshot(updates: &mut Updates) -> Result<peerapi::control::Snapshot, String> {
    let wait = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some(u) = updates.recv().await {
            if let Update::Snapshot(s) = u {
                return Some(*s);
            }
        }
        None
    });
    match wait.await {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err("the node closed the connection".into()),
        Err(_) => Err("the node sent no snapshot within 10 s".into()),
    }
}

pub(crate) async fn run(cmd: CtlCmd) -> ExitCode {
    use super::ctl_follow::{self as act, Follow};
    let (target, json, what) = match cmd {
        CtlCmd::DialStdio { node } => return dial_stdio(node.as_deref()).await,
        CtlCmd::List { json } => return list(json),
        CtlCmd::Status { target, json } => (target, json, "status"),
        CtlCmd::Peers { target, json } => (target, json, "peers"),
        CtlCmd::Roster { target, json } => {
            return act::roster(target.target.as_deref(), json).await
        }
        CtlCmd::Call(c) => return act::call(c, false).await,
        CtlCmd::Tap(c) => return act::tap(c).await,
        CtlCmd::Stream(c) => return act::call(c, true).await,
        CtlCmd::Log { node, json, .. } => {
            return act::follow(node.node.as_deref(), Follow::Log, json).await
        }
        CtlCmd::Calls { node, json } => {
            return act::follow(node.node.as_deref(), Follow::Calls, json).await
        }
        CtlCmd::Routes(r) => match r.action {
            None => (r.target, r.json, "routes"),
            Some(RoutesAction::Set {
                node,
                name,
                url,
                stream,
            }) => {
                let request = peerapi::control::Request::UpsertRoute {
                    name,
                    url,
                    stream,
                    version: None,
                };
                return act::edit_route(node.node.as_deref(), request).await;
            }
            Some(RoutesAction::Remove { node, name }) => {
                let request = peerapi::control::Request::RemoveRoute {
                    name,
                    version: None,
                };
                return act::edit_route(node.node.as_deref(), request).await;
            }
        },
    };
    let connected = match Target::parse(target.target.as_deref()) {
        Ok(t) => connect(&t, Role::Observe).await,
        Err(e) => return fail(2, e),
    };
    let (link, mut updates) = match connected {
        Ok(c) => c,
        Err(e) => return fail(3, e),
    };
    let snap = match snapshot(&mut updates).await {
        Ok(s) => s,
        Err(e) => return fail(3, e),
    };
    let info = link.info();
    let mut out = std::io::stdout().lock();
    let text = match (what, json) {
        ("status", true) => serde_json::json!({
            "peer_id": info.peer_id.to_string(),
            "name": info.name,
            "version": info.version,
            "listen": snap.listen.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "peers": snap.peers.len(),
            "routes": snap.routes.table.len(),
            "route_file_error": snap.routes.file.last_error,
        })
        .to_string(),
        ("status", false) => {
            let mut t = format!("peer id   {}\n", info.peer_id);
            if let Some(n) = &info.name {
                t.push_str(&format!("name      {n}\n"));
            }
            t.push_str(&format!("version   {}\n", info.version));
            for a in &snap.listen {
                t.push_str(&format!("listening {a}\n"));
            }
            t.push_str(&format!("peers     {}\n", snap.peers.len()));
            t.push_str(&format!("routes    {}", snap.routes.table.len()));
            if let Some(e) = &snap.routes.file.last_error {
                t.push_str(&format!(" (route file rejected: {e})"));
            }
            t
        }
        ("peers", true) => snap
            .peers
            .iter()
            .map(|p| {
                serde_json::json!({
                    "peer_id": p.peer.to_string(),
                    "addr": p.addr.to_string(),
                    "direction": p.direction.to_string(),
                    "agent": p.agent,
                    "rtt_ms": p.rtt_last.map(|d| d.as_secs_f64() * 1e3),
                })
                .to_string()
            })
            .collect::<Vec<_>>()
            .join("\n"),
        ("peers", false) => snap
            .peers
            .iter()
            .map(|p| {
                let rtt = p
                    .rtt_last
                    .map(|d| format!("{:.1}ms", d.as_secs_f64() * 1e3))
                    .unwrap_or_else(|| "-".into());
                format!("{}  {:<8}  {:>9}  {}", p.peer, p.direction, rtt, p.addr)
            })
            .collect::<Vec<_>>()
            .join("\n"),
        (_, true) => snap
            .routes
            .table
            .iter()
            .map(|(name, r)| {
                serde_json::json!({"name": name, "urls": r.urls, "stream": r.stream}).to_string()
            })
            .collect::<Vec<_>>()
            .join("\n"),
        (_, false) => snap
            .routes
            .table
            .iter()
            .map(|(name, r)| {
                let kind = if r.stream { "stream" } else { "unary" };
                format!("{name:<20} {kind:<6} {}", r.urls.join(", "))
            })
            .collect::<Vec<_>>()
            .join("\n"),
    };
    if !text.is_empty() {
        let _ = writeln!(out, "{text}");
    }
    ExitCode::SUCCESS
}

fn list(json: bool) -> ExitCode {
    let dirs = client::search_dirs();
    let nodes: Vec<_> = dirs
        .iter()
        .flat_map(|d| peerapi::control::endpoint::list(d))
        .collect();
    let mut out = std::io::stdout().lock();
    if json {
        for n in &nodes {
            let _ = writeln!(out, "{}", serde_json::to_string(n).unwrap_or_default());
        }
        return ExitCode::SUCCESS;
    }
    if nodes.is_empty() {
        let looked: Vec<_> = dirs.iter().map(|d| d.display().to_string()).collect();
        let _ = writeln!(out, "no running node (looked in {})", looked.join(", "));
        return ExitCode::SUCCESS;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for n in &nodes {
        let up = now.saturating_sub(n.started);
        let listen = n.listen.first().map(String::as_str).unwrap_or("-");
        let _ = writeln!(
            out,
            "{:<20} {}  up {}h{:02}m  {listen}",
            n.name,
            n.peer_id,
            up / 3600,
            up / 60 % 60
        );
    }
    ExitCode::SUCCESS
}

/// Joins stdin/stdout to the node's socket, byte for byte.
async fn dial_stdio(node: Option<&str>) -> ExitCode {
    let path = match Target::parse(node) {
        Ok(Target::Socket(p)) => p,
        Ok(Target::Local(q)) => match client::find_local(&client::search_dirs(), q.as_deref()) {
            Ok(n) => n.socket,
            Err(e) => return fail(3, e),
        },
        Ok(Target::Ssh { .. }) => return fail(2, "dial-stdio reaches a node on this machine only"),
        Err(e) => return fail(2, e),
    };
    let mut socket = match tokio::net::UnixStream::connect(&path).await {
        Ok(s) => s,
        Err(e) => return fail(3, format!("cannot connect to {}: {e}", path.display())),
    };
    let mut stdio = tokio::io::join(tokio::io::stdin(), tokio::io::stdout());
    match tokio::io::copy_bidirectional(&mut stdio, &mut socket).await {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => fail(1, format!("control connection ended: {e}")),
    }
}

#[cfg(feature = "console")]
pub(crate) async fn attach(cmd: AttachCmd) -> ExitCode {
    let mut read_only = cmd.read_only;
    let mut named = cmd.target.target.clone();
    // Loaded either way: `:ctx NAME` in the console switches among them.
    let contexts = match cmd.contexts.load() {
        Ok(c) => c,
        Err(e) if cmd.context.is_some() => return fail(2, e),
        Err(e) => {
            eprintln!("peerapi: {e} (`:ctx` will have no contexts)");
            Vec::new()
        }
    };
    if let Some(name) = &cmd.context {
        let Some(context) = contexts.iter().find(|c| &c.name == name) else {
            return fail(
                2,
                format!("no context {name:?}: `peerapi context list` shows them"),
            );
        };
        read_only |= context.read_only;
        named = Some(match context.reach() {
            Ok(Target::Socket(p)) => p.display().to_string(),
            Ok(_) => context.target.clone(),
            Err(e) => return fail(2, e),
        });
    }
    let role = if read_only { Role::Observe } else { Role::Full };
    let target = match Target::parse(named.as_deref()) {
        Ok(Target::Local(None)) => match pick_local() {
            Ok(t) => t,
            Err(e) => return fail(3, e),
        },
        Ok(t) => t,
        Err(e) => return fail(2, e),
    };
    let named = match &target {
        Target::Socket(p) => p.display().to_string(),
        Target::Ssh { destination, .. } => destination.clone(),
        Target::Local(q) => q.clone().unwrap_or_default(),
    };
    let mut reached = match peerapi::tui::reach(target, role, named).await {
        Ok(r) => r,
        Err(e) => return fail(3, e),
    };
    let info = reached.link.info();
    if let Some(name) = cmd.context.clone().or_else(|| info.name.clone()) {
        reached.name = name;
    } else if reached.name.is_empty() {
        reached.name = info.peer_id.to_string();
    }
    let options = peerapi::tui::ConsoleOptions {
        read_only: reached.link.role() == Role::Observe,
        contexts,
        ..Default::default()
    };
    let attached = peerapi::tui::run_attached(reached, options);
    super::console_result(attached.await)
}

/// With no target: the one local node, or (on a terminal) the one the
/// operator picks from the list of them.
#[cfg(feature = "console")]
fn pick_local() -> Result<Target, String> {
    use std::io::IsTerminal;
    let nodes: Vec<_> = client::search_dirs()
        .iter()
        .flat_map(|d| peerapi::control::endpoint::list(d))
        .collect();
    if nodes.len() < 2 || !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        // One node, none (the error names where it looked), or no one to ask.
        return Ok(Target::Local(None));
    }
    let mut err = std::io::stderr();
    let _ = writeln!(err, "{} nodes run here:", nodes.len());
    for (i, n) in nodes.iter().enumerate() {
        let listen = n.listen.first().map(String::as_str).unwrap_or("-");
        let _ = writeln!(err, "  {}  {:<20} {}  {listen}", i + 1, n.name, n.peer_id);
    }
    let _ = write!(err, "attach to which (1-{})? ", nodes.len());
    let _ = err.flush();
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the choice: {e}"))?;
    let n: usize = line
        .trim()
        .parse()
        .ok()
        .filter(|n| (1..=nodes.len()).contains(n))
        .ok_or_else(|| format!("{:?} is not one of 1-{}", line.trim(), nodes.len()))?;
    Ok(Target::Socket(nodes[n - 1].socket.clone()))
}

//! `peerapi ctl` commands that act through the node or follow it: calls
//! made by the node, route edits on its file, its log and its calls as
//! they happen.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use futures::StreamExt;
use peerapi::control::client::{self, Target};
use peerapi::control::{Answer, CallSpec, NodeLink, Part, Reply, Request, Role, Update, Updates};
use peerapi::node::{CallRequest, NodeEvent};

use super::call::{print_stream, Flags};
use super::say::fail;

#[derive(Args)]
pub(crate) struct NodeOpt {
    /// The node: a socket path, a name, a peer-id prefix or
    /// ssh://[user@]host[:port][/name] (default: the one local node).
    #[arg(long = "node", value_name = "TARGET")]
    pub(crate) node: Option<String>,
}

#[derive(Args)]
pub(crate) struct CtlCallCmd {
    #[command(flatten)]
    node: NodeOpt,
    /// The peer to call, a multiaddr ending in /p2p/<peer id>.
    #[arg(value_name = "PEER")]
    peer: String,
    #[arg(value_name = "ROUTE")]
    route: String,
    /// HTTP method (default GET, or POST when -d is given).
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    method: Option<String>,
    /// Header to forward, 'Name: value' (repeatable).
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    headers: Vec<String>,
    /// Body: literal text, @FILE, or @- for standard input.
    #[arg(short = 'd', long = "data", value_name = "DATA")]
    data: Option<String>,
    /// Print the protocol, status and headers first.
    #[arg(short = 'i', long)]
    include: bool,
    /// Exit 22 when the backend answers with HTTP status 400 or above (2.0.0).
    #[arg(short = 'f', long)]
    fail: bool,
}

/// A call made by the node (its identity, its connections); output and
/// exit codes as `peerapi call`'s.
pub(crate) async fn call(cmd: CtlCallCmd, stream: bool) -> ExitCode {
    let headers = match super::request::parse_headers(&cmd.headers) {
        Ok(h) => h,
        Err(e) => return fail(1, e),
    };
    let body = match super::request::read_body(&cmd.data) {
        Ok(b) => b,
        Err(e) => return fail(1, e),
    };
    let method = cmd
        .method
        .unwrap_or_else(|| if cmd.data.is_some() { "POST" } else { "GET" }.to_string());
    let (link, _updates) = match connect_to(cmd.node.node.as_deref(), Role::Full).await {
        Ok(c) => c,
        Err((code, e)) => return fail(code, e),
    };
    let spec = CallSpec {
        target: cmd.peer,
        request: CallRequest {
            route: cmd.route,
            method,
            headers,
            body,
        },
        stream,
    };
    let mut pending = link.request(Request::Call(spec));
    let flags = Flags {
        include: cmd.include,
        fail: cmd.fail,
        verbose: false,
        started: std::time::Instant::now(),
    };
    // Up to the head: an error before it is the call's whole answer.
    let head = loop {
        match pending.next().await {
            Some(Answer::Part(Part::Head(h))) => break h,
            Some(Answer::Part(_)) => {}
            Some(Answer::Done(reply)) => return ended_before_head(reply),
            None => return fail(1, "the node said nothing"),
        }
    };
    let chunks = futures::stream::unfold(pending, |mut p| async move {
        match p.next().await? {
            Answer::Part(Part::Bytes(b)) => Some((Some(Ok(b)), p)),
            Answer::Part(_) => Some((None, p)),
            Answer::Done(Reply::CallEnded {
                error: Some(e),
                exit_code,
                ..
            }) => Some((Some(Err((exit_code.unwrap_or(1), e))), p)),
            Answer::Done(Reply::CallEnded { .. }) => None,
            Answer::Done(Reply::Refused(why)) => Some((Some(Err((1, why))), p)),
            Answer::Done(other) => {
                Some((Some(Err((1, format!("unexpected answer: {other:?}")))), p))
            }
        }
    })
    .filter_map(|c| async move { c });
    print_stream(&head, Box::pin(chunks), flags, || None).await
}

fn ended_before_head(reply: Reply) -> ExitCode {
    match reply {
        Reply::CallEnded {
            error: Some(e),
            exit_code,
            ..
        } => fail(exit_code.unwrap_or(1), e),
        Reply::Refused(why) => fail(10, format!("the node refused: {why}")),
        other => fail(1, format!("unexpected answer: {other:?}")),
    }
}

/// `ctl routes set|remove`: the node writes its own route file.
pub(crate) async fn edit_route(node: Option<&str>, request: Request) -> ExitCode {
    let (link, _updates) = match connect_to(node, Role::Full).await {
        Ok(c) => c,
        Err((code, e)) => return fail(code, e),
    };
    match link.request(request).reply().await {
        Reply::Text(Ok(text)) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Reply::Text(Err(e)) => fail(1, e),
        Reply::Refused(why) => fail(10, format!("the node refused: {why}")),
        other => fail(1, format!("unexpected answer: {other:?}")),
    }
}

/// What `ctl log` and `ctl calls` follow.
pub(crate) enum Follow {
    Log,
    Calls,
}

/// Prints the node's log lines or its calls as they happen, until the
/// node goes away or the reader stops.
pub(crate) async fn follow(node: Option<&str>, what: Follow, json: bool) -> ExitCode {
    let (link, updates): (NodeLink, Updates) = match connect_to(node, Role::Observe).await {
        Ok(c) => c,
        Err((code, e)) => return fail(code, e),
    };
    let _keep = link;
    let mut updates = updates;
    let mut out = std::io::stdout();
    while let Some(update) = updates.recv().await {
        let line = match (&what, update) {
            (Follow::Log, Update::Log { level, line }) => {
                if json {
                    serde_json::json!({"level": format!("{level:?}").to_lowercase(), "line": line})
                        .to_string()
                } else {
                    format!("{:>5} {line}", format!("{level:?}").to_uppercase())
                }
            }
            (Follow::Calls, Update::Event(ev)) => match call_line(&ev, json) {
                Some(l) => l,
                None => continue,
            },
            (_, Update::Gap { missed }) => format!("# {missed} updates skipped (read too slowly)"),
            _ => continue,
        };
        if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
            // The reader went away (a closed pipe): done.
            return ExitCode::SUCCESS;
        }
    }
    fail(1, "the node went away")
}

/// A call event as a line: served calls (who called which route, how it
/// ended) and calls made through the node.
fn call_line(ev: &NodeEvent, json: bool) -> Option<String> {
    let (kind, fields): (&str, serde_json::Value) = match ev {
        NodeEvent::ServeStarted {
            id,
            peer,
            route,
            method,
            stream,
        } => (
            "serve_started",
            serde_json::json!({"id": id.0, "peer": peer.to_string(), "route": route, "method": method, "stream": stream}),
        ),
        NodeEvent::ServeFinished {
            id,
            outcome,
            bytes,
            elapsed,
            backend_first_byte,
        } => (
            "serve_finished",
            serde_json::json!({"id": id.0, "outcome": outcome.to_string(), "bytes": bytes, "ms": elapsed.as_secs_f64() * 1e3,
                "backend_first_byte_ms": backend_first_byte.map(|d| d.as_secs_f64() * 1e3)}),
        ),
        NodeEvent::CallStarted {
            id,
            peer,
            route,
            method,
            stream,
            by,
        } => (
            "call_started",
            serde_json::json!({"id": id.0, "peer": peer.to_string(), "route": route, "method": method, "stream": stream, "by": by}),
        ),
        NodeEvent::CallFinished {
            id, bytes, elapsed, ..
        } => (
            "call_finished",
            serde_json::json!({"id": id.0, "bytes": bytes, "ms": elapsed.as_secs_f64() * 1e3}),
        ),
        NodeEvent::CallFailed { id, error } => (
            "call_failed",
            serde_json::json!({"id": id.0, "error": error}),
        ),
        _ => return None,
    };
    Some(if json {
        let mut v = fields;
        v["event"] = serde_json::json!(kind);
        v.to_string()
    } else {
        let text: Vec<String> = fields
            .as_object()
            .map(|o| o.iter().map(|(k, v)| format!("{k}={v}")).collect())
            .unwrap_or_default();
        format!("{kind} {}", text.join(" "))
    })
}

/// A link to the node `target` names.
pub(crate) async fn connect(target: &Target, role: Role) -> Result<(NodeLink, Updates), String> {
    client::connect(target, role).await
}

/// A link to the node `target` names, or an exit code and what to say.
pub(crate) async fn connect_to(
    target: Option<&str>,
    role: Role,
) -> Result<(NodeLink, Updates), (u8, String)> {
    let target = Target::parse(target).map_err(|e| (2, e))?;
    connect(&target, role).await.map_err(|e| (3, e))
}

#[derive(Args)]
pub(crate) struct CtlTapCmd {
    #[command(flatten)]
    node: NodeOpt,
    /// Show the bodies the node serves for this route.
    #[arg(
        long,
        value_name = "ROUTE",
        required_unless_present = "call",
        conflicts_with = "call"
    )]
    route: Option<String>,
    /// Show the body of this served call (its number, as `ctl calls` gives it).
    #[arg(long, value_name = "ID")]
    call: Option<u64>,
    /// Stop after this many body bytes.
    #[arg(long, value_name = "BYTES", default_value_t = peerapi::node::tap::DEFAULT_TAP_BYTES)]
    max_bytes: u64,
}

/// Writes the bodies the node serves (one route or one call) to stdout as
/// its callers get them, until Ctrl-C or the byte limit.
pub(crate) async fn tap(cmd: CtlTapCmd) -> ExitCode {
    use peerapi::node::tap::TapOn;
    let on = match (cmd.route, cmd.call) {
        (Some(r), _) => TapOn::Route(r),
        (None, Some(id)) => TapOn::Call(peerapi::node::CallId(id)),
        (None, None) => return fail(2, "--route or --call says what to tap"),
    };
    let (link, _updates) = match connect_to(cmd.node.node.as_deref(), Role::Full).await {
        Ok(c) => c,
        Err((code, e)) => return fail(code, e),
    };
    eprintln!(
        "peerapi: tapping {on:?} (at most {} bytes; Ctrl-C stops)",
        cmd.max_bytes
    );
    let mut pending = link.request(Request::Tap {
        on,
        max_bytes: Some(cmd.max_bytes),
    });
    let mut out = std::io::stdout();
    loop {
        let answer = tokio::select! {
            a = pending.next() => a,
            _ = tokio::signal::ctrl_c() => {
                link.cancel(pending.id());
                pending.next().await
            }
        };
        match answer {
            Some(Answer::Part(Part::Tapped(chunk))) => {
                if out
                    .write_all(&chunk.bytes)
                    .and_then(|_| out.flush())
                    .is_err()
                {
                    return ExitCode::SUCCESS;
                }
            }
            Some(Answer::Part(_)) => {}
            Some(Answer::Done(Reply::Text(Ok(text)))) => {
                eprintln!("peerapi: {text}");
                return ExitCode::SUCCESS;
            }
            Some(Answer::Done(Reply::Refused(why))) => {
                return fail(10, format!("the node refused: {why}"))
            }
            Some(Answer::Done(other)) => return fail(1, format!("unexpected answer: {other:?}")),
            None => return fail(1, "the node went away"),
        }
    }
}

/// `ctl roster`: the subnet nodes the node knows, from their peer states.
pub(crate) async fn roster(node: Option<&str>, json: bool) -> ExitCode {
    let (link, _updates) = match connect_to(node, Role::Observe).await {
        Ok(c) => c,
        Err((code, e)) => return fail(code, e),
    };
    let entries = match link.request(Request::Roster).reply().await {
        Reply::Roster(e) => e,
        Reply::Refused(why) => return fail(10, format!("the node refused: {why}")),
        other => return fail(1, format!("unexpected answer: {other:?}")),
    };
    let mut out = std::io::stdout().lock();
    if !json {
        let _ = writeln!(
            out,
            "{:<7} {:<5} {:<8} {:<52} MULTIADDR",
            "SUBNET", "NODE", "STATE", "PEER"
        );
    }
    for e in &entries {
        let line = if json {
            serde_json::to_string(e).unwrap_or_default()
        } else {
            format!(
                "{:<7} {:<5} {:<8} {:<52} {}",
                e.subnet_id, e.subnet_node_id, e.state, e.peer_id, e.multiaddr
            )
        };
        let _ = writeln!(out, "{line}");
    }
    ExitCode::SUCCESS
}

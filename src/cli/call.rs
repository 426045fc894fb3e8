//! `peerapi call` and `peerapi stream`.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use futures::StreamExt;
use peerapi::node::{classify_v1_body, parse_peer_addr, CallRequest, ResponseHead, V1ErrorText};
use peerapi::wire::frame::ServerTiming;
use peerapi::wire::v1::{V1Detector, V1Ending};

use super::say::fail;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  local failure (bad option value, unreadable -d @FILE, cannot start)
  2  usage error
  3  invalid multiaddr (it must end in /p2p/<peer id>)
  4  cannot connect to the peer
  5  the peer does not speak the API protocol
  6  timed out
  7  the peer refused the call: route not found, stream not supported,
     method not allowed, bad request, request too large
  8  the stream broke mid-response, or (2.0.0) ended without its end frame
  9  response larger than --max-response-bytes
 10  forbidden: the route or node does not admit our peer id
 11  the peer is overloaded; retry later
 12  the peer's backend failed: unavailable, timed out, or failed mid-stream
 22  with --fail: the backend answered with HTTP status 400 or above (2.0.0)
On 1.0.0 peers errors arrive as text in the body; peerapi recognises the
three texts of the Python nodes and maps them to the codes above.";

#[derive(Args)]
#[command(after_help = EXIT_CODES)]
pub(crate) struct CallCmd {
    /// The peer, e.g. /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW... (with
    /// --peers or --all-peers: the route, and ROUTE is left out).
    addr: String,
    /// Route name in the peer's route table.
    route: Option<String>,
    #[command(flatten)]
    request: super::request::RequestArgs,
    #[command(flatten)]
    targets: super::request::Targets,
    /// Print the protocol, status line and response headers before the body.
    #[arg(short = 'i', long)]
    include: bool,
    /// Print where the time went on standard error: this side's timeline
    /// and, from 2.0.0 peers, the serving node's (read, queue, backend).
    #[arg(short = 'v', long)]
    verbose: bool,
    /// Exit 22 when the backend answers with HTTP status 400 or above (2.0.0).
    #[arg(short = 'f', long)]
    fail: bool,
    /// With --peers/--all-peers: one JSON object per peer instead of a table.
    #[arg(long)]
    json: bool,
}

/// The exit code of a 1.0.0 error text.
pub(crate) fn exit_code_of_v1(err: &V1ErrorText) -> u8 {
    err.failure().exit_code()
}

/// `-i`: the protocol, the status line and the headers, then a blank line.
fn print_head(head: &ResponseHead) {
    let mut out = std::io::stdout().lock();
    match head.status {
        Some(status) => {
            let _ = writeln!(out, "{} {status}", head.version.id());
            let mut headers: Vec<_> = head.headers.iter().collect();
            headers.sort();
            // A repeated header (Set-Cookie) arrives as one entry with its
            // values on separate lines: one line each, as HTTP shows them.
            for (k, v) in headers {
                for value in v.split(peerapi::upstream::REPEATED_HEADER_SEPARATOR) {
                    let _ = writeln!(out, "{k}: {value}");
                }
            }
        }
        None => {
            let _ = writeln!(out, "{} (no status or headers in 1.0.0)", head.version.id());
        }
    }
    let _ = writeln!(out);
    let _ = out.flush();
}

pub(crate) async fn run(cmd: CallCmd, stream: bool) -> ExitCode {
    // The command says what failed in a line of its own; log lines with -v.
    let level = if cmd.verbose { "warn" } else { "error" };
    let _guard = super::logging::init(level, None, peerapi::logs::DEFAULT_MAX_LOG_FILES);
    let (addr, route) = match cmd.targets.positionals(&cmd.addr, &cmd.route) {
        Ok(ok) => ok,
        Err(message) => return fail(2, message),
    };
    let (req, config) = match cmd.request.prepare(&route, &cmd.targets) {
        Ok(ok) => ok,
        Err((code, message)) => return fail(code, message),
    };
    let addr = match addr.map(|a| parse_peer_addr(&a)).transpose() {
        Ok(a) => a,
        Err(e) => return fail(3, e),
    };
    let node = match peerapi::Node::start(config).await {
        Ok(n) => n,
        Err(e) => return fail(1, format!("cannot start the local node: {e}")),
    };
    let handle = node.handle();
    let code = match addr {
        None => super::fanout::run(&handle, &cmd.targets, &req, stream, cmd.json).await,
        Some(addr) => {
            let flags = Flags {
                include: cmd.include,
                fail: cmd.fail,
                verbose: cmd.verbose,
                started: std::time::Instant::now(),
            };
            if stream {
                run_stream(&handle, &addr, req, flags).await
            } else {
                run_unary(&handle, &addr, req, flags).await
            }
        }
    };
    node.close_gently(peerapi::node::ONE_SHOT_CLOSE_WITHIN)
        .await;
    code
}

async fn run_unary(
    handle: &peerapi::NodeHandle,
    addr: &libp2p::Multiaddr,
    req: CallRequest,
    flags: Flags,
) -> ExitCode {
    match handle.call_full(addr, req).await {
        Ok(response) => {
            if response.head.status.is_none() {
                if let Some(err) = classify_v1_body(&response.body) {
                    return fail(exit_code_of_v1(&err), format!("peer answered: {err}"));
                }
            }
            if flags.include {
                print_head(&response.head);
            }
            let mut out = std::io::stdout().lock();
            if out
                .write_all(&response.body)
                .and_then(|_| out.flush())
                .is_err()
            {
                return ExitCode::from(1);
            }
            flags.timing(&response.head, None, false);
            status_exit(&response.head, flags)
        }
        Err(e) => fail(e.exit_code(), e),
    }
}

#[derive(Clone, Copy)]
pub(crate) struct Flags {
    pub(crate) include: bool,
    pub(crate) fail: bool,
    pub(crate) verbose: bool,
    pub(crate) started: std::time::Instant,
}

impl Flags {
    /// With -v: where the time went, on standard error.
    fn timing(&self, head: &ResponseHead, end: Option<ServerTiming>, stream: bool) {
        if !self.verbose {
            return;
        }
        let total = self.started.elapsed();
        let t = head.timeline;
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "* timeline (total {total:.1?})");
        match peerapi::node::Breakdown::of(head, end, total, stream) {
            Some(b) => {
                for (name, d) in b.parts(stream) {
                    let _ = writeln!(err, "*   {name:<13} {d:>9.1?}");
                }
                let _ = writeln!(
                    err,
                    "*   (node read   {:>9.1?}, from its accepting the stream)",
                    b.read
                );
                let _ = writeln!(err, "* {}", b.line(|d| format!("{d:.1?}")));
            }
            None => {
                let _ = writeln!(
                    err,
                    "*   connected {:.1?} · stream open {:.1?} · head {:.1?} (no node timings: {})",
                    t.connected,
                    t.opened,
                    t.head,
                    head.version.id()
                );
            }
        }
    }
}

fn status_exit(head: &ResponseHead, flags: Flags) -> ExitCode {
    match head.status {
        Some(s) if flags.fail && s >= 400 => {
            eprintln!("peerapi: the backend answered HTTP {s}");
            ExitCode::from(22)
        }
        _ => ExitCode::SUCCESS,
    }
}

async fn run_stream(
    handle: &peerapi::NodeHandle,
    addr: &libp2p::Multiaddr,
    req: CallRequest,
    flags: Flags,
) -> ExitCode {
    let (head, chunks) = match handle.stream_full(addr, req).await {
        Ok(s) => s,
        Err(e) => return fail(e.exit_code(), e),
    };
    let timing = chunks.end_timing_cell();
    let chunks = chunks.map(|c| c.map_err(|e| (e.exit_code(), e.to_string())));
    print_stream(&head, chunks, flags, move || timing.get().copied()).await
}

/// Writes a response's chunks to stdout as they come and says how it
/// ended: `chunks` fail with an exit code and a text; `end_timing` gives
/// the serving node's final timings, once the chunks are done.
pub(crate) async fn print_stream<S>(
    head: &ResponseHead,
    mut chunks: S,
    flags: Flags,
    end_timing: impl FnOnce() -> Option<ServerTiming>,
) -> ExitCode
where
    S: futures::Stream<Item = Result<bytes::Bytes, (u8, String)>> + Unpin,
{
    if flags.include {
        print_head(head);
    }
    if head.status.is_some() {
        // 2.0.0: errors are frames, never body text.
        let mut out = std::io::stdout();
        while let Some(chunk) = chunks.next().await {
            match chunk {
                Ok(c) => {
                    if out.write_all(&c).and_then(|_| out.flush()).is_err() {
                        return ExitCode::from(1);
                    }
                }
                Err((code, e)) => return fail(code, e),
            }
        }
        flags.timing(head, end_timing(), true);
        return status_exit(head, flags);
    }
    // The 1.0.0 error texts: a whole-body one is held back until it can be
    // told from a body; a stream that fails mid-way ends in `Error
    // processing request: ...`, held back until the end.
    let mut detector = V1Detector::default();
    let mut out = std::io::stdout();
    while let Some(chunk) = chunks.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err((code, e)) => {
                let (rest, _) = detector.finish();
                let _ = out.write_all(&rest);
                return fail(code, e);
            }
        };
        let ready = detector.push(&chunk);
        if out.write_all(&ready).and_then(|_| out.flush()).is_err() {
            return ExitCode::from(1);
        }
    }
    let (rest, ending) = detector.finish();
    let _ = out.write_all(&rest);
    let _ = out.flush();
    match ending {
        V1Ending::Body => ExitCode::SUCCESS,
        V1Ending::Answered(err) => fail(exit_code_of_v1(&err), format!("peer answered: {err}")),
        // Never exit 0 after a stream error.
        V1Ending::FailedMidway(err) => fail(
            exit_code_of_v1(&err),
            format!("the stream failed mid-way: {err}"),
        ),
    }
}

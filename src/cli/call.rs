//! `peerapi call` and `peerapi stream`.

use std::collections::HashMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use futures::StreamExt;
use peerapi::node::{classify_v1_body, parse_peer_addr, CallError, CallRequest, NodeConfig};

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  local failure (bad option value, unreadable -d @FILE, cannot start)
  2  usage error
  3  invalid multiaddr (it must end in /p2p/<peer id>)
  4  cannot connect to the peer
  5  the peer does not speak the API protocol
  6  timed out
  7  the peer answered with an error (route not found, stream not supported, backend failure)
  8  the stream broke mid-response
  9  response larger than --max-response-bytes";

#[derive(Args)]
#[command(after_help = EXIT_CODES)]
pub(crate) struct CallCmd {
    /// The peer, e.g. /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW...
    addr: String,
    /// Route name in the peer's route table.
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
    /// Seconds the whole call may take (unary) or to the first byte (stream).
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    timeout: f64,
    /// Seconds a stream may go without a chunk.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    idle_timeout: f64,
    /// Largest unary response accepted.
    #[arg(long, value_name = "BYTES", default_value_t = 256 * 1024 * 1024)]
    max_response_bytes: usize,
    /// Key file for our identity (default: a new one per run).
    #[arg(long, value_name = "PATH")]
    key: Option<std::path::PathBuf>,
}

fn exit_code_of(e: &CallError) -> u8 {
    match e {
        CallError::BadAddress { .. } => 3,
        CallError::DialFailed { .. } => 4,
        CallError::Unsupported { .. } => 5,
        CallError::Timeout { .. } => 6,
        CallError::LikelyOversizeRequest { .. } => 7,
        CallError::Stream { .. } | CallError::NodeStopped => 8,
        CallError::TooLarge { .. } => 9,
    }
}

fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("peerapi: {message}");
    ExitCode::from(code)
}

fn parse_headers(raw: &[String]) -> Result<HashMap<String, String>, String> {
    let mut headers = HashMap::new();
    for h in raw {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| format!("header {h:?} must look like 'Name: value'"))?;
        let name = name.trim();
        if name.is_empty() {
            return Err(format!("header {h:?} has an empty name"));
        }
        headers.insert(name.to_string(), value.trim().to_string());
    }
    Ok(headers)
}

fn read_body(data: &Option<String>) -> Result<Bytes, String> {
    match data.as_deref() {
        None => Ok(Bytes::new()),
        Some("@-") => {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
                .map_err(|e| format!("cannot read the body from standard input: {e}"))?;
            Ok(buf.into())
        }
        Some(s) if s.starts_with('@') => std::fs::read(&s[1..])
            .map(Bytes::from)
            .map_err(|e| format!("cannot read body file {}: {e}", &s[1..])),
        Some(s) => Ok(Bytes::copy_from_slice(s.as_bytes())),
    }
}

pub(crate) async fn run(cmd: CallCmd, stream: bool) -> ExitCode {
    let _guard = super::logging::init("warn", None);
    let addr = match parse_peer_addr(&cmd.addr) {
        Ok(a) => a,
        Err(e) => return fail(3, e),
    };
    let headers = match parse_headers(&cmd.headers) {
        Ok(h) => h,
        Err(e) => return fail(1, e),
    };
    let body = match read_body(&cmd.data) {
        Ok(b) => b,
        Err(e) => return fail(1, e),
    };
    let (Ok(timeout), Ok(idle)) = (
        Duration::try_from_secs_f64(cmd.timeout),
        Duration::try_from_secs_f64(cmd.idle_timeout),
    ) else {
        return fail(
            1,
            "--timeout and --idle-timeout must be non-negative numbers of seconds",
        );
    };
    let method = cmd
        .method
        .clone()
        .unwrap_or_else(|| if cmd.data.is_some() { "POST" } else { "GET" }.to_string());
    let keypair = match &cmd.key {
        Some(path) => match peerapi::keys::load_key(path) {
            Ok(k) => k,
            Err(e) => return fail(1, e),
        },
        None => libp2p::identity::Keypair::generate_ed25519(),
    };
    let mut config = NodeConfig::new(keypair);
    config.listen = Vec::new();
    config.call.timeout = timeout;
    config.call.stream_idle_timeout = idle;
    config.call.max_response_bytes = cmd.max_response_bytes;
    let node = match peerapi::Node::start(config).await {
        Ok(n) => n,
        Err(e) => return fail(1, format!("cannot start the local node: {e}")),
    };
    let handle = node.handle();
    let req = CallRequest {
        route: cmd.route.clone(),
        method,
        headers,
        body,
    };
    let code = if stream {
        run_stream(&handle, &addr, req).await
    } else {
        run_unary(&handle, &addr, req).await
    };
    node.abort();
    code
}

async fn run_unary(
    handle: &peerapi::NodeHandle,
    addr: &libp2p::Multiaddr,
    req: CallRequest,
) -> ExitCode {
    match handle.call(addr, req).await {
        Ok(body) => {
            if let Some(err) = classify_v1_body(&body) {
                return fail(7, format!("peer answered: {err}"));
            }
            let mut out = std::io::stdout().lock();
            if out.write_all(&body).and_then(|_| out.flush()).is_err() {
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(exit_code_of(&e), e),
    }
}

async fn run_stream(
    handle: &peerapi::NodeHandle,
    addr: &libp2p::Multiaddr,
    req: CallRequest,
) -> ExitCode {
    let mut chunks = match handle.stream(addr, req).await {
        Ok(s) => s,
        Err(e) => return fail(exit_code_of(&e), e),
    };
    // The 1.0.0 error texts can only be recognised at the start of the
    // response; hold back the first bytes until they can be told apart.
    let mut head: Vec<u8> = Vec::new();
    let mut decided = false;
    let probe = peerapi::wire::v1_text::STREAM_NOT_SUPPORTED_PREFIX.len();
    let mut out = std::io::stdout();
    while let Some(chunk) = chunks.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                let _ = out.write_all(&head);
                return fail(exit_code_of(&e), e);
            }
        };
        let bytes: &[u8] = if decided {
            &chunk
        } else {
            head.extend_from_slice(&chunk);
            if head.len() < probe && is_prefix_of_error(&head) {
                continue;
            }
            decided = true;
            if is_prefix_of_error(&head) {
                // Read the rest of the (short) error text.
                while let Some(Ok(more)) = chunks.next().await {
                    head.extend_from_slice(&more);
                }
                if let Some(err) = classify_v1_body(&head) {
                    return fail(7, format!("peer answered: {err}"));
                }
            }
            &head
        };
        if out.write_all(bytes).and_then(|_| out.flush()).is_err() {
            return ExitCode::from(1);
        }
    }
    if !decided {
        if let Some(err) = classify_v1_body(&head) {
            return fail(7, format!("peer answered: {err}"));
        }
        let _ = out.write_all(&head);
        let _ = out.flush();
    }
    ExitCode::SUCCESS
}

/// Whether `head` could be the start of one of the 1.0.0 error texts.
fn is_prefix_of_error(head: &[u8]) -> bool {
    use peerapi::wire::v1_text::*;
    [ROUTE_NOT_FOUND, STREAM_NOT_SUPPORTED_PREFIX, ERROR_PREFIX]
        .iter()
        .any(|t| {
            let t = t.as_bytes();
            let n = head.len().min(t.len());
            head[..n] == t[..n]
        })
}

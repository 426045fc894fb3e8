//! `peerapi routes check` and `peerapi routes list`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

#[derive(Subcommand)]
pub(crate) enum RoutesCmd {
    /// Validate a route file and print its table (exit 1 on errors).
    Check {
        file: PathBuf,
        /// The table and the file's errors as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Add or change a route in a route file (atomic write; other keys kept).
    Set {
        file: PathBuf,
        name: String,
        url: String,
        /// The route streams its response.
        #[arg(long)]
        stream: bool,
    },
    /// Remove a route from a route file (atomic write).
    Remove { file: PathBuf, name: String },
    /// Ask a peer for its routes (names and stream flags; never URLs).
    List {
        /// The peer, e.g. /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW...
        addr: String,
        /// Seconds to wait for the answer.
        #[arg(long, value_name = "SECS", default_value_t = 10.0)]
        timeout: f64,
        /// The routes as a JSON array of {name, stream}.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) async fn run(cmd: RoutesCmd) -> ExitCode {
    match cmd {
        RoutesCmd::Check { file, json } => check(&file, json),
        RoutesCmd::List {
            addr,
            timeout,
            json,
        } => list(&addr, timeout, json).await,
        RoutesCmd::Set {
            file,
            name,
            url,
            stream,
        } => {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                eprintln!("peerapi: url {url:?} must start with http:// or https://");
                return ExitCode::FAILURE;
            }
            match peerapi::routes::upsert_route_in_file(&file, &name, &url, stream, None) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("peerapi: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        RoutesCmd::Remove { file, name } => {
            match peerapi::routes::remove_route_in_file(&file, &name, None) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => {
                    eprintln!("peerapi: {} has no route '{name}'", file.display());
                    ExitCode::FAILURE
                }
                Err(e) => {
                    eprintln!("peerapi: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn list(addr: &str, timeout: f64, json: bool) -> ExitCode {
    // The command says what failed in a line of its own (RUST_LOG for more).
    let _guard = super::logging::init("error", None, peerapi::logs::DEFAULT_MAX_LOG_FILES);
    let addr = match peerapi::node::parse_peer_addr(addr) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("peerapi: {e}");
            return ExitCode::from(3);
        }
    };
    let mut config =
        peerapi::NodeConfig::new(libp2p::identity::Keypair::generate_ed25519()).only_calls();
    config.listen = Vec::new();
    config.call.timeout = std::time::Duration::try_from_secs_f64(timeout)
        .unwrap_or(std::time::Duration::from_secs(10));
    let node = match peerapi::Node::start(config).await {
        Ok(n) => n,
        Err(e) => {
            eprintln!("peerapi: cannot start the local node: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = node.handle().list_routes(&addr).await;
    node.close_gently(peerapi::node::ONE_SHOT_CLOSE_WITHIN)
        .await;
    match result {
        Ok(routes) if json => {
            let list: Vec<_> = routes
                .iter()
                .map(|r| serde_json::json!({"name": r.name, "stream": r.stream}))
                .collect();
            println!("{}", serde_json::Value::Array(list));
            ExitCode::SUCCESS
        }
        Ok(routes) => {
            let width = routes
                .iter()
                .map(|r| r.name.len())
                .max()
                .unwrap_or(5)
                .max(5);
            println!("{:width$}  STREAM", "ROUTE");
            for r in routes {
                println!("{:width$}  {}", r.name, if r.stream { "yes" } else { "no" });
            }
            ExitCode::SUCCESS
        }
        Err(peerapi::CallError::Unsupported { .. }) => {
            eprintln!("peerapi: the peer does not serve route listings (/peerapi/routes/1.0.0); Python subnet nodes do not");
            ExitCode::from(5)
        }
        Err(e) => {
            eprintln!("peerapi: {e}");
            ExitCode::from(4)
        }
    }
}

fn check(file: &std::path::Path, json: bool) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("peerapi: cannot read {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    match peerapi::routes::parse_routes(&text) {
        Ok(outcome) if json => {
            let routes: Vec<_> = outcome
                .table
                .iter()
                .map(|(name, r)| serde_json::json!({"name": name, "urls": r.urls, "stream": r.stream}))
                .collect();
            let ok = outcome.warnings.is_empty();
            println!(
                "{}",
                serde_json::json!({"file": file.display().to_string(), "ok": ok, "routes": routes, "errors": outcome.warnings})
            );
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) if json => {
            println!(
                "{}",
                serde_json::json!({"file": file.display().to_string(), "ok": false, "routes": [], "errors": [e.to_string()]})
            );
            ExitCode::FAILURE
        }
        Ok(outcome) => {
            let width = outcome
                .table
                .keys()
                .map(|k| k.len())
                .max()
                .unwrap_or(5)
                .max(5);
            println!("{:width$}  {:6}  URL", "ROUTE", "STREAM");
            for (name, route) in &outcome.table {
                println!(
                    "{name:width$}  {:6}  {}",
                    if route.stream { "yes" } else { "no" },
                    route.urls.join(" ")
                );
                let p = &route.policy;
                let mut notes = Vec::new();
                if let Some(m) = &p.methods {
                    notes.push(format!("methods {}", m.join(",")));
                }
                if let Some(t) = p.timeout {
                    notes.push(format!("timeout {t:?}"));
                }
                if let Some(b) = p.max_body_bytes {
                    notes.push(format!("max body {b} bytes"));
                }
                if !p.headers.is_empty() {
                    let names: Vec<&str> = p.headers.iter().map(|(k, _)| k.as_str()).collect();
                    notes.push(format!("adds headers {}", names.join(",")));
                }
                if let Some(a) = &p.peers.allow {
                    notes.push(format!("{} allowed peers", a.len()));
                }
                if !p.peers.deny.is_empty() {
                    notes.push(format!("{} denied peers", p.peers.deny.len()));
                }
                if !notes.is_empty() {
                    println!("{:width$}  {:6}  ({})", "", "", notes.join("; "));
                }
            }
            for w in &outcome.warnings {
                eprintln!("error: {w}");
            }
            if outcome.warnings.is_empty() {
                println!("{}: {} routes, ok", file.display(), outcome.table.len());
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "{}: {} invalid entries (skipped when served)",
                    file.display(),
                    outcome.warnings.len()
                );
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {}: {e}", file.display());
            ExitCode::FAILURE
        }
    }
}

//! `peerapi demo`: a demo backend, two demo peers on 127.0.0.1, and the
//! console on a node joined to them with the composer pre-filled.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;

use super::app::{run_app, LOG_QUEUE};
use super::history::Entry;
use super::terminal::{data_dir, init_logging};
use crate::demo::{DemoBackend, DemoPace};
use crate::node::{Node, NodeConfig};
use crate::routes::Routes;

/// What `peerapi demo` runs with (the CLI's `cli/demo.rs` fills it).
#[derive(Debug, Clone, Default)]
pub struct DemoOptions {
    /// Stream demo tokens with no delay instead of a realistic pace.
    pub fast: bool,
    /// Directory for the demo's route file and logs (default: the data directory).
    pub data_dir: Option<PathBuf>,
    /// The console node's metrics, and where they are served (the caller
    /// serves them: the endpoint is the binary's).
    pub metrics: Option<(
        std::sync::Arc<crate::protocol::metrics::NodeMetrics>,
        std::net::SocketAddr,
    )>,
}

/// Starts a demo backend, two demo peers and a console node connected to them.
pub async fn run_demo(args: DemoOptions) -> anyhow::Result<()> {
    let dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| data_dir().join("demo"));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let (tx, rx) = mpsc::channel(LOG_QUEUE);
    let _log = init_logging(&dir, crate::logs::DEFAULT_MAX_LOG_FILES, tx.clone());
    let (pace_a, pace_b) = if args.fast {
        (DemoPace::INSTANT, DemoPace::INSTANT)
    } else {
        (
            DemoPace::REALISTIC,
            DemoPace {
                first_token: Duration::from_millis(900),
                per_token: Duration::from_millis(90),
            },
        )
    };
    let local = "127.0.0.1:0".parse().expect("static socket address");
    let backend_a = DemoBackend::start(local, pace_a)
        .await
        .context("cannot start the demo backend")?;
    let backend_b = DemoBackend::start(local, pace_b)
        .await
        .context("cannot start the demo backend")?;
    let mut peers = Vec::new();
    let mut addrs = Vec::new();
    let mut keys = Vec::new();
    for (backend, name) in [(&backend_a, "peer A"), (&backend_b, "peer B")] {
        let key = libp2p::identity::Keypair::generate_ed25519();
        keys.push(key.clone());
        let mut cfg = NodeConfig::new(key);
        cfg.log_label = Some(name.into());
        cfg.routes = Routes::new(backend.routes());
        let node = Node::start(cfg).await.context("cannot start a demo peer")?;
        let addr = node
            .handle()
            .listen_addrs()
            .await?
            .into_iter()
            .next()
            .context("demo peer has no address")?;
        addrs.push(addr);
        peers.push(node);
    }
    // Our own node serves the fast backend from a route file the Routes pane edits.
    let route_file = dir.join("routes.json");
    std::fs::write(&route_file, backend_a.routes_json() + "\n")
        .with_context(|| format!("cannot write {}", route_file.display()))?;
    let mut cfg = NodeConfig::new(libp2p::identity::Keypair::generate_ed25519());
    cfg.route_file = Some(route_file);
    cfg.bootstrap = addrs.clone();
    cfg.log_label = Some("console".into());
    // The demo peers send their telemetry here (the Events view).
    cfg.subnet.telemetry_listen = Some("127.0.0.1:0".parse().expect("static socket address"));
    if let Some((metrics, at)) = &args.metrics {
        cfg.metrics = Some(metrics.clone());
        tracing::info!("console node's metrics on http://{at}/metrics");
    }
    let node = Node::start(cfg)
        .await
        .context("cannot start the console's node")?;
    // The peers live as subnet members: peer state on gossip, telemetry.
    let telemetry = node.handle().telemetry_addr();
    let members: Vec<_> = peers
        .iter()
        .zip(keys)
        .zip([101, 102])
        .map(|((p, key), id)| {
            tokio_util::task::AbortOnDropHandle::new(tokio::spawn(crate::demo::subnet::member(
                p.handle(),
                key,
                id,
                telemetry,
            )))
        })
        .collect();
    tracing::info!(peer_a = %addrs[0], peer_b = %addrs[1], "demo subnet up: peer A paces tokens fast, peer B slow");
    let prefill = Entry {
        target: addrs[0].to_string(),
        route: "inference".into(),
        method: "POST".into(),
        headers: "content-type: application/json".into(),
        body: r#"{"model": "demo-1", "stream": true, "messages": [{"role": "user", "content": "What is a subnet?"}]}"#.into(),
        stream: true,
    };
    let options = super::app::ConsoleOptions::default();
    let result = run_app(&dir, node, rx, tx, Some(prefill), &options).await;
    drop(members);
    for p in peers {
        p.abort();
    }
    drop((backend_a, backend_b));
    result
}

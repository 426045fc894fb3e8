//! The subnet flags of every node-running command (DAG sync, gossip, the
//! DAG held), and `peerapi subnet watch`: the subnet as its nodes announce
//! it, one line per change.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use peerapi::subnet::{self, gossip, replicate, store, sync, Roster};
use peerapi::NodeEvent;
use serde_json::json;

/// Peers lost to a silent link remembered by `subnet watch` (to say when
/// they came back).
const MAX_LOST_REMEMBERED: usize = 4096;

#[derive(Args, Debug, Clone)]
pub(crate) struct SubnetArgs {
    /// Do not serve /subnet/merkle_dag_sync_protocol/1.0.0 (template nodes that start
    /// while we are connected then wait for our inventory forever).
    #[arg(long)]
    pub no_dag_sync: bool,
    /// Largest DAG-sync request read, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = sync::DEFAULT_MAX_SYNC_REQUEST_BYTES)]
    pub max_sync_request_bytes: usize,
    /// DAG-sync streams served at once, node-wide.
    #[arg(long, value_name = "N", default_value_t = sync::DEFAULT_MAX_SYNC_STREAMS)]
    pub max_sync_streams: usize,
    /// DAG-sync streams served at once for one peer.
    #[arg(long, value_name = "N", default_value_t = sync::DEFAULT_MAX_SYNC_STREAMS_PER_PEER)]
    pub max_sync_streams_per_peer: usize,
    /// Most DAG nodes held per namespace; more are refused and counted.
    #[arg(long, value_name = "N", default_value_t = store::DEFAULT_MAX_DAG_NODES)]
    pub max_dag_nodes: usize,
    /// Most bytes of DAG nodes held across namespaces.
    #[arg(long, value_name = "BYTES", default_value_t = store::DEFAULT_MAX_DAG_BYTES)]
    pub max_dag_bytes: usize,
    /// Do not replicate the DAG from peers that serve the sync protocol.
    #[arg(long)]
    pub no_dag_replicate: bool,
    /// DAG namespace to replicate (repeatable; default: general-dag).
    #[arg(long = "dag-namespace", value_name = "NAME")]
    pub dag_namespaces: Vec<String>,
    /// Largest DAG-sync answer read from a peer, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = replicate::DEFAULT_MAX_SYNC_RESPONSE_BYTES)]
    pub max_sync_response_bytes: usize,
    /// Least seconds between two replications from the same peer.
    #[arg(long, value_name = "SECS", default_value_t = replicate::DEFAULT_REPLICATE_INTERVAL.as_secs())]
    pub dag_replicate_interval: u64,
    /// DAG replications running at once; more wait their turn.
    #[arg(long, value_name = "N", default_value_t = replicate::DEFAULT_MAX_REPLICATIONS)]
    pub max_dag_replications: usize,
    /// Accept template nodes' telemetry WebSocket events here (their
    /// --telemetry_url ws://IP:PORT) and show them, signatures checked.
    #[arg(long, value_name = "IP:PORT")]
    pub telemetry_listen: Option<std::net::SocketAddr>,
    /// Largest telemetry message accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = peerapi::subnet::telemetry::DEFAULT_MAX_TELEMETRY_MESSAGE_BYTES)]
    pub max_telemetry_message_bytes: usize,
    /// Telemetry connections accepted at once.
    #[arg(long, value_name = "N", default_value_t = peerapi::subnet::telemetry::DEFAULT_MAX_TELEMETRY_CONNECTIONS)]
    pub max_telemetry_connections: usize,
    /// Telemetry connections from one IP at once.
    #[arg(long, value_name = "N", default_value_t = peerapi::gate::DEFAULT_MAX_CONNECTIONS_PER_IP)]
    pub max_telemetry_connections_per_ip: usize,
    /// Seconds a telemetry connection has to finish its WebSocket handshake
    /// (silent ones are also the first to make room for new ones).
    #[arg(long, value_name = "SECS", default_value_t = peerapi::gate::DEFAULT_HEAD_TIMEOUT.as_secs_f64())]
    pub telemetry_handshake_timeout: f64,
    /// Keep the DAG in this file across restarts (read and verified at
    /// start, written every 10 s when it changed, and at exit).
    #[arg(long, value_name = "FILE")]
    pub dag_file: Option<std::path::PathBuf>,
    /// Do not join the subnet's gossip (/meshsub/2.0.0).
    #[arg(long)]
    pub no_gossip: bool,
    /// Gossip topic to subscribe to and relay (repeatable; default: peer_state).
    #[arg(long = "gossip-topic", value_name = "TOPIC")]
    pub gossip_topics: Vec<String>,
    /// Largest gossip message accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = gossip::DEFAULT_MAX_GOSSIP_MESSAGE_BYTES)]
    pub max_gossip_message_bytes: usize,
}

impl SubnetArgs {
    pub(crate) fn apply(&self, config: &mut subnet::SubnetConfig) {
        config.dag_sync = !self.no_dag_sync;
        config.sync.max_request_bytes = self.max_sync_request_bytes;
        config.sync.max_streams = self.max_sync_streams;
        config.sync.max_streams_per_peer = self.max_sync_streams_per_peer;
        config.dag.max_nodes_per_namespace = self.max_dag_nodes;
        config.dag.max_bytes = self.max_dag_bytes;
        config.replicate.enabled = !self.no_dag_replicate;
        if !self.dag_namespaces.is_empty() {
            config.replicate.namespaces = self.dag_namespaces.clone();
        }
        config.replicate.max_response_bytes = self.max_sync_response_bytes;
        config.replicate.min_interval = std::time::Duration::from_secs(self.dag_replicate_interval);
        config.replicate.max_concurrent = self.max_dag_replications.max(1);
        config.dag_file = self.dag_file.clone();
        config.telemetry_listen = self.telemetry_listen;
        config.telemetry.max_message_bytes = self.max_telemetry_message_bytes;
        config.telemetry.max_connections = self.max_telemetry_connections;
        config.telemetry.max_connections_per_ip = self.max_telemetry_connections_per_ip;
        config.telemetry.handshake_timeout =
            std::time::Duration::try_from_secs_f64(self.telemetry_handshake_timeout)
                .unwrap_or(peerapi::gate::DEFAULT_HEAD_TIMEOUT);
        config.gossip.enabled = !self.no_gossip;
        if !self.gossip_topics.is_empty() {
            config.gossip.topics = self.gossip_topics.clone();
        }
        config.gossip.max_message_bytes = self.max_gossip_message_bytes;
    }
}

#[derive(Subcommand)]
pub(crate) enum SubnetCmd {
    /// Join a subnet and print the roster (from gossiped peer state), peers
    /// coming and going, evictions and rejected gossip, one line per change.
    Watch(Box<WatchCmd>),
    /// The subnet's health from the history a `peerapi node --health`
    /// keeps: one row per node (verdict, availability, RTT and probe time),
    /// printed once; exit 1 when a node online earlier in the window is
    /// down now.
    Health(super::health::HealthCmd),
}

#[derive(Args)]
pub(crate) struct WatchCmd {
    /// One JSON object per line instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    node: super::NodeArgs,
}

pub(crate) async fn run(cmd: SubnetCmd) -> ExitCode {
    let cmd = match cmd {
        SubnetCmd::Watch(cmd) => cmd,
        SubnetCmd::Health(cmd) => return super::health::run(cmd),
    };
    let _guard = super::logging::init("warn", cmd.node.log_dir.as_deref(), cmd.node.max_log_files);
    match watch(*cmd).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("peerapi: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn watch(cmd: WatchCmd) -> anyhow::Result<()> {
    let json_lines = cmd.json;
    let resolved = cmd
        .node
        .into_config(peerapi::node::transport::NODE_LISTEN)?;
    let metrics = resolved.serve_metrics().await?;
    let config = resolved.node;
    let node = peerapi::Node::start(config)
        .await
        .context("cannot start the node")?;
    let handle = node.handle();
    let mut events = handle.subscribe();
    let say = |line: serde_json::Value, text: String| {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = if json_lines {
            writeln!(out, "{line}")
        } else {
            writeln!(out, "{text}")
        };
        let _ = out.flush();
    };
    for addr in handle.listen_addrs().await? {
        say(
            json!({"event": "listening", "addr": addr.to_string()}),
            format!("listening on {addr}"),
        );
    }
    if let Some(addr) = metrics {
        say(
            json!({"event": "metrics", "url": format!("http://{addr}/metrics")}),
            format!("metrics on http://{addr}/metrics"),
        );
    }
    // Peers connected before we listened (the bootnodes, dialled at start).
    for p in handle.peers().await.unwrap_or_default() {
        say(
            json!({"event": "peer_connected", "peer_id": p.peer.to_string(), "addr": p.addr.to_string()}),
            format!("connected {} at {}", p.peer, p.addr),
        );
    }
    let mut roster = Roster::default();
    // Peers lost to a silent link, and since when.
    let mut lost: std::collections::HashMap<libp2p::PeerId, std::time::Instant> =
        Default::default();
    loop {
        let event = tokio::select! {
            e = events.recv() => e,
            _ = tokio::signal::ctrl_c() => break,
        };
        let event = match event {
            Ok(e) => e,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                say(
                    json!({"event": "lagged", "skipped": n}),
                    format!("(fell behind: {n} events skipped)"),
                );
                continue;
            }
            Err(_) => break,
        };
        match event {
            NodeEvent::DagNode {
                schema_id,
                author,
                created_at_ms,
                payload,
                ..
            } if schema_id == "peer-state" => {
                if let Some(e) = roster.apply(&author, created_at_ms, &payload) {
                    let mut line = serde_json::to_value(&e).unwrap_or_default();
                    line["event"] = json!("roster");
                    say(
                        line,
                        format!(
                            "subnet node {} ({}) {} role {} epoch {} at {}",
                            e.subnet_node_id, e.peer_id, e.state, e.role, e.epoch, e.multiaddr
                        ),
                    );
                }
            }
            NodeEvent::PeerConnected { peer, addr, .. } => {
                // A peer lost to a silent link: when it came back.
                let back = lost.remove(&peer).map(|at| at.elapsed());
                let again = back
                    .map(|d| format!(" (back after {:.1}s)", d.as_secs_f64()))
                    .unwrap_or_default();
                say(
                    json!({"event": "peer_connected", "peer_id": peer.to_string(), "addr": addr.to_string(),
                           "back_after_secs": back.map(|d| d.as_secs_f64())}),
                    format!("connected {peer} at {addr}{again}"),
                )
            }
            NodeEvent::PeerIdentified { peer, agent, .. } => say(
                json!({"event": "peer_identified", "peer_id": peer.to_string(), "agent": agent}),
                format!("identified {peer}: {}", peerapi::logs::untrusted(&agent)),
            ),
            NodeEvent::LinkSilent { peer, after } => {
                if lost.len() < MAX_LOST_REMEMBERED {
                    lost.insert(peer, std::time::Instant::now());
                }
                say(
                    json!({"event": "link_silent", "peer_id": peer.to_string(), "after_secs": after.as_secs_f64()}),
                    format!("lost {peer}: the link went silent (no ping answer within {after:?}); dialling it again"),
                )
            }
            NodeEvent::PeerDisconnected { peer, cause } => say(
                json!({"event": "peer_disconnected", "peer_id": peer.to_string(), "cause": cause}),
                format!(
                    "disconnected {peer}{}",
                    cause.map(|c| format!(": {c}")).unwrap_or_default()
                ),
            ),
            NodeEvent::PeerEvicted {
                peer,
                times,
                every,
                hint,
            } => say(
                json!({"event": "peer_evicted", "peer_id": peer.to_string(), "times": times,
                       "every_secs": every.as_secs_f64(), "hint": hint}),
                format!("{peer} closed our connection {times} times (every {every:.0?}): {hint}"),
            ),
            NodeEvent::DagReplicated {
                peer,
                namespace,
                kept,
                invalid,
                error,
            } => say(
                json!({"event": "dag_replicated", "peer_id": peer.to_string(), "namespace": namespace,
                       "kept": kept, "invalid": invalid, "error": error}),
                match error {
                    None => format!(
                        "replicated {namespace} from {peer}: {kept} new nodes, {invalid} invalid"
                    ),
                    Some(e) => format!("replicating {namespace} from {peer} stopped: {e}"),
                },
            ),
            NodeEvent::Telemetry(ev) => {
                let text = telemetry_text(&ev);
                let mut line = serde_json::to_value(&*ev).unwrap_or_default();
                line["event_kind"] = line["event"].take();
                line["event"] = json!("telemetry");
                say(line, text);
            }
            NodeEvent::PeerDiscovered { peer, via } => say(
                json!({"event": "peer_discovered", "peer_id": peer.to_string(), "via": via.as_str()}),
                format!("discovered {peer} ({})", via.as_str()),
            ),
            NodeEvent::Gossip {
                topic,
                from,
                rejected: Some(why),
                ..
            } => say(
                json!({"event": "gossip_rejected", "topic": topic, "from": from.to_string(), "why": why}),
                format!("rejected gossip on {topic} from {from}: {why}"),
            ),
            _ => {}
        }
    }
    node.shutdown().await;
    Ok(())
}

#[derive(Args)]
pub(crate) struct TelemetryCmd {
    /// Address to accept template nodes' telemetry WebSocket connections on.
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:9000")]
    listen: std::net::SocketAddr,
    /// One JSON object per line instead of text.
    #[arg(long)]
    json: bool,
    /// Largest telemetry message accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = peerapi::subnet::telemetry::DEFAULT_MAX_TELEMETRY_MESSAGE_BYTES)]
    max_message_bytes: usize,
    /// Telemetry connections accepted at once.
    #[arg(long, value_name = "N", default_value_t = peerapi::subnet::telemetry::DEFAULT_MAX_TELEMETRY_CONNECTIONS)]
    max_connections: usize,
}

/// `peerapi telemetry`: verified events from template nodes, one per line.
pub(crate) async fn telemetry(cmd: TelemetryCmd) -> ExitCode {
    use peerapi::subnet::telemetry::{serve, TelemetryLimits};
    let limits = TelemetryLimits {
        max_message_bytes: cmd.max_message_bytes,
        max_connections: cmd.max_connections,
        ..TelemetryLimits::default()
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(4096);
    let (addr, task) = match serve(cmd.listen, limits, tx, Default::default()).await {
        Ok(ok) => ok,
        Err(e) => {
            eprintln!(
                "peerapi: cannot listen for telemetry on {}: {e} (is the port in use?)",
                cmd.listen
            );
            return ExitCode::FAILURE;
        }
    };
    let say = |line: serde_json::Value, text: String| {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = if cmd.json {
            writeln!(out, "{line}")
        } else {
            writeln!(out, "{text}")
        };
        let _ = out.flush();
    };
    say(
        json!({"event": "listening", "addr": format!("ws://{addr}")}),
        format!("telemetry on ws://{addr} (point nodes' --telemetry_url here)"),
    );
    loop {
        tokio::select! {
            ev = rx.recv() => {
                let Some(ev) = ev else { break };
                let text = telemetry_text(&ev);
                let mut line = serde_json::to_value(&ev).unwrap_or_default();
                line["kind"] = json!("telemetry");
                say(line, text);
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    task.abort();
    ExitCode::SUCCESS
}

/// One telemetry event as a line of text.
fn telemetry_text(ev: &peerapi::subnet::TelemetryEvent) -> String {
    format!(
        "{} {} node {} ({}) {}{}",
        if ev.verified { "✓" } else { "✗" },
        ev.event.as_deref().unwrap_or("?"),
        ev.subnet_node_id
            .map(|n| n.to_string())
            .unwrap_or_else(|| "?".into()),
        ev.peer_id.as_deref().unwrap_or("?"),
        ev.data,
        ev.error
            .as_ref()
            .map(|e| format!(" — NOT VERIFIED: {e}"))
            .unwrap_or_default(),
    )
}

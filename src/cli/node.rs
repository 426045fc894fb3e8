//! `peerapi node`, and the node flags shared with the console.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use libp2p::Multiaddr;
use peerapi::node::{self, NodeConfig};

pub(crate) use super::control_args::ControlArgs;

#[derive(Args, Clone, Debug)]
pub(crate) struct NodeArgs {
    /// Route file (JSON); re-read whenever it changes.
    #[arg(long, value_name = "FILE", env = "PEERAPI_ROUTES")]
    pub routes: Option<PathBuf>,
    /// Address to listen on (repeatable). Default: /ip4/0.0.0.0/tcp/4001
    /// for `node` and `subnet watch`; for the console, a port the system
    /// picks (it usually runs beside a node, which keeps 4001). A port
    /// another process listens on is refused.
    #[arg(long, value_name = "MULTIADDR")]
    pub listen: Vec<Multiaddr>,
    /// Key file (libp2p protobuf); created with a new Ed25519 key if missing.
    /// Without it the node gets a new identity each run.
    #[arg(long, value_name = "PATH", env = "PEERAPI_KEY")]
    pub key: Option<PathBuf>,
    /// Peer to connect to at start (repeatable).
    #[arg(long, value_name = "MULTIADDR")]
    pub bootstrap: Vec<Multiaddr>,
    /// Also write logs to a daily rolling file in this directory.
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// Daily log files kept in --log-dir; older ones are deleted.
    #[arg(long, value_name = "N", default_value_t = peerapi::logs::DEFAULT_MAX_LOG_FILES)]
    pub max_log_files: usize,
    /// Largest request message accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = peerapi::wire::DEFAULT_MAX_REQUEST_BYTES)]
    pub max_request_bytes: usize,
    /// Most calls served at once; more are refused at once.
    #[arg(long, value_name = "N", default_value_t = node::DEFAULT_MAX_CONCURRENT_CALLS)]
    pub max_concurrent_calls: usize,
    /// Seconds to connect to a backend.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub connect_timeout: f64,
    /// Most bytes of a streamed backend body held for one caller that reads
    /// slowly; past it the backend waits.
    #[arg(long, value_name = "BYTES", default_value_t = node::DEFAULT_READ_AHEAD_BYTES_PER_CALL)]
    pub max_read_ahead_bytes_per_call: usize,
    /// Most bytes of streamed backend bodies held node-wide for slow callers.
    #[arg(long, value_name = "BYTES", default_value_t = node::DEFAULT_READ_AHEAD_BYTES)]
    pub max_read_ahead_bytes: usize,
    /// Seconds a unary call to a backend may take in all.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub unary_timeout: f64,
    /// Seconds a streamed backend response may go without a chunk (and
    /// before its first: models think).
    #[arg(long, value_name = "SECS", default_value_t = peerapi::upstream::DEFAULT_STREAM_IDLE_TIMEOUT.as_secs_f64())]
    pub stream_idle_timeout: f64,
    /// Largest backend response body held for a unary call, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = peerapi::upstream::DEFAULT_MAX_UNARY_RESPONSE_BYTES)]
    pub max_backend_response_bytes: usize,
    /// Idle connections kept open to one backend after a burst.
    #[arg(long, value_name = "N", default_value_t = peerapi::upstream::DEFAULT_MAX_IDLE_CONNECTIONS_PER_BACKEND)]
    pub max_idle_backend_connections: usize,
    /// Seconds an idle connection to a peer is kept open.
    #[arg(long, value_name = "SECS", default_value_t = 120.0)]
    pub idle_connection_timeout: f64,
    /// Largest yamux frame sent, in bytes (large frames let Python peers read large messages whole).
    #[arg(long, value_name = "BYTES", default_value_t = node::muxer::DEFAULT_YAMUX_SPLIT_SEND_BYTES)]
    pub yamux_split_send_bytes: usize,
    /// Private-network key file (libp2p swarm.key format); peers without it cannot connect.
    #[arg(long, value_name = "FILE")]
    pub psk: Option<PathBuf>,
    /// Most calls served at once for one peer; more are refused (OVERLOADED).
    #[arg(long, value_name = "N", default_value_t = node::DEFAULT_MAX_CALLS_PER_PEER)]
    pub max_calls_per_peer: usize,
    /// Only this peer id may connect (repeatable; default: everyone not denied).
    #[arg(long = "allow-peer", value_name = "PEER_ID")]
    pub allow_peers: Vec<libp2p::PeerId>,
    /// This peer id may not connect (repeatable).
    #[arg(long = "deny-peer", value_name = "PEER_ID")]
    pub deny_peers: Vec<libp2p::PeerId>,
    /// Seconds between DHT random walks that look for more subnet peers,
    /// while the node is below --peer-target or a walk finds 5 new peers;
    /// otherwise the interval doubles.
    #[arg(long, value_name = "SECS", default_value_t = node::DEFAULT_DISCOVERY_INTERVAL.as_secs_f64())]
    pub discovery_interval: f64,
    /// The longest the walk interval grows to, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = node::DEFAULT_DISCOVERY_INTERVAL_MAX.as_secs_f64())]
    pub discovery_interval_max: f64,
    /// Seconds between Kademlia's own bootstraps (routing table refreshes).
    /// Default: the longest walk interval (and whenever the table is small).
    #[arg(long, value_name = "SECS")]
    pub kad_bootstrap_interval: Option<f64>,
    /// Seconds between pings to each connected peer (the RTT column; every
    /// connection pays for it).
    #[arg(long, value_name = "SECS", default_value_t = node::DEFAULT_PING_INTERVAL.as_secs_f64())]
    pub ping_interval: f64,
    /// Seconds a ping may go unanswered before the link counts as silent: its
    /// connection closes, its calls end, the peer is dialled again.
    #[arg(long, value_name = "SECS", default_value_t = node::DEFAULT_PING_TIMEOUT.as_secs_f64())]
    pub ping_timeout: f64,
    /// Longest wait in seconds between dials of a lost bootnode or peer.
    #[arg(long, value_name = "SECS", default_value_t = node::DEFAULT_RECONNECT_MAX.as_secs_f64())]
    pub reconnect_max: f64,
    /// Peers found through the DHT are dialed while fewer than N are
    /// connected; past it they are remembered and dialed when called.
    #[arg(long, value_name = "N", default_value_t = node::DEFAULT_PEER_TARGET)]
    pub peer_target: usize,
    /// Offer Noise as /pos-transport/1.0.0 before /noise (for subnets that run proof of stake).
    #[arg(long)]
    pub pos_first: bool,
    /// Run no AutoNAT v2: do not ask peers that offer it to dial us back
    /// (our reachability then rests on who dialled us), nor answer theirs.
    #[arg(long)]
    pub no_autonat: bool,
    /// Inbound streams that may be getting an "overloaded" answer at once beyond
    /// --max-concurrent-calls; past it more are refused without a task.
    #[arg(long, value_name = "N", default_value_t = node::DEFAULT_INBOUND_QUEUE_DEPTH)]
    pub inbound_queue_depth: usize,
    /// Streams of one peer that may be waiting for their request at once; a
    /// new one beyond it drops that peer's oldest silent stream.
    #[arg(long, value_name = "N", default_value_t = node::DEFAULT_MAX_READING_PER_PEER)]
    pub max_reading_streams_per_peer: usize,
    /// Streams from one remote IP that may be waiting for their request at once.
    #[arg(long, value_name = "N", default_value_t = node::DEFAULT_MAX_READING_PER_IP)]
    pub max_reading_streams_per_ip: usize,
    /// Streams node-wide that may be waiting for their request at once.
    #[arg(long, value_name = "N", default_value_t = node::DEFAULT_MAX_READING)]
    pub max_reading_streams: usize,
    /// Seconds in-flight calls get to finish after Ctrl-C or SIGTERM.
    #[arg(long, value_name = "SECS", default_value_t = node::DEFAULT_SHUTDOWN_GRACE.as_secs_f64())]
    pub shutdown_grace: f64,
    /// Seconds a stream has to send its whole request.
    #[arg(long, value_name = "SECS", default_value_t = node::DEFAULT_REQUEST_READ_TIMEOUT.as_secs_f64())]
    pub request_read_timeout: f64,
    /// Seconds a new stream has to send the first byte of its request.
    #[arg(long, value_name = "SECS", default_value_t = node::DEFAULT_REQUEST_FIRST_BYTE_TIMEOUT.as_secs_f64())]
    pub request_first_byte_timeout: f64,
    /// Most established inbound connections.
    #[arg(long, value_name = "N", default_value_t = node::DEFAULT_MAX_INBOUND_CONNECTIONS)]
    pub max_inbound_connections: usize,
    /// Most inbound connections still in their handshake.
    #[arg(long, value_name = "N", default_value_t = node::DEFAULT_MAX_PENDING_INBOUND_CONNECTIONS)]
    pub max_pending_connections: usize,
    /// Most connections with one peer.
    #[arg(long, value_name = "N", default_value_t = node::DEFAULT_MAX_CONNECTIONS_PER_PEER)]
    pub max_connections_per_peer: usize,
    /// Most inbound connections (pending and established) from one IP.
    #[arg(long, value_name = "N", default_value_t = node::ip_limit::DEFAULT_MAX_CONNECTIONS_PER_IP)]
    pub max_connections_per_ip: usize,
    /// Serve Prometheus metrics on GET /metrics here: a port (loopback) or
    /// IP:PORT. Off unless given.
    #[arg(long, value_name = "[IP:]PORT", value_parser = super::metrics::parse_listen)]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Most connections the metrics endpoint holds at once (silent ones
    /// make room first).
    #[arg(long, value_name = "N", default_value_t = peerapi::gate::DEFAULT_MAX_CONNECTIONS)]
    pub metrics_max_connections: usize,
    /// Most metrics connections from one IP.
    #[arg(long, value_name = "N", default_value_t = peerapi::gate::DEFAULT_MAX_CONNECTIONS_PER_IP)]
    pub metrics_max_connections_per_ip: usize,
    /// Seconds a metrics connection has to send its request head.
    #[arg(long, value_name = "SECS", default_value_t = peerapi::gate::DEFAULT_HEAD_TIMEOUT.as_secs_f64())]
    pub metrics_head_timeout: f64,
    #[command(flatten)]
    pub subnet: super::subnet::SubnetArgs,
}

pub(crate) struct Resolved {
    pub node: NodeConfig,
    pub metrics_listen: Option<std::net::SocketAddr>,
    pub metrics_limits: peerapi::gate::GateLimits,
    #[allow(dead_code)]
    pub log_dir: Option<PathBuf>,
    #[allow(dead_code)]
    pub max_log_files: usize,
}

fn secs(name: &str, v: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(v)
        .map_err(|_| anyhow::anyhow!("--{name} must be a non-negative number of seconds, got {v}"))
}

impl Resolved {
    /// Starts the metrics endpoint, when asked for: where it listens.
    pub(crate) async fn serve_metrics(&self) -> anyhow::Result<Option<std::net::SocketAddr>> {
        match (self.metrics_listen, &self.node.metrics) {
            (Some(addr), Some(m)) => Ok(Some(
                super::metrics::serve(addr, m.clone(), self.metrics_limits.clone()).await?,
            )),
            _ => Ok(None),
        }
    }
}

#[cfg_attr(not(feature = "console"), allow(unused_imports))]
pub(crate) use peerapi::node::transport::{CONSOLE_LISTEN, NODE_LISTEN};

impl NodeArgs {
    /// The node's configuration; `default_listen` when no --listen is given.
    pub(crate) fn into_config(self, default_listen: &str) -> anyhow::Result<Resolved> {
        let keypair = match &self.key {
            Some(path) => {
                let (kp, created) = peerapi::keys::load_or_generate(path)?;
                if created {
                    let peer = kp.public().to_peer_id();
                    // Loud on purpose: a new key is a new identity on the subnet.
                    tracing::warn!(file = %path.display(), %peer, "created a NEW identity: no key file was ever at this path; back it up, subnets register peer ids");
                    eprintln!(
                        "peerapi: created a NEW identity {peer} in {} (mode 0600): back this file up; subnets register peer ids",
                        path.display()
                    );
                }
                kp
            }
            None => libp2p::identity::Keypair::generate_ed25519(),
        };
        let mut config = NodeConfig::new(keypair);
        config.listen = match self.listen.is_empty() {
            true => vec![default_listen
                .parse()
                .context("the default listen address")?],
            false => self.listen,
        };
        config.bootstrap = self.bootstrap;
        config.route_file = self.routes;
        config.serve.max_request_bytes = self.max_request_bytes;
        config.serve.max_concurrent_calls = self.max_concurrent_calls;
        config.serve.max_calls_per_peer = self.max_calls_per_peer;
        config.serve.read_ahead_bytes_per_call = self.max_read_ahead_bytes_per_call;
        config.serve.read_ahead_bytes = self.max_read_ahead_bytes;
        config.access = node::PeerAccess {
            allow: (!self.allow_peers.is_empty()).then(|| self.allow_peers.clone()),
            deny: self.deny_peers.clone(),
        };
        config.upstream.connect_timeout = secs("connect-timeout", self.connect_timeout)?;
        config.upstream.max_idle_connections_per_backend = self.max_idle_backend_connections;
        config.upstream.max_unary_response_bytes = self.max_backend_response_bytes;
        config.upstream.unary_timeout = secs("unary-timeout", self.unary_timeout)?;
        config.upstream.stream_idle_timeout =
            secs("stream-idle-timeout", self.stream_idle_timeout)?;
        config.idle_connection_timeout =
            secs("idle-connection-timeout", self.idle_connection_timeout)?;
        config.yamux_split_send_bytes = self.yamux_split_send_bytes;
        config.discovery_interval =
            secs("discovery-interval", self.discovery_interval)?.max(Duration::from_millis(100));
        config.discovery_interval_max =
            secs("discovery-interval-max", self.discovery_interval_max)?
                .max(config.discovery_interval);
        if let Some(v) = self.kad_bootstrap_interval {
            config.kad_bootstrap_interval =
                Some(secs("kad-bootstrap-interval", v)?.max(Duration::from_secs(1)));
        }
        config.ping_interval =
            secs("ping-interval", self.ping_interval)?.max(Duration::from_millis(100));
        config.ping_timeout =
            secs("ping-timeout", self.ping_timeout)?.max(Duration::from_millis(100));
        config.reconnect_max = secs("reconnect-max", self.reconnect_max)?;
        config.peer_target = self.peer_target;
        config.autonat = !self.no_autonat;
        config.inbound_queue_depth = self.inbound_queue_depth;
        config.shutdown_grace = secs("shutdown-grace", self.shutdown_grace)?;
        config.serve.request_read_timeout =
            secs("request-read-timeout", self.request_read_timeout)?;
        config.serve.reading = node::ReadingLimits {
            per_peer: self.max_reading_streams_per_peer,
            per_ip: self.max_reading_streams_per_ip,
            total: self.max_reading_streams,
            first_byte_timeout: secs(
                "request-first-byte-timeout",
                self.request_first_byte_timeout,
            )?,
        };
        config.connection_limits = node::ConnectionLimits {
            max_inbound: self.max_inbound_connections,
            max_pending_inbound: self.max_pending_connections,
            max_per_peer: self.max_connections_per_peer,
            max_per_ip: self.max_connections_per_ip,
        };
        if let Some(path) = &self.psk {
            config.psk = Some(node::transport::load_psk(path).map_err(anyhow::Error::msg)?);
        }
        if self.pos_first {
            config.security_names.reverse();
        }
        self.subnet.apply(&mut config.subnet);
        if self.metrics_listen.is_some() {
            config.metrics = Some(std::sync::Arc::new(node::metrics::NodeMetrics::new()));
        }
        Ok(Resolved {
            node: config,
            metrics_listen: self.metrics_listen,
            metrics_limits: peerapi::gate::GateLimits {
                max_connections: self.metrics_max_connections,
                max_per_ip: self.metrics_max_connections_per_ip,
                head_timeout: secs("metrics-head-timeout", self.metrics_head_timeout)?,
            },
            log_dir: self.log_dir,
            max_log_files: self.max_log_files,
        })
    }
}

#[derive(Args)]
pub(crate) struct NodeCmd {
    #[command(flatten)]
    node: NodeArgs,
    /// Print the start-up lines (peer id, listen addresses, metrics URL)
    /// as JSON objects, one per line.
    #[arg(long)]
    json: bool,
    /// Worker threads of the node's runtime (default: one per core). Many
    /// nodes on one machine want 1: each thread keeps memory of its own, and
    /// a call then never changes thread on its way through the node.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub(crate) threads: Option<u16>,
    /// Seconds between handing the heap's free pages back to the system
    /// (glibc keeps what a burst of connections freed); 0: never.
    #[arg(long, value_name = "SECS", default_value_t = super::trim::DEFAULT_TRIM_INTERVAL_SECS)]
    trim_interval: u64,
    #[command(flatten)]
    control: ControlArgs,
    #[command(flatten)]
    health: super::health::HealthArgs,
}

pub(crate) async fn run(cmd: NodeCmd) -> ExitCode {
    let _guard = super::logging::init_with_tap(
        "info",
        cmd.node.log_dir.as_deref(),
        cmd.node.max_log_files,
        !cmd.control.no_control,
    );
    super::trim::spawn(std::time::Duration::from_secs(cmd.trim_interval));
    match serve(cmd.node, cmd.control, cmd.health, cmd.json).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("peerapi: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(
    args: NodeArgs,
    control: ControlArgs,
    health: super::health::HealthArgs,
    json: bool,
) -> anyhow::Result<()> {
    let resolved = args.into_config(NODE_LISTEN)?;
    let metrics = resolved.serve_metrics().await?;
    let mut config = resolved.node;
    // Nobody subscribes to a headless node's events: a small ring.
    config.event_capacity = peerapi::node::HEADLESS_EVENT_CAPACITY;
    if config.route_file.is_none() {
        tracing::warn!("no --routes file: this node serves no routes (it can still call others)");
    }
    if let Some(name) = &control.name() {
        config.log_label = Some(name.clone());
    }
    let grace = config.shutdown_grace;
    let node = peerapi::Node::start(config)
        .await
        .context("cannot start the node")?;
    let handle = node.handle();
    let prober = health.start(&handle)?;
    // Ready before anything is printed: a script that read our address
    // finds the socket there.
    let control = match control.options(&handle.local_peer_id()) {
        Some((options, name)) => Some(
            peerapi::control::endpoint::offer(&handle, options, name)
                .await
                .map_err(|e| anyhow::anyhow!(e))?,
        ),
        None => None,
    };
    let say = |event: &str, key: &str, value: String, text: &str| {
        if json {
            println!("{}", serde_json::json!({"event": event, key: value}));
        } else {
            println!("{text} {value}");
        }
    };
    say(
        "peer_id",
        "peer_id",
        handle.local_peer_id().to_string(),
        "peer id",
    );
    for addr in handle.listen_addrs().await? {
        say("listening", "addr", addr.to_string(), "listening on");
    }
    if let Some(socket) = &control {
        say(
            "control",
            "socket",
            socket.path().display().to_string(),
            "control on",
        );
    }
    if let Some(addr) = metrics {
        say(
            "metrics",
            "url",
            format!("http://{addr}/metrics"),
            "metrics on",
        );
    }
    if let Some(db) = health.db_shown(&handle) {
        say(
            "health",
            "db",
            db.display().to_string(),
            "health history in",
        );
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();

    wait_for_signal().await;
    tracing::info!(
        ?grace,
        "shutting down: no new calls; in-flight calls get up to the grace period (signal again to stop now)"
    );
    if let Some(p) = &prober {
        p.stop();
    }
    tokio::select! {
        _ = node.shutdown() => {}
        _ = wait_for_signal() => tracing::warn!("second signal: stopping now"),
    }
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

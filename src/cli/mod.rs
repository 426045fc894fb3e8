//! Command-line interface: one file per subcommand, clap derive.

mod bench;
mod call;
mod control_args;
mod ctl;
mod ctl_follow;
#[cfg(feature = "console")]
mod demo;
mod fanout;
mod fleet;
mod health;
mod key;
mod load;
mod logging;
mod metrics;
mod node;
mod request;
mod routes;
mod say;
mod shell;
mod subnet;
mod trim;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub(crate) use node::NodeArgs;

#[derive(Parser)]
#[command(
    name = "peerapi",
    version,
    about = "Serve, call and watch the subnet API protocol over libp2p",
    long_about = "peerapi is a libp2p node for peer-to-peer AI subnets: it serves HTTP backends to peers \
                  under route names (/subnet/api_protocol/1.0.0, byte-compatible with the Python subnet nodes), \
                  calls other peers' routes, and (with no subcommand) opens an operator console.",
    after_help = "Start here: `peerapi demo` opens the console on a local demo subnet.\n\n\
                  Taking part in the subnet (DAG sync served and replicated, gossip, DHT walks): \
                  `node`, the console, `demo` and `subnet watch`.\n\
                  Only calling (dial, identify, call; nothing asked of the peer beyond the call): \
                  `call`, `stream`, `routes list`, `load` (with --all-peers they also walk the DHT \
                  to find peers). Their own log lines show with -v or RUST_LOG."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    node: NodeArgs,
    #[command(flatten)]
    control: node::ControlArgs,
    /// Console only: watch without changing anything (no calls, route
    /// edits, dials or disconnects).
    #[arg(long)]
    read_only: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run a headless node until Ctrl-C or SIGTERM.
    Node(Box<node::NodeCmd>),
    /// Call a route on a peer and print the whole response body.
    Call(call::CallCmd),
    /// Call a streaming route and print each chunk as it arrives.
    Stream(call::CallCmd),
    /// Create or inspect key files.
    #[command(subcommand)]
    Key(key::KeyCmd),
    /// Check route files, or list a peer's routes.
    #[command(subcommand)]
    Routes(routes::RoutesCmd),
    /// Watch a subnet: its roster, peers, evictions, rejected gossip.
    #[command(subcommand)]
    Subnet(subnet::SubnetCmd),
    /// Accept template nodes' telemetry (WebSocket) and print each event, verified.
    Telemetry(subnet::TelemetryCmd),
    /// Load a route: many requests, measured as inference benchmarks do
    /// (TTFT, inter-token latency, TPOT, end to end, goodput).
    Load(Box<load::LoadCmd>),
    /// Measure the hop against a direct HTTP call on this machine.
    Bench(bench::BenchCmd),
    /// Start a local demo backend and two demo peers, and open the console on them.
    #[cfg(feature = "console")]
    Demo(demo::DemoCmd),
    /// Talk to a running node through its control socket (scripts).
    #[command(subcommand)]
    Ctl(ctl::CtlCmd),
    /// Open the console on a node that already runs (a service, here or
    /// over ssh); quitting leaves it running.
    #[cfg(feature = "console")]
    Attach(ctl::AttachCmd),
    /// Every node in contexts.toml at once: one row per node, live
    /// (`fleet status` prints the table once, for cron and alerts).
    Fleet(fleet::FleetCmd),
    /// The contexts file: a name, a target and labels for each node you run.
    #[command(subcommand)]
    Context(fleet::ContextCmd),
    /// Print a shell completion script: bash, zsh, fish, elvish, powershell.
    Completions(shell::CompletionsCmd),
    /// Print the man page (or write every page with --dir).
    Man(shell::ManCmd),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Panics become log lines (the console replaces this with its own).
    peerapi::logs::log_panics();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(Command::Node(cmd)) = &cli.command {
        if let Some(n) = cmd.threads {
            builder.worker_threads(usize::from(n));
        }
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("peerapi: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Some(Command::Node(cmd)) => node::run(*cmd).await,
            Some(Command::Call(cmd)) => call::run(cmd, false).await,
            Some(Command::Stream(cmd)) => call::run(cmd, true).await,
            Some(Command::Key(cmd)) => key::run(cmd),
            Some(Command::Routes(cmd)) => routes::run(cmd).await,
            Some(Command::Load(cmd)) => load::run(*cmd).await,
            Some(Command::Bench(cmd)) => bench::run(cmd).await,
            Some(Command::Subnet(cmd)) => subnet::run(cmd).await,
            Some(Command::Telemetry(cmd)) => subnet::telemetry(cmd).await,
            Some(Command::Ctl(cmd)) => ctl::run(cmd).await,
            #[cfg(feature = "console")]
            Some(Command::Attach(cmd)) => ctl::attach(cmd).await,
            Some(Command::Fleet(cmd)) => fleet::run(cmd).await,
            Some(Command::Context(cmd)) => fleet::context(cmd),
            Some(Command::Completions(cmd)) => shell::completions(cmd),
            Some(Command::Man(cmd)) => shell::man(cmd),
            #[cfg(feature = "console")]
            Some(Command::Demo(args)) => console_result(match args.into_options().await {
                Ok(options) => peerapi::tui::run_demo(options).await,
                Err(e) => Err(e),
            }),
            None => open_console(cli.node, cli.control, cli.read_only).await,
        }
    });
    // Calls still running in detached tasks must not keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    result
}

#[cfg(feature = "console")]
fn console_result(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("peerapi: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "console")]
async fn open_console(args: NodeArgs, control: node::ControlArgs, read_only: bool) -> ExitCode {
    let config = match args.into_config(node::CONSOLE_LISTEN) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("peerapi: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let peer_id = config.node.keypair.public().to_peer_id();
    if let Err(e) = config.serve_metrics().await {
        eprintln!("peerapi: {e:#}");
        return ExitCode::FAILURE;
    }
    console_result(
        peerapi::tui::run_console(
            config.node,
            peerapi::tui::ConsoleOptions {
                log_dir: config.log_dir,
                max_log_files: config.max_log_files,
                read_only,
                keys_file: None,
                control: control.options(&peer_id),
                contexts: Vec::new(),
            },
        )
        .await,
    )
}

#[cfg(not(feature = "console"))]
async fn open_console(_args: NodeArgs, _control: node::ControlArgs, _read_only: bool) -> ExitCode {
    eprintln!("peerapi: this build has no console (built without the `console` feature); see `peerapi --help`");
    ExitCode::from(2)
}

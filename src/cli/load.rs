//! `peerapi load`: many requests to one peer (or several), measured as
//! inference benchmarks measure them, with a progress bar; Ctrl-C ends the
//! run and prints what it has.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use peerapi::load::{self, Goodput, LoadSpec, Stop, Summary};
use tokio_util::sync::CancellationToken;

use super::request::{RequestArgs, Targets};
use super::say::fail;

#[derive(Args)]
pub(crate) struct LoadCmd {
    /// The peer (with --peers or --all-peers: the route, and ROUTE is left out).
    addr: String,
    /// Route name in the peer's route table.
    route: Option<String>,
    #[command(flatten)]
    request: RequestArgs,
    #[command(flatten)]
    targets: Targets,
    /// Requests in flight at once.
    #[arg(short = 'c', long, value_name = "N", default_value_t = 8)]
    concurrency: usize,
    /// Requests to send (default 200 unless -z is given).
    #[arg(short = 'n', long, value_name = "N", conflicts_with = "duration")]
    requests: Option<u64>,
    /// Run for this long instead: 30s, 2m, 500ms.
    #[arg(short = 'z', long, value_name = "DURATION")]
    duration: Option<String>,
    /// Mean requests per second, arriving as a Poisson process (default:
    /// each finished request makes room for the next).
    #[arg(long, value_name = "PER_SEC")]
    rate: Option<f64>,
    /// The route streams (SSE/NDJSON tokens): measure TTFT, ITL, TPOT.
    #[arg(long)]
    stream: bool,
    /// Targets a request must meet to count as goodput: ttft:500ms,itl:50ms,tpot:40ms,e2e:10s.
    #[arg(long, value_name = "TARGETS")]
    goodput: Option<String>,
    /// The summary as JSON, with every request's record.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(cmd: LoadCmd) -> ExitCode {
    // The command says what failed in a line of its own (RUST_LOG for more).
    let _guard = super::logging::init("error", None, peerapi::logs::DEFAULT_MAX_LOG_FILES);
    let (addr, route) = match cmd.targets.positionals(&cmd.addr, &cmd.route) {
        Ok(ok) => ok,
        Err(message) => return fail(2, message),
    };
    let goodput = match cmd.goodput.as_deref().map(Goodput::parse).transpose() {
        Ok(g) => g.unwrap_or_default(),
        Err(e) => return fail(2, e),
    };
    let stop = match (&cmd.duration, cmd.requests) {
        (Some(d), _) => match load::parse_duration(d) {
            Some(d) => Stop::After(d),
            None => {
                return fail(
                    2,
                    format!("-z {d:?} is not a duration like 30s, 2m or 500ms"),
                )
            }
        },
        (None, n) => Stop::Requests(n.unwrap_or(load::plan::DEFAULT_LOAD_REQUESTS)),
    };
    if cmd.concurrency == 0 {
        return fail(2, "-c must be at least 1");
    }
    let (req, config) = match cmd.request.prepare(&route, &cmd.targets) {
        Ok(ok) => ok,
        Err((code, message)) => return fail(code, message),
    };
    let node = match peerapi::Node::start(config).await {
        Ok(n) => n,
        Err(e) => return fail(1, format!("cannot start the local node: {e}")),
    };
    let handle = node.handle();
    let targets = match addr {
        Some(a) => match peerapi::node::parse_peer_addr(&a) {
            Ok(a) => vec![a],
            Err(e) => return fail(3, e),
        },
        None => match cmd.targets.resolve(&handle, &route).await {
            Ok(t) => t,
            Err(e) => return fail(3, e),
        },
    };
    let spec = LoadSpec {
        targets,
        request: req,
        stream: cmd.stream,
        concurrency: cmd.concurrency,
        stop,
        rate: cmd.rate,
    };
    let bar = progress_bar(stop);
    let cancel = CancellationToken::new();
    let on_ctrl_c = cancel.clone();
    let ctrl_c = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_ctrl_c.cancel();
        }
    });
    let finished = load::run(handle, spec, cancel.clone(), |p| {
        bar.set_position(match stop {
            Stop::Requests(_) => p.done,
            Stop::After(_) => p.elapsed.as_millis() as u64,
        });
        let secs = p.elapsed.as_secs_f64().max(1e-3);
        bar.set_message(format!(
            "{} ok · {} failed · {:.0} calls/s ok",
            p.done - p.failed,
            p.failed,
            (p.done - p.failed) as f64 / secs
        ));
    })
    .await;
    bar.finish_and_clear();
    ctrl_c.abort();
    node.close_gently(peerapi::node::ONE_SHOT_CLOSE_WITHIN)
        .await;
    let summary = Summary::of(
        &finished.samples,
        finished.wall,
        finished.unfinished,
        &goodput,
    );
    if cancel.is_cancelled() {
        eprintln!("peerapi: interrupted; the summary covers what finished");
    }
    let mut out = std::io::stdout().lock();
    if cmd.json {
        let report = serde_json::json!({
            "summary": summary,
            "samples": finished.samples.iter().map(|s| s.json()).collect::<Vec<_>>(),
        });
        let _ = writeln!(out, "{report}");
    } else {
        let _ = write!(out, "{}", summary.table());
    }
    let _ = out.flush();
    if summary.failed > 0 || summary.requests == 0 {
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

fn progress_bar(stop: Stop) -> indicatif::ProgressBar {
    let (len, template) = match stop {
        Stop::Requests(n) => (n, "{bar:30} {pos}/{len} requests · {msg} · ETA {eta}"),
        Stop::After(d) => (
            d.as_millis() as u64,
            "{bar:30} {elapsed}/{duration} · {msg}",
        ),
    };
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(len),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

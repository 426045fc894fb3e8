//! `peerapi fleet` (every node in contexts.toml at once: the console's
//! fleet view, `fleet status` once for cron, and the fleet-wide actions
//! `fleet reload` and `fleet fan-out`) and `peerapi context`
//! (the contexts file, for scripts).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use peerapi::fleet::actions::FanOutAsk;
use peerapi::fleet::contexts::{self, Context};
use peerapi::fleet::follow::Heard;
use peerapi::fleet::{Fleet, FleetFilter, ProbeOptions, Reach};
use tokio::sync::mpsc;

use super::say::fail;

#[derive(Args, Clone)]
pub(crate) struct ContextsFile {
    /// The contexts file (default: $XDG_CONFIG_HOME/peerapi/contexts.toml,
    /// or PEERAPI_CONTEXTS).
    #[arg(long, value_name = "FILE", global = true)]
    contexts: Option<PathBuf>,
}

impl ContextsFile {
    pub(crate) fn path(&self) -> Result<PathBuf, String> {
        self.contexts
            .clone()
            .or_else(contexts::default_path)
            .ok_or_else(|| {
                "no place for contexts: set XDG_CONFIG_HOME or HOME, or give --contexts FILE".into()
            })
    }

    /// The contexts that read well; what went wrong with the others goes
    /// to stderr (the rest still work).
    pub(crate) fn load(&self) -> Result<Vec<Context>, String> {
        let path = self.path()?;
        let loaded = contexts::load(&path)?;
        for e in &loaded.errors {
            eprintln!("peerapi: {e} (this context is left out)");
        }
        Ok(loaded.contexts)
    }
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct FleetCmd {
    #[command(subcommand)]
    action: Option<FleetAction>,
    #[command(flatten)]
    watch: WatchArgs,
}

#[derive(Args, Clone)]
pub(crate) struct WatchArgs {
    /// Which nodes: context names and LABEL=VALUE pairs (every label pair
    /// must match; any name may). Default: every context.
    #[arg(value_name = "NAME|LABEL=VALUE")]
    select: Vec<String>,
    #[command(flatten)]
    file: ContextsFile,
    /// Seconds between two figures of one node.
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    interval: f64,
    /// Longest wait in seconds for a node to answer (ssh included).
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    answer_within: f64,
    /// Longest wait in seconds between two tries to reach a node that is down.
    #[arg(long, value_name = "SECS", default_value_t = 3.0)]
    retry_max: f64,
}

#[derive(Subcommand)]
enum FleetAction {
    /// The fleet table once, for cron jobs and alerts: exit 1 when a node is down.
    Status {
        #[command(flatten)]
        watch: WatchArgs,
        #[arg(long)]
        json: bool,
        /// Only rows this filter lets through, as the fleet view's `/`
        /// (e.g. "errors>1%", "p99>500ms", "subnet=3").
        #[arg(long, value_name = "FILTER")]
        filter: Option<String>,
    },
    /// Each chosen node re-reads its route file: one result line per node;
    /// exit 1 when any did not (read-only contexts refuse).
    Reload {
        #[command(flatten)]
        watch: WatchArgs,
        #[arg(long)]
        json: bool,
    },
    /// Each chosen node calls ROUTE on every connected peer that serves the
    /// API protocol: one summary line per node; exit 1 when any failed.
    FanOut {
        /// The route to call on each node's API peers.
        route: String,
        /// Request body (POST; without it: GET).
        #[arg(short = 'd', long = "data", value_name = "BODY", default_value = "")]
        body: String,
        /// A streamed call.
        #[arg(long)]
        stream: bool,
        /// Longest wait in seconds for one node's whole fan-out.
        #[arg(long, value_name = "SECS", default_value_t = 120.0)]
        within: f64,
        #[command(flatten)]
        watch: WatchArgs,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub(crate) enum ContextCmd {
    /// The contexts, and what is wrong with any that are left out.
    List {
        #[command(flatten)]
        file: ContextsFile,
        #[arg(long)]
        json: bool,
    },
    /// Add a context (refused if the name is taken; the rest of the file is kept).
    Add {
        #[command(flatten)]
        file: ContextsFile,
        name: String,
        /// unix:/path/to/node.sock or ssh://[user@]host[:port][/name]
        target: String,
        /// A label, KEY=VALUE (repeat it).
        #[arg(long = "label", value_name = "KEY=VALUE")]
        labels: Vec<String>,
        /// Watch only: calls, edits and fleet actions are refused.
        #[arg(long)]
        read_only: bool,
        #[arg(long)]
        color: Option<String>,
    },
    /// Remove a context (only its table; the rest of the file is kept).
    Remove {
        #[command(flatten)]
        file: ContextsFile,
        name: String,
    },
}

fn secs(name: &str, v: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(v)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("--{name} must be a positive number of seconds"))
}

impl WatchArgs {
    pub(crate) fn options(&self) -> Result<ProbeOptions, String> {
        Ok(ProbeOptions {
            interval: secs("interval", self.interval)?,
            answer_within: secs("answer-within", self.answer_within)?,
            retry_max: secs("retry-max", self.retry_max)?,
        })
    }

    /// The chosen contexts (exit code 2 with why when none are).
    pub(crate) fn contexts(&self) -> Result<Vec<Context>, (u8, String)> {
        let all = self.file.load().map_err(|e| (2, e))?;
        let path = self.file.path().map_err(|e| (2, e))?;
        if all.is_empty() {
            return Err((
                2,
                format!(
                    "no contexts in {}: add one with `peerapi context add NAME unix:/path/to/node.sock`",
                    path.display()
                ),
            ));
        }
        let (pairs, names): (Vec<&String>, Vec<&String>) =
            self.select.iter().partition(|s| s.contains('='));
        let chosen: Vec<Context> = all
            .into_iter()
            .filter(|c| names.is_empty() || names.iter().any(|n| **n == c.name))
            .filter(|c| {
                pairs.iter().all(|p| {
                    let (k, v) = p.split_once('=').unwrap_or_default();
                    c.has_label(k, v)
                })
            })
            .collect();
        if chosen.is_empty() {
            return Err((
                2,
                format!(
                    "no context in {} matches {}",
                    path.display(),
                    self.select.join(" ")
                ),
            ));
        }
        Ok(chosen)
    }
}

pub(crate) async fn run(cmd: FleetCmd) -> ExitCode {
    match cmd.action {
        Some(FleetAction::Status {
            watch,
            json,
            filter,
        }) => status(watch, json, filter).await,
        Some(FleetAction::Reload { watch, json }) => {
            act(watch, json, |c, w, o| {
                peerapi::fleet::actions::reload_routes(c, w, o.answer_within)
            })
            .await
        }
        Some(FleetAction::FanOut {
            route,
            body,
            stream,
            within,
            watch,
            json,
        }) => {
            let within = match secs("within", within) {
                Ok(w) => w,
                Err(e) => return fail(2, e),
            };
            let ask = FanOutAsk {
                route,
                body,
                stream,
            };
            act(watch, json, move |c, w, o| {
                peerapi::fleet::actions::fan_out(c, w, ask.clone(), o.answer_within, within)
            })
            .await
        }
        None => watch(cmd.watch).await,
    }
}

#[cfg(feature = "console")]
async fn watch(args: WatchArgs) -> ExitCode {
    let (contexts, options) = match (args.contexts(), args.options()) {
        (Ok(c), Ok(o)) => (c, o),
        (Err((code, e)), _) => return fail(code, e),
        (_, Err(e)) => return fail(2, e),
    };
    super::console_result(peerapi::tui::fleet::run(contexts, options).await)
}

#[cfg(not(feature = "console"))]
async fn watch(_: WatchArgs) -> ExitCode {
    fail(
        2,
        "this peerapi is built without the console: use `peerapi fleet status`",
    )
}

async fn status(args: WatchArgs, json: bool, filter: Option<String>) -> ExitCode {
    let (contexts, options) = match (args.contexts(), args.options()) {
        (Ok(c), Ok(o)) => (c, o),
        (Err((code, e)), _) => return fail(code, e),
        (_, Err(e)) => return fail(2, e),
    };
    let filter = match FleetFilter::parse(filter.as_deref().unwrap_or_default()) {
        Ok(f) => f,
        Err(e) => return fail(2, format!("--filter: {e}")),
    };
    let mut fleet = Fleet::new(contexts, Instant::now());
    let mut probes = peerapi::fleet::probe::watch(
        &fleet
            .rows
            .iter()
            .map(|r| r.context.clone())
            .collect::<Vec<_>>(),
        options,
    );
    // Every node's first word, or the deadline: a node that said nothing
    // by then is down ("no answer within").
    let deadline = tokio::time::Instant::now() + options.answer_within + Duration::from_secs(1);
    let mut heard = vec![false; fleet.rows.len()];
    while heard.iter().any(|h| !h) {
        match tokio::time::timeout_at(deadline, probes.recv()).await {
            Ok(Some((i, probe))) => {
                if !heard[i] {
                    fleet.apply(i, probe, Instant::now());
                    heard[i] = true;
                }
            }
            Ok(None) | Err(_) => break,
        }
    }
    for (i, row) in fleet.rows.iter_mut().enumerate() {
        if !heard[i] {
            row.reach = Reach::Down(format!("no answer within {:?}", options.answer_within));
        }
    }
    let shown = fleet.order(&filter, Default::default());
    if json {
        let rows: Vec<_> = shown.iter().map(|&i| fleet.rows[i].json()).collect();
        let out = serde_json::json!({ "nodes": rows, "down": fleet.down() });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        print!("{}", peerapi::fleet::table::text(&fleet, &shown));
    }
    if fleet.down() > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// A fleet-wide action on the chosen contexts: one line (or JSON object)
/// per node, in file order, once all have answered.
async fn act(
    args: WatchArgs,
    json: bool,
    start: impl FnOnce(&[Context], &[usize], ProbeOptions) -> mpsc::Receiver<(usize, Heard)>,
) -> ExitCode {
    let (contexts, options) = match (args.contexts(), args.options()) {
        (Ok(c), Ok(o)) => (c, o),
        (Err((code, e)), _) => return fail(code, e),
        (_, Err(e)) => return fail(2, e),
    };
    let all: Vec<usize> = (0..contexts.len()).collect();
    let mut rx = start(&contexts, &all, options);
    let mut outcomes: Vec<Option<(bool, String)>> = vec![None; contexts.len()];
    while let Some((i, heard)) = rx.recv().await {
        if let (Heard::Action { ok, text, .. }, Some(slot)) = (heard, outcomes.get_mut(i)) {
            *slot = Some((ok, text));
        }
    }
    let mut failed = 0;
    let mut rows = Vec::new();
    for (context, outcome) in contexts.iter().zip(outcomes) {
        let (ok, text) = outcome.unwrap_or((false, "no result".into()));
        failed += usize::from(!ok);
        if json {
            rows.push(serde_json::json!({ "node": context.name, "ok": ok, "result": text }));
        } else {
            println!(
                "{:<16} {:<6} {text}",
                context.name,
                if ok { "ok" } else { "FAILED" }
            );
        }
    }
    if json {
        let out = serde_json::json!({ "nodes": rows, "failed": failed });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    }
    if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

pub(crate) fn context(cmd: ContextCmd) -> ExitCode {
    match cmd {
        ContextCmd::List { file, json } => {
            let path = match file.path() {
                Ok(p) => p,
                Err(e) => return fail(2, e),
            };
            let loaded = match contexts::load(&path) {
                Ok(l) => l,
                Err(e) => return fail(2, e),
            };
            if json {
                let out = serde_json::json!({
                    "file": path.display().to_string(),
                    "contexts": loaded.contexts,
                    "errors": loaded.errors,
                });
                println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            } else {
                if loaded.contexts.is_empty() && loaded.errors.is_empty() {
                    eprintln!(
                        "no contexts in {}: add one with `peerapi context add NAME TARGET`",
                        path.display()
                    );
                }
                for c in &loaded.contexts {
                    let labels: Vec<String> =
                        c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    let ro = if c.read_only { "  read-only" } else { "" };
                    println!("{:<16} {:<40} {}{ro}", c.name, c.target, labels.join(","));
                }
                for e in &loaded.errors {
                    eprintln!("peerapi: {e} (this context is left out)");
                }
            }
            if loaded.errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            }
        }
        ContextCmd::Add {
            file,
            name,
            target,
            labels,
            read_only,
            color,
        } => {
            let mut map = BTreeMap::new();
            for l in &labels {
                match l.split_once('=') {
                    Some((k, v)) if !k.is_empty() => {
                        map.insert(k.to_string(), v.to_string());
                    }
                    _ => return fail(2, format!("--label {l:?}: write KEY=VALUE")),
                }
            }
            let context = Context {
                name,
                target,
                labels: map,
                read_only,
                color,
            };
            match file
                .path()
                .and_then(|p| contexts::add(&p, &context).map(|()| p))
            {
                Ok(p) => {
                    eprintln!("added {:?} to {}", context.name, p.display());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(2, e),
            }
        }
        ContextCmd::Remove { file, name } => {
            match file
                .path()
                .and_then(|p| contexts::remove(&p, &name).map(|()| p))
            {
                Ok(p) => {
                    eprintln!("removed {name:?} from {}", p.display());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(2, e),
            }
        }
    }
}

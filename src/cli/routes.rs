//! `peerapi routes check`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

#[derive(Subcommand)]
pub(crate) enum RoutesCmd {
    /// Validate a route file and print its table (exit 1 on errors).
    Check { file: PathBuf },
}

pub(crate) async fn run(cmd: RoutesCmd) -> ExitCode {
    match cmd {
        RoutesCmd::Check { file } => check(&file),
    }
}

fn check(file: &std::path::Path) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("peerapi: cannot read {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    match peerapi::routes::parse_routes(&text) {
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
                    route.url
                );
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

//! `peerapi bench`.

use std::process::ExitCode;

use clap::Args;

#[derive(Args)]
pub(crate) struct BenchCmd {
    /// A short run (one repeat, smaller counts) for a first look.
    #[arg(long)]
    quick: bool,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(cmd: BenchCmd) -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("peerapi: cannot find my own executable to start the serving node: {e}");
            return ExitCode::FAILURE;
        }
    };
    let size = if cmd.quick {
        peerapi::bench::BenchSize::QUICK
    } else {
        peerapi::bench::BenchSize::FULL
    };
    let report = peerapi::bench::run(&exe, size, |step| eprintln!("bench: {step}…")).await;
    match report {
        Ok(r) if cmd.json => {
            println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Ok(r) => {
            print!("{}", r.table());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("peerapi: bench failed: {e}");
            ExitCode::FAILURE
        }
    }
}

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
    /// Run only these sections (repeatable): unary, stream, blob, first, cli, memory.
    #[arg(long = "only", value_name = "SECTION", value_parser = clap::builder::PossibleValuesParser::new(peerapi::bench::BenchFilter::SECTIONS))]
    only: Vec<String>,
    /// Measure only this protocol version (repeatable): 2 or 1.
    #[arg(long = "protocol", value_name = "VERSION", value_parser = ["1", "2"])]
    protocols: Vec<String>,
    /// Unary concurrencies to measure (repeatable); default 1, 16 and 64.
    #[arg(long = "concurrency", value_name = "N")]
    concurrency: Vec<usize>,
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
    let filter = peerapi::bench::BenchFilter {
        sections: cmd.only,
        protocols: cmd.protocols,
        concurrency: cmd.concurrency,
    };
    // On a worker thread, like the node's own tasks: the future block_on
    // polls runs on the main thread, and every hand-over between it and
    // the workers would be one more thread wake-up in what is measured.
    let report = tokio::spawn(async move {
        peerapi::bench::run(&exe, size, &filter, |step| eprintln!("bench: {step}…")).await
    })
    .await
    .unwrap_or_else(|e| Err(format!("the bench task failed: {e}")));
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

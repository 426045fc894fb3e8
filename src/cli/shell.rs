//! `peerapi completions SHELL` and `peerapi man`: the shell's conventions,
//! generated from the same clap definitions the parser uses.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory};

#[derive(Args)]
pub(crate) struct CompletionsCmd {
    /// The shell to complete for.
    shell: clap_complete::Shell,
}

#[derive(Args)]
pub(crate) struct ManCmd {
    /// Write peerapi.1 and a page per subcommand (peerapi-call.1, …) here
    /// instead of printing peerapi.1.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Writes `bytes` to stdout; a reader that went away (`| head`) is no error.
fn print(bytes: &[u8]) -> ExitCode {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("peerapi: cannot write to standard output: {e}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn completions(cmd: CompletionsCmd) -> ExitCode {
    let mut command = super::Cli::command();
    // Into memory first: clap_complete panics when its writer fails.
    let mut script = Vec::new();
    clap_complete::generate(cmd.shell, &mut command, "peerapi", &mut script);
    print(&script)
}

pub(crate) fn man(cmd: ManCmd) -> ExitCode {
    let command = super::Cli::command();
    let mut page = Vec::new();
    let result = match &cmd.dir {
        Some(dir) => std::fs::create_dir_all(dir)
            .and_then(|()| clap_mangen::generate_to(command, dir))
            .map(|()| {
                eprintln!("peerapi: man pages written to {}", dir.display());
            }),
        None => clap_mangen::Man::new(command).render(&mut page),
    };
    match result {
        Ok(()) => print(&page),
        Err(e) => {
            eprintln!("peerapi: cannot write the man pages: {e}");
            ExitCode::FAILURE
        }
    }
}

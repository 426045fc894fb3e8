//! `peerapi demo`: its flags. The orchestration (backend, two peers, the
//! console joined to them) lives in the console, `tui/demo.rs`, because it
//! drives the console's own loop and logging.

use std::path::PathBuf;

/// `peerapi demo` options.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct DemoCmd {
    /// Stream demo tokens with no delay instead of a realistic pace.
    #[arg(long)]
    fast: bool,
    /// Directory for the demo's route file and logs (default: the data directory).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

impl From<DemoCmd> for peerapi::tui::DemoOptions {
    fn from(cmd: DemoCmd) -> Self {
        Self {
            fast: cmd.fast,
            data_dir: cmd.data_dir,
        }
    }
}

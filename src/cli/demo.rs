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
    /// Serve the console node's Prometheus metrics on GET /metrics here: a
    /// port (loopback) or IP:PORT. Off unless given.
    #[arg(long, value_name = "[IP:]PORT", value_parser = super::metrics::parse_listen)]
    metrics_listen: Option<std::net::SocketAddr>,
}

impl DemoCmd {
    /// The demo's options, with the metrics endpoint already bound (so a
    /// port in use is said before the console takes the terminal).
    pub(crate) async fn into_options(self) -> anyhow::Result<peerapi::tui::DemoOptions> {
        let metrics = match self.metrics_listen {
            Some(addr) => {
                let m = std::sync::Arc::new(peerapi::node::metrics::NodeMetrics::new());
                let bound = super::metrics::serve(addr, m.clone(), Default::default()).await?;
                Some((m, bound))
            }
            None => None,
        };
        Ok(peerapi::tui::DemoOptions {
            fast: self.fast,
            data_dir: self.data_dir,
            metrics,
        })
    }
}

//! Logs to stderr and, with a directory, to a daily rolling file (at most
//! `--max-log-files` kept).

use std::path::Path;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

/// Keeps the file writer flushing; drop it last.
pub(crate) struct LogGuard(#[allow(dead_code)] Option<tracing_appender::non_blocking::WorkerGuard>);

/// `default_level` applies when RUST_LOG is not set.
pub(crate) fn init(default_level: &str, log_dir: Option<&Path>, max_files: usize) -> LogGuard {
    init_with_tap(default_level, log_dir, max_files, false)
}

/// [`init`]; with `tap`, lines are also published for attached consoles.
pub(crate) fn init_with_tap(
    default_level: &str,
    log_dir: Option<&Path>,
    max_files: usize,
    tap: bool,
) -> LogGuard {
    let filter =
        || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let stderr = fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(peerapi::logs::stderr_colour())
        .with_target(false)
        .with_filter(filter());
    let appender = log_dir.and_then(|dir| match peerapi::logs::rolling_file(dir, max_files) {
        Ok(a) => Some(a),
        Err(e) => {
            eprintln!("peerapi: {e}; logging to stderr only");
            None
        }
    });
    let (file, guard) = match appender {
        Some(appender) => {
            let (writer, guard) = tracing_appender::non_blocking(appender);
            let layer = fmt::layer()
                .with_writer(writer)
                .with_ansi(false)
                .with_filter(filter());
            (Some(layer), Some(guard))
        }
        None => (None, None),
    };
    let tap = tap.then(|| peerapi::log_lines::tap_layer().with_filter(filter()));
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .with(tap)
        .try_init();
    LogGuard(guard)
}

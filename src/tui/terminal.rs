//! The terminal the console owns, and where logs go while it does: a file
//! and the Log pane, never stdout.

use std::path::PathBuf;

use anyhow::Context;
use ratatui::crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use tokio::sync::mpsc;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use super::action::Action;

/// Where history and logs go: $XDG_DATA_HOME/peerapi or ~/.local/share/peerapi.
pub fn data_dir() -> PathBuf {
    crate::health::data_dir()
}

/// Where the Log pane's lines go: the console running now. A process has
/// one log subscriber, but may open a console more than once (the fleet
/// view, then a node attached from it): each takes the pane over.
type PaneSink = std::sync::Arc<std::sync::Mutex<Option<mpsc::Sender<Action>>>>;

fn pane_sink() -> &'static PaneSink {
    static SINK: std::sync::OnceLock<PaneSink> = std::sync::OnceLock::new();
    SINK.get_or_init(Default::default)
}

/// Routes tracing events to the Log pane (and never to the terminal).
fn pane_layer<S>(sink: PaneSink) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    crate::log_lines::LineLayer::new(move |level: tracing::Level, line: String| {
        if let Some(tx) = sink.lock().ok().and_then(|s| s.clone()) {
            let _ = tx.try_send(Action::Log(line, level));
        }
    })
}

/// Logs to a rolling file in `dir` and to the Log pane through `tx`. The
/// first call in a process installs the subscriber; a later one (another
/// console after the first) only takes the pane over, and the file stays
/// the first one's.
pub(super) fn init_logging(
    dir: &std::path::Path,
    max_files: usize,
    tx: mpsc::Sender<Action>,
) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    use tracing_subscriber::EnvFilter;
    if let Ok(mut sink) = pane_sink().lock() {
        if sink.replace(tx).is_some() {
            return None;
        }
    }
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let appender = std::fs::create_dir_all(dir)
        .map_err(|e| e.to_string())
        .and_then(|()| crate::logs::rolling_file(dir, max_files));
    let (file_layer, guard) = match appender {
        Ok(appender) => {
            let (writer, guard) = tracing_appender::non_blocking(appender);
            (
                Some(
                    tracing_subscriber::fmt::layer()
                        .with_writer(writer)
                        .with_ansi(false)
                        .with_filter(filter()),
                ),
                Some(guard),
            )
        }
        Err(_) => (None, None),
    };
    let _ = tracing_subscriber::registry()
        .with(file_layer)
        .with(pane_layer(pane_sink().clone()).with_filter(filter()))
        .try_init();
    guard
}

/// Keyboard and mouse in a thread of their own (crossterm's read blocks),
/// stopped before anything else reads the terminal.
pub(super) struct Input {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Input {
    pub(super) fn start() -> (
        Self,
        mpsc::UnboundedReceiver<ratatui::crossterm::event::Event>,
    ) {
        use ratatui::crossterm::event;
        let (tx, rx) = mpsc::unbounded_channel();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                match event::poll(std::time::Duration::from_millis(50)) {
                    Ok(true) => match event::read() {
                        Ok(ev) => {
                            if tx.send(ev).is_err() {
                                break;
                            }
                        }
                        Err(_) => break,
                    },
                    Ok(false) => {}
                    Err(_) => break,
                }
            }
        });
        (Self { stop, thread }, rx)
    }

    /// Stops reading and waits for the thread (at most one poll, 50 ms).
    pub(super) fn stop(self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

/// Restores the terminal when dropped, whatever the exit path.
pub(super) struct TerminalGuard;

impl TerminalGuard {
    pub(super) fn enter() -> anyhow::Result<Self> {
        enable_raw_mode().context("cannot put the terminal in raw mode (is this a terminal?)")?;
        let guard = TerminalGuard;
        execute!(std::io::stdout(), EnterAlternateScreen, EnableMouseCapture)?;
        Ok(guard)
    }
}

pub(super) fn restore_terminal() {
    let _ = disable_raw_mode();
    let _ = execute!(
        std::io::stdout(),
        LeaveAlternateScreen,
        DisableMouseCapture,
        ratatui::crossterm::cursor::Show
    );
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn a_line_written_inside_a_node_span_names_the_node() {
        let (tx, mut rx) = mpsc::channel(8);
        let sink = PaneSink::new(std::sync::Mutex::new(Some(tx)));
        let subscriber = tracing_subscriber::registry().with(pane_layer(sink));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("node", name = %"peer A");
            span.in_scope(|| tracing::info!(peer = "p", "served"));
            tracing::info!("outside");
        });
        let line = |rx: &mut mpsc::Receiver<Action>| match rx.try_recv() {
            Ok(Action::Log(text, _)) => text,
            other => panic!("{other:?}"),
        };
        assert_eq!(line(&mut rx), "[peer A] served peer=p");
        assert_eq!(line(&mut rx), "outside");
    }
}

//! Logs that a peer cannot flood: peer-controlled text is escaped and
//! capped, repeated refusal lines are throttled, log files are capped in
//! number.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Default number of daily log files kept; older ones are deleted.
pub const DEFAULT_MAX_LOG_FILES: usize = 7;
/// Most characters of a peer-controlled string written to a log line.
pub const MAX_LOGGED_CHARS: usize = 80;
/// Lines of one kind allowed per [`THROTTLE_WINDOW`] before they are counted
/// instead of written.
pub const THROTTLE_BURST: u32 = 10;
pub const THROTTLE_WINDOW: Duration = Duration::from_secs(10);

/// A daily rolling `peerapi.log` in `dir` that keeps at most `max_files`.
pub fn rolling_file(
    dir: &Path,
    max_files: usize,
) -> Result<tracing_appender::rolling::RollingFileAppender, String> {
    tracing_appender::rolling::RollingFileAppender::builder()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("peerapi")
        .filename_suffix("log")
        .max_log_files(max_files.max(1))
        .build(dir)
        .map_err(|e| format!("cannot write logs to {}: {e}", dir.display()))
}

/// Most characters of a longer message that may quote peer text (an error
/// detail) written to a log line.
pub const MAX_LOGGED_DETAIL_CHARS: usize = 1024;

/// Text a peer sent (a route name, a method), made safe to log: control
/// characters escaped, at most [`MAX_LOGGED_CHARS`] characters, the rest
/// counted.
pub struct Untrusted<'a>(pub &'a str);

/// A longer message that may quote peer text: escaped, capped at
/// [`MAX_LOGGED_DETAIL_CHARS`].
pub struct UntrustedDetail<'a>(pub &'a str);

impl fmt::Display for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, self.0, MAX_LOGGED_CHARS)
    }
}

impl fmt::Display for UntrustedDetail<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, self.0, MAX_LOGGED_DETAIL_CHARS)
    }
}

fn write_escaped(f: &mut fmt::Formatter<'_>, text: &str, max_chars: usize) -> fmt::Result {
    for (shown, (i, c)) in text.char_indices().enumerate() {
        if shown == max_chars {
            return write!(f, "…(+{} bytes)", text.len() - i);
        }
        if c.is_control() || c == '\u{fffd}' {
            write!(f, "{}", c.escape_default())?;
        } else {
            write!(f, "{c}")?;
        }
    }
    Ok(())
}

/// [`Untrusted`] as an owned string, for events and messages.
pub fn untrusted(s: &str) -> String {
    Untrusted(s).to_string()
}

#[derive(Default)]
struct Bucket {
    window_start: Option<Instant>,
    written: u32,
    suppressed: u64,
}

/// Throttles log lines by kind: [`THROTTLE_BURST`] per window, the rest
/// counted and reported with the next line written.
#[derive(Default)]
pub struct Throttle {
    buckets: Mutex<HashMap<&'static str, Bucket>>,
}

impl Throttle {
    /// `Some(n)` when a line of `kind` may be written now (`n` lines were
    /// suppressed since the last one), `None` when it is to be counted.
    pub fn allow(&self, kind: &'static str) -> Option<u64> {
        self.allow_at(kind, Instant::now())
    }

    fn allow_at(&self, kind: &'static str, now: Instant) -> Option<u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let b = buckets.entry(kind).or_default();
        if b.window_start
            .is_none_or(|s| now.duration_since(s) >= THROTTLE_WINDOW)
        {
            b.window_start = Some(now);
            b.written = 0;
        }
        if b.written < THROTTLE_BURST {
            b.written += 1;
            Some(std::mem::take(&mut b.suppressed))
        } else {
            b.suppressed += 1;
            None
        }
    }
}

/// Whether log lines to stderr may be coloured: only on a terminal, and
/// never with `NO_COLOR` set (files and journals get plain text).
pub fn stderr_colour() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

/// Logs a panic as one error line that names its thread and the place,
/// in the span of the task that panicked (its node, its call). A panic in
/// a tokio worker ends only its task: the process goes on, and the line is
/// what the operator gets.
pub fn log_panic(info: &std::panic::PanicHookInfo<'_>) {
    let thread = std::thread::current();
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    let place = info
        .location()
        .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
        .unwrap_or_default();
    let name = thread.name().unwrap_or("unnamed");
    if !tracing::dispatcher::has_been_set() {
        // No log yet (a panic before logging started): stderr is all there is.
        eprintln!("peerapi: panic in thread {name} at {place}: {message}");
        return;
    }
    tracing::error!(
        thread = name,
        at = %place,
        "panic: {message} (please report it with this line)"
    );
}

/// Sends every panic to the log (and nowhere else).
pub fn log_panics() {
    std::panic::set_hook(Box::new(log_panic));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untrusted_text_is_escaped_and_capped() {
        assert_eq!(Untrusted("health").to_string(), "health");
        assert_eq!(Untrusted("a\nb\x1b[2J").to_string(), "a\\nb\\u{1b}[2J");
        let long = "x".repeat(10_000);
        let shown = Untrusted(&long).to_string();
        assert!(shown.starts_with(&"x".repeat(MAX_LOGGED_CHARS)));
        assert!(shown.ends_with(&format!("…(+{} bytes)", 10_000 - MAX_LOGGED_CHARS)));
        assert!(shown.len() < 120);
    }

    #[test]
    fn repeated_lines_are_counted_then_reported() {
        let t = Throttle::default();
        let start = Instant::now();
        for _ in 0..THROTTLE_BURST {
            assert_eq!(t.allow_at("refused", start), Some(0));
        }
        for _ in 0..5 {
            assert_eq!(t.allow_at("refused", start), None);
        }
        assert_eq!(t.allow_at("other", start), Some(0), "kinds are separate");
        let later = start + THROTTLE_WINDOW;
        assert_eq!(t.allow_at("refused", later), Some(5));
    }

    /// Run in a child process by the test below (a panic hook is
    /// process-wide: installed in this test binary it would catch every
    /// other test's panics): a worker thread panics under `log_panics`.
    #[test]
    #[ignore = "run as a child process by a_panic_in_a_worker_is_one_log_line"]
    fn panicking_worker_child() {
        let _ = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .try_init();
        log_panics();
        let worker = std::thread::Builder::new()
            .name("worker-7".into())
            .spawn(|| panic!("boom in a worker"))
            .unwrap();
        assert!(worker.join().is_err(), "the worker panicked");
    }

    #[test]
    fn a_panic_in_a_worker_is_one_log_line() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "logs::tests::panicking_worker_child",
                "--nocapture",
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        let line = stderr
            .lines()
            .find(|l| l.contains("panic: boom in a worker"))
            .unwrap_or_else(|| panic!("no panic line in the log:\n{stderr}"));
        assert!(
            line.contains("ERROR") && line.contains("thread=\"worker-7\""),
            "{line}"
        );
        assert!(line.contains("src/logs.rs:"), "the place is named: {line}");
        assert!(
            !stderr.contains("panicked at"),
            "the default hook's text is not printed:\n{stderr}"
        );
    }
}
